"""Vector ASC logs (``.asc``), read line by line with every line accounted for.

::

    date Sam Sep 30 15:06:13.191 2017
    base hex  timestamps absolute
       0.015991 1  6F9             Rx   d 8 05 0C 00 00 00 00 00 00
       0.030000 1  1ABCDEFx        Rx   r 3
       0.040000 2  ErrorFrame
      30.506898 CANFD   4 Rx        4EE   sym_name   0 1 f 64 A1 02 ... (64 bytes) 64 1331984 ...

Header and meta lines (``date``, ``base``, ``internal events logged``,
``Begin / End TriggerBlock``, ``// comments``, ``Start of measurement``) are not
records. Every other line is one record: a frame, or a skipped record with a
reason -- an error frame, an event that is not a CAN frame (statistics, chip
status, J1939 ...), or a malformed line (a corrupt timestamp, bad hex, fewer
data bytes than the DLC announces). python-can's ``ASCReader`` passes over
the lines it does not recognise without a word and stops at the first it
cannot parse; this reader counts both and goes on (``errors="skip"``).

Timestamps are the file's own (relative to the measurement start, as
python-can reads them by default). Payloads are lossless: a CAN FD line keeps
up to 64 bytes, and a classic line whose DLC code 9-15 is followed by that
many bytes (12-64) keeps them all (flagged FD: only FD frames carry them).
Channels are buses: a log of several keeps each one a source of its own.
"""

from __future__ import annotations

import re
from pathlib import Path

from fusioncore.contracts import ReadResult
from fusioncore.data.formats import base
from fusioncore.data.formats.base import SkipTally
from fusioncore.data.formats.records import FD_LENGTHS, MessageColumns, dlc_to_length, group_by_bus

__all__ = ["VectorAsc"]

NOT_A_FRAME = "not a CAN frame (ASC event or status line)"
SHORT_PAYLOAD = "fewer data bytes than the DLC says"
BAD_LINE = "malformed ASC frame line"

_META = re.compile(
    rb"^(?://|date\s|base\s|(?:no\s+)?internal\s+events\s+logged|begin\s+triggerblock|end\s+triggerblock"
    rb"|[0-9.]+\s+start\s+of\s+measurement)",
    re.IGNORECASE,
)
_BASE = re.compile(rb"^base\s+(hex|dec)", re.IGNORECASE)
_TIMESTAMP = re.compile(r"^[0-9]+(?:\.[0-9]*)?$")
_BYTE = re.compile(r"^[0-9A-Fa-f]{1,2}$")


class VectorAsc:
    """Reader of Vector ASCII logs, CAN and CAN FD."""

    name = "vector-asc"
    description = "Vector ASCII log (.asc): CAN and CAN FD, every line accounted for"
    suffixes = (".asc",)

    def sniff(self, head: bytes) -> bool:
        return re.search(rb"^\s*base\s+(hex|dec)\s+timestamps\s+(absolute|relative)", head,
                         re.MULTILINE | re.IGNORECASE) is not None

    def read(self, path: Path, *, errors: str = "raise") -> ReadResult:
        base.check_errors_mode(errors)
        path = Path(path)
        data = base.read_bytes(path)
        base.check_text(path, data[:8192])
        tally = SkipTally(path, errors)
        columns = MessageColumns()
        radix = 16
        for number, raw in enumerate(data.splitlines(), start=1):
            line = raw.strip()
            if not line:
                continue
            if _META.match(line):
                match = _BASE.match(line)
                if match:
                    radix = 16 if match.group(1).lower() == b"hex" else 10
                continue
            text = line.decode("utf-8", errors="backslashreplace")
            reason = _parse(text, radix, columns)
            if reason is base.ERROR_FRAME or reason is NOT_A_FRAME:
                tally.drop(reason, line=number)
            elif reason is not None:
                tally.bad(number, reason, text)
        result = ReadResult(frames=columns.frames(str(path)), **tally.result_kwargs())
        base.log_backward_steps(path, result.frames)
        return group_by_bus(result, str(path), what="channels")


def _parse(text: str, radix: int, out: MessageColumns) -> str | None:
    """Add the frame of one record line to ``out``; return why it holds none (``None``: it did)."""
    tokens = text.split()
    if not _TIMESTAMP.match(tokens[0]):
        return base.BAD_TIMESTAMP
    timestamp = float(tokens[0])
    if len(tokens) < 3:
        return NOT_A_FRAME
    try:
        if tokens[1].upper() == "CANFD":
            return _fd(timestamp, tokens[2:], radix, out)
        if not tokens[1].isdigit():
            return NOT_A_FRAME  # "Statistic:", "J1939TP", "SV:", ... events
        if tokens[2].lower() == "errorframe":
            return base.ERROR_FRAME
        return _classic(timestamp, tokens[1], tokens[2:], radix, out)
    except (ValueError, IndexError):
        return BAD_LINE


def _can_id(token: str, radix: int) -> tuple[int, bool]:
    extended = token[-1:] in ("x", "X")
    value = int(token[:-1] if extended else token, radix)
    if value > 0x1FFFFFFF:
        raise ValueError("CAN ID out of range")
    return value, extended or value > 0x7FF


def _payload(tokens: list[str], n: int, radix: int) -> bytes | None:
    """The first ``n`` data-byte tokens, or ``None`` when fewer are there."""
    values = []
    for token in tokens[:n]:
        if radix == 16 and not _BYTE.match(token):
            break
        value = int(token, radix)
        if not 0 <= value <= 255:
            raise ValueError("data byte out of range")
        values.append(value)
    return bytes(values) if len(values) == n else None


def _classic(
    timestamp: float, channel: str, tokens: list[str], radix: int, out: MessageColumns
) -> str | None:
    # ID, direction, then "d DLC bytes..." or "r [DLC]"
    if len(tokens) < 3 or tokens[1] not in ("Rx", "Tx"):
        return NOT_A_FRAME
    can_id, extended = _can_id(tokens[0], radix)
    kind = tokens[2].lower()
    if kind == "r":
        dlc = int(tokens[3], 16) if len(tokens) > 3 and tokens[3].isalnum() else 0
        out.add(timestamp, can_id, extended=extended, remote=True, dlc=min(dlc, 15), bus=channel)
        return None
    if kind != "d" or len(tokens) < 4:
        return BAD_LINE
    code = int(tokens[3], 16)
    if not 0 <= code <= 15:
        return base.DLC_TOO_LARGE
    declared = dlc_to_length(code)
    data = tokens[4:]
    payload = _payload(data, declared, radix) if declared > 8 else None
    if payload is None:  # classic CAN: DLC 9-15 means 8 bytes
        payload = _payload(data, min(declared, 8), radix)
    if payload is None:
        return SHORT_PAYLOAD
    out.add(timestamp, can_id, extended=extended, payload=payload, bus=channel)
    return None


def _fd(timestamp: float, tokens: list[str], radix: int, out: MessageColumns) -> str | None:
    # channel, direction, then "ErrorFrame ..." or: ID [symbolic name] BRS ESI DLC length bytes...
    channel, rest = tokens[0], tokens[2:]
    if not channel.isdigit() or len(tokens) < 3:
        return BAD_LINE
    if rest[0].lower() == "errorframe":
        return base.ERROR_FRAME
    can_id, extended = _can_id(rest[0], radix)
    fields = rest[1:] if rest[1].isdigit() else rest[2:]  # skip a symbolic name
    brs, esi, code, length = fields[0] == "1", fields[1] == "1", int(fields[2], 16), int(fields[3])
    if length not in FD_LENGTHS:
        return "CAN FD payload length not one of 0-8, 12, 16, 20, 24, 32, 48, 64"
    if length == 0:  # as python-can reads (and writes) it: no data bytes = a remote request
        out.add(timestamp, can_id, extended=extended, remote=True, dlc=dlc_to_length(code), fd=True,
                brs=brs, esi=esi, bus=channel)
        return None
    payload = _payload(fields[4:], length, radix)
    if payload is None:
        return SHORT_PAYLOAD
    out.add(timestamp, can_id, extended=extended, payload=payload, fd=True, brs=brs, esi=esi, bus=channel)
    return None
