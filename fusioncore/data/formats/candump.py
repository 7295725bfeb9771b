"""candump ``-L`` logs: ``(1645994398.626163) can0 0C9#801633163A4008``.

A vectorised reader that agrees with python-can's ``CanutilsLogReader`` frame
for frame (a test checks it) at a multiple of its speed. Frame field forms:
``ID#hex`` (classic data, at most 8 bytes), ``ID#R`` / ``ID#R5`` (remote,
optional DLC), ``ID##Fhex`` (CAN FD: a flags digit -- bit 0 bit-rate switch,
bit 1 error-state indicator -- then 0-8, 12, 16, 20, 24, 32, 48 or 64 bytes).
IDs of more than 3 digits are 29-bit; an ID carrying ``CAN_ERR_FLAG``
(0x20000000) is an error frame: dropped and counted. An optional trailing
``R``/``T`` (rx / tx) is accepted.

candump ends every line with a newline, so a last line without one was cut
short (a payload cut at an even number of digits would otherwise read as a
shorter frame): it is a bad row. A log of several interfaces keeps each
interface a source of its own (``file#can0``, ``file#can1``), grouped in file
order, so windows never mix two buses; the result's ``notes`` say so.
"""

from __future__ import annotations

import re
from pathlib import Path

import attrs
import numpy as np

from fusioncore.contracts import ReadResult
from fusioncore.data.formats import base
from fusioncore.data.formats.base import RowProblems
from fusioncore.data.formats.decode import (
    field_equals,
    field_starts_with,
    gather,
    parse_decimal,
    parse_hex,
    parse_payload,
    parse_uint,
)
from fusioncore.data.formats.records import group_by_bus
from fusioncore.data.formats.text import TextLines, read_line_format, split_whitespace
from fusioncore.data.frames import FLAG_BRS, FLAG_ESI, FLAG_FD, MAX_FD_BYTES, Frames

__all__ = ["CandumpLog"]

BAD_FRAME_FIELD = "malformed ID#data field"
BAD_DIRECTION = "bad rx/tx flag (expected R or T)"
CAN_ERR_FLAG = 0x20000000

_LINE = re.compile(rb"^\s*\(\d+(\.\d*)?\)\s+\S+\s+[0-9a-fA-F]{1,8}##?[0-9a-fA-FrR]*(\s+[RrTt])?\s*$")


class CandumpLog:
    """Reader of SocketCAN ``candump -L`` log files."""

    name = "candump"
    description = "candump -L log: '(1645994398.626163) can0 0C9#801633163A4008'"
    suffixes = (".log",)

    def sniff(self, head: bytes) -> bool:
        lines = [ln for ln in head.splitlines()[:-1] if ln.strip()][:5] or head.splitlines()[:1]
        return bool(lines) and all(_LINE.match(ln) for ln in lines)

    def read(self, path: Path, *, errors: str = "raise") -> ReadResult:
        path = Path(path)
        result = read_line_format(path, errors, lambda lines: _decode(lines, str(path)))
        return group_by_bus(result, str(path))


def _decode(lines: TextLines, source: str) -> tuple[Frames, RowProblems]:
    buf, fields = lines.buf, split_whitespace(lines, width=4)
    problems = RowProblems(len(lines))
    problems.add((fields.count < 3) | (fields.count > 4), base.WRONG_FIELD_COUNT)
    has_dir = fields.count == 4
    dir_s, dir_e = fields.column(3)
    direction_ok = np.zeros(len(lines), bool)
    for flag in (b"R", b"r", b"T", b"t"):
        direction_ok |= field_equals(buf, dir_s, dir_e, flag)
    problems.add(has_dir & ~direction_ok, BAD_DIRECTION)

    ts_s, ts_e = fields.column(0)
    parens = field_starts_with(buf, ts_s, ts_e, b"(") & (buf[np.maximum(ts_e - 1, 0)] == ord(")"))
    timestamp, ok = parse_decimal(buf, ts_s + 1, np.maximum(ts_e - 1, ts_s + 1))
    problems.add(~(parens & ok), base.BAD_TIMESTAMP)

    # The frame field: ID, '#', then data / 'R[dlc]' / '#F' + FD data.
    fr_s, fr_e = fields.column(2)
    head, valid = gather(buf, fr_s, fr_e, 10)
    is_hash = (head == ord("#")) & valid
    has_hash = is_hash.any(axis=1)
    id_len = np.argmax(is_hash, axis=1)
    problems.add(~has_hash, BAD_FRAME_FIELD)
    raw_id, ok = parse_hex(buf, fr_s, fr_s + id_len, 8)
    problems.add(~ok, base.BAD_ID_HEX)
    error_frame = (raw_id & CAN_ERR_FLAG) != 0
    problems.drop(error_frame, base.ERROR_FRAME)
    problems.add(raw_id > 0x1FFFFFFF, base.ID_OUT_OF_RANGE)

    rest = fr_s + id_len + 1
    after = buf[np.minimum(rest, len(buf) - 1)] if len(buf) else np.zeros(0, np.uint8)
    after = np.where(rest < fr_e, after, 0)
    fd = after == ord("#")
    remote = (after == ord("R")) | (after == ord("r"))
    # FD: one hex flags digit after '##'.
    _, ok = parse_hex(buf, rest + 1, np.minimum(rest + 2, fr_e), 1)
    problems.add(fd & ~ok, BAD_FRAME_FIELD)
    # Remote: 'R' alone or 'R' + one decimal DLC digit.
    rtr_dlc, ok = parse_uint(buf, rest + 1, fr_e, 1)
    problems.add(remote & (fr_e - rest > 1) & ~ok, BAD_FRAME_FIELD)
    problems.add(remote & (rtr_dlc > 8), base.DLC_TOO_LARGE)

    data_s = np.where(fd, rest + 2, np.where(remote, fr_e, rest))
    payload = parse_payload(buf, np.minimum(data_s, fr_e), fr_e, max_bytes=MAX_FD_BYTES)
    problems.add(payload.too_long, base.FD_TOO_LONG)
    problems.add(payload.bad_hex, base.BAD_PAYLOAD_HEX)
    problems.add(payload.odd, base.ODD_PAYLOAD)
    problems.add(~fd & (payload.n_bytes > 8), base.PAYLOAD_TOO_LONG)
    problems.add(fd & ~_FD_LENGTH[np.minimum(payload.n_bytes, MAX_FD_BYTES)], base.BAD_FD_LENGTH)
    if lines.unterminated_row is not None:
        cut = np.zeros(len(lines), bool)
        cut[lines.unterminated_row] = True
        problems.add(cut, base.TRUNCATED_LAST)
    dlc = np.where(remote, np.minimum(rtr_dlc, 8), payload.n_bytes).astype(np.uint8)
    fd_flags, _ = parse_hex(buf, rest + 1, np.minimum(rest + 2, fr_e), 1)
    fd_bits = FLAG_FD | np.where(fd_flags & 1, FLAG_BRS, 0) | np.where(fd_flags & 2, FLAG_ESI, 0)
    flags = np.where(fd, fd_bits, 0)
    iface, names = _interfaces(buf, *fields.column(1))
    frames = base.build_frames(
        source,
        timestamp=np.nan_to_num(timestamp),
        can_id=(raw_id & 0x1FFFFFFF).astype(np.uint32),
        extended=id_len > 3,
        remote=remote,
        data=payload.data,
        dlc=dlc,
        flags=flags.astype(np.uint8),
    )
    frames = attrs.evolve(frames, source=iface, sources=tuple(f"{source}#{n}" for n in names))
    return frames, problems


_FD_LENGTH = np.zeros(MAX_FD_BYTES + 1, bool)
_FD_LENGTH[[*range(9), 12, 16, 20, 24, 32, 48, 64]] = True


def _interfaces(buf: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Per row the index of its interface name (``can0``) among the block's distinct names."""
    if len(start) == 0:
        return np.zeros(0, np.uint16), ["can0"]
    chars, _ = gather(buf, start, end, 16)
    keys = np.ascontiguousarray(chars).view(np.dtype((np.void, 16))).ravel()
    unique, inverse = np.unique(keys, return_inverse=True)
    names = [bytes(u).rstrip(b"\0").decode("ascii", "backslashreplace") or "?" for u in unique]
    return inverse.astype(np.uint16).ravel(), names

