"""Preflight on real captures nobody prepared: sparse attacks early in every file, no attacks at all."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from fusioncore.cli import main
from fusioncore.data.formats import read_capture

HEADER = "timestamp,arbitration_id,data_field,attack\n"


def _write(path: Path, frames, rows: np.ndarray) -> None:
    """Real rows of a capture, in file order, as can-train-and-test CSV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [HEADER]
    for i in rows:
        n = int(frames.dlc[i])
        payload = frames.data[i, :n].tobytes().hex().upper()
        lines.append(f"{frames.timestamp[i]:.6f},{int(frames.can_id[i]):03X},{payload},{int(frames.label[i])}\n")
    path.write_text("".join(lines))


def _early_attacks_root(shared: Path, root: Path) -> Path:
    """hcrl_sa excerpts where every training file's attacks sit only in its first half.

    Around each attack file's first attack, 60,000 real rows are kept; in the second half of the
    excerpt the attack rows are dropped (the benign rows stay, so timestamps keep increasing).
    """
    src = shared / "can-train-and-test" / "hcrl_sa"
    ds = root / "early"
    for name in ("DoS-kia.csv", "fuzzing-sonata.csv"):
        f = read_capture(src / "train_02_with_attacks" / name).frames
        first = int(np.argmax(f.label > 0))
        rows = np.arange(max(0, first - 15_000), min(len(f), first + 45_000))
        half = rows[len(rows) // 2:]
        rows = np.concatenate([rows[: len(rows) // 2], half[f.label[half] == 0]])
        _write(ds / "train_02_with_attacks" / name, f, rows)
    for name in ("attack-free-kia.csv", "attack-free-sonata.csv"):
        f = read_capture(src / "train_01_attack_free" / name).frames
        _write(ds / "train_01_attack_free" / name, f, np.arange(40_000))
    for name in ("DoS-sonata.csv", "fuzzing-kia.csv"):
        f = read_capture(src / "test_01_known_vehicle_known_attack" / name).frames
        _write(ds / "test_01_known_vehicle_known_attack" / name, f, np.arange(40_000, 70_000))
    return ds


@pytest.mark.slow
@pytest.mark.realdata
def test_sparse_early_attacks_still_reach_fusion_and_validation(shared_data, tmp_path):
    ds = _early_attacks_root(shared_data, tmp_path)
    out = tmp_path / "run"
    assert main(["run", "--preset", "quick", "--fusion", "dqn,mean,weighted,stacking", "--dataset", str(ds),
                 "--out", str(out), "trainer.progress=false"]) == 0
    report = json.loads((out / "report.json").read_text())
    splits = report["data"]["splits"]
    assert splits["fusion"]["attack_windows"] > 0 and splits["val"]["attack_windows"] > 0
    assert set(splits["val"]["by_type"]) == {"flooding", "fuzzing"}
    assert set(report["scenarios"]["test_01_known_vehicle_known_attack"]) >= {"dqn", "mean", "weighted",
                                                                              "stacking"}
    # the old contiguous 70/15/15 cut is still there, and it is exactly what fails on such data
    assert main(["run", "--preset", "quick", "--fusion", "dqn", "--dataset", str(ds),
                 "split.policy=contiguous", "--out", str(tmp_path / "contiguous"),
                 "trainer.progress=false"]) == 2


@pytest.mark.realdata
def test_training_files_without_attacks_fail_preflight_in_seconds(shared_data, tmp_path, capsys):
    src = shared_data / "can-train-and-test" / "hcrl_sa"
    ds = tmp_path / "benign-only"
    f = read_capture(src / "train_01_attack_free" / "attack-free-kia.csv").frames
    _write(ds / "train_01_attack_free" / "attack-free-kia.csv", f, np.arange(20_000))
    t = read_capture(src / "test_01_known_vehicle_known_attack" / "DoS-sonata.csv").frames
    _write(ds / "test_01_known_vehicle_known_attack" / "DoS-sonata.csv", t, np.arange(50_000, 60_000))
    start = time.perf_counter()
    assert main(["run", "--dataset", str(ds), "--out", str(tmp_path / "run"), "trainer.progress=false"]) == 2
    assert time.perf_counter() - start < 10
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "preflight:" in err and "supervised but the detector block holds no attack windows" in err
    assert "--detectors vgae" in err  # the option that would fix it
    assert not (tmp_path / "run").exists()
