"""HCRL text format (Car-Hacking ``normal_run_data.txt``, OTIDS).

``Timestamp: 1479121434.850202  ID: 0350  000  DLC: 8  05 28 84 66 6d 00 00 a2``
-- whitespace-separated; the three-digit field after the ID is ``100`` for a
remote frame (then usually ``DLC: 0`` and no bytes) and ``000`` otherwise.
The files carry no labels: every frame reads as benign.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from fusioncore.contracts import ReadResult
from fusioncore.data.formats import base
from fusioncore.data.formats.base import RowProblems
from fusioncore.data.formats.decode import (
    field_equals,
    parse_byte_fields,
    parse_decimal,
    parse_hex,
    parse_uint,
)
from fusioncore.data.formats.text import TextLines, read_line_format, split_whitespace
from fusioncore.data.frames import Frames

__all__ = ["HcrlText"]

NOT_A_FRAME_LINE = "not a 'Timestamp: ... ID: ... DLC: ...' line"
BAD_REMOTE_FLAG = "bad remote flag (expected 000 or 100)"

_HEAD = re.compile(rb"^\s*Timestamp:\s*\d+(\.\d*)?\s+ID:\s*[0-9a-fA-F]{1,8}\s+\d{3}\s+DLC:\s*\d")
_N_FIXED = 7  # Timestamp: t ID: id flag DLC: n


class HcrlText:
    """Reader of the HCRL / OTIDS text captures (unlabelled)."""

    name = "hcrl-text"
    description = "HCRL / OTIDS text: 'Timestamp: t  ID: 0316  000  DLC: 8  05 20 ...'"

    def sniff(self, head: bytes) -> bool:
        lines = [ln for ln in head.splitlines() if ln.strip()][:3]
        return bool(lines) and all(_HEAD.match(ln) for ln in lines)

    def read(self, path: Path, *, errors: str = "raise") -> ReadResult:
        path = Path(path)
        return read_line_format(path, errors, lambda lines: _decode(lines, str(path)))


def _decode(lines: TextLines, source: str) -> tuple[Frames, RowProblems]:
    buf, fields = lines.buf, split_whitespace(lines, width=_N_FIXED + 8)
    n_fields = fields.count
    problems = RowProblems(len(lines))
    problems.add(n_fields < _N_FIXED, base.WRONG_FIELD_COUNT)
    for k, literal in ((0, b"Timestamp:"), (2, b"ID:"), (5, b"DLC:")):
        problems.add(~field_equals(buf, *fields.column(k), literal), NOT_A_FRAME_LINE)
    timestamp, ok = parse_decimal(buf, *fields.column(1))
    problems.add(~ok, base.BAD_TIMESTAMP)
    can_id, ok = parse_hex(buf, *fields.column(3), 8)
    problems.add(~ok, base.BAD_ID_HEX)
    problems.add(can_id > 0x1FFFFFFF, base.ID_OUT_OF_RANGE)
    remote = field_equals(buf, *fields.column(4), b"100")
    problems.add(~(remote | field_equals(buf, *fields.column(4), b"000")), BAD_REMOTE_FLAG)
    dlc, ok = parse_uint(buf, *fields.column(6), 2)
    problems.add(~ok, base.BAD_DLC)
    problems.add(dlc > 8, base.DLC_TOO_LARGE)
    dlc = np.minimum(dlc, 8).astype(np.int64)
    # A remote frame requests DLC bytes but carries none.
    n_bytes = np.where(remote, 0, dlc)
    problems.add(n_fields != _N_FIXED + n_bytes, base.DLC_MISMATCH)
    present = np.arange(8) < n_bytes[:, None]
    cols = slice(_N_FIXED, _N_FIXED + 8)
    data, ok = parse_byte_fields(buf, fields.start[:, cols], fields.end[:, cols], present)
    problems.add(~ok, base.BAD_PAYLOAD_HEX)
    frames = base.build_frames(
        source,
        timestamp=np.nan_to_num(timestamp),
        can_id=can_id.astype(np.uint32),
        data=data,
        dlc=dlc.astype(np.uint8),
        remote=remote,
    )
    return frames, problems
