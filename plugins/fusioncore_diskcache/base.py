"""What every bundled prediction store shares: verification, accounting, limits.

A backend supplies raw-bytes primitives (``_read``, ``_write``, ``_remove``,
``_accessed``, ``_size_bytes``, ``_count``) plus ``keys``, ``clear``, ``evict``
and ``close``; :class:`EntryStore` turns them into the
:class:`~fusioncore.contracts.PredictionStore` contract, so the in-memory store
runs the exact format, checksum and corruption path that the disk store runs.

Corrupted entries (and writes the store had to skip) are reported with ``logging.warning`` on the
``fusioncore_diskcache`` logger rather than ``warnings.warn``: a bad entry is
an expected, recoverable event (the caller recomputes), and a warning would be
turned into an exception by callers that run with ``-W error``.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Iterator, Mapping
from types import TracebackType

import attrs
import numpy as np

from fusioncore_diskcache.entry import decode_entry, encode_entry
from fusioncore_diskcache.errors import CorruptEntryError, StaleEntryError, StoreError

__all__ = ["DEFAULT_SIZE_LIMIT_BYTES", "EntryStore", "StoreStats"]

logger = logging.getLogger("fusioncore_diskcache")

#: Default ceiling on a store's size: 4 GiB.
DEFAULT_SIZE_LIMIT_BYTES = 4 * 2**30


@attrs.frozen
class StoreStats:
    """Counters of one store object since it was opened, and the store's current extent."""

    hits: int  #: ``get`` calls that returned arrays
    misses: int  #: ``get`` calls for an absent key
    corrupted: int  #: entries that failed verification and were dropped
    rejected: int  #: ``put`` calls skipped because the size limit would be exceeded
    entries: int  #: entries in the store now (all processes' writes)
    size_bytes: int  #: bytes the store occupies now
    unwritten: int = 0  #: ``put`` calls skipped because the store cannot be written (read-only, disk full)

    @property
    def hit_rate(self) -> float:
        """Fraction of lookups served from the store (0.0 before any lookup)."""
        lookups = self.hits + self.misses + self.corrupted
        return self.hits / lookups if lookups else 0.0


def check_key(key: object) -> str:
    if not isinstance(key, str) or not key:
        raise StoreError(f"store keys are non-empty strings, got {key!r}")
    return key


def _check_limit(size_limit_bytes: object) -> int:
    if isinstance(size_limit_bytes, bool) or not isinstance(size_limit_bytes, int):
        raise StoreError(f"size_limit_bytes must be an integer, got {size_limit_bytes!r}")
    if size_limit_bytes <= 0:
        raise StoreError(f"size_limit_bytes must be positive, got {size_limit_bytes}")
    return size_limit_bytes


class EntryStore(abc.ABC):
    """Base of the bundled stores: a keyed store of verified, pickle-free array entries.

    Size policy: nothing is evicted automatically, so an entry a run has
    written stays readable for the whole run (a cache that culled on write
    could drop the train-split outputs while the test split is being scored).
    A ``put`` that would take the store past ``size_limit_bytes`` is skipped
    with a logged warning and counted in :attr:`StoreStats.rejected`; the
    caller still holds the arrays, so nothing is lost but a later cache hit.
    Space is reclaimed explicitly, between runs, with :meth:`evict`.

    A store that cannot be written (:attr:`read_only`, a full disk) still
    serves what it holds; each skipped ``put`` is counted in
    :attr:`StoreStats.unwritten` and the first one is logged.
    """

    #: True when the store serves the entries it holds but cannot store new ones.
    read_only: bool = False

    def __init__(self, *, size_limit_bytes: int = DEFAULT_SIZE_LIMIT_BYTES) -> None:
        self.size_limit_bytes = _check_limit(size_limit_bytes)
        self._hits = self._misses = self._corrupted = self._rejected = self._unwritten = 0
        self._write_warned = False  # one warning about skipped writes per store object

    # ------------------------------------------------------------ contract
    def get(self, key: str) -> dict[str, np.ndarray] | None:
        """The arrays stored under ``key``; ``None`` if absent or corrupted (then dropped)."""
        check_key(key)
        try:
            blob = self._read(key)
            if blob is None:
                self._misses += 1
                return None
            arrays = decode_entry(blob, key=key)
        except CorruptEntryError as error:
            self._corrupted += 1
            # an entry of an older format is expected after an upgrade, not a fault
            level = logging.INFO if isinstance(error, StaleEntryError) else logging.WARNING
            logger.log(level, "%r: dropped %s entry %s (%s); it will be recomputed", self,
                       "outdated" if level == logging.INFO else "corrupted", key, error)
            self._remove(key)
            return None
        self._hits += 1
        self._accessed(key)
        return arrays

    def put(self, key: str, arrays: Mapping[str, np.ndarray]) -> None:
        """Store ``arrays`` under ``key`` (replacing any entry), unless the size limit forbids it."""
        check_key(key)
        blob = encode_entry(arrays, key=key)
        if self.read_only:
            self._skip_write(key, "the store is read-only")
            return
        # A replaced entry is counted twice here: conservative, never over the limit.
        projected = self._size_bytes() + len(blob)
        if projected > self.size_limit_bytes:
            self._rejected += 1
            logger.warning(
                "%r: not storing %s (%d bytes): the store would grow to %d bytes, over its "
                "limit of %d; call evict() between runs or raise size_limit_bytes",
                self,
                key,
                len(blob),
                projected,
                self.size_limit_bytes,
            )
            return
        self._write(key, blob)

    def delete(self, key: str) -> None:
        """Remove the entry under ``key``; an absent key is not an error."""
        self._remove(check_key(key))

    @abc.abstractmethod
    def keys(self) -> Iterator[str]:
        """The keys present now (a snapshot, safe to delete while iterating)."""

    @abc.abstractmethod
    def clear(self) -> None:
        """Remove every entry."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the store's resources (database connection, held entries)."""

    @abc.abstractmethod
    def evict(self, to_bytes: int | None = None) -> int:
        """Drop least-recently-used entries until the store holds at most ``to_bytes``.

        ``to_bytes`` defaults to ``size_limit_bytes``; returns how many entries
        were dropped. Meant for between runs: an entry a running pipeline still
        needs may go (it would then be recomputed).
        """

    def _skip_write(self, key: str, reason: str) -> None:
        """Count a ``put`` the store could not carry out; log the first one."""
        self._unwritten += 1
        if not self._write_warned:
            self._write_warned = True
            logger.warning("%r: not storing %s (%s); entries it cannot store are recomputed by later runs",
                           self, key, reason)

    # -------------------------------------------------------------- extras
    def stats(self) -> StoreStats:
        """Hit / miss / corruption counters of this object and the store's current size."""
        return StoreStats(
            hits=self._hits,
            misses=self._misses,
            corrupted=self._corrupted,
            rejected=self._rejected,
            entries=self._count(),
            size_bytes=self._size_bytes(),
            unwritten=self._unwritten,
        )

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in set(self.keys())

    def __enter__(self) -> EntryStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _evict_target(self, to_bytes: int | None) -> int:
        if to_bytes is None:
            return self.size_limit_bytes
        if isinstance(to_bytes, bool) or not isinstance(to_bytes, int) or to_bytes < 0:
            raise StoreError(f"evict(to_bytes=...) needs a non-negative integer, got {to_bytes!r}")
        return to_bytes

    # ------------------------------------------------------------- backend
    @abc.abstractmethod
    def _read(self, key: str) -> bytes | None:
        """Raw entry bytes, ``None`` if absent; may raise :class:`CorruptEntryError`."""

    @abc.abstractmethod
    def _write(self, key: str, blob: bytes) -> None: ...

    @abc.abstractmethod
    def _remove(self, key: str) -> None: ...

    @abc.abstractmethod
    def _accessed(self, key: str) -> None:
        """Record a hit, for least-recently-used eviction."""

    @abc.abstractmethod
    def _size_bytes(self) -> int: ...

    @abc.abstractmethod
    def _count(self) -> int: ...
