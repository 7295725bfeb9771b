"""--dataset by name, by folder under the data root, or by path; duplicate and validation files."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from fusioncore.cli import main
from fusioncore.contracts import DatasetFiles
from fusioncore.data.catalog import CANTrainAndTestDataset, local_datasets, resolve_dataset
from fusioncore.data.datamodule import CANDataModule
from fusioncore.errors import DatasetNotFoundError, UnknownComponentError
from fusioncore.plugins import get_plugins

HEADER = "timestamp,arbitration_id,data_field,attack\n"


def _csv(path, n=1200, attack_every=0, start=1.0):
    rows = [f"{start + i / 1000:.6f},{0x100 + i % 9:03X},{i % 256:02X}00,"
            f"{int(bool(attack_every) and i % attack_every == 0)}" for i in range(n)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "\n".join(rows) + "\n")
    return path


def _layout(root, name="mycar"):
    folder = root / name
    _csv(folder / "train_01_attack_free" / "attack-free-a.csv")
    _csv(folder / "train_02_with_attacks" / "DoS-a.csv", attack_every=7, start=2.0)
    _csv(folder / "test_01_known_vehicle_known_attack" / "DoS-b.csv", attack_every=5, start=3.0)
    return folder


def _registered():
    reg = get_plugins().registry
    return {n: reg.get("dataset", n) for n in reg.names("dataset")}


def test_a_folder_by_name_under_the_data_root_or_by_path(tmp_path, monkeypatch):
    folder = _layout(tmp_path / "root")
    by_name = resolve_dataset("mycar", tmp_path / "root", _registered())
    files = by_name.resolve(tmp_path / "root")
    assert files.root == folder and [p.name for p in files.train] == ["attack-free-a.csv", "DoS-a.csv"]
    by_path = resolve_dataset(str(folder), tmp_path / "elsewhere", _registered())
    assert by_path.name == "mycar" and by_path.resolve(tmp_path / "elsewhere").root == folder
    monkeypatch.chdir(tmp_path / "root")
    assert resolve_dataset("./mycar", tmp_path / "elsewhere", _registered()).resolve(".").root == folder
    assert resolve_dataset("hcrl_sa", tmp_path / "root", _registered()) is _registered()["hcrl_sa"]
    assert local_datasets(tmp_path / "root") == ["mycar"]


def test_unknown_names_list_registered_and_local_choices(tmp_path):
    _layout(tmp_path / "root")
    with pytest.raises(UnknownComponentError) as info:
        resolve_dataset("mycra", tmp_path / "root", _registered())
    text = str(info.value)
    assert "unknown dataset 'mycra'" in text and "hcrl_sa" in text and "mycar" in text
    assert "Did you mean 'mycar'" in text and "can-train-and-test layout" in text
    (tmp_path / "plain").mkdir()
    with pytest.raises(DatasetNotFoundError, match="not a dataset folder: expected train_"):
        resolve_dataset(str(tmp_path / "plain"), tmp_path / "root", _registered())


def test_duplicate_test_files_are_dropped_visibly(tmp_path, caplog):
    folder = _layout(tmp_path / "root")
    copy = folder / "test_02_unknown_vehicle_known_attack" / "DoS-copy.csv"
    copy.parent.mkdir()
    copy.write_bytes((folder / "test_01_known_vehicle_known_attack" / "DoS-b.csv").read_bytes())
    with caplog.at_level(logging.WARNING, logger="fusioncore.data.catalog"):
        files = CANTrainAndTestDataset("mycar", "x").resolve(tmp_path / "root")
    assert copy in files.duplicates
    assert files.dropped_tests == {"test_02_unknown_vehicle_known_attack": (copy,)}
    assert "test_02_unknown_vehicle_known_attack" not in files.tests
    assert "byte-identical" in caplog.text and "left out" in caplog.text


def test_validation_files_of_a_dataset_go_wholly_to_validation(tmp_path):
    folder = _layout(tmp_path / "root")
    extra = _csv(folder / "held" / "DoS-val.csv", attack_every=3, start=9.0)
    base = CANTrainAndTestDataset("mycar", "x").resolve(tmp_path / "root")
    files = DatasetFiles(name="mycar", root=folder, train=base.train, tests=base.tests, validation=(extra,))
    dm = CANDataModule(files, progress=False)
    dm.setup()
    val = dm.splits["val"]
    held = val.frames.sources.index(str(extra))
    from_extra = val.frames.source[val.starts] == held
    assert from_extra.sum() == 12  # every window of the file, no other split has any
    for split in ("train", "fusion"):
        split = dm.splits[split]
        assert not (split.frames.source[split.starts] == held).any()


def test_datasets_command_lists_local_folders_and_survives_a_bad_file(tmp_path, capsys, monkeypatch):
    root = tmp_path / "root"
    _layout(root, "good")
    bad = _layout(root, "broken")
    (bad / "test_01_known_vehicle_known_attack" / "empty.csv").write_text("")
    assert main(["datasets", "--data-root", str(root), "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["good"]["found"] and "error" not in rows["good"]
    assert rows["good"]["splits"]["validation"]["windows"] > 0
    assert "empty file" in rows["broken"]["error"]
    assert rows["hcrl_sa"]["found"] is False  # the other datasets are still described
    # wide enough that the error cell never wraps, whatever other rows (a generated synthetic
    # dataset from an earlier test of the session) widen the table
    monkeypatch.setenv("COLUMNS", "400")
    assert main(["datasets", "--data-root", str(root)]) == 0
    assert "empty file" in capsys.readouterr().out


def test_attack_windows_reach_the_fusion_and_validation_of_a_local_dataset(tmp_path):
    folder = _layout(tmp_path / "root")
    files = resolve_dataset(str(folder), tmp_path, _registered()).resolve(tmp_path)
    dm = CANDataModule(files, progress=False)
    dm.setup()
    summary = dm.split_summary()
    assert all(summary[s].attack_windows > 0 for s in ("train", "fusion", "val"))
    assert np.all(np.diff(dm.splits["val"].starts) > 0)


def test_tables_to_a_file_or_pipe_are_wide_enough_not_to_elide_cells(monkeypatch):
    """Rich's 80 columns for non-terminals cut the split table's attack types to '…' in CI logs."""
    import io

    from fusioncore import cli

    monkeypatch.delenv("COLUMNS", raising=False)
    assert cli._width(io.StringIO()) == cli.FILE_WIDTH
    monkeypatch.setenv("COLUMNS", "100")
    assert cli._width(io.StringIO()) is None  # the user's choice; rich reads it
