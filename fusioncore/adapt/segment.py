"""The reference segment of a capture: its first ``warmup_s`` seconds, per file.

A capture's reference segment is the prefix of its rows (in stored order)
that ends at the first row timestamped ``warmup_s`` or more after the
capture's first frame (timestamps that step backwards do not end it early:
the running maximum decides). It is what a vehicle profile is learned from
and what score statistics are taken on, so it is never scored or counted in a
metric. Windows are classified against it:

* *reference*: wholly inside the segment;
* *straddling*: starting inside it and ending after it -- neither reference
  nor scored (they would mix both);
* *scored*: starting at or after the segment's end.
"""

from __future__ import annotations

import numpy as np

from fusioncore.data.frames import Frames
from fusioncore.data.windows import source_runs

__all__ = ["reference_ends", "reference_rows", "window_classes"]


def reference_ends(frames: Frames, warmup_s: float) -> tuple[np.ndarray, np.ndarray]:
    """``(begin, end)`` rows of each file run's reference segment (``end`` exclusive).

    One vectorised search per file run (a handful per dataset), none per frame.
    ``warmup_s <= 0`` gives empty segments.
    """
    begin, stop = source_runs(frames)
    if warmup_s <= 0 or len(frames) == 0:
        return begin, begin.copy()
    end = np.empty_like(begin)
    t = frames.timestamp
    for r, (b, e) in enumerate(zip(begin.tolist(), stop.tolist())):
        elapsed = np.maximum.accumulate(t[b:e]) - t[b]
        end[r] = b + int(np.searchsorted(elapsed, warmup_s, side="left"))
    return begin, end


def reference_rows(frames: Frames, warmup_s: float) -> np.ndarray:
    """Boolean mask of the rows inside some file's reference segment."""
    begin, end = reference_ends(frames, warmup_s)
    mask = np.zeros(len(frames), bool)
    for b, e in zip(begin.tolist(), end.tolist()):
        mask[b:e] = True
    return mask


def window_classes(
    frames: Frames, starts: np.ndarray, size: int, warmup_s: float, profile_s: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Per window start: ``(reference, straddling)`` masks against each file's segment.

    With ``profile_s > 0`` the segment's first ``profile_s`` seconds are kept
    for the profile alone: reference windows must lie wholly after them (so
    their features are out-of-sample for the profile) and the windows that
    overlap them count as straddling.
    """
    starts = np.asarray(starts, np.int64)
    begin, end = reference_ends(frames, warmup_s)
    if len(begin) == 0 or len(starts) == 0:
        return np.zeros(len(starts), bool), np.zeros(len(starts), bool)
    _, first = reference_ends(frames, profile_s) if profile_s > 0 else (begin, begin)
    run = np.searchsorted(begin, starts, side="right") - 1
    seg_end = end[run]
    inside = starts < seg_end
    reference = inside & (starts + size <= seg_end) & (starts >= first[run])
    return reference, inside & ~reference
