"""What adaptation does to a data split: reference windows, profiles, per-capture bookkeeping.

Called by :class:`~fusioncore.data.datamodule.CANDataModule` (one call per
split), so the data module only routes arrays:

* training blocks (:func:`training_windows`): windows overlapping a file's
  reference segment leave the block, and, when the adapter learns from
  references, every file's reference windows join each block flagged
  ``reference`` (detectors never train on them; they supply score statistics
  for the fusion and validation blocks);
* test scenarios (:func:`test_windows`): windows inside the reference
  segment are flagged (kept only when the adapter needs their scores),
  windows straddling its end are dropped, so every metric counts exactly the
  windows after the segment, whatever the adapter;
* :func:`fit_profiles`: one profile per capture from its reference rows;
* :func:`capture_references`: what each reference held, attack frames
  included, for the report.
"""

from __future__ import annotations

import attrs
import numpy as np

from fusioncore.adapt.base import Adapter
from fusioncore.adapt.profile import VehicleProfile
from fusioncore.adapt.segment import reference_ends, window_classes
from fusioncore.data.frames import Frames
from fusioncore.data.windows import WindowSpec, window_starts

__all__ = ["CaptureReference", "capture_references", "fit_profiles", "test_windows", "training_windows"]


@attrs.frozen
class CaptureReference:
    """A capture's reference segment as a report shows it."""

    source: str
    frames: int
    seconds: float
    windows: int
    attack_frames: int

    def to_json(self) -> dict:
        return {"frames": self.frames, "seconds": round(self.seconds, 3), "windows": self.windows,
                "attack_frames": self.attack_frames}


def training_windows(
    frames: Frames, blocks: list[np.ndarray], spec: WindowSpec, adapter: Adapter
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(starts, reference mask)`` of each training block (see the module docs)."""
    if not adapter.uses_reference:
        return [(b, np.zeros(len(b), bool)) for b in blocks]
    every = window_starts(frames, spec)
    ref, _ = window_classes(frames, every, spec.size, adapter.warmup_s, adapter.profile_s)
    ref_starts = every[ref]
    out = []
    for block in blocks:
        inside, straddle = window_classes(frames, block, spec.size, adapter.warmup_s, adapter.profile_s)
        kept = block[~(inside | straddle)]
        starts = np.concatenate([ref_starts, kept])
        mask = np.concatenate([np.ones(len(ref_starts), bool), np.zeros(len(kept), bool)])
        order = np.argsort(starts, kind="stable")
        out.append((starts[order], mask[order]))
    return out


def test_windows(frames: Frames, spec: WindowSpec, adapter: Adapter) -> tuple[np.ndarray, np.ndarray]:
    """``(starts, reference mask)`` of a test scenario: scored windows, plus reference ones if needed."""
    starts = window_starts(frames, spec)
    ref, straddle = window_classes(frames, starts, spec.size, adapter.warmup_s, adapter.profile_s)
    keep = ~straddle & (~ref | adapter.uses_reference)
    return starts[keep], ref[keep]


def fit_profiles(adapter: Adapter, frames: Frames) -> dict[str, VehicleProfile]:
    """One profile per capture (file run) of ``frames``, from its reference rows."""
    begin, end = reference_ends(frames, adapter.profile_s or adapter.warmup_s)
    out: dict[str, VehicleProfile] = {}
    for b, e in zip(begin.tolist(), end.tolist()):
        if e > b:
            name = frames.sources[int(frames.source[b])]
            out[name] = adapter.fit_profile(frames[b:e], source=name)
    return out


def capture_references(frames: Frames, spec: WindowSpec, warmup_s: float) -> dict[str, CaptureReference]:
    """Per capture: frames, seconds, windows and attack frames of its reference segment."""
    begin, end = reference_ends(frames, warmup_s)
    out = {}
    for b, e in zip(begin.tolist(), end.tolist()):
        name = frames.sources[int(frames.source[b])] if len(frames) > b else ""
        t = frames.timestamp[b:e]
        out[name] = CaptureReference(
            source=name, frames=e - b, seconds=float(t.max() - t[0]) if e > b else 0.0,
            windows=max((e - b - spec.size) // spec.stride + 1, 0),
            attack_frames=int(np.count_nonzero(frames.label[b:e])),
        )
    return out
