"""Streaming detection: frames arrive in chunks, each window is scored as soon as it is complete.

The stream is cut exactly like a capture file in the batch path: window k
holds stream rows ``[k * S, k * S + W)`` (``W`` the run's window size, ``S``
the stride), and the windows are scored by the run's own
:class:`~fusioncore.scoring.ScoringSystem`. Frames are taken in arrival
order; timestamps that step back or repeat are kept (and counted), as the
readers keep file order.

Sources hand over :class:`FrameChunk` objects. A file can wait for the
scorer, so it is fed synchronously (:func:`file_chunks`; the growing-log, bus
and real-time replay sources live in :mod:`fusioncore.cli.detect`). A live
source cannot wait: :class:`LiveSource` runs it in a thread that fills a
bounded :class:`FrameQueue`; the scorer takes everything that queued up since
its last pass and scores all complete windows in one batch, so a burst
costs bigger batches, not lost frames. Only when ``max_frames`` are waiting
are new frames dropped -- counted, and the window grid restarts after the
gap so no window mixes traffic from both sides of it.

A run that adapts to each capture (:mod:`fusioncore.adapt`) first *warms
up*: the stream's first ``warmup_s`` seconds are its reference segment,
buffered and never scored; once they are complete the run's system learns
the capture's profile (or takes a given one) and score statistics from them
(:meth:`~fusioncore.scoring.ScoringSystem.adapted_to`), and scoring starts
with the first grid window after the segment. A gap during the warm-up
restarts it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable

import attrs
import numpy as np

from fusioncore.data.frames import Frames
from fusioncore.errors import ConfigError, FusionCoreError
from fusioncore.scoring import ScoringSystem, WindowVerdicts
from fusioncore.streaming.latency import LatencyHistogram
from fusioncore.streaming.sources import FrameChunk

__all__ = ["DetectionSummary", "StreamDetector", "WindowStream", "run_detection"]

# flags (CAN FD / BRS / ESI) feed the fd_share node feature: scoring must see what training saw
_COLUMNS = ("timestamp", "can_id", "extended", "remote", "dlc", "data", "label", "attack_type", "flags")


# ------------------------------------------------------------------ windows
class WindowStream:
    """The sliding window over a stream: a column buffer that hands out complete windows.

    Rows live in preallocated numpy columns; consumed rows are dropped by
    moving the (at most ``W + backlog``) live rows to the front once they fill
    half the buffer, so every window is a contiguous slice the graph builder
    reads in place and appending costs O(1) per frame amortised.
    """

    def __init__(self, size: int, stride: int, capacity: int = 8192) -> None:
        if size < 1 or stride < 1:
            raise ConfigError(f"window size and stride must be >= 1, got {size} / {stride}")
        self.size, self.stride = size, stride
        self._cols: dict[str, np.ndarray] = {}
        self._arrival = np.zeros(0)
        self._capacity = max(capacity, 2 * size)
        self._n = 0  # rows held
        self._base = 0  # stream position of row 0
        self._next = 0  # stream position where the next window starts
        self.position = 0  # frames seen so far, dropped ones included
        self.discarded = 0  # frames left in no window by a gap

    def push(self, chunk: FrameChunk) -> None:
        frames = chunk.frames
        if chunk.dropped_before:
            # a gap: no window may span it, so the grid restarts at the first frame after it
            self.discarded += self.trailing
            self.position += chunk.dropped_before
            self._n, self._base, self._next = 0, self.position, self.position
        if not self._cols:
            self._allocate(frames, self._capacity)
        self._reserve(len(frames))
        lo, hi = self._n, self._n + len(frames)
        for name in _COLUMNS:
            self._cols[name][lo:hi] = getattr(frames, name)
        self._arrival[lo:hi] = chunk.arrival
        self._n = hi
        self.position += len(frames)

    def pending(self) -> int:
        """Complete windows not yet handed out."""
        end = self._base + self._n
        return 0 if end < self._next + self.size else (end - self._next - self.size) // self.stride + 1

    def take(self, limit: int) -> tuple[Frames, np.ndarray, np.ndarray, np.ndarray]:
        """Up to ``limit`` complete windows: ``(frames, start rows, stream positions, last arrival)``."""
        k = min(self.pending(), limit)
        pos = self._next + self.stride * np.arange(k, dtype=np.int64)
        rows = pos - self._base
        frames = self._frames()
        last_arrival = self._arrival[rows + self.size - 1] if k else np.zeros(0)
        self._next += self.stride * k
        return frames, rows, pos, last_arrival

    def compact(self, *, force: bool = False) -> None:
        """Forget rows no future window needs (call once the last ``take`` result is used).

        Rows move only once the dead ones fill half the buffer (or when ``force``d),
        so the copying costs O(1) per frame amortised.
        """
        drop = min(self._next - self._base, self._n)
        if drop > 0 and (force or drop >= self._capacity // 2):
            keep = self._n - drop
            for col in (*self._cols.values(), self._arrival):
                col[:keep] = col[drop:self._n]
            self._n, self._base = keep, self._base + drop

    def skip_to(self, position: int) -> int:
        """Move the grid past every window starting before stream ``position``; returns how many."""
        if position <= self._next:
            return 0
        k = -(-(position - self._next) // self.stride)
        self._next += k * self.stride
        return k

    def held(self) -> Frames:
        """The frames held now, from stream position ``base`` on."""
        return self._frames()

    @property
    def base(self) -> int:
        return self._base

    @property
    def trailing(self) -> int:
        """Frames held that no complete window has covered yet."""
        return max(self._base + self._n - max(self._next, self._base), 0)

    def _frames(self) -> Frames:
        n = self._n
        return Frames(**{k: v[:n] for k, v in self._cols.items()},
                      source=np.zeros(n, np.uint16), sources=("<stream>",))

    def _allocate(self, like: Frames, capacity: int) -> None:
        old, n = self._cols, self._n
        self._cols = {name: np.zeros((capacity, *getattr(like, name).shape[1:]), getattr(like, name).dtype)
                      for name in _COLUMNS}
        arrival = np.zeros(capacity)
        if old:
            for name in _COLUMNS:
                self._cols[name][:n] = old[name][:n]
            arrival[:n] = self._arrival[:n]
        self._arrival, self._capacity = arrival, capacity

    def _reserve(self, extra: int) -> None:
        if self._n + extra <= self._capacity:
            return
        self.compact(force=True)
        if self._n + extra > self._capacity:
            self._allocate(self._frames(), max(2 * self._capacity, self._n + extra))


# ----------------------------------------------------------------- summary
@attrs.define
class DetectionSummary:
    """What a detection run saw and how fast it went (``latency``: last frame in -> verdict out).

    Latencies are kept as a :class:`~fusioncore.streaming.latency.LatencyHistogram`,
    so a stream that runs for days holds the same few kilobytes as one that ran a second.
    """

    frames: int = 0
    windows: int = 0
    alerts: int = 0
    dropped: int = 0
    trailing: int = 0  #: frames that filled no window (at the end, or just before a gap)
    backward_steps: int = 0  #: frames timestamped before their predecessor
    duplicate_timestamps: int = 0
    skipped: Counter = attrs.field(factory=Counter)
    seconds: float = 0.0
    scoring_seconds: float = 0.0
    latency: LatencyHistogram = attrs.field(factory=LatencyHistogram, repr=False)
    interrupted: bool = False
    error: str | None = None
    warmup_frames: int = 0  #: frames of the reference segment (adapting runs), never scored
    warmup_windows: int = 0  #: grid windows that start inside it
    warming: bool = False  #: the stream ended before its warm-up was complete

    def latency_ms(self, q: float) -> float | None:
        """The ``q``-th percentile latency in milliseconds (within 1 %), ``None`` before any window."""
        value = self.latency.percentile(q)
        return None if value is None else value * 1e3

    def rate(self, count: int) -> float | None:
        """``count`` per second of wall time (``None`` before any time has passed)."""
        return count / self.seconds if self.seconds > 0 else None

    def to_json(self) -> dict:
        rate = self.rate
        return {
            "frames": self.frames, "windows": self.windows, "alerts": self.alerts,
            "dropped_frames": self.dropped, "trailing_frames": self.trailing,
            "backward_steps": self.backward_steps, "duplicate_timestamps": self.duplicate_timestamps,
            "skipped": dict(self.skipped), "seconds": round(self.seconds, 3),
            "scoring_seconds": round(self.scoring_seconds, 3),
            "frames_per_s": rate(self.frames), "windows_per_s": rate(self.windows),
            "latency_p50_ms": self.latency_ms(50), "latency_p99_ms": self.latency_ms(99),
            "interrupted": self.interrupted, "error": self.error,
            "warmup_frames": self.warmup_frames, "warmup_windows": self.warmup_windows,
            "warmup_incomplete": self.warming,
        }


# ---------------------------------------------------------------- detector
class StreamDetector:
    """Feeds chunks into a :class:`WindowStream` and scores complete windows in batches.

    ``on_verdicts`` receives each scored batch (``WindowVerdicts.window_id`` is the
    window's first frame's position in the stream).
    """

    def __init__(self, system: ScoringSystem, on_verdicts: Callable[[WindowVerdicts], None] | None = None,
                 *, stride: int | None = None, max_batch: int = 1024, profile=None) -> None:
        self.system = system
        self.stream = WindowStream(system.window_size, stride or system.stride)
        self.on_verdicts = on_verdicts or (lambda v: None)
        self.max_batch = max_batch
        self.summary = DetectionSummary()
        # a run that adapts to each capture warms up first (any other scorer starts at once)
        self.summary.warming = bool(getattr(system, "needs_reference", False)) and system.captures is None
        self.profile = profile  #: a VehicleProfile to use instead of learning one (detect --profile)
        self._last_t: float | None = None

    def feed(self, chunk: FrameChunk) -> None:
        """Take a chunk and score every window it completes."""
        self.push(chunk)
        self.score_pending()

    def push(self, chunk: FrameChunk) -> None:
        """Buffer a chunk without scoring (windows before a gap are scored first)."""
        s = self.summary
        if chunk.dropped_before:
            self.score_pending()
        s.dropped += chunk.dropped_before
        s.skipped.update(chunk.skipped)
        t = chunk.frames.timestamp
        if len(t):
            prev = None if chunk.dropped_before else self._last_t
            diff = np.diff(t) if prev is None else np.diff(t, prepend=prev)
            s.backward_steps += int(np.count_nonzero(diff < 0))
            s.duplicate_timestamps += int(np.count_nonzero(diff == 0))
            self._last_t = float(t[-1])
        s.frames += len(t)
        self.stream.push(chunk)

    def _warm_up(self) -> bool:
        """Adapt to the stream once its reference segment is complete; False while it is not."""
        held = self.stream.held()
        if not len(held):
            return False
        elapsed = np.maximum.accumulate(held.timestamp) - held.timestamp[0]
        end = int(np.searchsorted(elapsed, self.system.warmup_s, side="left"))
        if end >= len(held):
            return False
        self.system = self.system.adapted_to(held[:end], profile=self.profile, default="<stream>")
        self.summary.warmup_frames = end
        self.summary.warmup_windows = self.stream.skip_to(self.stream.base + end)
        self.summary.warming = False
        return True

    def score_pending(self) -> None:
        """Score all complete windows, ``max_batch`` per pass."""
        s = self.summary
        if s.warming and not self._warm_up():
            return
        while self.stream.pending():
            frames, rows, pos, arrival = self.stream.take(self.max_batch)
            start = time.perf_counter()
            verdicts = self.system.score(frames, rows, window_ids=pos)
            done = time.perf_counter()
            self.stream.compact()
            s.scoring_seconds += done - start
            s.latency.add(np.maximum(done - arrival, 0.0))
            s.windows += len(verdicts)
            s.alerts += int(np.count_nonzero(verdicts.alert))
            self.on_verdicts(verdicts)


def run_detection(system: ScoringSystem, chunks: Iterable[FrameChunk | list[FrameChunk]],
                  on_verdicts: Callable[[WindowVerdicts], None] | None = None, *,
                  stride: int | None = None, max_batch: int = 1024, profile=None) -> DetectionSummary:
    """Score every window of a stream of chunks; Ctrl-C and source errors end it with a summary.

    An item that is a list of chunks (what a live source queued meanwhile) is
    buffered whole and its windows scored together.

    ``KeyboardInterrupt`` sets ``summary.interrupted``; a :class:`BusError` from
    the source (or any :class:`~fusioncore.errors.FusionCoreError` from the source
    or from ``on_verdicts``, e.g. an output that cannot be written) sets
    ``summary.error``. Either way what arrived before is scored.
    """
    detector = StreamDetector(system, on_verdicts, stride=stride, max_batch=max_batch, profile=profile)
    start = time.perf_counter()
    try:
        for item in chunks:
            for chunk in item if isinstance(item, list) else [item]:
                detector.push(chunk)
            detector.score_pending()
    except KeyboardInterrupt:
        detector.summary.interrupted = True
    except FusionCoreError as exc:  # a bus that failed, an output that cannot be written
        detector.summary.error = str(exc)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()  # stops a live source's thread
    summary = detector.summary
    summary.seconds = time.perf_counter() - start
    summary.trailing = 0 if summary.warming else detector.stream.discarded + detector.stream.trailing
    return summary
