"""The prediction-store key changes with the detector's weights, its config, and the data."""

from __future__ import annotations

import numpy as np
import pytest
from fusioncore_gat import GATDetector

from fusioncore.contracts import DatasetFiles, GraphSchema
from fusioncore.data.datamodule import CANDataModule
from fusioncore.pipeline.detectors import prediction_key


def _write_capture(path, seed: int, n: int = 3000) -> None:
    rng = np.random.default_rng(seed)
    ids = rng.choice([0x101, 0x202, 0x303, 0x404, 0x505], size=n)
    payload = rng.integers(0, 256, (n, 8), dtype=np.uint8)
    rows = [f"{1.0 + i * 1e-3:.6f},{ids[i]:03X},{payload[i].tobytes().hex().upper()},0" for i in range(n)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("timestamp,arbitration_id,data_field,attack\n" + "\n".join(rows) + "\n")


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "toy"
    _write_capture(root / "train_01_attack_free" / "attack-free-a.csv", 0)
    _write_capture(root / "train_01_attack_free" / "attack-free-b.csv", 1)
    _write_capture(root / "test_01_x" / "attack-free-c.csv", 2)
    return root


def _files(root) -> DatasetFiles:
    train = tuple(sorted((root / "train_01_attack_free").glob("*.csv")))
    tests = {"test_01_x": (root / "test_01_x" / "attack-free-c.csv",)}
    return DatasetFiles(name="toy", root=root, train=train, tests=tests)


def _fingerprints(root) -> dict[str, str]:
    dm = CANDataModule(_files(root), progress=False)
    dm.setup()
    return {split: dm.fingerprint(split) for split in ("train", "val", "test_01_x")}


def test_data_fingerprint_changes_with_a_data_file(dataset):
    before = _fingerprints(dataset)
    assert _fingerprints(dataset) == before  # stable
    path = dataset / "train_01_attack_free" / "attack-free-b.csv"
    lines = path.read_text().splitlines()
    lines[10] = lines[10][:-4] + "AB,0"  # one payload byte differs
    path.write_text("\n".join(lines) + "\n")
    after = _fingerprints(dataset)
    for split in before:  # vocabulary and normaliser come from training data: every split moves
        assert after[split] != before[split], split


def test_key_changes_with_weights_config_data_and_split():
    schema = GraphSchema(node_features=("a", "b"), edge_features=("c",), num_ids=4)
    small = GATDetector(schema, preset="small")
    base = prediction_key(small.fingerprint(), "data", "test")
    assert prediction_key(small.fingerprint(), "data", "test") == base
    small2 = GATDetector(schema, preset="small", dropout=0.3)
    small2.load_state_dict(small.state_dict())
    assert prediction_key(small2.fingerprint(), "data", "test") != base  # config
    with __import__("torch").no_grad():
        next(small.parameters()).add_(1e-3)
    assert prediction_key(small.fingerprint(), "data", "test") != base  # weights
    assert prediction_key(small2.fingerprint(), "data2", "test") != prediction_key(
        small2.fingerprint(), "data", "test"
    )  # data
    assert prediction_key(small2.fingerprint(), "data", "val") != prediction_key(
        small2.fingerprint(), "data", "test"
    )  # split
