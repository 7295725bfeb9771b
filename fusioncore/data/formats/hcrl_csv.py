"""Raw HCRL Car-Hacking CSV: ``timestamp,ID,DLC,byte0,...,byte(DLC-1),R|T``.

``1478198386.789894,0545,8,d8,00,00,87,00,00,00,00,R`` -- headerless and
variable width: with DLC < 8 the ``R``/``T`` flag moves left, so the flag is
read at position ``3 + DLC`` of each row rather than at a fixed column (a
fixed 12-column reader silently loses those rows). ``T`` marks an injected
frame; the attack type comes from the file name (``DoS_dataset.csv``).
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
from fusioncore.data.formats.text import TextLines, read_line_format, split_csv
from fusioncore.data.frames import Frames

__all__ = ["HcrlCarHackingCsv"]

_ROW = re.compile(rb"^\d+(\.\d*)?,[0-9a-fA-F]{1,8},[0-8](,[0-9a-fA-F]{1,2})*,[RT]$")


class HcrlCarHackingCsv:
    """Reader of the raw (headerless, variable-width) HCRL Car-Hacking CSV files."""

    name = "hcrl-car-hacking"
    description = "HCRL Car-Hacking raw CSV: timestamp,ID,DLC,bytes...,R|T (variable width)"

    def sniff(self, head: bytes) -> bool:
        # Whole lines only: the last line of the head may be cut.
        lines = [ln.strip() for ln in head.splitlines()[:-1] if ln.strip()][:5]
        return bool(lines) and all(_ROW.match(ln) for ln in lines)

    def read(self, path: Path, *, errors: str = "raise") -> ReadResult:
        path = Path(path)
        kind = base.attack_type_from_filename(path.name)
        return read_line_format(path, errors, lambda lines: _decode(lines, kind, str(path)))


def _decode(lines: TextLines, kind: int, source: str) -> tuple[Frames, RowProblems]:
    buf, fields = lines.buf, split_csv(lines, width=12)
    n_fields = fields.count
    problems = RowProblems(len(lines))
    problems.add(n_fields < 4, base.WRONG_FIELD_COUNT)
    timestamp, ok = parse_decimal(buf, *fields.column(0))
    problems.add(~ok, base.BAD_TIMESTAMP)
    can_id, ok = parse_hex(buf, *fields.column(1), 8)
    problems.add(~ok, base.BAD_ID_HEX)
    problems.add(can_id > 0x1FFFFFFF, base.ID_OUT_OF_RANGE)
    dlc, ok = parse_uint(buf, *fields.column(2), 2)
    problems.add(~ok, base.BAD_DLC)
    problems.add(dlc > 8, base.DLC_TOO_LARGE)
    dlc = np.minimum(dlc, 8).astype(np.int64)
    problems.add(n_fields != dlc + 4, base.DLC_MISMATCH)
    present = np.arange(8) < dlc[:, None]
    data, ok = parse_byte_fields(buf, fields.start[:, 3:11], fields.end[:, 3:11], present)
    problems.add(~ok, base.BAD_PAYLOAD_HEX)
    flag_start, flag_end = fields.at(n_fields - 1)
    injected = field_equals(buf, flag_start, flag_end, b"T")
    problems.add(~(injected | field_equals(buf, flag_start, flag_end, b"R")), base.BAD_LABEL)
    label = injected.astype(np.uint8)
    frames = base.build_frames(
        source,
        timestamp=np.nan_to_num(timestamp),
        can_id=can_id.astype(np.uint32),
        data=data,
        dlc=dlc.astype(np.uint8),
        label=label,
        attack_type=np.where(injected, kind, 0).astype(np.uint8),
    )
    return frames, problems
