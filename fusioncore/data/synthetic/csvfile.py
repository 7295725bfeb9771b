"""Vectorised writer of the can-train-and-test v1.5 CSV format.

``timestamp,arbitration_id,data_field,attack`` with the timestamp to six
decimals, the ID as three upper-case hex digits, the payload as contiguous
upper-case hex of DLC bytes (empty for DLC 0) and the 0/1 attack flag.
Rows are laid out in a fixed-width byte matrix and the unused payload
columns masked out, so formatting costs a few array operations per file.
"""

from __future__ import annotations

import hashlib
from typing import BinaryIO

import numpy as np

from fusioncore.data.frames import Frames
from fusioncore.errors import ConfigError

__all__ = ["HEADER", "format_csv", "write_csv"]

HEADER = b"timestamp,arbitration_id,data_field,attack\n"
_HEX = np.frombuffer(b"0123456789ABCDEF", np.uint8)
_DIGITS = np.frombuffer(b"0123456789", np.uint8)
# Column offsets of one row: 10 digits '.' 6 digits ',' 3 hex ',' 16 hex ',' flag '\n'
_INT, _DOT, _FRAC, _ID, _DATA, _FLAG = 0, 10, 11, 18, 22, 39
_WIDTH = 41


def format_csv(frames: Frames) -> bytes:
    """The CSV bytes (header included) of ``frames`` in their current order."""
    return HEADER + _rows(frames)


def write_csv(frames: Frames, fh: BinaryIO, *, chunk_rows: int = 1 << 19) -> tuple[int, str]:
    """Write :func:`format_csv` bytes to ``fh`` ``chunk_rows`` rows at a time: ``(bytes, sha256)``.

    The same bytes as ``format_csv(frames)``, with working memory bounded by
    the chunk (a formatted row costs about 250 bytes of temporaries) rather
    than by the capture.
    """
    digest = hashlib.sha256(HEADER)
    fh.write(HEADER)
    size = len(HEADER)
    for lo in range(0, len(frames), chunk_rows):
        block = _rows(frames[lo : lo + chunk_rows])
        digest.update(block)
        fh.write(block)
        size += len(block)
    return size, digest.hexdigest()


def _rows(frames: Frames) -> bytes:
    n = len(frames)
    micros = np.rint(frames.timestamp * 1e6).astype(np.int64)
    if n and (micros.min() < 10**15 or micros.max() >= 10**16):
        raise ConfigError("synthetic timestamps must have ten integer digits (epoch seconds)")
    if n and (frames.can_id.max() > 0x7FF or frames.dlc.max() > 8):
        raise ConfigError("the CSV format holds 11-bit IDs and classic DLC 0..8 only")

    rows = np.empty((n, _WIDTH), np.uint8)
    powers = 10 ** np.arange(15, -1, -1, dtype=np.int64)
    digits = _DIGITS[(micros[:, None] // powers) % 10]
    rows[:, _INT:_DOT] = digits[:, :10]
    rows[:, _DOT] = ord(".")
    rows[:, _FRAC : _FRAC + 6] = digits[:, 10:]
    rows[:, _FRAC + 6] = ord(",")
    can_id = frames.can_id.astype(np.int64)
    rows[:, _ID : _ID + 3] = _HEX[(can_id[:, None] >> np.array([8, 4, 0])) & 0xF]
    rows[:, _ID + 3] = ord(",")
    nibbles = np.stack((frames.data >> 4, frames.data & 0xF), axis=2).reshape(n, 16)
    rows[:, _DATA : _DATA + 16] = _HEX[nibbles]
    rows[:, _DATA + 16] = ord(",")
    rows[:, _FLAG] = np.where(frames.label > 0, ord("1"), ord("0"))
    rows[:, _FLAG + 1] = ord("\n")

    keep = np.ones((n, _WIDTH), bool)
    keep[:, _DATA : _DATA + 16] = np.arange(16) < 2 * frames.dlc[:, None].astype(np.int64)
    return rows[keep].tobytes()
