"""Capture-file readers: every supported on-disk format -> :class:`~fusioncore.data.frames.Frames`.

=================== ==========================================================
name                format
=================== ==========================================================
can-train-and-test  ``timestamp,arbitration_id,data_field,attack`` CSV
hcrl-car-hacking    raw HCRL Car-Hacking CSV ``t,ID,DLC,bytes...,R|T``
hcrl-text           HCRL / OTIDS ``Timestamp: ... ID: ... DLC: ...`` text
candump             SocketCAN ``candump -L`` logs (vectorised)
vector-asc          Vector ASC logs (CAN, CAN FD)
vector-blf          Vector BLF logs (CAN, CAN FD; objects decoded by python-can)
pcan-trc            PEAK PCAN traces, versions 1.0-2.1
python-can-csv      python-can's CSV; python-can-sqlite: its SQLite database
=================== ==========================================================

``detect_format`` sniffs content (gunzipped when the file is gzip), so names
and suffixes may lie; ``read_capture`` reads with the detected or named
reader. Whitespace around fields is never an error. Bad rows raise
:class:`~fusioncore.errors.FormatError` with file, line and reason, or with
``errors="skip"`` are dropped and counted per reason (with their first line
numbers) in :class:`~fusioncore.contracts.ReadResult`, so that frames +
skipped = records of the file, for every format. CAN FD frames (up to 64
bytes) are read whole. Timestamps that step backwards are
kept in file order (real captures have them); :func:`count_backward_steps`
counts them and readers log the count.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fusioncore.contracts import FormatReader, ReadResult
from fusioncore.data.formats import sniff as _sniff
from fusioncore.data.formats.asc import VectorAsc
from fusioncore.data.formats.base import attack_type_from_filename, count_backward_steps
from fusioncore.data.formats.blf import VectorBlf
from fusioncore.data.formats.candump import CandumpLog
from fusioncore.data.formats.ctt_csv import CanTrainAndTestCsv
from fusioncore.data.formats.hcrl_csv import HcrlCarHackingCsv
from fusioncore.data.formats.hcrl_text import HcrlText
from fusioncore.data.formats.pythoncan import PYTHON_CAN_FORMATS, PythonCanCsv, PythonCanSqlite
from fusioncore.data.formats.trc import PcanTrc

__all__ = [
    "BUILTIN_FORMATS",
    "CanTrainAndTestCsv",
    "CandumpLog",
    "HcrlCarHackingCsv",
    "HcrlText",
    "PcanTrc",
    "PythonCanCsv",
    "PythonCanSqlite",
    "VectorAsc",
    "VectorBlf",
    "attack_type_from_filename",
    "count_backward_steps",
    "detect_format",
    "read_capture",
]

#: Every bundled reader, most specific sniffers first.
BUILTIN_FORMATS: tuple[FormatReader, ...] = (
    CanTrainAndTestCsv(),
    HcrlCarHackingCsv(),
    HcrlText(),
    CandumpLog(),
    *PYTHON_CAN_FORMATS,
)


def detect_format(path: Path, readers: Sequence[FormatReader] = BUILTIN_FORMATS) -> FormatReader:
    """The reader that recognises the file's content (suffix only breaks ties)."""
    return _sniff.detect_format(path, readers)


def read_capture(
    path: Path,
    *,
    format: str | None = None,
    errors: str = "raise",
    readers: Sequence[FormatReader] = BUILTIN_FORMATS,
) -> ReadResult:
    """Read a capture with the named ``format`` or the detected one; ``.gz`` is transparent.

    ``errors="raise"``: the first bad row raises ``FormatError(path, reason, line)``.
    ``errors="skip"``: bad rows are dropped and counted in ``skipped`` /
    ``skipped_reasons``.
    """
    return _sniff.read_capture(path, format=format, errors=errors, readers=readers)
