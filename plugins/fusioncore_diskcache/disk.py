"""The default prediction store: diskcache (SQLite + files), restricted to raw bytes.

diskcache gives what a shared on-disk cache needs -- SQLite transactions, so
several processes (DDP ranks, two runs at once) can read and write one
directory safely, and large values spilled to files. Its default ``Disk``
also pickles any key or value that is not ``str``/``bytes``/``int``/``float``
and unpickles such rows on read; :class:`NpzOnlyDisk` closes that door.

A cache must never be the reason a run fails, so the store degrades instead
(each with one logged warning):

* a damaged database (truncated, overwritten, zeroed pages: SQLite reports
  ``SQLITE_CORRUPT`` / ``SQLITE_NOTADB``), found when the store opens or at
  any later query, is moved aside to ``<directory>.damaged-<time>-<pid>`` and
  an empty store takes its place; its entries are recomputed;
* a directory that cannot be written (read-only file system or permissions)
  is opened read-only: hits are served, puts are skipped;
* a write that fails (disk full) is skipped.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import diskcache

from fusioncore_diskcache.backend import (
    DB_NAME,
    MIN_FILE_SIZE,
    OWN_ROW,
    NpzOnlyDisk,
    ReadOnlyCache,
    file_identity,
    is_corruption,
    is_unwritable,
    is_writable_store,
)
from fusioncore_diskcache.base import DEFAULT_SIZE_LIMIT_BYTES, EntryStore
from fusioncore_diskcache.directory import default_store_directory, ensure_private_directory
from fusioncore_diskcache.errors import StoreError, StoreUnavailableError

__all__ = ["DiskCacheStore", "NpzOnlyDisk"]

logger = logging.getLogger("fusioncore_diskcache")

T = TypeVar("T")

class DiskCacheStore(EntryStore):
    """The default store: entries in a private on-disk diskcache, shared across processes.

    ``directory`` defaults to :func:`default_store_directory`; it is created
    with mode 0700 (see :func:`ensure_private_directory`). ``size_limit_bytes``
    caps the store (default 4 GiB) without automatic eviction -- see
    :class:`EntryStore` -- and ``timeout_s`` bounds how long SQLite waits for
    another process's lock. A damaged database is moved aside and replaced; a
    directory that cannot be written is served read-only (see the module doc).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        size_limit_bytes: int = DEFAULT_SIZE_LIMIT_BYTES,
        timeout_s: float = 60.0,
    ) -> None:
        super().__init__(size_limit_bytes=size_limit_bytes)
        self._timeout_s = timeout_s
        self._cache: diskcache.Cache | None = None
        self._ro: ReadOnlyCache | None = None
        self._opened: tuple[int, int] | None = None  # (device, inode) of the database we opened
        requested = default_store_directory() if directory is None else directory
        try:
            self.directory: Path = ensure_private_directory(requested)
        except OSError as error:  # cannot even create it: a store that holds nothing
            self.directory = Path(requested).expanduser().absolute()
            self._go_read_only(f"its directory cannot be created ({error.strerror or error})")
            return
        self._open()

    def __repr__(self) -> str:
        return f"DiskCacheStore({str(self.directory)!r})"

    # ----------------------------------------------------------- opening
    def _open(self) -> None:
        if not is_writable_store(self.directory):
            self._open_read_only("its directory is not writable")
            return
        try:
            self._cache = self._new_cache()
        except sqlite3.DatabaseError as error:
            if is_corruption(error):
                self._move_aside(error)
                return
            if is_unwritable(error):
                self._open_read_only(f"its database cannot be written ({error})")
                return
            raise StoreUnavailableError(f"{self!r}: cannot open the store database: {error}") from None
        self._opened = file_identity(self.directory / DB_NAME)

    def _new_cache(self) -> diskcache.Cache:
        # Settings are passed explicitly: diskcache otherwise adopts whatever an
        # earlier opener stored in the database.
        return diskcache.Cache(
            str(self.directory),
            timeout=self._timeout_s,
            disk=NpzOnlyDisk,
            eviction_policy="none",
            size_limit=self.size_limit_bytes,
            statistics=False,
            tag_index=False,
            disk_min_file_size=MIN_FILE_SIZE,
        )

    def _open_read_only(self, reason: str) -> None:
        self._close_backend()
        if not (self.directory / DB_NAME).exists():
            self._go_read_only(f"{reason} and it holds no entries")
            return
        try:
            self._ro = ReadOnlyCache(self.directory)
        except sqlite3.DatabaseError as error:
            what = "is damaged" if is_corruption(error) else "cannot be read"
            self._go_read_only(f"{reason}, and its database {what} ({error})")
            return
        self._go_read_only(reason)

    def _go_read_only(self, reason: str) -> None:
        self.read_only = True
        self._write_warned = True  # this is the one warning about skipped writes
        if self._ro is None:
            logger.warning("%r: %s; running without it: nothing is served from it or stored in it", self,
                           reason)
        else:
            logger.warning("%r: %s; serving the entries it holds, not storing new ones", self, reason)

    def _move_aside(self, error: BaseException) -> None:
        """Replace a damaged database by an empty store; the damaged one is kept beside it."""
        if self.read_only:
            self._close_backend()
            self._go_read_only(f"its database is damaged ({error}) and, read-only, cannot be moved aside")
            return
        self._close_backend()
        db = self.directory / DB_NAME
        if self._opened is not None and file_identity(db) != self._opened:
            # another process already replaced the database we had open: use the new one
            logger.warning("%r: the store database was damaged (%s) and has been replaced; reopening", self,
                           error)
        else:
            aside = self.directory.with_name(
                f"{self.directory.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
            )
            try:
                os.rename(self.directory, aside)
                ensure_private_directory(self.directory)
            except OSError as exc:
                self._go_read_only(f"its database is damaged ({error}) and cannot be moved aside "
                                   f"({exc.strerror or exc})")
                return
            logger.warning(
                "%r: the store database is damaged (%s); moved the store aside to %s (delete it when you "
                "no longer need it) and started an empty one: its entries will be recomputed",
                self, error, aside,
            )
        self._opened = None
        self._open()

    def _close_backend(self) -> None:
        for backend in (self._cache, self._ro):
            if backend is not None:
                try:
                    backend.close()
                except sqlite3.Error:
                    pass
        self._cache = self._ro = None

    # ----------------------------------------------------------- guarding
    def _guard(self, what: str, operation: Callable[[], T], default: T) -> T:
        """Run a database operation; a damaged database is moved aside and ``default`` returned."""
        try:
            return operation()
        except sqlite3.DatabaseError as error:
            if not is_corruption(error):
                raise StoreUnavailableError(f"{self!r}: {what} failed: {error}") from None
            self._move_aside(error)
            return default

    def _rows(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """A read-only query, on whichever backend is open (none: no rows)."""
        if self._cache is not None:
            cache = self._cache
            return self._guard("a query", lambda: self._query(cache, statement, params), [])
        if self._ro is not None:
            ro = self._ro
            return self._guard("a query", lambda: ro.sql(statement, params), [])
        return []

    @staticmethod
    def _query(cache: diskcache.Cache, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        # diskcache has no public way to list keys without deserialising them or
        # to order rows by access time; its Cache table schema is stable since 3.0.
        return cache._sql(statement, params).fetchall()

    # ----------------------------------------------------------- contract
    def keys(self) -> Iterator[str]:
        rows = self._rows(f"SELECT key FROM Cache WHERE {OWN_ROW} ORDER BY rowid")
        return iter([key for (key,) in rows])

    def clear(self) -> None:
        if self._cache is None:
            raise StoreError(f"{self!r} is read-only: cannot clear it")
        cache = self._cache
        # Deletes by rowid and never reads a value, so foreign rows go too.
        self._guard("clear", lambda: cache.clear(retry=True), 0)

    def close(self) -> None:
        self._close_backend()

    def evict(self, to_bytes: int | None = None) -> int:
        target = self._evict_target(to_bytes)
        if self._cache is None:
            raise StoreError(f"{self!r} is read-only: cannot evict entries")
        dropped = self._drop_foreign_rows()
        oldest_first = self._rows(f"SELECT key FROM Cache WHERE {OWN_ROW} ORDER BY access_time, rowid")
        for (key,) in oldest_first:
            if self._size_bytes() <= target or self._cache is None:
                break
            dropped += bool(self._guard("evict", lambda c=self._cache, k=key: c.delete(k, retry=True), False))
        return dropped

    # ------------------------------------------------------------- backend
    def _read(self, key: str) -> bytes | None:
        if self._cache is not None:
            cache = self._cache
            return self._guard("get", lambda: cache.get(key, retry=True), None)
        if self._ro is not None:
            ro = self._ro
            return self._guard("get", lambda: ro.get(key), None)
        return None

    def _write(self, key: str, blob: bytes) -> None:
        for _ in range(2):  # a second try on the fresh store that replaced a damaged one
            cache = self._cache
            if cache is None:
                self._skip_write(key, "the store is read-only")
                return
            try:
                cache.set(key, blob, retry=True)
                return
            except sqlite3.DatabaseError as error:
                if is_corruption(error):
                    self._move_aside(error)
                    continue
                if is_unwritable(error):
                    self._skip_write(key, str(error))
                    return
                raise StoreUnavailableError(f"{self!r}: put failed: {error}") from None
            except OSError as error:  # its value file could not be written (disk full, permissions)
                self._skip_write(key, error.strerror or str(error))
                return
        self._skip_write(key, "the store database keeps failing")

    def _remove(self, key: str) -> None:
        if self._cache is None:
            return  # read-only: a bad entry stays, and is refused on every read
        cache = self._cache
        self._guard("delete", lambda: cache.delete(key, retry=True), False)

    def _accessed(self, key: str) -> None:
        # With eviction_policy="none" diskcache does not track reads; record
        # them for evict(). Best effort: eviction order is advisory, so a
        # lock held too long by another process must not fail the read.
        if self._cache is None:
            return
        try:
            self._query(
                self._cache,
                "UPDATE Cache SET access_time = ?, access_count = access_count + 1 WHERE key = ? AND raw = 1",
                (time.time(), key),
            )
        except sqlite3.Error as error:
            logger.debug("%r: could not record access to %s: %s", self, key, error)

    def _size_bytes(self) -> int:
        if self._cache is not None:
            cache = self._cache
            return int(self._guard("volume", cache.volume, 0))
        if self._ro is not None:
            return int(self._guard("volume", self._ro.volume, 0))
        return 0

    def _count(self) -> int:
        rows = self._rows(f"SELECT COUNT(*) FROM Cache WHERE {OWN_ROW}")
        return int(rows[0][0]) if rows else 0

    def _drop_foreign_rows(self) -> int:
        """Delete rows this store never writes (pickled keys), which no key can reach."""
        cache = self._cache
        if cache is None:
            return 0

        def drop() -> list[tuple[Any, ...]]:
            with cache.transact(retry=True):
                rows = self._query(cache, f"SELECT rowid, filename FROM Cache WHERE NOT ({OWN_ROW})")
                for rowid, _ in rows:
                    self._query(cache, "DELETE FROM Cache WHERE rowid = ?", (rowid,))
            return rows

        rows = self._guard("evict", drop, [])
        for _, filename in rows:
            if filename is not None:
                cache.disk.remove(filename)
        return len(rows)
