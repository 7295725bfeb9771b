"""Errors raised by the prediction stores.

::

    FusionCoreError
    └── StoreError                  bad input to a store (key, arrays, size limit)
        ├── StoreDirectoryError     a store directory that is unsafe to use
        ├── CorruptEntryError       a stored entry that fails verification
        │   ├── UnsafeEntryError    an entry in a form these stores never write (pickle, text)
        │   └── StaleEntryError     an entry in an older entry format
        └── StoreUnavailableError   the store's database failed in a way that is no corruption

``get`` never lets :class:`CorruptEntryError` escape: it logs the entry, drops
it and returns ``None`` so the caller recomputes. A damaged database is moved
aside and replaced (a logged warning), and a store that cannot be written
serves what it holds and skips writes (a logged warning); neither raises. The
others reach the caller, which prints their one-line message.
"""

from __future__ import annotations

from fusioncore.errors import FusionCoreError

__all__ = [
    "CorruptEntryError",
    "StaleEntryError",
    "StoreDirectoryError",
    "StoreError",
    "StoreUnavailableError",
    "UnsafeEntryError",
]


class StoreError(FusionCoreError, ValueError):
    """Invalid use of a prediction store (bad key, object arrays, bad option)."""


class StoreDirectoryError(StoreError):
    """A store directory that is not a directory or belongs to another user."""


class CorruptEntryError(StoreError):
    """A stored entry whose header, checksum or arrays do not verify."""


class UnsafeEntryError(CorruptEntryError):
    """An entry stored in a form these stores never write, e.g. a pickle; never deserialised."""


class StaleEntryError(CorruptEntryError):
    """An entry written in an older entry format (dropped and recomputed, logged at info level)."""


class StoreUnavailableError(StoreError):
    """The store's database failed for a reason other than corruption (I/O error, lock held for too long)."""
