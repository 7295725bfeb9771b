"""The prediction-store contract: exact round trip, missing keys, no pickle, corruption, concurrency.

Stores are registered as factories ``(directory, **params) -> PredictionStore``::

    from fusioncore.testing import StoreContract

    class TestMyStore(StoreContract):
        store_factory = MyStore
        persistent = True            # a new store object on the same directory sees the entries

        def corrupt_entry(self, store, key):
            ...                      # damage the entry's bytes the way a disk fault would

        def swap_entries(self, store, first, second):
            ...                      # exchange the two entries' stored bytes

or call :func:`check_store`. A store is a cache, so no fault in it may fail
a run or feed it wrong outputs:

* a corrupted entry reads as ``None`` (and is dropped) so the core recomputes
  it; without ``corrupt_entry`` that test is skipped;
* an entry found under another key than the one it was written under (two
  values swapped, a row copied) reads as ``None`` too -- its checksum must
  cover the key; without ``swap_entries`` that test is skipped;
* a persistent store whose files were damaged wholesale (truncated,
  overwritten, zeroed pages: :func:`fusioncore.testing.faults.damage_files`)
  opens without an error, never returns wrong arrays, and works again;
* a persistent store whose directory cannot be written serves the entries it
  holds, and a ``put`` does not raise.

``concurrent = False`` skips the threaded test for a store that is not meant
to be shared.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from fusioncore.contracts import PredictionStore
from fusioncore.testing.checks import ContractViolation, configured, describe, require
from fusioncore.testing.faults import DAMAGE_KINDS
from fusioncore.testing.store_common import StoreFactory, open_store, sample_entry
from fusioncore.testing.store_common import same_arrays as _same
from fusioncore.testing.store_common import store_key_for as _key
from fusioncore.testing.store_faults import (
    check_store_damage_recovery,
    check_store_misfiled_entries,
    check_store_read_only,
)

__all__ = [
    "StoreContract",
    "check_store",
    "check_store_concurrency",
    "check_store_corruption",
    "check_store_damage_recovery",
    "check_store_misfiled_entries",
    "check_store_missing_keys",
    "check_store_persistence",
    "check_store_read_only",
    "check_store_refuses_pickle",
    "check_store_round_trip",
    "open_store",
    "sample_entry",
]

def check_store_round_trip(store: PredictionStore) -> None:
    """Arrays come back exactly (dtype, shape, values); put replaces; keys / delete / clear agree."""
    entries = {_key(i): sample_entry(i) for i in range(3)}
    for key, arrays in entries.items():
        store.put(key, arrays)
    for key, arrays in entries.items():
        _same(store.get(key), arrays, "get after put")
    listed = set(store.keys())
    require(listed == set(entries), f"keys() lists {sorted(listed)}, expected {sorted(entries)}")
    first = _key(0)
    store.put(first, sample_entry(9))
    _same(store.get(first), sample_entry(9), "get after a second put under the same key")
    store.delete(first)
    require(
        store.get(first) is None and first not in set(store.keys()),
        "a deleted key is still readable or listed",
    )
    store.clear()
    require(not list(store.keys()), f"keys() after clear() still lists {list(store.keys())}")
    require(all(store.get(k) is None for k in entries), "get() after clear() still returns entries")


def check_store_missing_keys(store: PredictionStore) -> None:
    """A missing key reads as ``None``; deleting one is not an error."""
    key = _key(404)
    try:
        got = store.get(key)
    except Exception as exc:
        raise ContractViolation(
            f"get() of a missing key raised {type(exc).__name__}: {exc}; a missing key must return None"
        ) from exc
    require(got is None, f"get() of a missing key returned {describe(got)}, expected None")
    try:
        store.delete(key)
    except Exception as exc:
        raise ContractViolation(f"delete() of a missing key raised {type(exc).__name__}: {exc}") from exc


def check_store_refuses_pickle(store: PredictionStore) -> None:
    """An object array (which only pickle could store) is refused, never stored."""
    key = _key(66)
    try:
        store.put(key, {"x": np.array([{"payload": 1}], dtype=object)})
    except Exception:
        require(store.get(key) is None, "put() of an object array raised but left an entry behind")
        return
    raise ContractViolation(
        "put() accepted an object array: values must be stored as plain arrays in a "
        "safe format (.npy / .npz bytes, allow_pickle=False), never pickle"
    )


def check_store_corruption(store: PredictionStore, corrupt: Callable[[PredictionStore, str], None]) -> None:
    """A damaged entry reads as ``None``, is dropped, and can be written again."""
    key = _key(7)
    store.put(key, sample_entry(7))
    corrupt(store, key)
    try:
        got = store.get(key)
    except Exception as exc:
        raise ContractViolation(
            f"get() of a corrupted entry raised {type(exc).__name__}: {exc}; it must "
            "return None so the core recomputes the entry"
        ) from exc
    require(got is None, "get() of a corrupted entry returned data; it must verify entries and return None")
    require(
        key not in set(store.keys()), "a corrupted entry is still listed by keys(); drop it when detected"
    )
    store.put(key, sample_entry(7))
    _same(store.get(key), sample_entry(7), "put after a corrupted entry was dropped")


def check_store_persistence(factory: StoreFactory, directory: Path, params: Mapping[str, Any]) -> None:
    """Entries survive ``close()`` and are read by a new store object on the same directory."""
    first = open_store(factory, directory, params)
    first.put(_key(1), sample_entry(1))
    first.close()
    second = open_store(factory, directory, params)
    try:
        _same(second.get(_key(1)), sample_entry(1), "get from a new store object on the same directory")
    finally:
        second.close()


def check_store_concurrency(
    factory: StoreFactory,
    directory: Path,
    params: Mapping[str, Any],
    *,
    persistent: bool,
    threads: int = 4,
    operations: int = 60,
) -> None:
    """Threads putting, getting and deleting shared keys at once never see a wrong or torn entry.

    With ``persistent`` the threads use two store objects on one directory,
    as two processes of a distributed run do.
    """
    stores = [open_store(factory, directory, params)]
    if persistent:
        stores.append(open_store(factory, directory, params))
    expected = {_key(i): sample_entry(i) for i in range(4)}
    keys = list(expected)
    problems: list[str] = []
    start = threading.Barrier(threads)

    def work(worker: int) -> None:
        rng = np.random.default_rng(worker)
        store = stores[worker % len(stores)]
        start.wait(timeout=30)
        try:
            for _ in range(operations):
                key = keys[int(rng.integers(len(keys)))]
                action = rng.random()
                if action < 0.45:
                    store.put(key, expected[key])
                elif action < 0.9:
                    got = store.get(key)
                    if got is not None:
                        _same(got, expected[key], f"thread {worker}")
                else:
                    store.delete(key)
        except Exception as exc:  # reported below, with the thread that saw it
            problems.append(f"thread {worker}: {type(exc).__name__}: {exc}")

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often, so a race shows up in a few hundred operations
    try:
        for t in pool:
            t.start()
        for t in pool:
            t.join(timeout=120)
    finally:
        sys.setswitchinterval(interval)
    for store in stores:
        store.close()
    require(not problems, "concurrent use failed: " + "; ".join(problems[:3]))


def check_store(
    factory: StoreFactory,
    directory: Path,
    params: Mapping[str, Any] | None = None,
    *,
    persistent: bool = True,
    concurrent: bool = True,
    corrupt: Callable[[PredictionStore, str], None] | None = None,
    swap: Callable[[PredictionStore, str, str], None] | None = None,
    read_only: bool = True,
) -> None:
    """Every store check in one call; raises :class:`ContractViolation` at the first failure.

    The read-only check (persistent stores only; ``read_only=False`` leaves it
    out) is skipped where the directory cannot be made read-only.
    """
    params = dict(params or {})
    directory = Path(directory)
    for i, check in enumerate((check_store_missing_keys, check_store_round_trip, check_store_refuses_pickle)):
        store = open_store(factory, directory / f"basic-{i}", params)
        try:
            check(store)
        finally:
            store.close()
    if corrupt is not None:
        store = open_store(factory, directory / "corrupt", params)
        try:
            check_store_corruption(store, corrupt)
        finally:
            store.close()
    if swap is not None:
        store = open_store(factory, directory / "swap", params)
        try:
            check_store_misfiled_entries(store, swap)
        finally:
            store.close()
    if persistent:
        check_store_persistence(factory, directory / "persist", params)
        for how in DAMAGE_KINDS:
            check_store_damage_recovery(factory, directory / f"damaged-{how}", params, how)
        if read_only:
            check_store_read_only(factory, directory / "read-only", params)
    if concurrent:
        check_store_concurrency(factory, directory / "concurrent", params, persistent=persistent)


class StoreContract:
    """pytest base class: set ``store_factory`` (and ``params``); every test below runs against it.

    ``persistent`` (default True): entries outlive the store object;
    ``concurrent`` (default True): one store may be shared by threads;
    override :meth:`corrupt_entry` to test corruption handling and
    :meth:`swap_entries` to test that entries are bound to their keys.
    """

    store_factory: ClassVar[StoreFactory]
    params: ClassVar[Mapping[str, Any]] = {}
    persistent: ClassVar[bool] = True
    concurrent: ClassVar[bool] = True

    def corrupt_entry(self, store: PredictionStore, key: str) -> None:
        """Damage the stored bytes of ``key`` (flip a byte of its file, row, ...); override this."""
        pytest.skip("override corrupt_entry(store, key) to test how the store handles damaged entries")

    def swap_entries(self, store: PredictionStore, first: str, second: str) -> None:
        """Exchange the stored bytes of two entries (their rows, files, ...); override this."""
        pytest.skip("override swap_entries(store, first, second) to test that entries are bound to keys")

    def _factory(self) -> StoreFactory:
        return configured(self, "store_factory", "your store factory")

    @pytest.fixture
    def store(self, tmp_path: Path):
        store = open_store(self._factory(), tmp_path / "store", self.params)
        yield store
        store.close()

    def test_round_trip_is_exact(self, store: PredictionStore) -> None:
        check_store_round_trip(store)

    def test_missing_key_reads_as_none(self, store: PredictionStore) -> None:
        check_store_missing_keys(store)

    def test_object_arrays_are_refused(self, store: PredictionStore) -> None:
        check_store_refuses_pickle(store)

    def test_corrupted_entry_reads_as_none_and_is_dropped(self, store: PredictionStore) -> None:
        check_store_corruption(store, self.corrupt_entry)

    def test_entry_under_another_key_reads_as_none(self, store: PredictionStore) -> None:
        check_store_misfiled_entries(store, self.swap_entries)

    @pytest.mark.parametrize("how", DAMAGE_KINDS)
    def test_damaged_store_recovers_by_itself(self, tmp_path: Path, how: str) -> None:
        if not self.persistent:
            pytest.skip("persistent = False")
        check_store_damage_recovery(self._factory(), tmp_path / "store", self.params, how)

    def test_read_only_directory_serves_hits(self, tmp_path: Path) -> None:
        if not self.persistent:
            pytest.skip("persistent = False")
        check_store_read_only(self._factory(), tmp_path / "store", self.params)

    def test_entries_persist_across_store_objects(self, tmp_path: Path) -> None:
        if not self.persistent:
            pytest.skip("persistent = False")
        check_store_persistence(self._factory(), tmp_path / "store", self.params)

    def test_concurrent_use(self, tmp_path: Path) -> None:
        if not self.concurrent:
            pytest.skip("concurrent = False: this store is not meant to be shared")
        check_store_concurrency(self._factory(), tmp_path / "store", self.params, persistent=self.persistent)
