"""Vectorised decoding of ASCII fields held as (buffer, start, end) offsets.

Every text reader ends up with the same question: "field k of every row is
bytes ``buf[start:end]``; what number is it, and which rows are malformed?".
These functions answer it for all rows at once by gathering each field into a
fixed-width ``uint8`` matrix and mapping it through 256-entry lookup tables
(decimals go through Arrow's string-to-float cast once their syntax is
checked). No Python code runs per row.
"""

from __future__ import annotations

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "Payload",
    "field_equals",
    "field_starts_with",
    "gather",
    "parse_byte_fields",
    "parse_decimal",
    "parse_hex",
    "parse_payload",
    "parse_uint",
    "strip_fields",
]

# Lookup tables: character -> digit value, 255 for "not a digit".
_NOT = 255
_HEX = np.full(256, _NOT, dtype=np.uint8)
_HEX[np.frombuffer(b"0123456789", np.uint8)] = np.arange(10)
_HEX[np.frombuffer(b"abcdef", np.uint8)] = np.arange(10, 16)
_HEX[np.frombuffer(b"ABCDEF", np.uint8)] = np.arange(10, 16)
_DIGIT = np.where(_HEX < 10, _HEX, _NOT).astype(np.uint8)
_ZERO = ord("0")  # padding that decodes to digit 0 in both tables
_SPACE = np.zeros(256, dtype=bool)
_SPACE[[9, 10, 11, 12, 13, 32]] = True  # tab, LF, VT, FF, CR, space


def strip_fields(
    buf: np.ndarray, start: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Field offsets without surrounding whitespace (spaces, tabs, CR): ``' 2C0\\t'`` -> ``'2C0'``.

    Real captures carry stray tabs and spaces around fields; they are not
    errors. Costs one pass over ``buf`` when it holds no whitespace at all.
    """
    space = _SPACE[buf]
    if not space.any() or len(start) == 0:
        return start, end
    solid = np.flatnonzero(~space)
    if len(solid) == 0:
        return start, start.copy()
    big = np.int64(len(buf))
    k = np.searchsorted(solid, start, side="left")
    first = np.where(k < len(solid), solid[np.minimum(k, len(solid) - 1)], big)
    new_start = np.minimum(first, end)
    k = np.searchsorted(solid, end, side="left") - 1
    last = np.where(k >= 0, solid[np.maximum(k, 0)] + 1, 0)
    new_end = np.maximum(np.minimum(last, end), new_start)
    return new_start.astype(start.dtype, copy=False), new_end.astype(end.dtype, copy=False)



def gather(
    buf: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    width: int,
    *,
    right: bool = False,
    fill: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Fields as a ``uint8[N, width]`` matrix plus the mask of real characters.

    ``right=True`` aligns fields to the right edge (numbers: the last digit
    always lands in the last column); cells outside a field hold ``fill``.
    Fields longer than ``width`` are cut; callers check lengths first.
    """
    length = np.minimum(end - start, width)
    cols = np.arange(width)
    if len(start) and np.all(end - start == width) and np.array_equal(start[1:], end[:-1]):
        # Equal-width fields packed back to back (an Arrow column of 3-digit IDs): a view.
        return buf[start[0] : end[-1]].reshape(-1, width), np.ones((len(start), width), bool)
    # Rows of a sliding window over a zero-padded buffer: one row copy per
    # field instead of one index per character.
    padded = np.zeros(len(buf) + 2 * width, np.uint8)
    padded[width : width + len(buf)] = buf
    windows = sliding_window_view(padded, width)
    if right:
        valid = cols >= (width - length)[:, None]
        chars = windows[start + length]
    else:
        valid = cols < length[:, None]
        chars = windows[start + width]
    return np.where(valid, chars, np.uint8(fill)), valid


def field_equals(buf: np.ndarray, start: np.ndarray, end: np.ndarray, literal: bytes) -> np.ndarray:
    """Rows whose field is exactly ``literal`` (one comparison per literal character)."""
    equal = (end - start) == len(literal)
    if len(buf) == 0:
        return equal & (len(literal) == 0)
    for k, char in enumerate(literal):
        equal &= buf[np.minimum(start + k, len(buf) - 1)] == char
    return equal


def field_starts_with(
    buf: np.ndarray, start: np.ndarray, end: np.ndarray, prefix: bytes
) -> np.ndarray:
    """Rows whose field begins with ``prefix``."""
    ok = (end - start) >= len(prefix)
    if len(buf) == 0:
        return ok & (len(prefix) == 0)
    for k, char in enumerate(prefix):
        ok &= buf[np.minimum(start + k, len(buf) - 1)] == char
    return ok


def _parse_int(
    buf: np.ndarray, start: np.ndarray, end: np.ndarray, max_digits: int, table: np.ndarray, base: int
) -> tuple[np.ndarray, np.ndarray]:
    length = end - start
    # Only as wide as the longest field: 3 columns for the usual 11-bit IDs.
    width = int(np.clip(length.max(initial=1), 1, max_digits))
    chars, _ = gather(buf, start, end, width, right=True, fill=_ZERO)
    digit = table[chars]
    ok = (length >= 1) & (length <= max_digits) & (digit != _NOT).all(axis=1)
    weights = np.uint64(base) ** np.arange(width - 1, -1, -1, dtype=np.uint64)
    values = (digit.astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64)
    return np.where(ok, values, 0).astype(np.uint64), ok


def parse_hex(
    buf: np.ndarray, start: np.ndarray, end: np.ndarray, max_digits: int
) -> tuple[np.ndarray, np.ndarray]:
    """Hex integers of 1..``max_digits`` digits -> ``(uint64 values, ok mask)``."""
    return _parse_int(buf, start, end, max_digits, _HEX, 16)


def parse_uint(
    buf: np.ndarray, start: np.ndarray, end: np.ndarray, max_digits: int
) -> tuple[np.ndarray, np.ndarray]:
    """Decimal integers of 1..``max_digits`` digits -> ``(uint64 values, ok mask)``."""
    return _parse_int(buf, start, end, max_digits, _DIGIT, 10)


def contiguous(
    buf: np.ndarray, start: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Fields packed back to back -> ``(chars, int64 offsets[N + 1])`` (Arrow's string layout)."""
    length = np.maximum(end - start, 0)
    offsets = np.zeros(len(start) + 1, np.int64)
    np.cumsum(length, out=offsets[1:])
    if len(start) and np.array_equal(start[1:], end[:-1]):
        return buf[start[0] : end[-1]], offsets  # already packed (an Arrow column)
    index = np.repeat(start - offsets[:-1], length) + np.arange(offsets[-1])
    return buf[index], offsets


_DECIMAL = r"^(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?$"


def parse_decimal(
    buf: np.ndarray, start: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Unsigned decimals ``123``, ``123.456``, ``.5``, ``1.5e9`` -> ``(float64 values, ok mask)``.

    Arrow checks the syntax (RE2 over the packed bytes) and converts the valid
    fields with its correctly rounded string-to-float cast, so a value equals
    Python's ``float(text)``.
    """
    chars, offsets = contiguous(buf, start, end)
    if offsets[-1] >= 2**31:  # Arrow binary offsets are int32; callers chunk below this
        raise ValueError("decimal column too large for one chunk")
    strings = pa.Array.from_buffers(
        pa.binary(),
        len(start),
        [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(np.ascontiguousarray(chars))],
    )
    ok = pc.match_substring_regex(strings, _DECIMAL)
    text = pc.if_else(ok, strings, pa.scalar(b"0")).cast(pa.string())
    values = pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False)
    ok = ok.to_numpy(zero_copy_only=False).astype(bool)
    return np.where(ok, values, np.nan), ok


@attrs.frozen
class Payload:
    """Decoded contiguous-hex payloads and what was wrong with the rest."""

    data: np.ndarray  #: uint8[N, w], zero-padded; w = 8, or up to 64 when a row is longer
    n_bytes: np.ndarray  #: uint8[N]
    bad_hex: np.ndarray  #: a character is not a hex digit
    odd: np.ndarray  #: odd number of hex digits
    too_long: np.ndarray  #: more than ``2 * max_bytes`` hex digits


def parse_payload(
    buf: np.ndarray, start: np.ndarray, end: np.ndarray, max_bytes: int = 8
) -> Payload:
    """Contiguous hex payloads (``1400000000000000``; empty = DLC 0) -> bytes.

    The decode matrix is only as wide as the longest row (16 digits for classic
    CAN), so a reader that allows CAN FD (``max_bytes=64``) pays for 128
    columns only when a frame really carries that much.
    """
    length = end - start
    limit = 2 * max_bytes
    longest = int(np.minimum(length, limit).max(initial=0))
    width = max(16, longest + longest % 2)
    chars, _ = gather(buf, start, end, width, fill=_ZERO)
    nib = _HEX[chars]
    too_long = length > limit
    bad_hex = (nib == _NOT).any(axis=1) & ~too_long
    odd = (length % 2 == 1) & ~too_long
    data = (nib[:, 0::2] << 4) | nib[:, 1::2]  # rows with bad hex are dropped by the caller
    n_bytes = (np.minimum(length, limit) // 2).astype(np.uint8)
    return Payload(data=data, n_bytes=n_bytes, bad_hex=bad_hex, odd=odd, too_long=too_long)


def parse_byte_fields(
    buf: np.ndarray, start: np.ndarray, end: np.ndarray, present: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One byte per field (``d8``, ``0``) for ``[N, 8]`` field offsets -> ``(uint8[N, 8], ok)``.

    ``present[N, 8]`` marks the fields that exist; absent ones decode to 0.
    A present field must hold one or two hex digits.
    """
    n, k = start.shape
    values, ok = parse_hex(buf, start.ravel(), end.ravel(), 2)
    values = np.where(present.ravel(), values, 0).astype(np.uint8).reshape(n, k)
    ok = (ok | ~present.ravel()).reshape(n, k).all(axis=1)
    return values, ok
