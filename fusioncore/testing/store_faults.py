"""Store checks for faults: entries under the wrong key, damaged files, a read-only directory.

Part of :class:`fusioncore.testing.StoreContract`; see :mod:`fusioncore.testing.store`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from fusioncore.contracts import PredictionStore
from fusioncore.testing.checks import ContractViolation, require
from fusioncore.testing.faults import damage_files, read_only_directory
from fusioncore.testing.store_common import StoreFactory, open_store, sample_entry
from fusioncore.testing.store_common import same_arrays as _same
from fusioncore.testing.store_common import store_key_for as _key

__all__ = ["check_store_damage_recovery", "check_store_misfiled_entries", "check_store_read_only"]


def check_store_misfiled_entries(
    store: PredictionStore, swap: Callable[[PredictionStore, str, str], None]
) -> None:
    """Two entries whose stored bytes were exchanged both read as ``None``: each checksum covers its key."""
    first, second = _key(21), _key(22)
    store.put(first, sample_entry(21))
    store.put(second, sample_entry(22))
    swap(store, first, second)
    for key, other in ((first, 22), (second, 21)):
        try:
            got = store.get(key)
        except Exception as exc:
            raise ContractViolation(
                f"get() of an entry stored under the wrong key raised {type(exc).__name__}: {exc}; "
                "it must return None so the core recomputes the entry"
            ) from exc
        require(
            got is None,
            f"get() served the entry written under another key (sample {other}) as if it were its own: "
            "an entry's checksum must cover the key it was written under",
        )
    store.put(first, sample_entry(21))
    _same(store.get(first), sample_entry(21), "put after a misfiled entry was refused")


def check_store_damage_recovery(
    factory: StoreFactory, directory: Path, params: Mapping[str, Any], how: str = "truncate"
) -> None:
    """After the store's files are damaged (``how``: see :data:`~fusioncore.testing.faults.DAMAGE_KINDS`),
    a new store object opens, never returns wrong arrays, and stores and serves entries again."""
    entries = {_key(30 + i): sample_entry(30 + i) for i in range(3)}
    first = open_store(factory, directory, params)
    for key, arrays in entries.items():
        first.put(key, arrays)
    first.close()
    damage_files(directory, how)
    what = f"a store whose files were damaged ({how})"
    try:
        store = factory(directory, **dict(params))
    except Exception as exc:
        raise ContractViolation(
            f"opening {what} raised {type(exc).__name__}: {exc}; a damaged store must recover by itself "
            "(e.g. move it aside and start empty) so that no run needs a hand-deleted folder"
        ) from exc
    try:
        for key, arrays in entries.items():
            try:
                got = store.get(key)
            except Exception as exc:
                raise ContractViolation(f"get() on {what} raised {type(exc).__name__}: {exc}") from exc
            if got is not None:
                _same(got, arrays, f"get() on {what}")
        fresh = _key(39)
        try:
            store.put(fresh, sample_entry(39))
        except Exception as exc:
            raise ContractViolation(f"put() on {what} raised {type(exc).__name__}: {exc}") from exc
        _same(store.get(fresh), sample_entry(39), f"get() after put() on {what}")
    finally:
        store.close()
    again = open_store(factory, directory, params)
    try:
        _same(again.get(fresh), sample_entry(39), f"a new store object after recovering {what}")
    finally:
        again.close()


def check_store_read_only(factory: StoreFactory, directory: Path, params: Mapping[str, Any]) -> None:
    """A store whose directory cannot be written serves what it holds, and ``put`` does not raise."""
    key, new = _key(41), _key(42)
    first = open_store(factory, directory, params)
    first.put(key, sample_entry(41))
    first.close()
    with read_only_directory(directory):
        try:
            store = factory(directory, **dict(params))
        except Exception as exc:
            raise ContractViolation(
                f"opening a store on a read-only directory raised {type(exc).__name__}: {exc}; it must "
                "serve the entries it holds (and skip writes)"
            ) from exc
        try:
            _same(store.get(key), sample_entry(41), "get() from a read-only store")
            try:
                store.put(new, sample_entry(42))
            except Exception as exc:
                raise ContractViolation(
                    f"put() on a read-only store raised {type(exc).__name__}: {exc}; skip the write "
                    "(with a warning): the caller holds the arrays, only a later cache hit is lost"
                ) from exc
            got = store.get(new)
            if got is not None:
                _same(got, sample_entry(42), "get() after a put() on a read-only store")
        finally:
            store.close()
