"""Bounded memory with size: memory-mapped column cache, joined files, lean vocabulary, epoch budgets."""

from __future__ import annotations

import json
import mmap
import shutil

import numpy as np
import pytest
import torch

from fusioncore.data import column_cache
from fusioncore.data.column_cache import join_entries, open_entry, release_pages, write_entry
from fusioncore.data.datamodule import CANDataModule
from fusioncore.data.frames import Frames
from fusioncore.data.loading import load_files
from fusioncore.data.sampling import EpochBudgetSampler, spread_subset
from fusioncore.data.synthetic import generate_synthetic
from fusioncore.data.vocab import IdVocabulary, per_id_intervals
from fusioncore.data.windows import source_runs
from fusioncore.errors import ConfigError


def _mapped(array: np.ndarray) -> bool:
    return isinstance(column_cache._mapping_of(array), mmap.mmap)


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    """A short synthetic dataset (21 files) and its resolved file lists."""
    from fusioncore.data.catalog import CANTrainAndTestDataset

    root = tmp_path_factory.mktemp("scale-data") / "synthetic"
    generate_synthetic(root, seed=2, scale=0.1)
    return CANTrainAndTestDataset("synthetic", "").resolve(root.parent)


# ------------------------------------------------------------------- column cache
def test_entries_open_memory_mapped_and_read_only(tmp_path):
    columns = {"a": np.arange(10_000, dtype=np.float64), "b": np.ones((10_000, 8), np.uint8),
               "empty": np.zeros((0, 56), np.uint8)}
    write_entry(tmp_path / "e", columns, {"note": "x"})
    opened, meta = open_entry(tmp_path / "e")
    assert meta["note"] == "x" and meta["columns"] == ["a", "b", "empty"]
    for name, values in columns.items():
        np.testing.assert_array_equal(opened[name], values)
        assert opened[name].dtype == values.dtype and opened[name].shape == values.shape
    assert _mapped(opened["a"]) and _mapped(opened["b"][5:])
    assert not opened["a"].flags.writeable
    assert release_pages(opened.values()) == 2  # the empty column is a plain array
    np.testing.assert_array_equal(opened["a"], columns["a"])  # pages come back on the next touch
    assert release_pages([np.arange(3)]) == 0
    assert open_entry(tmp_path / "missing") is None


def test_an_entry_without_its_meta_is_incomplete_and_a_second_writer_keeps_the_first(tmp_path):
    write_entry(tmp_path / "e", {"a": np.arange(3)}, {"who": "first"})
    write_entry(tmp_path / "e", {"a": np.arange(5)}, {"who": "second"})
    opened, meta = open_entry(tmp_path / "e")
    assert meta["who"] == "first" and len(opened["a"]) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e"]  # no temporary folder left
    (tmp_path / "e" / "meta.json").unlink()
    assert open_entry(tmp_path / "e") is None


def test_join_concatenates_by_copying_files_and_refuses_mismatched_layouts(tmp_path):
    rng = np.random.default_rng(0)
    parts = []
    for i, n in enumerate((1000, 1, 2500)):
        cols = {"t": rng.random(n), "d": rng.integers(0, 255, (n, 8)).astype(np.uint8),
                "s": np.zeros(n, np.uint16)}
        write_entry(tmp_path / f"p{i}", cols, {})
        parts.append(cols)
    new_source = [np.full(len(p["t"]), i, np.uint16) for i, p in enumerate(parts)]
    assert join_entries(tmp_path / "j", [tmp_path / f"p{i}" for i in range(3)], replace={"s": new_source},
                        meta={"k": 1})
    joined, meta = open_entry(tmp_path / "j")
    assert meta["k"] == 1
    for name in ("t", "d"):
        np.testing.assert_array_equal(joined[name], np.concatenate([p[name] for p in parts]))
    np.testing.assert_array_equal(joined["s"], np.concatenate(new_source))
    write_entry(tmp_path / "wide", {"t": rng.random(3), "d": np.zeros((3, 64), np.uint8),
                                    "s": np.zeros(3, np.uint16)}, {})
    assert not join_entries(tmp_path / "bad", [tmp_path / "p0", tmp_path / "wide"])
    assert not (tmp_path / "bad").exists()


# -------------------------------------------------------------------------- loading
def test_several_files_load_as_one_mapped_join_equal_to_concat(small_set):
    paths = list(small_set.train)
    fresh = load_files(paths, use_cache=False).frames  # parsed, in memory
    first = load_files(paths)  # parses into the cache, then joins
    again = load_files(paths)  # both from the cache
    assert first.frames.fingerprint() == fresh.fingerprint() == again.frames.fingerprint()
    assert first.frames.sources == tuple(str(p) for p in paths)
    assert all(_mapped(col) for col in again.frames._columns().values() if col.size)  # empty: no map
    assert not _mapped(fresh.timestamp)
    # the same files in another order are another join, numbered in that order
    reordered = load_files(paths[::-1]).frames
    assert reordered.sources == tuple(str(p) for p in paths[::-1])
    np.testing.assert_array_equal(reordered.timestamp[: len(reordered.take(reordered.source == 0))],
                                  fresh.take(fresh.source == len(paths) - 1).timestamp)


def test_a_damaged_cache_entry_is_reparsed(small_set, tmp_path):
    path = small_set.train[0]
    good = load_files([path]).frames.fingerprint()
    from fusioncore.data import loading
    from fusioncore.data.catalog import file_sha256
    from fusioncore.data.formats import detect_format

    entry = loading._cache_path(file_sha256(path), detect_format(path), "skip")
    (entry / "timestamp.npy").write_bytes(b"not an npy file")
    assert load_files([path]).frames.fingerprint() == good
    meta = json.loads((entry / "meta.json").read_text())
    assert meta["sources"] == [""]  # names come from the path at load time, not from the cache


# ----------------------------------------------------------------------- vocabulary
def _reference_fit(frames: Frames, rows=None, benign_only=True, min_count=1) -> IdVocabulary:
    """The vocabulary fit as it was before it went file by file (copies every column)."""
    if rows is not None:
        frames = frames.take(rows)
    if benign_only:
        frames = frames.take(frames.label == 0)
    ids, count = np.unique(frames.can_id, return_counts=True)
    keep = count >= min_count
    ids, count = ids[keep], count[keep]
    period = np.full(len(ids) + 1, np.nan)
    pair_id, dt = per_id_intervals(frames)
    for slot, can in enumerate(ids):
        gaps = dt[pair_id == can]
        if gaps.size:
            period[slot + 1] = np.median(gaps)
    return IdVocabulary(ids=ids, count=np.concatenate(([0], count)), period=period)


@pytest.mark.parametrize("benign_only,min_count", [(True, 1), (False, 1), (True, 50)])
def test_file_by_file_vocabulary_equals_the_whole_pool_fit(small_set, benign_only, min_count):
    frames = load_files(small_set.train).frames
    rng = np.random.default_rng(0)
    rows = np.ones(len(frames), bool)
    begin, end = source_runs(frames)
    for b, e in zip(begin, end):  # drop a middle block of every file, as a split does
        cut = int(b + (e - b) * rng.uniform(0.5, 0.8))
        rows[cut : cut + (e - b) // 10] = False
    for mask in (None, rows):
        lean = IdVocabulary.fit(frames, benign_only=benign_only, min_count=min_count, rows=mask)
        ref = _reference_fit(frames, mask, benign_only, min_count)
        np.testing.assert_array_equal(lean.ids, ref.ids)
        np.testing.assert_array_equal(lean.count, ref.count)
        np.testing.assert_allclose(lean.period, ref.period, rtol=0, atol=1e-12)
    with pytest.raises(ConfigError, match="boolean mask"):
        IdVocabulary.fit(frames, rows=rows[:-1])


# ------------------------------------------------------------------ epoch budgets
def test_budget_sampler_draws_distinct_fresh_windows_each_epoch_deterministically():
    sampler = EpochBudgetSampler(1000, 100, seed=3)
    epochs = [list(sampler) for _ in range(3)]
    assert all(len(e) == len(set(e)) == len(sampler) == 100 for e in epochs)
    assert all(0 <= i < 1000 for e in epochs for i in e)
    assert epochs[0] != epochs[1] != epochs[2]
    again = EpochBudgetSampler(1000, 100, seed=3)
    assert [list(again) for _ in range(3)] == epochs
    again.set_epoch(1)  # Lightning names the epoch: the draw follows it, not the call count
    assert list(again) == epochs[1] and list(again) == epochs[1]
    assert sorted(EpochBudgetSampler(10, 100).indices(0).tolist()) == list(range(10))
    assert list(EpochBudgetSampler(1000, 100, seed=4)) != epochs[0]
    with pytest.raises(ConfigError):
        EpochBudgetSampler(10, 0)


def test_spread_subset_is_even_and_whole_when_small():
    assert spread_subset(5, 10).tolist() == [0, 1, 2, 3, 4]
    sub = spread_subset(1000, 7)
    assert sub[0] == 0 and sub[-1] == 999 and len(sub) == 7
    assert set(np.diff(sub).tolist()) <= {166, 167}
    assert len(spread_subset(10_001, 10_000)) == 10_000


@pytest.fixture(scope="module")
def small_dm(small_set):
    dm = CANDataModule(small_set, batch_size=16, progress=False)
    dm.setup()
    return dm


def test_loader_budget_bounds_an_epoch_and_leaves_small_blocks_unchanged(small_dm):
    n = len(small_dm.splits["train"])
    budget = small_dm.loader("train", shuffle=True, seed=1, windows_per_epoch=32)
    assert len(budget) == 2 and sum(b.num_graphs for b in budget) == 32
    first, second = ([int(i) for b in budget for i in b.window_id] for _ in range(2))
    assert len(set(first)) == 32 and first != second  # fresh windows every epoch
    assert max(first + second) < n
    whole = small_dm.loader("train", shuffle=True, seed=1, windows_per_epoch=n)
    plain = small_dm.loader("train", shuffle=True, seed=1)
    order = [torch.cat([b.window_id for b in loader]).tolist() for loader in (whole, plain)]
    assert order[0] == order[1] and sorted(order[0]) == list(range(n))
    val = small_dm.loader("val", max_windows=20)
    kept = torch.cat([b.window_id for b in val])
    assert len(kept) == min(20, len(small_dm.splits["val"]))


def test_setup_leaves_split_columns_mapped_and_released(small_dm):
    cols = small_dm.splits["test_01_known_vehicle_known_attack"].frames._columns()
    assert all(_mapped(c) for c in cols.values() if c.size)
    small_dm.release_pages()
    assert small_dm.loader("train", windows_per_epoch=8, shuffle=True).__iter__().__next__().num_graphs == 8


def test_under_ddp_each_rank_takes_its_share_of_the_epochs_draw(monkeypatch):
    """fusioncore's DDP training (RankShards) slices every budgeted batch: the ranks together see
    exactly one process's draw of the epoch, and the next epoch draws afresh on every rank alike."""
    from torch.utils.data import BatchSampler

    from fusioncore.pipeline import distributed

    per_rank = []
    for rank in range(2):
        monkeypatch.setattr(distributed, "_rank_and_size", lambda rank=rank: (rank, 2))
        shards = distributed.RankShards(BatchSampler(EpochBudgetSampler(5000, 300, seed=7), 64, False))
        per_rank.append([[i for batch in shards for i in batch] for _epoch in range(2)])
    single = EpochBudgetSampler(5000, 300, seed=7)
    for epoch in range(2):
        a, b = per_rank[0][epoch], per_rank[1][epoch]
        assert not set(a) & set(b) and len(a) + len(b) == 300
        assert set(a) | set(b) == set(single.indices(epoch))
    assert set(per_rank[0][0]) != set(per_rank[0][1])


@pytest.mark.slow
def test_ddp_training_with_an_epoch_budget(tmp_path):
    """`train --strategy ddp --devices 2` (gloo) with trainer.windows_per_epoch below the block size."""
    import os
    import subprocess
    import sys

    out = tmp_path / "ddp"
    proc = subprocess.run(
        [sys.executable, "-m", "fusioncore", "train", "--preset", "quick", "--detectors", "gat",
         "--strategy", "ddp", "--devices", "2", "--accelerator", "cpu", "--seed", "11",
         "--out", str(out), "trainer.progress=false", "trainer.windows_per_epoch=256"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["training"]["gat"]["processes"] == 2
    assert report["scenarios"]["test_01_known_vehicle_known_attack"]["gat"]["auroc"] is not None


@pytest.mark.parametrize("damage", ["flip", "truncate", "extend", "foreign", "no-checksum"])
def test_an_entry_is_bound_to_its_key_and_bytes(tmp_path, damage):
    """A damaged or misplaced entry is refused (ValueError), never served as data."""
    columns = {"t": np.arange(50_000, dtype=np.float64), "d": np.ones((50_000, 8), np.uint8)}
    write_entry(tmp_path / "key-a", columns, {})
    write_entry(tmp_path / "key-b", {"t": np.zeros(50_000), "d": np.zeros((50_000, 8), np.uint8)}, {})
    column = tmp_path / "key-a" / "t.npy"
    if damage == "flip":
        data = bytearray(column.read_bytes())
        data[len(data) // 2] ^= 0x01  # one bit in the middle of the data
        column.write_bytes(bytes(data))
        needle = "CRC-32 mismatch"
    elif damage == "truncate":
        column.write_bytes(column.read_bytes()[:-8])
        needle = "its header says"
    elif damage == "extend":
        column.write_bytes(column.read_bytes() + b"\0" * 8)
        needle = "its header says"
    elif damage == "foreign":  # another key's entry copied under this name
        shutil.rmtree(tmp_path / "key-a")
        shutil.copytree(tmp_path / "key-b", tmp_path / "key-a")
        needle = "not its own key"
    else:  # an entry from before checksums
        meta = json.loads((tmp_path / "key-a" / "meta.json").read_text())
        del meta["crc32"]
        (tmp_path / "key-a" / "meta.json").write_text(json.dumps(meta))
        needle = "no checksum"
    with pytest.raises(ValueError, match=needle):
        open_entry(tmp_path / "key-a")
    opened, _ = open_entry(tmp_path / "key-b")  # the untouched entry still opens
    assert opened["t"].sum() == 0


def test_a_joined_entry_carries_the_checksum_of_its_bytes(tmp_path):
    parts = []
    for i, n in enumerate((300, 0, 700)):
        write_entry(tmp_path / f"p{i}", {"t": np.arange(n, dtype=np.float64) + i}, {})
        parts.append(tmp_path / f"p{i}")
    assert join_entries(tmp_path / "joined", parts, replace={"t": [np.zeros(300), np.zeros(0), np.ones(700)]})
    opened, _ = open_entry(tmp_path / "joined")
    np.testing.assert_array_equal(opened["t"], np.r_[np.zeros(300), np.ones(700)])
    assert join_entries(tmp_path / "joined2", parts)
    data = bytearray((tmp_path / "joined2" / "t.npy").read_bytes())
    data[-3] ^= 0x10
    (tmp_path / "joined2" / "t.npy").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="CRC-32 mismatch"):
        open_entry(tmp_path / "joined2")
