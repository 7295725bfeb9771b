"""diskcache's low level for the prediction store: a raw-bytes ``Disk``, a read-only reader, SQLite errors.

:class:`NpzOnlyDisk` refuses to pickle or unpickle anything (a cache file
must never run code); :class:`ReadOnlyCache` serves hits from a store on a
directory that cannot be written; :func:`is_corruption` tells a damaged
database (moved aside and replaced by :class:`~fusioncore_diskcache.disk.DiskCacheStore`)
from other SQLite errors.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

import diskcache
from diskcache.core import MODE_BINARY, MODE_PICKLE, MODE_RAW, MODE_TEXT, UNKNOWN

from fusioncore_diskcache.errors import StoreError, UnsafeEntryError

__all__ = [
    "DB_NAME", "MIN_FILE_SIZE", "OWN_ROW", "NpzOnlyDisk", "ReadOnlyCache", "file_identity", "is_corruption",
    "is_unwritable", "is_writable_store",
]

logger = logging.getLogger("fusioncore_diskcache")

_MODE_NAMES = {MODE_RAW: "raw", MODE_BINARY: "binary", MODE_TEXT: "text", MODE_PICKLE: "pickle"}
# Values below this size live inside the SQLite file, larger ones in their own file.
MIN_FILE_SIZE = 2**15
# Rows this store wrote: a raw (never pickled) text key.
OWN_ROW = "raw = 1 AND typeof(key) = 'text'"
DB_NAME = "cache.db"

# SQLite result codes (sqlite3.Error.sqlite_errorcode, Python >= 3.11; messages before that)
_SQLITE_READONLY, _SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_NOTADB = 8, 11, 13, 26
_CORRUPTION_TEXT = ("malformed", "not a database")

def _sqlite_code(error: BaseException) -> int | None:
    code = getattr(error, "sqlite_errorcode", None)
    return None if code is None else int(code) & 0xFF  # extended codes keep the primary in the low byte


def is_corruption(error: BaseException) -> bool:
    """Whether ``error`` is SQLite saying the database file itself is damaged."""
    if not isinstance(error, sqlite3.DatabaseError):
        return False
    code = _sqlite_code(error)
    if code is not None:
        return code in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    return any(text in str(error) for text in _CORRUPTION_TEXT)


def is_unwritable(error: BaseException) -> bool:
    code = _sqlite_code(error)
    if code is not None:
        return code in (_SQLITE_READONLY, _SQLITE_FULL)
    return "readonly" in str(error) or "disk is full" in str(error)


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


class ReadOnlyCache:
    """The few reads the store needs, over a ``mode=ro`` SQLite connection: nothing is ever written."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.disk = NpzOnlyDisk(str(directory), min_file_size=MIN_FILE_SIZE)
        self._lock = threading.Lock()
        path = urllib.parse.quote(str(directory / DB_NAME))
        self._con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        try:
            self._con.execute("SELECT COUNT(*) FROM Cache").fetchall()
        except sqlite3.OperationalError:
            # A WAL database whose -shm file is gone cannot be opened mode=ro in a
            # read-only directory; nothing can write there, so immutable is true.
            self._con.close()
            self._con = sqlite3.connect(f"file:{path}?immutable=1", uri=True, check_same_thread=False)
        try:
            self.sql("SELECT COUNT(*) FROM Cache")
        except sqlite3.Error:
            self._con.close()
            raise

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._con.execute(statement, params).fetchall()

    def get(self, key: str) -> bytes | None:
        rows = self.sql(
            "SELECT mode, filename, value FROM Cache WHERE key = ? AND raw = 1 "
            "AND (expire_time IS NULL OR expire_time > ?)",
            (key, time.time()),
        )
        if not rows:
            return None
        ((mode, filename, value),) = rows
        try:
            return self.disk.fetch(mode, filename, value, False)
        except OSError:
            return None  # its value file is gone: a miss, as diskcache reads it

    def volume(self) -> int:
        ((pages,),) = self.sql("PRAGMA page_count")
        ((page_size,),) = self.sql("PRAGMA page_size")
        size = self.sql("SELECT value FROM Settings WHERE key = 'size'")
        return int(pages) * int(page_size) + (int(size[0][0]) if size else 0)

    def close(self) -> None:
        with self._lock:
            self._con.close()


def file_identity(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_dev, info.st_ino


def is_writable_store(directory: Path) -> bool:
    db = directory / DB_NAME
    return os.access(directory, os.W_OK | os.X_OK) and (not db.exists() or os.access(db, os.W_OK))
