"""What a method's alarms did on a scenario: events detected, time to detect, false alarm episodes.

Definitions (``docs/evaluation.md``):

* An alarm raised by window j happens at the timestamp of j's last frame
  (a window cannot alarm before it has been seen).
* Alarm j is **attributed** to event e if one of the windows j - memory .. j
  of its stretch overlaps e, ``memory`` being the alarm stage's look-back
  (0 for ``raw``: the alarmed window itself must overlap the event). An alarm
  raised before an event's first frame is never attributed to it.
* Event e is **detected** by its first attributed alarm. **Time to detect**:
  that alarm's time minus the event's onset (milliseconds of capture time),
  and the frames from the onset up to and including the alarm window's last
  frame (so 1 is the least possible).
* An **alarm episode** is a maximal run of alarmed consecutive windows of one
  stretch; a **false alarm episode** one of alarmed windows attributed to no
  event. **False alarms per hour** = false alarm episodes / benign hours;
  **alarm episodes per hour** = all episodes / observed hours (what an
  unlabelled scenario can report).
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from fusioncore.data.frames import attack_type_name
from fusioncore.evaluation.events import ScenarioLayout

__all__ = ["AlarmOutcome", "alarm_outcome", "attributed", "episodes", "event_summary", "false_alarm_summary"]


@attrs.frozen(eq=False)
class AlarmOutcome:
    """A method's alarms on one scenario and what they hit."""

    alarms: np.ndarray  #: bool[M], per evaluated window
    detect_window: np.ndarray  #: int64[E], the detecting window (-1: missed or unobserved)
    ttd_ms: np.ndarray  #: float64[E], NaN when not detected
    ttd_frames: np.ndarray  #: int64[E], -1 when not detected
    false_alarm: np.ndarray  #: bool[M], alarmed and attributed to no event
    n_episodes: int
    n_false_episodes: int

    @property
    def detected(self) -> np.ndarray:
        return self.detect_window >= 0


def attributed(layout: ScenarioLayout, memory: int) -> np.ndarray:
    """``bool[M]``: windows whose last ``memory + 1`` windows (of their stretch) overlap an event."""
    m = len(layout)
    if m == 0:
        return np.zeros(0, bool)
    counts = np.concatenate([[0], np.cumsum(layout.overlaps_event)])
    j = np.arange(m)
    back = np.maximum(j - int(memory), layout.stretch_begin[layout.stretch])
    return counts[j + 1] - counts[back] > 0


def episodes(flags: np.ndarray, layout: ScenarioLayout) -> int:
    """Maximal runs of set flags, never joined across two stretches."""
    flags = np.asarray(flags, bool)
    if flags.size == 0:
        return 0
    continues = np.zeros(len(flags), bool)
    continues[1:] = flags[:-1] & (layout.stretch[1:] == layout.stretch[:-1])
    return int(np.count_nonzero(flags & ~continues))


def alarm_outcome(layout: ScenarioLayout, alarms: np.ndarray, memory: int) -> AlarmOutcome:
    """Detections, times to detect and false alarm episodes of ``alarms`` (one per evaluated window)."""
    alarms = np.asarray(alarms, bool)
    m, n_events = len(layout), len(layout.events)
    if m == 0:
        none = np.full(n_events, -1, np.int64)
        return AlarmOutcome(alarms, none, np.full(n_events, np.nan), none, alarms, 0, 0)
    # next alarmed window at or after each window (m: none)
    nxt = np.append(np.minimum.accumulate(np.where(alarms, np.arange(m), m)[::-1])[::-1], m)
    observed = layout.observed
    j = np.where(observed, nxt[np.minimum(layout.lo, m)], m)
    jj = np.minimum(j, m - 1)
    # past the event's last overlapping window, only the stage's look-back reaches it
    tail = (j <= layout.hi + memory) & (layout.stretch_begin[layout.stretch[jj]] <= layout.hi)
    hit = observed & (j < m) & ((j <= layout.hi) | tail)
    detect = np.where(hit, j, -1)
    ttd_ms = np.where(hit, np.maximum(layout.end_time[jj] - layout.onset_time, 0.0) * 1e3, np.nan)
    ttd_frames = np.where(hit, layout.end_row[jj] - layout.onset_row + 1, -1)
    false = alarms & ~attributed(layout, memory)
    return AlarmOutcome(
        alarms=alarms, detect_window=detect.astype(np.int64), ttd_ms=ttd_ms.astype(np.float64),
        ttd_frames=ttd_frames.astype(np.int64), false_alarm=false,
        n_episodes=episodes(alarms, layout), n_false_episodes=episodes(false, layout),
    )


def _stats(values: np.ndarray) -> dict[str, float | None]:
    if values.size == 0:
        return {"median": None, "p95": None}
    return {"median": float(np.median(values)), "p95": float(np.percentile(values, 95))}


def _events_block(layout: ScenarioLayout, outcome: AlarmOutcome, select: np.ndarray) -> dict[str, Any]:
    counted = layout.observed & select
    n = int(counted.sum())
    hit = outcome.detected & counted
    return {
        "n": n,
        "detected": int(hit.sum()),
        "recall": hit.sum() / n if n else None,
        "unobserved": int((select & ~layout.observed).sum()),
        "ttd_ms": _stats(outcome.ttd_ms[hit]),
        "ttd_frames": _stats(outcome.ttd_frames[hit].astype(np.float64)),
    }


def event_summary(layout: ScenarioLayout, outcome: AlarmOutcome) -> dict[str, Any]:
    """Event recall and time to detect, overall and per attack type (JSON-ready)."""
    kinds = layout.events.attack_type
    out = _events_block(layout, outcome, np.ones(len(kinds), bool))
    out["per_attack_type"] = {
        attack_type_name(int(k)): _events_block(layout, outcome, kinds == k) for k in np.unique(kinds)
    }
    return out


def _per_hour(count: int, seconds: float) -> float | None:
    return count / (seconds / 3600.0) if seconds > 0 else None


def false_alarm_summary(layout: ScenarioLayout, outcome: AlarmOutcome) -> dict[str, Any]:
    """Alarm windows, episodes and their hourly rates (JSON-ready).

    ``false_alarms_per_hour`` is ``None`` when the scenario carries no attack
    label at all (every episode would count as false, but nothing says the
    traffic is benign: a suppress capture) or has no benign time.
    """
    m = len(layout)
    return {
        "alarm_windows": int(outcome.alarms.sum()),
        "alarm_rate": float(outcome.alarms.mean()) if m else None,
        "episodes": outcome.n_episodes,
        "false_alarm_episodes": outcome.n_false_episodes if layout.labelled else None,
        "false_alarms_per_hour": _per_hour(outcome.n_false_episodes, layout.benign_seconds)
        if layout.labelled else None,
        "alarm_episodes_per_hour": _per_hour(outcome.n_episodes, layout.observed_seconds),
    }
