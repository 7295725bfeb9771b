"""``can-train-and-test`` CSV: ``timestamp,arbitration_id,data_field,attack``.

``1513920459.745822,2C0,1400000000000000,0`` -- hex ID (1-8 digits; above
0x7FF means a 29-bit ID), contiguous hex payload of 0-16 digits (DLC = digits / 2),
per-frame 0/1 attack flag. The attack *type* is not in the file; it comes from
the file name (``DoS-kia.csv`` -> flooding).

Two tokenizers feed one decoder. The fast path lets pyarrow's C++ CSV parser
cut the file into binary columns; it is taken only when every row comes out
valid. Otherwise (a short row, a bad value) the file is tokenized again with
:mod:`.text`, which knows every row's line number, so errors name the right line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

from fusioncore.contracts import ReadResult
from fusioncore.data.formats import base
from fusioncore.data.formats.base import RowProblems
from fusioncore.data.formats.decode import (
    field_equals,
    parse_decimal,
    parse_hex,
    parse_payload,
    strip_fields,
)
from fusioncore.data.formats.text import TextLines, read_line_format, split_csv
from fusioncore.data.frames import Frames
from fusioncore.errors import FormatError

__all__ = ["CanTrainAndTestCsv"]

COLUMNS = ("timestamp", "arbitration_id", "data_field", "attack")
HEADER = ",".join(COLUMNS).encode()
_ROWS_PER_CHUNK = 1 << 20  # bounds the [rows, 16] decode matrices

Column = tuple[np.ndarray, np.ndarray, np.ndarray]  # (bytes, field starts, field ends)


def _first_line(head: bytes) -> bytes:
    line = head.lstrip(b"\xef\xbb\xbf").split(b"\n", 1)[0].split(b"\r", 1)[0]
    return b",".join(field.strip() for field in line.split(b",")).lower()


class CanTrainAndTestCsv:
    """Reader of the can-train-and-test v1.5 CSV files (hcrl_ch, hcrl_sa, set_01..04)."""

    name = "can-train-and-test"
    description = "can-train-and-test CSV: timestamp,arbitration_id,data_field,attack (hex)"
    suffixes = (".csv",)

    def sniff(self, head: bytes) -> bool:
        return _first_line(head) == HEADER

    def read(self, path: Path, *, errors: str = "raise") -> ReadResult:
        base.check_errors_mode(errors)
        path = Path(path)
        data = base.read_bytes(path)
        base.check_text(path, data[:8192])
        if _first_line(data[:4096]) != HEADER:
            raise FormatError(path, f"missing header {HEADER.decode()!r}", line=1)
        kind = base.attack_type_from_filename(path.name)
        frames = _read_fast(data, kind, str(path))
        if frames is not None:
            base.log_backward_steps(path, frames)
            return ReadResult(frames=frames)
        return read_line_format(
            path, errors, lambda lines: _decode_lines(lines, kind, str(path)), data=data, header=True
        )


def _read_fast(data: bytes, kind: int, source: str) -> Frames | None:
    """pyarrow tokenizing + vectorised decoding; ``None`` if any row is not clean."""
    try:
        table = pcsv.read_csv(
            pa.BufferReader(data),
            read_options=pcsv.ReadOptions(column_names=list(COLUMNS), skip_rows=1),
            parse_options=pcsv.ParseOptions(quote_char=False),
            convert_options=pcsv.ConvertOptions(column_types=dict.fromkeys(COLUMNS, pa.binary())),
        )
    except pa.ArrowInvalid:  # a row without 4 fields: the line-aware path will say which
        return None
    # Whitespace around a field is not an error; strip it only if the file has any.
    padded = any(ch in data for ch in (b" ", b"\t", b"\r", b"\x0b", b"\x0c"))
    parts = []
    for lo in range(0, max(table.num_rows, 1), _ROWS_PER_CHUNK):
        chunk = table.slice(lo, _ROWS_PER_CHUNK)
        columns = [_arrow_column(chunk, c) for c in COLUMNS]
        if padded:
            columns = [(buf, *strip_fields(buf, start, end)) for buf, start, end in columns]
        frames, problems = _decode(*columns, kind, source)
        if problems.bad.any():
            return None
        parts.append(frames)
    return Frames.concat(parts) if len(parts) > 1 else parts[0]


def _arrow_column(table: pa.Table, name: str) -> Column:
    """A binary column as (bytes, starts, ends) over Arrow's own buffers (values not copied)."""
    arr = table.column(name).combine_chunks()
    if len(arr) == 0:
        return np.zeros(0, np.uint8), np.zeros(0, np.int64), np.zeros(0, np.int64)
    _, offsets_buf, values_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, np.int32)[arr.offset : arr.offset + len(arr) + 1]
    offsets = offsets.astype(np.int64)
    values = np.frombuffer(values_buf, np.uint8) if values_buf is not None else np.zeros(0, np.uint8)
    return values, offsets[:-1], offsets[1:]


def _decode_lines(lines: TextLines, kind: int, source: str) -> tuple[Frames, RowProblems]:
    fields = split_csv(lines, width=4)
    columns = [(lines.buf, *fields.column(k)) for k in range(4)]
    frames, problems = _decode(*columns, kind, source, n_fields=fields.count)
    return frames, problems


def _decode(
    ts: Column,
    can_id_col: Column,
    payload_col: Column,
    attack: Column,
    kind: int,
    source: str,
    n_fields: np.ndarray | None = None,
) -> tuple[Frames, RowProblems]:
    problems = RowProblems(len(ts[1]))
    if n_fields is not None:
        problems.add(n_fields != 4, base.WRONG_FIELD_COUNT)
    timestamp, ok = parse_decimal(*ts)
    problems.add(~ok, base.BAD_TIMESTAMP)
    can_id, ok = parse_hex(*can_id_col, 8)
    problems.add(~ok, base.BAD_ID_HEX)
    problems.add(can_id > 0x1FFFFFFF, base.ID_OUT_OF_RANGE)
    payload = parse_payload(*payload_col)
    problems.add(payload.too_long, base.PAYLOAD_TOO_LONG)
    problems.add(payload.bad_hex, base.BAD_PAYLOAD_HEX)
    problems.add(payload.odd, base.ODD_PAYLOAD)
    is_one = field_equals(*attack, b"1")
    problems.add(~(is_one | field_equals(*attack, b"0")), base.BAD_LABEL)
    label = is_one.astype(np.uint8)
    frames = base.build_frames(
        source,
        timestamp=np.nan_to_num(timestamp),
        can_id=can_id.astype(np.uint32),
        data=payload.data,
        dlc=payload.n_bytes,
        label=label,
        attack_type=np.where(label == 1, kind, 0).astype(np.uint8),
    )
    return frames, problems
