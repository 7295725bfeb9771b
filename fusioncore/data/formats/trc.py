"""PEAK PCAN trace files (``.trc``) of every version, 1.0 to 2.1, every line accounted for.

=========  ==================================================================
version    record layout (after the message number)
=========  ==================================================================
1.0        ``N) offset_ms ID DLC bytes...`` (``RTR`` instead of bytes; ID ``FFFFFFFF`` = bus status)
1.1        ``N) offset_ms type ID DLC bytes...`` (type ``Rx`` / ``Tx``; others are status records)
1.2        ``N) offset_ms bus type ID DLC bytes...``
1.3        ``N) offset_ms bus type ID reserved DLC bytes...``
2.0 / 2.1  the columns named by ``;$COLUMNS=`` (N, O, T, B, I, d, R, L, l, D);
           types DT (CAN), RR (remote), FD / FB / FE / BI (CAN FD with BRS / ESI),
           ER (error frame), ST / EC / EV (status, error counter, event records)
=========  ==================================================================

A file without ``;$FILEVERSION`` is version 1.0 (PEAK's own converter writes
them so). Lines starting with ``;`` are comments, blank lines are nothing;
every other line is a record: a frame, or a skipped record with a reason
(status record, error frame, malformed line). Timestamps follow python-can:
the offset plus ``;$STARTTIME`` (1.1 and later), the bare offset for 1.0.
A DLC code 9-15 means 12-64 bytes (CAN FD); payloads are kept whole. Buses
(the bus column) are kept apart as separate sources.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

from fusioncore.contracts import ReadResult
from fusioncore.data.formats import base
from fusioncore.data.formats.base import SkipTally
from fusioncore.data.formats.records import MessageColumns, dlc_to_length, group_by_bus

__all__ = ["PcanTrc"]

STATUS_RECORD = "status or event record (not a CAN frame)"
SHORT_PAYLOAD = "fewer data bytes than the DLC says"
BAD_LINE = "malformed TRC record"
UNKNOWN_TYPE = "unknown TRC record type"

_VERSION = re.compile(rb"^;\$FILEVERSION=(\d+\.\d+)", re.MULTILINE)
_START = re.compile(rb"^;\$STARTTIME=([0-9.eE+-]+)", re.MULTILINE)
_COLUMNS = re.compile(rb"^;\$COLUMNS=([A-Za-z,]+)", re.MULTILINE)
#: A 1.x record line ``   12)   1234.5 ...``.
_V1_RECORD = re.compile(rb"^\s*\d+\)\s+\d+(\.\d+)?\s+\S+", re.MULTILINE)
_FD_TYPES = {"FD": (False, False), "FB": (True, False), "FE": (False, True), "BI": (True, True)}
_STATUS_TYPES = {"ST", "EC", "EV", "ERR", "WARNG", "ERROR", "BUSHEAVY", "BUSLIGHT", "BUSOFF"}


class PcanTrc:
    """Reader of PEAK PCAN-View / PCAN-Explorer trace files, versions 1.0 to 2.1."""

    name = "pcan-trc"
    description = "PEAK PCAN trace (.trc), versions 1.0-2.1, CAN and CAN FD"
    suffixes = (".trc",)

    def sniff(self, head: bytes) -> bool:
        if _VERSION.search(head) or re.search(rb"^;\s+Message Number", head, re.MULTILINE):
            return True
        # Version 1.0: a ';' comment header followed by "N) offset ID DLC" records.
        return head.lstrip().startswith(b";") and _V1_RECORD.search(head) is not None

    def read(self, path: Path, *, errors: str = "raise") -> ReadResult:
        base.check_errors_mode(errors)
        path = Path(path)
        data = base.read_bytes(path)
        base.check_text(path, data[:8192])
        header = data[:65536]
        version = _VERSION.search(header)
        version = version.group(1).decode() if version else "1.0"
        if version not in ("1.0", "1.1", "1.2", "1.3", "2.0", "2.1"):
            raise base.FormatError(path, f"unsupported TRC file version {version}")
        start = _START.search(header)
        start_time = 0.0
        if start and version != "1.0":
            days = float(start.group(1))
            start_time = (datetime(1899, 12, 30, tzinfo=timezone.utc) + timedelta(days=days)).timestamp()
        columns_match = _COLUMNS.search(header)
        if version.startswith("2") and not columns_match:
            raise base.FormatError(path, f"TRC {version} file without a ;$COLUMNS= header line")
        layout = columns_match.group(1).decode().split(",") if columns_match else []
        parse = _v2(layout) if version.startswith("2") else _V1[version]
        tally = SkipTally(path, errors)
        out = MessageColumns()
        for number, raw in enumerate(data.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith(b";"):
                continue
            text = line.decode("utf-8", errors="backslashreplace")
            try:
                reason = parse(text.split(), start_time, out)
            except (ValueError, IndexError, KeyError):
                reason = BAD_LINE
            if reason in (STATUS_RECORD, base.ERROR_FRAME):
                tally.drop(reason, line=number)
            elif reason is not None:
                tally.bad(number, reason, text)
        result = ReadResult(frames=out.frames(str(path)), **tally.result_kwargs())
        base.log_backward_steps(path, result.frames)
        return group_by_bus(result, str(path), what="buses")


def _can_id(token: str) -> tuple[int, bool]:
    value = int(token, 16)
    if value > 0x1FFFFFFF:
        raise ValueError("CAN ID out of range")
    return value, len(token) > 4 or value > 0x7FF


def _length(code: int, available: int) -> int:
    """Bytes announced by a DLC field: a code 9-15 means 12-64 bytes -- except that
    python-can's writer puts the byte count there, which 9-15 data bytes give away."""
    if 8 < code <= 15 and available == code:
        return code
    return dlc_to_length(code) if code <= 15 else code


def _bytes(tokens: list[str], n: int) -> bytes | None:
    if len(tokens) < n:
        return None
    return bytes(int(t, 16) for t in tokens[:n])


def _v1(id_at: int, type_at: int | None, bus_at: int | None, dlc_at: int):
    """Parser of a 1.x record: the ID at ``id_at``, the DLC at ``dlc_at``, then bytes (or ``RTR``)."""

    def parse(tok: list[str], start_time: float, out: MessageColumns) -> str | None:
        if not tok[0].endswith(")"):
            return BAD_LINE
        timestamp = float(tok[1]) / 1000 + start_time
        if type_at is not None and tok[type_at] not in ("Rx", "Tx"):
            return STATUS_RECORD if tok[type_at].upper() in _STATUS_TYPES else UNKNOWN_TYPE
        if tok[id_at].upper() == "FFFFFFFF":  # 1.0: a bus status line
            return STATUS_RECORD
        can_id, extended = _can_id(tok[id_at])
        code = int(tok[dlc_at])
        bus = tok[bus_at] if bus_at is not None else ""
        rest = tok[dlc_at + 1:]
        if rest[:1] == ["RTR"]:
            out.add(timestamp, can_id, extended=extended, remote=True, dlc=code, bus=bus)
            return None
        payload = _bytes(rest, _length(code, len(rest)))
        if payload is None:
            return SHORT_PAYLOAD
        out.add(timestamp, can_id, extended=extended, payload=payload, bus=bus)
        return None

    return parse


_V1 = {
    "1.0": _v1(id_at=2, type_at=None, bus_at=None, dlc_at=3),
    "1.1": _v1(id_at=3, type_at=2, bus_at=None, dlc_at=4),
    "1.2": _v1(id_at=4, type_at=3, bus_at=2, dlc_at=5),
    "1.3": _v1(id_at=4, type_at=3, bus_at=2, dlc_at=6),
}


def _v2(layout: list[str]):
    """Parser of a 2.x record laid out as ``;$COLUMNS=`` says."""
    at = {name: i for i, name in enumerate(layout)}

    def parse(tok: list[str], start_time: float, out: MessageColumns) -> str | None:
        kind = tok[at["T"]].upper()
        if kind in _STATUS_TYPES:
            return STATUS_RECORD
        if kind == "ER":
            return base.ERROR_FRAME
        if kind not in ("DT", "RR", *_FD_TYPES):
            return UNKNOWN_TYPE
        timestamp = float(tok[at["O"]]) / 1000 + start_time
        can_id, extended = _can_id(tok[at["I"]])
        bus = tok[at["B"]] if "B" in at else ""
        data = tok[at["D"]:] if "D" in at else []
        length = int(tok[at["l"]]) if "l" in at else _length(int(tok[at["L"]]), len(data))
        brs, esi = _FD_TYPES.get(kind, (False, False))
        if kind == "RR":
            out.add(timestamp, can_id, extended=extended, remote=True, dlc=length, bus=bus)
            return None
        payload = _bytes(data, length)
        if payload is None:
            return SHORT_PAYLOAD
        out.add(timestamp, can_id, extended=extended, payload=payload, fd=kind in _FD_TYPES,
                brs=brs, esi=esi, bus=bus)
        return None

    return parse
