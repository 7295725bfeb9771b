"""fusioncore_diskcache: the bundled prediction stores.

``diskcache`` (the default) keeps detector outputs in a private on-disk
SQLite cache shared safely between processes; ``memory`` keeps them in a dict
for tests. Both hold entries as checksummed ``.npz`` bytes -- never pickle --
and drop a corrupted entry on read so the caller recomputes it.
"""

from __future__ import annotations

from fusioncore import Lazy, hookimpl
from fusioncore.hookspecs import Register
from fusioncore.registry import lazy_exports

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
    "store_key",
]


_BASE = "fusioncore_diskcache.base"
_ERRORS = "fusioncore_diskcache.errors"
_ENTRY = "fusioncore_diskcache.entry"
_DIR = "fusioncore_diskcache.directory"
__getattr__ = lazy_exports({
    **dict.fromkeys(("DEFAULT_SIZE_LIMIT_BYTES", "EntryStore", "StoreStats"), _BASE),
    **dict.fromkeys(("CorruptEntryError", "StoreDirectoryError", "StoreError", "UnsafeEntryError"), _ERRORS),
    **dict.fromkeys(("decode_entry", "encode_entry", "store_key"), _ENTRY),
    **dict.fromkeys(("default_store_directory", "ensure_private_directory"), _DIR),
    **dict.fromkeys(("DiskCacheStore", "NpzOnlyDisk"), "fusioncore_diskcache.disk"),
    "MemoryStore": "fusioncore_diskcache.memory",
})


@hookimpl
def fusioncore_register_stores(register: Register) -> None:
    """Register the ``diskcache`` (default) and ``memory`` prediction stores."""
    register(
        "diskcache",
        Lazy("fusioncore_diskcache.disk:DiskCacheStore"),
        "on-disk store (default): private SQLite cache shared across processes; "
        "checksummed npz entries, never pickle",
    )
    register(
        "memory",
        Lazy("fusioncore_diskcache.memory:MemoryStore"),
        "in-process store for tests and one-off runs; same entry format, nothing persisted",
    )
