"""Formats of the python-can ecosystem: Vector ASC / BLF, PCAN TRC, python-can CSV and SQLite.

ASC, TRC and BLF have readers of their own (:mod:`.asc`, :mod:`.trc`,
:mod:`.blf`) that account for every record and survive a bad one; BLF
objects are decoded by python-can. python-can's CSV format is parsed here
line by line (python-can's ``CSVReader`` stops at the first bad row); its
SQLite format is read through python-can (a database has no lines to skip).
Every reader keeps CAN FD payloads whole; error frames are dropped and counted.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import gzip
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import can

from fusioncore.contracts import ReadResult
from fusioncore.data.formats import base
from fusioncore.data.formats.asc import VectorAsc
from fusioncore.data.formats.base import SkipTally
from fusioncore.data.formats.blf import VectorBlf
from fusioncore.data.formats.records import MessageColumns, group_by_bus
from fusioncore.data.formats.trc import PcanTrc
from fusioncore.errors import FormatError

__all__ = ["PYTHON_CAN_FORMATS", "PythonCanCsv", "PythonCanSqlite"]

CSV_HEADER = b"timestamp,arbitration_id,extended,remote,error,dlc,data"
BAD_BASE64 = "bad base64 payload"
BAD_FLAG = "bad 0/1 flag"


class PythonCanCsv:
    """python-can's CSV: ``timestamp,arbitration_id,extended,remote,error,dlc,data`` (base64 data)."""

    name = "python-can-csv"
    description = "python-can CSV: timestamp,arbitration_id,extended,remote,error,dlc,data"
    suffixes = (".csv",)

    def sniff(self, head: bytes) -> bool:
        return head.lstrip().lower().startswith(CSV_HEADER)

    def read(self, path: Path, *, errors: str = "raise") -> ReadResult:
        base.check_errors_mode(errors)
        path = Path(path)
        data = base.read_bytes(path)
        base.check_text(path, data[:8192])
        lines = data.splitlines()
        if lines[0].strip().lower() != CSV_HEADER:
            raise FormatError(path, f"missing header {CSV_HEADER.decode()!r}", line=1)
        tally = SkipTally(path, errors)
        out = MessageColumns()
        for number, raw in enumerate(lines[1:], start=2):
            if not raw.strip():
                continue
            reason = _csv_row(raw, out)
            if reason == base.ERROR_FRAME:
                tally.drop(reason, line=number)
            elif reason is not None:
                tally.bad(number, reason, raw.decode("utf-8", errors="backslashreplace"))
        result = ReadResult(frames=out.frames(str(path)), **tally.result_kwargs())
        base.log_backward_steps(path, result.frames)
        return result


def _csv_row(raw: bytes, out: MessageColumns) -> str | None:
    fields = [f.strip() for f in raw.split(b",")]
    if len(fields) != 7:
        return base.WRONG_FIELD_COUNT
    ts, can_id, extended, remote, error, dlc, payload = fields
    try:
        timestamp = float(ts)
    except ValueError:
        return base.BAD_TIMESTAMP
    try:
        ident = int(can_id, 16)
    except ValueError:
        return base.BAD_ID_HEX
    if ident > 0x1FFFFFFF:
        return base.ID_OUT_OF_RANGE
    if not {extended, remote, error} <= {b"0", b"1"}:
        return BAD_FLAG
    if error == b"1":
        return base.ERROR_FRAME
    if not dlc.isdigit():
        return base.BAD_DLC
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return BAD_BASE64
    if len(data) > 64:
        return base.FD_TOO_LONG
    if remote == b"1":
        out.add(timestamp, ident, extended=extended == b"1", remote=True, dlc=int(dlc))
    else:
        out.add(timestamp, ident, extended=extended == b"1", payload=data)
    return None


class PythonCanSqlite:
    """python-can's SQLite database, read through ``can.SqliteReader``."""

    name = "python-can-sqlite"
    description = "python-can SQLite database (.db), read by python-can"
    suffixes = (".db",)

    def sniff(self, head: bytes) -> bool:
        return head.startswith(b"SQLite format 3\x00")

    def read(self, path: Path, *, errors: str = "raise") -> ReadResult:
        base.check_errors_mode(errors)
        path = Path(path)
        head = base.read_head(path, 16)
        if not head.strip():
            raise FormatError(path, "empty file")
        if not head.startswith(b"SQLite format 3\x00"):
            raise FormatError(path, f"not a {self.name} file ({self.description})")
        tally = SkipTally(path, errors)
        out = MessageColumns()
        with _plain_file(path) as plain:
            try:
                with can.SqliteReader(plain) as messages:
                    for number, msg in enumerate(messages, start=1):
                        if msg.is_error_frame:
                            tally.drop(base.ERROR_FRAME, line=number)
                        else:
                            out.add_message(msg)
            except Exception as exc:  # sqlite3 errors of a damaged database
                raise FormatError(path, f"SqliteReader failed: {type(exc).__name__}: {exc}") from exc
        result = ReadResult(frames=out.frames(str(path)), **tally.result_kwargs())
        return group_by_bus(result, str(path), what="channels")


@contextlib.contextmanager
def _plain_file(path: Path) -> Iterator[str]:
    """SQLite needs a real file: a gzip one is unpacked to a temporary copy."""
    if not base.is_gzip(path):
        yield str(path)
        return
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / base.logical_name(path)
        with gzip.open(path, "rb") as src, open(plain, "wb") as dst:
            shutil.copyfileobj(src, dst)
        yield str(plain)


PYTHON_CAN_FORMATS = (VectorAsc(), VectorBlf(), PcanTrc(), PythonCanCsv(), PythonCanSqlite())
