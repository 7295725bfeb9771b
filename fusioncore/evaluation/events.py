"""Attack events and the windows that observe them: the time axis of a scenario.

Definitions (``docs/evaluation.md`` has them with a worked example):

* A **capture** is one maximal run of frames from one source file in a
  scenario's :class:`~fusioncore.data.frames.Frames`; its time is capture time
  (the frames' own timestamps), never wall time.
* An **attack event** is a maximal run of attack frames (``label > 0``) of one
  capture, where runs whose gap (from the last frame of one run to the first
  frame of the next) is shorter than ``gap_s`` are merged. Injection attacks
  interleave single forged frames with benign ones, so raw runs are one frame
  long; the gap turns them into the attack a person would name. Its span is
  the rows ``first_row..last_row`` and the times ``start_time..end_time``;
  its attack type is the most frequent type among its attack frames.
* A scenario's **rows** are, per capture, those from its first window to its
  last (excluded windows included) plus the trailing frames too few to fill
  a window; only attack frames there form events (the validation block of a
  file holds that block's attacks, not the training block's).
* The **evaluated windows** are the windows not excluded, in row order. A
  **stretch** is a run of evaluated windows of one capture that follow each
  other at the window stride; alarm stages run per stretch, alarm episodes
  never span two.
* A window **overlaps** an event if their row spans intersect. An event that
  no evaluated window overlaps is **unobserved** (e.g. it lies wholly in the
  trailing frames that fill no window, or in an excluded segment): it is
  counted apart and left out of event recall, since no method could alarm on it.
  Its **onset** is its first frame, or the first row of the first evaluated
  window when the event was already under way there.
* **Observed time** is the time from the first frame of each stretch to the
  last; **benign time** is observed time minus the time inside attack events.

Everything is computed for all windows and events at once; the only loop runs
over captures (a handful per scenario).
"""

from __future__ import annotations

import attrs
import numpy as np

from fusioncore.data.frames import ATTACK_TYPES, Frames
from fusioncore.data.windows import WindowSpec, source_runs
from fusioncore.errors import ConfigError

__all__ = ["AttackEvents", "ScenarioLayout", "find_events"]

_UNKNOWN = ATTACK_TYPES.index("unknown")


def _i64(value) -> np.ndarray:
    return np.ascontiguousarray(value, dtype=np.int64)


def _f64(value) -> np.ndarray:
    return np.ascontiguousarray(value, dtype=np.float64)


@attrs.frozen(eq=False)
class AttackEvents:
    """E attack events, ordered by row. Arrays of length E."""

    capture: np.ndarray = attrs.field(converter=_i64)  #: capture index
    first_row: np.ndarray = attrs.field(converter=_i64)  #: row of the first attack frame
    last_row: np.ndarray = attrs.field(converter=_i64)  #: row of the last attack frame
    start_time: np.ndarray = attrs.field(converter=_f64)  #: timestamp of the first attack frame
    end_time: np.ndarray = attrs.field(converter=_f64)  #: timestamp of the last attack frame
    attack_type: np.ndarray = attrs.field(converter=_i64)  #: code in ATTACK_TYPES
    n_frames: np.ndarray = attrs.field(converter=_i64)  #: attack frames in the event

    def __len__(self) -> int:
        return len(self.first_row)


def find_events(
    frames: Frames, gap_s: float, span: tuple[np.ndarray, np.ndarray] | None = None
) -> AttackEvents:
    """Attack events of every capture of ``frames`` (see the module docstring).

    ``span = (first, last)``, one row pair per capture (``last < first``: none),
    limits the attack frames considered to the scenario's own rows.
    """
    if not gap_s >= 0:
        raise ConfigError(f"the event gap must be >= 0 seconds, got {gap_s}")
    begin, _ = source_runs(frames)
    rows = np.flatnonzero(frames.label > 0)
    cap = np.searchsorted(begin, rows, side="right") - 1
    if span is not None:
        inside = (rows >= span[0][cap]) & (rows <= span[1][cap])
        rows, cap = rows[inside], cap[inside]
    if rows.size == 0:
        return AttackEvents(*([np.zeros(0)] * 7))
    t = frames.timestamp[rows]
    new = np.ones(len(rows), bool)
    # consecutive attack rows always belong together; across benign rows, the gap decides
    new[1:] = (cap[1:] != cap[:-1]) | ((rows[1:] != rows[:-1] + 1) & (t[1:] - t[:-1] >= gap_s))
    first = np.flatnonzero(new)
    last = np.append(first[1:], len(rows)) - 1
    event = np.cumsum(new) - 1
    kinds = frames.attack_type[rows].astype(np.int64)
    kinds[kinds == 0] = _UNKNOWN
    counts = np.bincount(event * len(ATTACK_TYPES) + kinds, minlength=len(first) * len(ATTACK_TYPES))
    kind = counts.reshape(len(first), len(ATTACK_TYPES)).argmax(axis=1)  # ties: the smaller code
    return AttackEvents(
        capture=cap[first], first_row=rows[first], last_row=rows[last],
        start_time=t[first], end_time=t[last], attack_type=kind, n_frames=last - first + 1,
    )


@attrs.frozen(eq=False)
class ScenarioLayout:
    """Evaluated windows, stretches, captures and events of one scenario.

    Window arrays have one entry per evaluated window, in row order;
    ``index[j]`` is that window's position in the caller's ``starts``.
    Event arrays extend :attr:`events` with the evaluated windows that
    overlap each event: ``lo[e]..hi[e]`` (empty, ``lo > hi``, when unobserved).
    """

    window: WindowSpec
    capture_names: tuple[str, ...]
    index: np.ndarray  #: int64[M] position in the caller's starts
    start_row: np.ndarray  #: int64[M]
    start_time: np.ndarray  #: float64[M]
    end_time: np.ndarray  #: float64[M] timestamp of the window's last frame: when it can alarm
    capture: np.ndarray  #: int64[M]
    stretch: np.ndarray  #: int64[M] stretch id, non-decreasing
    stretch_begin: np.ndarray  #: int64[S] first window of each stretch
    stretch_end: np.ndarray  #: int64[S] one past its last window
    events: AttackEvents
    lo: np.ndarray  #: int64[E]
    hi: np.ndarray  #: int64[E]
    onset_row: np.ndarray  #: int64[E] first row of the event the evaluated windows see (-1: unobserved)
    onset_time: np.ndarray  #: float64[E] its timestamp (NaN when unobserved)
    overlaps_event: np.ndarray  #: bool[M]
    observed_seconds: float
    benign_seconds: float
    capture_seconds: np.ndarray  #: float64[C] observed time per capture
    n_excluded: int
    labelled: bool  #: the scenario's rows carry at least one attack label

    @property
    def end_row(self) -> np.ndarray:
        return self.start_row + (self.window.size - 1)

    @property
    def observed(self) -> np.ndarray:
        return self.lo <= self.hi

    def __len__(self) -> int:
        return len(self.start_row)

    @classmethod
    def build(
        cls,
        frames: Frames,
        starts: np.ndarray,
        *,
        window: WindowSpec,
        gap_s: float,
        exclude: np.ndarray | None = None,
        labelled: bool | None = None,
    ) -> ScenarioLayout:
        """``labelled``: ``True`` says frames without an attack label are benign (training files),
        ``False`` that labels are missing; ``None`` infers it (any attack label in the scenario)."""
        starts = np.asarray(starts, dtype=np.int64)
        if exclude is not None:
            exclude = np.asarray(exclude, dtype=bool)
            if exclude.shape != starts.shape:
                raise ConfigError(f"exclude has shape {exclude.shape}, starts {starts.shape}")
        keep = np.flatnonzero(~exclude) if exclude is not None else np.arange(len(starts))
        index = keep[np.argsort(starts[keep], kind="stable")]
        start_row = starts[index]
        if starts.size and (starts.min() < 0 or starts.max() + window.size > len(frames)):
            raise ConfigError(f"window starts leave the {len(frames)} frames of the scenario")
        begin, end = source_runs(frames)
        end_row = start_row + (window.size - 1)
        capture = np.searchsorted(begin, start_row, side="right") - 1
        if start_row.size and (end_row >= end[capture]).any():
            raise ConfigError("a window straddles two captures (source files)")
        t = frames.timestamp
        new = np.ones(len(start_row), bool)
        new[1:] = (capture[1:] != capture[:-1]) | (np.diff(start_row) > window.stride)
        stretch = np.cumsum(new) - 1
        stretch_begin = np.flatnonzero(new)
        stretch_end = np.append(stretch_begin[1:], len(start_row))

        span = _span(begin, end, starts, window)
        events = find_events(frames, gap_s, span)
        lo = np.searchsorted(end_row, events.first_row, side="left")
        hi = np.searchsorted(start_row, events.last_row, side="right") - 1
        observed = lo <= hi
        # an event already under way where the evaluated windows begin is seen from there
        onset = np.full(len(events), -1, np.int64)
        onset[observed] = np.maximum(events.first_row[observed], start_row[lo[observed]])
        onset_time = np.where(observed, t[np.maximum(onset, 0)] if len(t) else np.nan, np.nan)

        diff = np.zeros(len(start_row) + 1, np.int64)
        np.add.at(diff, lo[observed], 1)
        np.add.at(diff, hi[observed] + 1, -1)
        overlaps = np.cumsum(diff[:-1]) > 0

        seg_a = t[start_row[stretch_begin]] if start_row.size else np.zeros(0)
        seg_b = t[end_row[stretch_end - 1]] if start_row.size else np.zeros(0)
        seg_capture = capture[stretch_begin] if start_row.size else np.zeros(0, np.int64)
        seg_len = np.maximum(seg_b - seg_a, 0.0)
        n_captures = len(begin)
        capture_seconds = np.bincount(seg_capture, weights=seg_len, minlength=n_captures)
        attack_seconds = 0.0
        for c in np.unique(events.capture):  # events x stretches of one capture: small
            ev = events.capture == c
            sg = seg_capture == c
            inter = np.minimum(events.end_time[ev][:, None], seg_b[sg][None]) - np.maximum(
                events.start_time[ev][:, None], seg_a[sg][None]
            )
            attack_seconds += float(np.clip(inter, 0.0, None).sum())
        observed_seconds = float(seg_len.sum())
        return cls(
            window=window,
            capture_names=tuple(frames.sources[int(frames.source[b])] for b in begin),
            index=index, start_row=start_row,
            start_time=t[start_row] if start_row.size else np.zeros(0),
            end_time=t[end_row] if start_row.size else np.zeros(0),
            capture=capture, stretch=stretch, stretch_begin=stretch_begin, stretch_end=stretch_end,
            events=events, lo=lo, hi=hi, onset_row=onset, onset_time=onset_time,
            overlaps_event=overlaps,
            observed_seconds=observed_seconds,
            benign_seconds=max(observed_seconds - attack_seconds, 0.0),
            capture_seconds=capture_seconds,
            n_excluded=int(len(starts) - len(keep)),
            labelled=len(events) > 0 if labelled is None else bool(labelled),
        )


def _span(
    begin: np.ndarray, end: np.ndarray, starts: np.ndarray, window: WindowSpec
) -> tuple[np.ndarray, np.ndarray]:
    """``(first, last)`` row of the scenario in each capture: its first window's first row to its
    last window's last row (excluded windows included), plus the trailing frames too few for a
    window; ``(big, -1)`` for a capture without windows.

    A split that is one time block of a file (validation) thus holds only its own block's attacks,
    while an attack in the last frames of a capture or in an excluded segment stays in, unobserved.
    """
    first = np.full(len(begin), np.iinfo(np.int64).max)
    last = np.full(len(begin), -1, np.int64)
    if len(starts):
        cap = np.searchsorted(begin, starts, side="right") - 1
        np.minimum.at(first, cap, starts)
        np.maximum.at(last, cap, starts + window.size - 1)
    tail = (last >= 0) & (end - 1 - last < window.size)
    return first, np.where(tail, end - 1, last)
