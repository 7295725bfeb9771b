"""Errors raised by the prediction stores.

::

    FusionCoreError
    └── StoreError                  bad input to a store (key, arrays, size limit)
        ├── StoreDirectoryError     a store directory that is unsafe to use
        └── CorruptEntryError       a stored entry that fails verification
            └── UnsafeEntryError    an entry in a form these stores never write (pickle, text)

``get`` never lets :class:`CorruptEntryError` escape: it logs the entry, drops
it and returns ``None`` so the caller recomputes. The other two reach the caller.
"""

from __future__ import annotations

from fusioncore.errors import FusionCoreError

__all__ = ["CorruptEntryError", "StoreDirectoryError", "StoreError", "UnsafeEntryError"]


class StoreError(FusionCoreError, ValueError):
    """Invalid use of a prediction store (bad key, object arrays, bad option)."""


class StoreDirectoryError(StoreError):
    """A store directory that is not a directory or belongs to another user."""


class CorruptEntryError(StoreError):
    """A stored entry whose header, checksum or arrays do not verify."""


class UnsafeEntryError(CorruptEntryError):
    """An entry stored in a form these stores never write, e.g. a pickle; never deserialised."""
