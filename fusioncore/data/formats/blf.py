"""Vector binary logs (``.blf``): every object accounted for, damage survived.

A BLF file is a header (which announces how many objects the file holds)
followed by log containers, usually zlib-compressed, whose concatenated
contents are a stream of objects (``LOBJ`` header + body). This reader walks
that stream itself and hands each CAN object (CAN, CAN FD, CAN FD 64, error
frame) to python-can's decoder, so that:

* each object is a frame or a skipped record with a reason (error frame, an
  object that is not a CAN frame, a corrupt object);
* one corrupt object or container is skipped (``errors="skip"``) and the walk
  resynchronises on the next ``LOBJ`` signature instead of losing the file;
* a file cut short, or one holding fewer objects than its header announces,
  raises in ``errors="raise"`` mode and is counted otherwise (the shortfall
  goes to ``skipped_reasons``, so frames + skipped = the announced count).

CAN FD payloads (up to 64 bytes) are kept whole. Channels are buses and stay
separate sources.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import can
from can.io import blf as _blf

from fusioncore.contracts import ReadResult
from fusioncore.data.formats import base
from fusioncore.data.formats.base import SkipTally
from fusioncore.data.formats.records import MessageColumns, group_by_bus
from fusioncore.errors import FormatError

__all__ = ["VectorBlf"]

NOT_A_FRAME = "BLF object that is not a CAN frame"
CORRUPT_OBJECT = "corrupt BLF object"
MISSING = "objects announced by the file header but not found (truncated or corrupt file)"

_CAN_TYPES = {_blf.CAN_MESSAGE, _blf.CAN_MESSAGE2, _blf.CAN_ERROR_EXT, _blf.CAN_FD_MESSAGE,
              _blf.CAN_FD_MESSAGE_64}
_OBJ = _blf.OBJ_HEADER_BASE_STRUCT
_SIG = b"LOBJ"


class VectorBlf:
    """Reader of Vector BLF logs, CAN and CAN FD."""

    name = "vector-blf"
    description = "Vector binary log (.blf): CAN and CAN FD, damaged objects skipped and counted"
    suffixes = (".blf",)

    def sniff(self, head: bytes) -> bool:
        return head.startswith(b"LOGG")

    def read(self, path: Path, *, errors: str = "raise") -> ReadResult:
        base.check_errors_mode(errors)
        path = Path(path)
        raw = base.read_raw(path)
        if not raw.strip():
            raise FormatError(path, "empty file")
        if not raw.startswith(b"LOGG") or len(raw) < _blf.FILE_HEADER_STRUCT.size:
            raise FormatError(path, "not a BLF file (no LOGG header)")
        try:
            decoder = can.BLFReader(io.BytesIO(raw))  # parses the header: start time, object count
        except Exception as exc:  # python-can raises assorted types for a broken header
            raise FormatError(path, f"unreadable BLF header: {type(exc).__name__}: {exc}") from exc
        header_size = _blf.FILE_HEADER_STRUCT.unpack_from(raw)[1]
        walk = _Walk(path, errors, decoder)
        walk.containers(raw, header_size)
        announced = int(decoder.object_count)
        found = walk.objects
        # Vector's tools and python-can count inner objects; accept a count that includes containers.
        missing = announced - found if announced - found not in (0, walk.n_containers) else 0
        if missing > 0 or walk.truncated:
            what = f"header announces {announced} objects, {found} found"
            if errors == "raise":
                raise FormatError(path, f"truncated or corrupt BLF file: {what}")
            if missing > 0:
                walk.tally.drop(MISSING, missing)
        result = ReadResult(frames=walk.out.frames(str(path)), **walk.tally.result_kwargs())
        base.log_backward_steps(path, result.frames)
        return group_by_bus(result, str(path), what="channels")


class _Walk:
    """The object stream of one file, container by container."""

    def __init__(self, path: Path, errors: str, decoder) -> None:
        self.tally = SkipTally(path, errors)
        self.errors = errors
        self.decoder = decoder
        self.out = MessageColumns()
        self.objects = 0  #: inner objects seen (frames, skipped ones, corrupt ones)
        self.n_containers = 0
        self.truncated = False

    def _damaged(self, reason: str) -> None:
        if self.errors == "raise":
            self.tally.raise_at(None, f"{reason} (object {self.objects + 1})", "")
        self.objects += 1
        self.tally.drop(reason, line=self.objects)

    def containers(self, raw: bytes, pos: int) -> None:
        tail = b""
        while pos + _OBJ.size <= len(raw):
            signature, _, _, size, kind = _OBJ.unpack_from(raw, pos)
            if signature != _SIG or size < _OBJ.size:
                self._damaged("corrupt BLF container header")
                nxt = raw.find(_SIG, pos + 1)
                if nxt < 0:
                    return
                pos, tail = nxt, b""
                continue
            start, end = pos, pos + size
            if end > len(raw):
                self.truncated = True
            body = raw[pos + _OBJ.size : end]
            pos = end + size % 4  # containers are padded to 4 bytes
            if kind != _blf.LOG_CONTAINER:  # an object outside any container
                if end <= len(raw):
                    self.record(kind, raw[start:end])
                continue
            self.n_containers += 1
            try:
                method, _ = _blf.LOG_CONTAINER_STRUCT.unpack_from(body)
                packed = body[_blf.LOG_CONTAINER_STRUCT.size :]
                if method == _blf.ZLIB_DEFLATE:
                    inflater = zlib.decompressobj()
                    data = inflater.decompress(packed)
                    self.truncated |= not inflater.eof
                elif method == _blf.NO_COMPRESSION:
                    data = packed
                else:
                    raise ValueError(f"unknown compression method {method}")
            except (struct.error, zlib.error, ValueError) as exc:
                self._damaged(f"corrupt BLF container ({exc})")
                tail = b""
                continue
            tail = self.inner(tail + data)
        if tail.strip(b"\0"):
            self.truncated = True  # an object cut off at the end of the file

    def inner(self, data: bytes) -> bytes:
        """Decode the whole objects in ``data``, return the cut-off rest."""
        pos = 0
        while True:
            at = data.find(_SIG, pos, pos + 8)  # objects are padded to 4 bytes
            if at < 0:
                if len(data) - pos < 8:
                    return data[pos:]
                self._damaged(CORRUPT_OBJECT)
                at = data.find(_SIG, pos + 1)
                if at < 0:
                    return b""
            if at + _OBJ.size > len(data):
                return data[at:]
            _, _, _, size, kind = _OBJ.unpack_from(data, at)
            if size < _OBJ.size:
                self._damaged(CORRUPT_OBJECT)
                pos = at + 4
                continue
            if at + size > len(data):
                return data[at:]
            self.record(kind, data[at : at + size])
            pos = at + size

    def record(self, kind: int, blob: bytes) -> None:
        if kind not in _CAN_TYPES:
            self.objects += 1
            self.tally.drop(NOT_A_FRAME, line=self.objects)
            return
        try:
            messages = list(self.decoder._parse_data(blob))
        except Exception:  # struct.error, BLFParseError, ValueError from a damaged body
            messages = None
        if not messages:
            self._damaged(CORRUPT_OBJECT)
            return
        self.objects += 1
        msg = messages[0]
        if msg.is_error_frame:
            self.tally.drop(base.ERROR_FRAME, line=self.objects)
        else:
            self.out.add_message(msg)
