"""Two processes sharing one disk store: every entry read back is exactly what was written."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from fusioncore_diskcache import DiskCacheStore

if TYPE_CHECKING:
    from multiprocessing.queues import Queue
    from multiprocessing.synchronize import Barrier

KEYS = [f"key-{i}" for i in range(8)]
OPERATIONS = 400


def expected(key: str) -> dict[str, np.ndarray]:
    """The one correct value of ``key``; half the keys are big enough to live in files."""
    index = KEYS.index(key)
    n = 40 if index % 2 else 6_000
    rng = np.random.default_rng(index)
    return {
        "score": rng.random(n).astype(np.float32),
        "window_ids": np.arange(n, dtype=np.int64) + index,
        "feature_names": np.array([key, "ü"]),
    }


def matches(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> bool:
    return set(got) == set(want) and all(
        got[k].dtype == want[k].dtype and np.array_equal(got[k], want[k]) for k in want
    )


def hammer(directory: str, seed: int, start: Barrier, results: Queue) -> None:
    """Random puts, gets and deletes over keys the other process uses too."""
    rng = np.random.default_rng(seed)
    wrong = hits = 0
    with DiskCacheStore(directory) as store:
        start.wait(timeout=60)
        for _ in range(OPERATIONS):
            key = KEYS[rng.integers(len(KEYS))]
            action = rng.random()
            if action < 0.45:
                store.put(key, expected(key))
            elif action < 0.9:
                got = store.get(key)
                if got is not None:
                    hits += 1
                    wrong += not matches(got, expected(key))
            else:
                store.delete(key)
        results.put((seed, wrong, hits, store.stats().corrupted))


def test_two_processes_read_and_write_one_store_at_once(tmp_path: Path):
    directory = str(tmp_path / "shared")
    ctx = mp.get_context("spawn")
    start, results = ctx.Barrier(2), ctx.Queue()
    workers = [ctx.Process(target=hammer, args=(directory, seed, start, results)) for seed in (1, 2)]
    for worker in workers:
        worker.start()
    reports = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0

    for seed, wrong, hits, corrupted in reports:
        assert (wrong, corrupted) == (0, 0), f"worker {seed}"
        assert hits > 0, f"worker {seed} never read an entry back"
    with DiskCacheStore(directory) as store:
        for key in store.keys():
            got = store.get(key)
            assert got is not None and matches(got, expected(key)), key
        assert store.stats().corrupted == 0
        assert len(list(store.directory.rglob("*.val"))) <= len(KEYS) // 2  # no orphaned files
