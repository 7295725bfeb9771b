"""Time-block splits and the data module over a small generated dataset."""

from __future__ import annotations

import numpy as np
import pytest

from fusioncore.contracts import DatasetFiles
from fusioncore.data.datamodule import CANDataModule, split_time_blocks
from fusioncore.data.frames import Frames
from fusioncore.data.windows import WindowSpec
from fusioncore.errors import ConfigError


def _frames(lengths: list[int]) -> Frames:
    n = sum(lengths)
    rng = np.random.default_rng(0)
    source = np.repeat(np.arange(len(lengths)), lengths)
    return Frames.from_columns(
        timestamp=np.arange(n) * 1e-3, can_id=rng.integers(0, 30, n), data=rng.integers(0, 256, (n, 8)),
        source=source, sources=[f"f{i}.csv" for i in range(len(lengths))],
    )


def test_blocks_are_disjoint_in_time_order_and_inside_one_file():
    frames = _frames([1000, 1730])
    spec = WindowSpec(100, 50)
    blocks = split_time_blocks(frames, spec, (0.7, 0.15, 0.15))
    rows = [set((b[:, None] + np.arange(100)).ravel()) for b in blocks]
    assert not (rows[0] & rows[1]) and not (rows[1] & rows[2]) and not (rows[0] & rows[2])
    for b in blocks:
        file_of_first = frames.source[b]
        assert (frames.source[b + 99] == file_of_first).all()
    # within each file: detector block, then fusion, then validation
    for f in (0, 1):
        firsts = [b[frames.source[b] == f] for b in blocks]
        assert firsts[0].max() < firsts[1].min() < firsts[2].min()


def test_run_shares_send_a_file_wholly_to_later_blocks():
    frames = _frames([1000, 1000])
    table = np.array([[0.7, 0.15, 0.15], [0.0, 0.5, 0.5]])
    train, fusion, val = split_time_blocks(frames, WindowSpec(100, 100), (0.7, 0.15, 0.15), table)
    assert (frames.source[train] == 0).all()
    assert set(frames.source[fusion]) == {0, 1} and set(frames.source[val]) == {0, 1}


def test_bad_shares_are_config_errors():
    with pytest.raises(ConfigError):
        split_time_blocks(_frames([500]), WindowSpec(), (0.0, 0.0, 0.0))
    files = DatasetFiles(name="x", root=".", train=())
    with pytest.raises(ConfigError, match="unknown attack type"):
        CANDataModule(files, fusion_attacks=["teleport"])
