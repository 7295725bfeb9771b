"""Graphs built once per split (GraphStore): every batch equals the one the builder builds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fusioncore.data.datamodule import CANDataModule
from fusioncore.data.graph_store import GraphStore
from fusioncore.data.synthetic import generate_synthetic

_FIELDS = ("x", "node_id", "edge_index", "edge_attr", "y", "attack_type", "window_id", "batch", "ptr")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from fusioncore.data.catalog import CANTrainAndTestDataset

    root = tmp_path_factory.mktemp("graph-store") / "synthetic"
    generate_synthetic(root, seed=3, scale=0.1)
    return CANTrainAndTestDataset("synthetic", "").resolve(root.parent)


def _same(a, b) -> None:
    for name in _FIELDS:
        torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=0, atol=0, msg=name)
    assert a.num_graphs == b.num_graphs
    # the PyG bookkeeping too: to_data_list gives the same graphs
    for ga, gb in zip(a.to_data_list(), b.to_data_list()):
        torch.testing.assert_close(ga.edge_index, gb.edge_index, rtol=0, atol=0)


def _batches(dm: CANDataModule, split: str, **kwargs) -> list:
    return list(dm.loader(split, **kwargs))


@pytest.mark.parametrize("adapter", ["none", "profile"])
def test_loader_batches_from_the_store_equal_built_ones(files, adapter):
    from fusioncore.adapt.base import NoAdapter, ProfileAdapter

    def build_adapter(name):
        return NoAdapter(warmup_s=0.0) if name == "none" else ProfileAdapter(warmup_s=1.0)

    stored = CANDataModule(files, batch_size=32, progress=False, adapter=build_adapter(adapter))
    stored.setup()
    built = CANDataModule(files, batch_size=32, progress=False, adapter=build_adapter(adapter),
                          graph_cache_windows=0)
    built.setup()
    cases = [
        ("train", dict(benign_only=True, shuffle=True, seed=4, with_reference=False)),
        ("train", dict(shuffle=True, seed=5, windows_per_epoch=40, with_reference=False)),
        ("val", dict(benign_only=True, max_windows=50, with_reference=False)),
        ("fusion", {}),
    ]
    for split, kwargs in cases:
        for _ in range(3):  # the first passes build, later ones gather from the store
            mine, theirs = _batches(stored, split, **kwargs), _batches(built, split, **kwargs)
            assert len(mine) == len(theirs) > 0
            for a, b in zip(mine, theirs):
                _same(a, b)
    assert stored.graph_store("train", build=False) is not None  # built after the first whole pass
    assert stored.graph_store("train") is stored.graph_store("train")  # built once
    assert built.graph_store("train") is None
    scenario = next(iter(files.tests))
    assert stored.graph_store(scenario) is None  # test scenarios are read once per detector
    stored.release_graphs()
    assert stored.graph_store("val", build=False) is None


def test_a_loader_read_once_builds_no_store(files):
    dm = CANDataModule(files, batch_size=32, progress=False)
    dm.setup()
    list(dm.loader("val"))
    assert dm.graph_store("val", build=False) is None
    list(dm.loader("val"))  # the second pass: the store is built and gathered from
    assert dm.graph_store("val", build=False) is not None


def test_store_takes_any_rows_in_any_order_and_an_empty_batch(files):
    dm = CANDataModule(files, batch_size=32, progress=False, graph_cache_windows=0)
    dm.setup()
    split = dm.splits["val"]
    store = GraphStore(dm.builder, split.frames, split.starts, chunk=7)  # several chunks
    n = len(split)
    assert n > 8
    rows = np.array([5, 0, n // 2, 3, 3, n - 1])
    _same(store.take(rows, rows + 100), dm.builder.build(split.frames, split.starts[rows], rows + 100))
    empty = store.take(np.zeros(0, np.int64), np.zeros(0, np.int64))
    assert empty.num_graphs == 0 and empty.x.shape[0] == 0
