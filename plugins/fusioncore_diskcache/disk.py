"""The default prediction store: diskcache (SQLite + files), restricted to raw bytes.

diskcache gives what a shared on-disk cache needs -- SQLite transactions, so
several processes (DDP ranks, two runs at once) can read and write one
directory safely, and large values spilled to files. Its default ``Disk``
also pickles any key or value that is not ``str``/``bytes``/``int``/``float``
and unpickles such rows on read; :class:`NpzOnlyDisk` closes that door.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import diskcache
from diskcache.core import MODE_BINARY, MODE_PICKLE, MODE_RAW, MODE_TEXT, UNKNOWN

from fusioncore_diskcache.base import DEFAULT_SIZE_LIMIT_BYTES, EntryStore
from fusioncore_diskcache.directory import default_store_directory, ensure_private_directory
from fusioncore_diskcache.errors import StoreError, UnsafeEntryError

__all__ = ["DiskCacheStore", "NpzOnlyDisk"]

logger = logging.getLogger("fusioncore_diskcache")

_MODE_NAMES = {MODE_RAW: "raw", MODE_BINARY: "binary", MODE_TEXT: "text", MODE_PICKLE: "pickle"}
# Values below this size live inside the SQLite file, larger ones in their own file.
_MIN_FILE_SIZE = 2**15
# Rows this store wrote: a raw (never pickled) text key.
_OWN_ROW = "raw = 1 AND typeof(key) = 'text'"


class NpzOnlyDisk(diskcache.Disk):
    """A diskcache ``Disk`` that moves only raw ``bytes`` under ``str`` keys -- never pickle.

    Writing anything else raises :class:`StoreError`. Reading a row that holds
    anything but raw bytes (inline, or in a file inside the cache directory)
    raises :class:`UnsafeEntryError` *before* deserialising it, so an entry
    planted by another writer -- ``diskcache.Cache(dir).set(key, obj)`` pickles
    ``obj`` -- or a hand-edited row is refused, never unpickled. File names
    read from the database are confined to the cache directory, for reading
    and for deleting.
    """

    def put(self, key: Any) -> tuple[Any, bool]:
        if type(key) is not str:
            raise StoreError(f"store keys are strings, got {type(key).__name__}")
        return super().put(key)

    def get(self, key: Any, raw: bool) -> str:
        if raw and type(key) is str:
            return key
        raise UnsafeEntryError("key stored in a form this store never writes (pickled or binary)")

    def store(self, value: Any, read: bool, key: Any = UNKNOWN) -> tuple[int, int, Any, Any]:
        if read or type(value) is not bytes:
            raise StoreError(f"store values are bytes, got {type(value).__name__}")
        return super().store(value, read, key=key)

    def fetch(self, mode: int, filename: Any, value: Any, read: bool) -> bytes:
        if not read and mode == MODE_RAW and type(value) is bytes:
            return value
        if not read and mode == MODE_BINARY and value is None:
            # An OSError here (file removed by a concurrent writer) is a miss to diskcache.
            with open(self._confined(filename), "rb") as reader:
                return reader.read()
        raise UnsafeEntryError(
            f"value stored as diskcache {_MODE_NAMES.get(mode, f'mode {mode}')} data; "
            "this store only reads raw bytes and never unpickles"
        )

    def remove(self, file_path: Any) -> None:
        try:
            self._confined(file_path)
        except UnsafeEntryError as error:
            logger.warning("not removing %r: %s", file_path, error)
            return
        super().remove(file_path)

    def _confined(self, filename: Any) -> str:
        if not isinstance(filename, str) or not filename:
            raise UnsafeEntryError(f"bad value file name {filename!r}")
        root = os.path.realpath(self._directory)
        full = os.path.realpath(os.path.join(root, filename))
        if full == root or os.path.commonpath([root, full]) != root:
            raise UnsafeEntryError(f"value file {filename!r} lies outside the cache directory")
        return full


class DiskCacheStore(EntryStore):
    """The default store: entries in a private on-disk diskcache, shared across processes.

    ``directory`` defaults to :func:`default_store_directory`; it is created
    with mode 0700 (see :func:`ensure_private_directory`). ``size_limit_bytes``
    caps the store (default 4 GiB) without automatic eviction -- see
    :class:`EntryStore` -- and ``timeout_s`` bounds how long SQLite waits for
    another process's lock.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        size_limit_bytes: int = DEFAULT_SIZE_LIMIT_BYTES,
        timeout_s: float = 60.0,
    ) -> None:
        super().__init__(size_limit_bytes=size_limit_bytes)
        self.directory: Path = ensure_private_directory(
            default_store_directory() if directory is None else directory
        )
        # Settings are passed explicitly: diskcache otherwise adopts whatever an
        # earlier opener stored in the database.
        self._cache = diskcache.Cache(
            str(self.directory),
            timeout=timeout_s,
            disk=NpzOnlyDisk,
            eviction_policy="none",
            size_limit=size_limit_bytes,
            statistics=False,
            tag_index=False,
            disk_min_file_size=_MIN_FILE_SIZE,
        )

    def __repr__(self) -> str:
        return f"DiskCacheStore({str(self.directory)!r})"

    def keys(self) -> Iterator[str]:
        rows = self._query(f"SELECT key FROM Cache WHERE {_OWN_ROW} ORDER BY rowid")
        return iter([key for (key,) in rows])

    def clear(self) -> None:
        # Deletes by rowid and never reads a value, so foreign rows go too.
        self._cache.clear(retry=True)

    def close(self) -> None:
        self._cache.close()

    def evict(self, to_bytes: int | None = None) -> int:
        target = self._evict_target(to_bytes)
        dropped = self._drop_foreign_rows()
        oldest_first = self._query(f"SELECT key FROM Cache WHERE {_OWN_ROW} ORDER BY access_time, rowid")
        for (key,) in oldest_first:
            if self._size_bytes() <= target:
                break
            dropped += bool(self._cache.delete(key, retry=True))
        return dropped

    # ------------------------------------------------------------- backend
    def _read(self, key: str) -> bytes | None:
        return self._cache.get(key, retry=True)

    def _write(self, key: str, blob: bytes) -> None:
        self._cache.set(key, blob, retry=True)

    def _remove(self, key: str) -> None:
        self._cache.delete(key, retry=True)

    def _accessed(self, key: str) -> None:
        # With eviction_policy="none" diskcache does not track reads; record
        # them for evict(). Best effort: eviction order is advisory, so a
        # lock held too long by another process must not fail the read.
        try:
            self._query(
                "UPDATE Cache SET access_time = ?, access_count = access_count + 1 WHERE key = ? AND raw = 1",
                (time.time(), key),
            )
        except sqlite3.OperationalError as error:
            logger.debug("%r: could not record access to %s: %s", self, key, error)

    def _size_bytes(self) -> int:
        return int(self._cache.volume())

    def _count(self) -> int:
        ((count,),) = self._query(f"SELECT COUNT(*) FROM Cache WHERE {_OWN_ROW}")
        return int(count)

    def _drop_foreign_rows(self) -> int:
        """Delete rows this store never writes (pickled keys), which no key can reach."""
        with self._cache.transact(retry=True):
            rows = self._query(f"SELECT rowid, filename FROM Cache WHERE NOT ({_OWN_ROW})")
            for rowid, _ in rows:
                self._query("DELETE FROM Cache WHERE rowid = ?", (rowid,))
        for _, filename in rows:
            if filename is not None:
                self._cache.disk.remove(filename)
        return len(rows)

    def _query(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        # diskcache has no public way to list keys without deserialising them or
        # to order rows by access time; its Cache table schema is stable since 3.0.
        return self._cache._sql(statement, params).fetchall()
