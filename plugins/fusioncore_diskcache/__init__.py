"""fusioncore_diskcache: the bundled prediction stores.

``diskcache`` (the default) keeps detector outputs in a private on-disk
SQLite cache shared safely between processes; ``memory`` keeps them in a dict
for tests. Both hold entries as checksummed ``.npz`` bytes -- never pickle --
and drop a corrupted entry on read so the caller recomputes it.
"""

from __future__ import annotations

from fusioncore import hookimpl
from fusioncore.hookspecs import Register
from fusioncore_diskcache.base import DEFAULT_SIZE_LIMIT_BYTES, EntryStore, StoreStats
from fusioncore_diskcache.directory import default_store_directory, ensure_private_directory
from fusioncore_diskcache.disk import DiskCacheStore, NpzOnlyDisk
from fusioncore_diskcache.entry import decode_entry, encode_entry, store_key
from fusioncore_diskcache.errors import (
    CorruptEntryError,
    StoreDirectoryError,
    StoreError,
    UnsafeEntryError,
)
from fusioncore_diskcache.memory import MemoryStore

__all__ = [
    "DEFAULT_SIZE_LIMIT_BYTES",
    "CorruptEntryError",
    "DiskCacheStore",
    "EntryStore",
    "MemoryStore",
    "NpzOnlyDisk",
    "StoreDirectoryError",
    "StoreError",
    "StoreStats",
    "UnsafeEntryError",
    "decode_entry",
    "default_store_directory",
    "encode_entry",
    "ensure_private_directory",
    "fusioncore_register_stores",
    "store_key",
]


@hookimpl
def fusioncore_register_stores(register: Register) -> None:
    """Register the ``diskcache`` (default) and ``memory`` prediction stores."""
    register(
        "diskcache",
        DiskCacheStore,
        "on-disk store (default): private SQLite cache shared across processes; "
        "checksummed npz entries, never pickle",
    )
    register(
        "memory",
        MemoryStore,
        "in-process store for tests and one-off runs; same entry format, nothing persisted",
    )
