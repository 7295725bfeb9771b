"""Column building for record-at-a-time readers (ASC, TRC, BLF, python-can CSV / SQLite).

These formats are parsed one record at a time (their line layouts vary per
record kind, or python-can decodes the binary objects); the values go into
plain lists and become numpy columns once. Every record is either a frame or
a skipped record with a reason (:class:`~fusioncore.data.formats.base.SkipTally`),
so ``frames + skipped == records`` holds for these formats too.

A capture of several buses (ASC / TRC / BLF channels, candump interfaces)
keeps each bus a source of its own (:func:`group_by_bus`), so a window never
mixes frames of two buses.
"""

from __future__ import annotations

import attrs
import numpy as np

from fusioncore.contracts import ReadResult
from fusioncore.data.formats import base
from fusioncore.data.frames import FLAG_BRS, FLAG_ESI, FLAG_FD, MAX_FD_BYTES, Frames

__all__ = ["FD_LENGTHS", "MessageColumns", "dlc_to_length", "group_by_bus"]

#: Payload length of each CAN FD DLC code (classic CAN: codes 9-15 mean 8 bytes).
_DLC_LENGTH = (0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64)
FD_LENGTHS = frozenset(_DLC_LENGTH)


def dlc_to_length(dlc: int) -> int:
    """Bytes meant by a DLC code 0..15 (CAN FD); other values are returned as they are."""
    return _DLC_LENGTH[dlc] if 0 <= dlc < 16 else dlc


@attrs.define
class MessageColumns:
    """Frame fields gathered one record at a time, turned into :class:`Frames` once."""

    timestamp: list[float] = attrs.field(factory=list)
    can_id: list[int] = attrs.field(factory=list)
    extended: list[bool] = attrs.field(factory=list)
    remote: list[bool] = attrs.field(factory=list)
    dlc: list[int] = attrs.field(factory=list)
    payload: list[bytes] = attrs.field(factory=list)
    flags: list[int] = attrs.field(factory=list)
    bus: list[str] = attrs.field(factory=list)

    def add(
        self,
        timestamp: float,
        can_id: int,
        *,
        extended: bool,
        payload: bytes = b"",
        remote: bool = False,
        dlc: int | None = None,
        fd: bool = False,
        brs: bool = False,
        esi: bool = False,
        bus: str = "",
    ) -> None:
        """One frame. ``dlc`` defaults to the payload length (pass it for remote frames).

        A payload of more than 8 bytes can only be CAN FD, so it is flagged FD
        whatever the log says (python-can's CSV and SQLite formats do not store the flag).
        """
        self.timestamp.append(timestamp)
        self.can_id.append(can_id)
        self.extended.append(extended)
        self.remote.append(remote)
        self.dlc.append(len(payload) if dlc is None else dlc)
        self.payload.append(payload)
        fd = fd or len(payload) > 8
        self.flags.append((FLAG_FD if fd else 0) | (FLAG_BRS if brs else 0) | (FLAG_ESI if esi else 0))
        self.bus.append(bus)

    def add_message(self, msg, bus: str | None = None) -> None:
        """A ``can.Message`` (data frames: DLC = bytes carried; remote: the DLC requested)."""
        remote = bool(msg.is_remote_frame)
        self.add(
            float(msg.timestamp), int(msg.arbitration_id), extended=bool(msg.is_extended_id),
            payload=b"" if remote else bytes(msg.data), remote=remote,
            dlc=int(msg.dlc) if remote else None,
            fd=bool(msg.is_fd), brs=bool(msg.bitrate_switch), esi=bool(msg.error_state_indicator),
            bus=bus if bus is not None else ("" if msg.channel is None else str(msg.channel)),
        )

    def __len__(self) -> int:
        return len(self.timestamp)

    def frames(self, source: str) -> Frames:
        n = len(self.timestamp)
        width = 8 if all(len(p) <= 8 for p in self.payload) else MAX_FD_BYTES
        data = np.frombuffer(b"".join(p.ljust(width, b"\0") for p in self.payload), np.uint8)
        frames = base.build_frames(
            source,
            timestamp=np.asarray(self.timestamp, np.float64),
            can_id=np.asarray(self.can_id, np.uint32),
            extended=np.asarray(self.extended, bool),
            remote=np.asarray(self.remote, bool),
            dlc=np.asarray(self.dlc, np.uint8),
            data=data.reshape(n, width),
            flags=np.asarray(self.flags, np.uint8),
        )
        names, index = np.unique(np.asarray(self.bus or [""], dtype=str), return_inverse=True)
        if len(names) <= 1:
            return frames
        return attrs.evolve(frames, source=index[:n].astype(np.uint16),
                            sources=tuple(f"{source}#{name or '?'}" for name in names))


def group_by_bus(result: ReadResult, source: str, what: str = "interfaces") -> ReadResult:
    """One source per bus: a single-bus capture is named by its file, a multi-bus one is split.

    Frames are grouped by bus (in order of first appearance), each bus keeping
    its file order, and a note in the result says so.
    """
    frames = result.frames
    codes, first = np.unique(frames.source, return_index=True)
    if len(codes) <= 1:
        single = attrs.evolve(frames, source=np.zeros(len(frames), np.uint16), sources=(source,))
        return attrs.evolve(result, frames=single)
    by_appearance = codes[np.argsort(first)]
    new_code = np.zeros(len(frames.sources), np.int64)
    new_code[by_appearance] = np.arange(len(by_appearance))
    src = new_code[frames.source]
    order = np.argsort(src, kind="stable")
    names = tuple(frames.sources[c] for c in by_appearance)
    grouped = attrs.evolve(frames.take(order), source=src[order].astype(np.uint16), sources=names)
    buses = ", ".join(n.rsplit("#", 1)[-1] for n in names)
    note = f"{len(names)} {what} ({buses}) kept as separate sources; windows never mix them"
    return attrs.evolve(result, frames=grouped, notes=(*result.notes, note))
