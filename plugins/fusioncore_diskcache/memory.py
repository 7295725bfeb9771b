"""An in-process prediction store: a dict of serialised entries."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

from fusioncore_diskcache.base import DEFAULT_SIZE_LIMIT_BYTES, EntryStore

__all__ = ["MemoryStore"]


class MemoryStore(EntryStore):
    """In-process store for tests and one-off runs; forgets everything on exit.

    Entries are held serialised, in exactly the format the disk store writes,
    so code tested against it exercises the same checksum and corruption path.
    ``directory`` is accepted for the factory signature and ignored.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        size_limit_bytes: int = DEFAULT_SIZE_LIMIT_BYTES,
    ) -> None:
        super().__init__(size_limit_bytes=size_limit_bytes)
        #: Serialised entries, least recently used first. Public so tests can
        #: corrupt an entry: ``store.blobs[key] = b"garbage"``.
        self.blobs: dict[str, bytes] = {}
        # one lock for every dict operation: threads share a store in a process
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"MemoryStore({len(self.blobs)} entries)"

    def keys(self) -> Iterator[str]:
        with self._lock:
            return iter(list(self.blobs))

    def clear(self) -> None:
        with self._lock:
            self.blobs.clear()

    def close(self) -> None:
        with self._lock:
            self.blobs = {}

    def evict(self, to_bytes: int | None = None) -> int:
        target = self._evict_target(to_bytes)
        with self._lock:
            size, dropped = self._size_bytes(), 0
            while self.blobs and size > target:
                size -= len(self.blobs.pop(next(iter(self.blobs))))
                dropped += 1
        return dropped

    def _read(self, key: str) -> bytes | None:
        with self._lock:
            return self.blobs.get(key)

    def _write(self, key: str, blob: bytes) -> None:
        with self._lock:
            self.blobs.pop(key, None)  # re-insert at the most-recently-used end
            self.blobs[key] = blob

    def _remove(self, key: str) -> None:
        with self._lock:
            self.blobs.pop(key, None)

    def _accessed(self, key: str) -> None:
        with self._lock:
            blob = self.blobs.pop(key, None)  # another thread may have removed it meanwhile
            if blob is not None:
                self.blobs[key] = blob

    def _size_bytes(self) -> int:
        with self._lock:
            return sum(len(blob) for blob in self.blobs.values())

    def _count(self) -> int:
        with self._lock:
            return len(self.blobs)
