"""The on-store format of one entry, and the key the core files it under.

An entry is ``MAGIC + sha256(key, payload) + payload`` where ``payload`` is
an ``.npz`` archive written and read with ``allow_pickle=False``. The checksum
covers the key the entry was written under as well as its bytes, so it catches
torn or bit-flipped entries *and* entries that sit under the wrong key (two
values swapped, a row copied or misfiled): such an entry fails verification
and is recomputed instead of being served as another split's outputs.

The checksum has no secret in it: it guards against faults, not against
someone who can write the store directory (that is what its 0700 mode is
for). ``allow_pickle=False`` plus the dtype check below mean that even a
deliberately forged entry can only ever yield plain numeric, boolean or string
arrays -- nothing in it is executed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

import numpy as np

from fusioncore.contracts import arrays_to_npz_bytes, npz_bytes_to_arrays
from fusioncore_diskcache.errors import CorruptEntryError, StaleEntryError, StoreError

__all__ = ["FORMAT_MAGIC", "HEADER_SIZE", "decode_entry", "encode_entry", "entry_digest", "store_key"]

#: Format name and version; bump the last byte when the layout changes.
#: Version 2: the checksum covers the key (version 1 hashed the payload alone).
FORMAT_MAGIC = b"fcnpz\x02"
_FORMAT_NAME = FORMAT_MAGIC[:-1]
_DIGEST_SIZE = hashlib.sha256().digest_size
HEADER_SIZE = len(FORMAT_MAGIC) + _DIGEST_SIZE
# An .npz is a zip: a local file header, or the end record alone when empty.
_ZIP_PREFIXES = (b"PK\x03\x04", b"PK\x05\x06")
# Part of every key, so a change of entry layout can never meet old entries.
_KEY_NAMESPACE = "fusioncore-predictions/1"


def store_key(detector_fingerprint: str, data_fingerprint: str, split: str) -> str:
    """The store key of one detector's outputs on one split of one dataset.

    A sha256 hex digest that changes whenever any part changes. The parts are
    JSON-encoded before hashing so that no two part tuples share a key
    (``("ab", "c")`` and ``("a", "bc")`` differ).
    """
    parts = {
        "detector_fingerprint": detector_fingerprint,
        "data_fingerprint": data_fingerprint,
        "split": split,
    }
    for name, value in parts.items():
        if not isinstance(value, str) or not value:
            raise StoreError(f"{name} must be a non-empty string, got {value!r}")
    encoded = json.dumps([_KEY_NAMESPACE, *parts.values()])
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def entry_digest(key: str, payload: bytes) -> bytes:
    """The checksum of an entry: sha256 over the key (length-prefixed) and the payload."""
    encoded = key.encode("utf-8")
    return hashlib.sha256(len(encoded).to_bytes(8, "big") + encoded + payload).digest()


def _check_entry_key(key: object) -> str:
    if not isinstance(key, str) or not key:
        raise StoreError(f"store keys are non-empty strings, got {key!r}")
    return key


def encode_entry(arrays: Mapping[str, np.ndarray], *, key: str) -> bytes:
    """Serialise named arrays to the entry for ``key`` (header, checksum, npz); object arrays are refused."""
    _check_entry_key(key)
    if not isinstance(arrays, Mapping):
        raise StoreError(f"a store value is a mapping of name -> array, got {type(arrays).__name__}")
    checked: dict[str, np.ndarray] = {}
    for name, value in arrays.items():
        if not isinstance(name, str) or not name:
            raise StoreError(f"array names must be non-empty strings, got {name!r}")
        array = np.asarray(value)
        if array.dtype.hasobject:
            raise StoreError(
                f"array {name!r} has dtype object; only numeric, boolean and string arrays "
                "can be stored (entries are never pickled)"
            )
        checked[name] = array
    payload = arrays_to_npz_bytes(checked)
    return FORMAT_MAGIC + entry_digest(key, payload) + payload


def decode_entry(blob: bytes, *, key: str) -> dict[str, np.ndarray]:
    """Verify the entry read under ``key`` and parse it; :class:`CorruptEntryError` says what is wrong.

    An entry in an older format raises :class:`StaleEntryError` (a
    :class:`CorruptEntryError`: dropped and recomputed like any other).
    """
    _check_entry_key(key)
    if not isinstance(blob, bytes):
        raise CorruptEntryError(f"entry is {type(blob).__name__}, not bytes")
    if len(blob) >= len(FORMAT_MAGIC) and blob.startswith(_FORMAT_NAME) and not blob.startswith(FORMAT_MAGIC):
        raise StaleEntryError(f"entry written in format version {blob[len(_FORMAT_NAME)]}, "
                              f"this store reads version {FORMAT_MAGIC[-1]}")
    if len(blob) < HEADER_SIZE or not blob.startswith(FORMAT_MAGIC):
        raise CorruptEntryError("not a fusioncore prediction entry (bad header)")
    digest, payload = blob[len(FORMAT_MAGIC) : HEADER_SIZE], blob[HEADER_SIZE:]
    if entry_digest(key, payload) != digest:
        raise CorruptEntryError("checksum mismatch: damaged, or written under another key")
    if not payload.startswith(_ZIP_PREFIXES):
        raise CorruptEntryError("payload is not an npz archive")
    try:
        arrays = npz_bytes_to_arrays(payload)
    except Exception as error:
        # The bytes are untrusted: whatever numpy or zipfile raises on them,
        # the entry is unusable and the caller should recompute it.
        raise CorruptEntryError(f"unreadable npz payload ({error})") from error
    for name, value in arrays.items():
        # np.load hands back raw bytes for zip members that are not .npy files.
        if not isinstance(value, np.ndarray) or value.dtype.hasobject:
            raise CorruptEntryError(f"member {name!r} is not a plain array")
    return arrays
