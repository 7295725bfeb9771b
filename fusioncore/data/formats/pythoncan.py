"""Formats read through python-can: Vector ASC / BLF, PCAN TRC, python-can CSV, SQLite.

python-can picks its reader by file suffix; here each format is its own
:class:`PythonCanFormat` with a content sniffer, so a renamed file still finds
its reader. Messages arrive one at a time (python-can is pure Python, about
0.2 M frames/s) and are collected into columns once at the end. Error frames
are dropped and counted; CAN FD payloads above 8 bytes are bad rows.

python-can's readers stop at the first record they cannot parse (binary
formats cannot resynchronise), so such a failure is a ``FormatError`` even
with ``errors="skip"``; its text readers (ASC, TRC) pass over lines they do
not recognise without telling anyone, which this module cannot count. BLF
headers announce an object count; objects that never came out as messages
(corrupt or non-CAN objects) are counted in ``skipped_reasons``.
"""

from __future__ import annotations

import contextlib
import gzip
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import can
import numpy as np

from fusioncore.contracts import ReadResult
from fusioncore.data.formats import base
from fusioncore.data.formats.base import SkipTally
from fusioncore.data.frames import Frames
from fusioncore.errors import FormatError

__all__ = ["PYTHON_CAN_FORMATS", "PythonCanFormat"]

UNREAD_OBJECTS = "objects announced by the file header but not read"


@attrs.frozen
class PythonCanFormat:
    """One python-can log format, sniffed by content and read with ``reader``."""

    name: str
    description: str
    reader: Callable[..., Any]  #: a ``can.io`` MessageReader class
    matches: Callable[[bytes], bool]
    mode: str = "text"  #: how the reader wants its file: "text", "binary" or "path"
    suffixes: tuple[str, ...] = ()

    def sniff(self, head: bytes) -> bool:
        return self.matches(head)

    def read(self, path: Path, *, errors: str = "raise") -> ReadResult:
        base.check_errors_mode(errors)
        path = Path(path)
        head = base.read_head(path, 8192)
        if not head.strip():
            raise FormatError(path, "empty file")
        if not self.sniff(head):
            raise FormatError(path, f"not a {self.name} file ({self.description})")
        tally = SkipTally(path, errors)
        columns = _Columns()
        with self._open(path) as source:
            try:
                with self.reader(source) as messages:
                    seen = self._collect(path, errors, messages, tally, columns)
                    # BLF headers announce their object count: report what never came out.
                    announced = getattr(messages, "object_count", None)
                    if isinstance(announced, int) and announced > seen:
                        tally.drop(UNREAD_OBJECTS, announced - seen)
            except FormatError:
                raise
            except Exception as exc:  # python-can raises assorted types for corrupt input
                raise FormatError(
                    path, f"{self.reader.__name__} failed: {type(exc).__name__}: {exc}"
                ) from exc
        frames = columns.frames(str(path))
        base.log_backward_steps(path, frames)
        return ReadResult(frames=frames, **tally.result_kwargs())

    @staticmethod
    def _collect(path, errors, messages, tally: SkipTally, columns: _Columns) -> int:
        number = 0
        for number, msg in enumerate(messages, start=1):
            if msg.is_error_frame:
                tally.drop(base.ERROR_FRAME)
            elif len(msg.data) > 8:
                if errors == "raise":
                    raise FormatError(path, f"{base.PAYLOAD_TOO_LONG} (message {number})")
                tally.drop(base.PAYLOAD_TOO_LONG)
            else:
                columns.append(msg)
        return number

    @contextlib.contextmanager
    def _open(self, path: Path) -> Iterator[Any]:
        gz = base.is_gzip(path)
        if self.mode == "path":
            if not gz:
                yield str(path)
                return
            # SQLite needs a real file: unpack to a temporary one.
            with tempfile.TemporaryDirectory() as tmp:
                plain = Path(tmp) / base.logical_name(path)
                with gzip.open(path, "rb") as src, open(plain, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                yield str(plain)
            return
        opener = gzip.open if gz else open
        if self.mode == "binary":
            with opener(path, "rb") as fh:
                yield fh
        else:
            with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
                yield fh


@attrs.define
class _Columns:
    """Message fields gathered in lists, turned into arrays once."""

    timestamp: list[float] = attrs.field(factory=list)
    can_id: list[int] = attrs.field(factory=list)
    extended: list[bool] = attrs.field(factory=list)
    remote: list[bool] = attrs.field(factory=list)
    dlc: list[int] = attrs.field(factory=list)
    payload: list[bytes] = attrs.field(factory=list)

    def append(self, msg: can.Message) -> None:
        self.timestamp.append(msg.timestamp)
        self.can_id.append(msg.arbitration_id)
        self.extended.append(msg.is_extended_id)
        self.remote.append(msg.is_remote_frame)
        self.dlc.append(min(msg.dlc, 8))
        self.payload.append(bytes(msg.data).ljust(8, b"\0"))

    def frames(self, source: str) -> Frames:
        data = np.frombuffer(b"".join(self.payload), np.uint8).reshape(-1, 8)
        return base.build_frames(
            source,
            timestamp=np.asarray(self.timestamp, np.float64),
            can_id=np.asarray(self.can_id, np.uint32),
            extended=np.asarray(self.extended, bool),
            remote=np.asarray(self.remote, bool),
            dlc=np.asarray(self.dlc, np.uint8),
            data=data,
        )


def _regex(pattern: bytes) -> Callable[[bytes], bool]:
    compiled = re.compile(pattern, re.MULTILINE)
    return lambda head: compiled.search(head) is not None


PYTHON_CAN_FORMATS: tuple[PythonCanFormat, ...] = (
    PythonCanFormat(
        name="vector-asc",
        description="Vector ASCII log (.asc), read by python-can",
        reader=can.ASCReader,
        matches=_regex(rb"^\s*base\s+(hex|dec)\s+timestamps\s+(absolute|relative)"),
        suffixes=(".asc",),
    ),
    PythonCanFormat(
        name="vector-blf",
        description="Vector binary log (.blf), read by python-can",
        reader=can.BLFReader,
        matches=lambda head: head.startswith(b"LOGG"),
        mode="binary",
        suffixes=(".blf",),
    ),
    PythonCanFormat(
        name="pcan-trc",
        description="PEAK PCAN trace (.trc), read by python-can",
        reader=can.TRCReader,
        matches=_regex(rb"^;\$FILEVERSION=|^;\s+Message Number"),
        suffixes=(".trc",),
    ),
    PythonCanFormat(
        name="python-can-csv",
        description="python-can CSV: timestamp,arbitration_id,extended,remote,error,dlc,data",
        reader=can.CSVReader,
        matches=lambda head: head.lstrip().lower().startswith(
            b"timestamp,arbitration_id,extended,remote,error,dlc,data"
        ),
        suffixes=(".csv",),
    ),
    PythonCanFormat(
        name="python-can-sqlite",
        description="python-can SQLite database (.db), read by python-can",
        reader=can.SqliteReader,
        matches=lambda head: head.startswith(b"SQLite format 3\x00"),
        mode="path",
        suffixes=(".db",),
    ),
)
