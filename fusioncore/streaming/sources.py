"""Where streamed frames come from: chunks of a file, a live source's queue, a bus, a growing log.

A file can wait for the scorer, so it is fed synchronously (:func:`file_chunks`).
A live source cannot wait: :class:`LiveSource` runs a producer in a thread that
fills a bounded :class:`FrameQueue`; the scorer takes everything that queued up
since its last pass. Producers: :func:`bus_producer` (a python-can bus),
:func:`realtime_producer` (a recorded capture at its recorded pace);
:func:`follow_file` reads a growing log like ``tail -f``.
"""

from __future__ import annotations

import itertools
import queue
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import numpy as np

from fusioncore.contracts import FormatReader
from fusioncore.data.formats.base import ERROR_FRAME, PAYLOAD_TOO_LONG, is_gzip
from fusioncore.data.frames import Frames
from fusioncore.errors import ConfigError, FusionCoreError

if TYPE_CHECKING:
    import can

__all__ = [
    "BusError",
    "FrameChunk",
    "FrameQueue",
    "LiveSource",
    "bus_producer",
    "file_chunks",
    "follow_file",
    "messages_to_frames",
    "open_bus",
    "realtime_producer",
]

#: formats whose first line is a header that every appended block must be read with
_HEADER_FORMATS = frozenset({"can-train-and-test", "python-can-csv"})
_FOLLOWABLE = _HEADER_FORMATS | {"candump", "hcrl-car-hacking", "hcrl-text"}


class BusError(FusionCoreError):
    """A CAN bus (or live source) that could not be opened, or that failed or closed while read."""


@attrs.frozen(eq=False)
class FrameChunk:
    """Frames that became available together at ``arrival`` (``time.perf_counter``).

    ``dropped_before``: frames lost just before these (the window grid restarts);
    ``skipped``: rows the reader left out (error frames, bad lines), by reason.
    """

    frames: Frames
    arrival: float
    dropped_before: int = 0
    skipped: Mapping[str, int] = attrs.field(factory=dict)


def file_chunks(frames: Frames, chunk_frames: int = 4096, skipped: Mapping[str, int] | None = None
                ) -> Iterator[FrameChunk]:
    """A capture already in memory, handed over ``chunk_frames`` at a time (no pacing).

    ``skipped`` (rows the reader left out) travels with the first chunk; with
    no frames at all it still arrives, in one empty chunk.
    """
    if not len(frames):
        if skipped:
            yield FrameChunk(frames, time.perf_counter(), skipped=dict(skipped))
        return
    for lo in range(0, len(frames), chunk_frames):
        yield FrameChunk(frames[lo:lo + chunk_frames], time.perf_counter(),
                         skipped=dict(skipped or {}) if lo == 0 else {})


class FrameQueue:
    """A bounded hand-off from a live source's thread to the scorer; overflow is dropped and counted."""

    def __init__(self, max_frames: int = 1_000_000) -> None:
        self.max_frames = max_frames
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._held = 0
        self._dropped = 0  # since the last accepted chunk
        self.dropped = 0

    def put(self, frames: Frames, skipped: Mapping[str, int] | None = None) -> None:
        with self._lock:
            room = max(self.max_frames - self._held, 0)
            tail = max(len(frames) - room, 0)  # this chunk's own frames that do not fit
            frames = frames[: len(frames) - tail]
            self.dropped += tail
            if not len(frames) and not skipped:
                self._dropped += tail
                return
            # the gap reported with these frames is what was lost *before* them; their own
            # dropped tail comes after them, so it is the gap before the next accepted chunk
            gap, self._dropped = self._dropped, tail
            self._held += len(frames)
        self._queue.put(FrameChunk(frames, time.perf_counter(), gap, dict(skipped or {})))

    def close(self, error: BaseException | None = None) -> None:
        """End the stream (with ``error`` if the source failed); frames dropped last are reported."""
        with self._lock:
            gap, self._dropped = self._dropped, 0
        if gap:
            self._queue.put(FrameChunk(Frames.empty(), time.perf_counter(), gap))
        self._queue.put(error or StopIteration())

    def get_all(self, timeout: float) -> list[FrameChunk | BaseException]:
        """Everything queued now (waiting up to ``timeout`` for the first item)."""
        try:
            items = [self._queue.get(timeout=timeout)]
        except queue.Empty:
            return []
        while True:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        with self._lock:
            self._held -= sum(len(i.frames) for i in items if isinstance(i, FrameChunk))
        return items


class LiveSource:
    """Run ``producer(queue, stop)`` in a thread; iterate over batches of what it queued.

    Each item is the list of :class:`FrameChunk` queued since the previous one,
    so the scorer batches a burst. The producer ends with ``queue.close(error)``;
    an error is re-raised here once everything before it has been handed out.
    """

    def __init__(self, producer: Callable[[FrameQueue, threading.Event], None], *,
                 max_frames: int = 1_000_000, poll_s: float = 0.1) -> None:
        self.queue = FrameQueue(max_frames)
        self.stop = threading.Event()
        self.poll_s = poll_s
        self._thread = threading.Thread(target=self._run, args=(producer,), daemon=True,
                                        name="fusioncore-source")
        self._thread.start()

    def _run(self, producer) -> None:
        try:
            producer(self.queue, self.stop)
        except BaseException as exc:  # handed to the consuming thread, which reports it
            self.queue.close(exc)
        else:
            self.queue.close()

    def __iter__(self) -> Iterator[list[FrameChunk]]:
        while True:
            items = self.queue.get_all(self.poll_s)
            chunks = [i for i in items if isinstance(i, FrameChunk)]
            end = next((i for i in items if not isinstance(i, FrameChunk)), None)
            if chunks:
                yield chunks
            if isinstance(end, StopIteration):
                return
            if end is not None:
                raise end if isinstance(end, FusionCoreError) else BusError(f"{type(end).__name__}: {end}")

    def close(self) -> None:
        self.stop.set()
        self._thread.join(timeout=2.0)


def realtime_producer(frames: Frames, *, speed: float = 1.0, tick_s: float = 0.01,
                      skipped: Mapping[str, int] | None = None
                      ) -> Callable[[FrameQueue, threading.Event], None]:
    """A producer for :func:`LiveSource` replaying ``frames`` at their recorded pace.

    Frames go out in slices of ``tick_s`` recorded seconds, each when its last
    frame is due; timestamps that step back are paced by the running maximum.
    ``skipped`` (rows the reader left out) goes with the first slice.
    """
    if speed <= 0:
        raise ConfigError(f"replay speed must be > 0, got {speed}")
    t = np.maximum.accumulate(frames.timestamp) if len(frames) else np.zeros(0)
    rel = (t - t[0]) / speed if len(t) else t
    edges = np.searchsorted(rel, np.arange(0.0, (rel[-1] if len(rel) else 0) + tick_s, tick_s), "right")
    bounds = np.unique(np.concatenate(([0], edges, [len(frames)])))

    def produce(out: FrameQueue, stop: threading.Event) -> None:
        t0 = time.perf_counter()
        pending = dict(skipped or {})
        for lo, hi in itertools.pairwise(bounds):
            wait = t0 + rel[hi - 1] - time.perf_counter()
            if (wait > 0 and stop.wait(wait)) or stop.is_set():
                return
            out.put(frames[lo:hi], pending)
            pending = {}
        if pending:  # no frames at all: the counts still arrive
            out.put(Frames.empty(), pending)

    return produce


def follow_file(path: Path, reader: FormatReader, *, poll_s: float = 0.2, idle_exit: float | None = None,
                chunk_frames: int = 4096) -> Iterator[FrameChunk]:
    """A growing line-based log (``tail -f`` from its first line): complete lines as they appear.

    Each appended block of whole lines is parsed by the format's own reader
    (``errors="skip"``: bad lines are counted, never fatal). A file that shrinks
    was rotated or truncated: reading starts over at its beginning. Ends after
    ``idle_exit`` seconds without growth (``None``: never; Ctrl-C stops it).
    """
    path = Path(path)
    if reader.name not in _FOLLOWABLE or is_gzip(path):
        raise ConfigError(f"--follow reads uncompressed line-based logs ({', '.join(sorted(_FOLLOWABLE))}); "
                          f"{path} is {'gzipped ' if is_gzip(path) else ''}{reader.name}")
    header = b""
    offset, last_growth = 0, time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fusioncore-follow-") as tmp:
        block_path = Path(tmp) / path.name
        while True:
            size = path.stat().st_size
            if size < offset:
                offset = 0
            data = b""
            if size > offset:
                with open(path, "rb") as fh:
                    fh.seek(offset)
                    data = fh.read(size - offset)
                data = data[: data.rfind(b"\n") + 1]  # complete lines only
            if data:
                if offset == 0 and reader.name in _HEADER_FORMATS:
                    header = data[: data.find(b"\n") + 1]
                    body = data
                else:
                    body = header + data
                offset += len(data)
                last_growth = time.monotonic()
                block_path.write_bytes(body)
                result = reader.read(block_path, errors="skip")
                yield from file_chunks(result.frames, chunk_frames, result.skipped_reasons)
            elif idle_exit is not None and time.monotonic() - last_growth >= idle_exit:
                return
            else:
                time.sleep(poll_s)


# --------------------------------------------------------------------- bus
def open_bus(interface: str, channel: str, **options) -> can.BusABC:
    """``can.Bus(interface=..., channel=...)``; failure to open is a :class:`BusError`."""
    import can

    try:
        return can.Bus(interface=interface, channel=channel, **options)
    except (can.CanError, OSError, ValueError, TypeError, ImportError, NotImplementedError) as exc:
        raise BusError(f"cannot open CAN bus {interface}:{channel} ({exc})") from None


def bus_producer(bus: can.BusABC, *, idle_exit: float | None = None, flush_s: float = 0.02,
                 batch_frames: int = 2048) -> Callable[[FrameQueue, threading.Event], None]:
    """A producer for :class:`LiveSource` reading ``bus`` until stopped, idle or closed.

    Messages are handed over every ``flush_s`` seconds or ``batch_frames``
    messages. Error frames and payloads over 8 bytes are counted, not scored. A
    bus that fails or closes ends the stream with a :class:`BusError`.
    """

    import can

    def produce(out: FrameQueue, stop: threading.Event) -> None:
        messages: list[can.Message] = []
        skipped: Counter = Counter()
        flushed = last_message = time.monotonic()
        while not stop.is_set():
            try:
                msg = bus.recv(timeout=flush_s)
            except (can.CanError, OSError, ValueError) as exc:
                _flush(out, messages, skipped)
                raise BusError(f"CAN bus {bus.channel_info}: {exc}") from None
            now = time.monotonic()
            if msg is not None:
                last_message = now
                if msg.is_error_frame:
                    skipped[ERROR_FRAME] += 1
                elif len(msg.data) > 8:
                    skipped[PAYLOAD_TOO_LONG] += 1
                else:
                    messages.append(msg)
            if len(messages) >= batch_frames or (now - flushed >= flush_s and (messages or skipped)):
                _flush(out, messages, skipped)
                messages, skipped, flushed = [], Counter(), now
            if idle_exit is not None and now - last_message >= idle_exit:
                break
        _flush(out, messages, skipped)

    return produce


def _flush(out: FrameQueue, messages: list[can.Message], skipped: Counter) -> None:
    if messages or skipped:
        out.put(messages_to_frames(messages), dict(skipped))


def messages_to_frames(messages: list[can.Message], source: str = "<bus>") -> Frames:
    """python-can messages as :class:`Frames`, read as the python-can log formats read them.

    CAN FD messages keep their flags (FD / BRS / ESI: the ``fd_share`` node
    feature is computed from them in training, so a live bus must supply them
    too), their length as DLC and their bytes beyond 8 (``data_ext``).
    """
    from fusioncore.data.formats.records import MessageColumns

    columns = MessageColumns()
    for m in messages:
        columns.add_message(m, bus="")  # one stream, one source, whatever the channels
    return columns.frames(source)
