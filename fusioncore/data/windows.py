"""Windows: fixed-length runs of consecutive frames of one capture file.

A window is identified by the row of its first frame in a :class:`Frames`
(``starts``) and has :attr:`WindowSpec.size` frames. Windows never straddle
two files: every contiguous run of equal ``frames.source`` is windowed on its
own, and a trailing partial window of a run is dropped (never padded).

Frames are taken in the order they are stored, which readers keep as the
file order. Some captures have timestamps that step backwards; rows are not
re-sorted because order on the bus is what the graph edges describe. Later
stages clip negative time deltas to 0 instead (see
:mod:`fusioncore.data.graphs`).
"""

from __future__ import annotations

import attrs
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from fusioncore.data.frames import ATTACK_TYPES, Frames
from fusioncore.errors import ConfigError

__all__ = ["WindowSpec", "source_runs", "validate_starts", "window_labels", "window_starts"]

_UNKNOWN_ATTACK = ATTACK_TYPES.index("unknown")
_CHUNK = 1 << 16  # windows per gather when labelling or validating a whole split


def _positive(instance, attribute, value) -> None:
    if value < 1:
        raise ConfigError(f"WindowSpec.{attribute.name} must be >= 1, got {value}")


@attrs.frozen
class WindowSpec:
    """Window length and step in frames (``stride < size`` gives overlapping windows)."""

    size: int = attrs.field(default=100, converter=int, validator=_positive)
    stride: int = attrs.field(default=100, converter=int, validator=_positive)


def source_runs(frames: Frames) -> tuple[np.ndarray, np.ndarray]:
    """``(begin, end)`` rows of every maximal run of frames from one source file."""
    n = len(frames)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    change = np.flatnonzero(frames.source[1:] != frames.source[:-1]) + 1
    begin = np.concatenate(([0], change)).astype(np.int64)
    end = np.concatenate((change, [n])).astype(np.int64)
    return begin, end


def window_starts(frames: Frames, spec: WindowSpec) -> np.ndarray:
    """First row of every full window, run by run of ``frames.source``, in row order."""
    begin, end = source_runs(frames)
    length = end - begin
    per_run = np.where(length >= spec.size, (length - spec.size) // spec.stride + 1, 0)
    total = int(per_run.sum())
    # k-th window of a run starts at begin + k * stride; k = position minus the run's offset.
    offset = np.cumsum(per_run) - per_run
    k = np.arange(total, dtype=np.int64) - np.repeat(offset, per_run)
    return np.repeat(begin, per_run) + k * spec.stride


def _window_rows(column: np.ndarray, starts: np.ndarray, size: int) -> np.ndarray:
    """``column`` gathered per window, shape ``(len(starts), size)``; work is O(windows * size)."""
    if len(column) < size:
        return np.zeros((0, size), column.dtype)
    return sliding_window_view(column, size)[starts]


def _chunks(starts: np.ndarray) -> list[np.ndarray]:
    """Slices of at most ``_CHUNK`` windows, bounding the memory of per-window gathers."""
    return [starts[lo : lo + _CHUNK] for lo in range(0, len(starts), _CHUNK)]


def validate_starts(frames: Frames, starts: np.ndarray, size: int) -> np.ndarray:
    """``starts`` as int64, or :class:`ConfigError` if a window leaves the frames or a file."""
    starts = np.asarray(starts)
    if starts.ndim != 1 or not (starts.size == 0 or np.issubdtype(starts.dtype, np.integer)):
        raise ConfigError(f"window starts must be a 1-D integer array, got {starts.dtype}{starts.shape}")
    starts = starts.astype(np.int64, copy=False)
    if starts.size == 0:
        return starts
    bad = (starts < 0) | (starts + size > len(frames))
    if bad.any():
        raise ConfigError(
            f"{int(bad.sum())} window(s) of {size} frames leave the {len(frames)} frames, "
            f"first at start row {int(starts[bad][0])}"
        )
    # Checked on the windows' own rows so a batch costs O(batch), not O(all frames).
    crossing = np.concatenate(
        [
            (rows != rows[:, :1]).any(axis=1)
            for rows in (_window_rows(frames.source, part, size) for part in _chunks(starts))
        ]
    )
    if crossing.any():
        row = int(starts[crossing][0])
        raise ConfigError(
            f"{int(crossing.sum())} window(s) straddle two source files, first at start row {row} "
            f"({frames.sources[frames.source[row]]!r})"
        )
    return starts


def window_labels(frames: Frames, starts: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per window: ``label`` (1 if any frame is an attack) and ``attack_type``.

    The attack type is the most frequent non-zero ``attack_type`` among the
    window's *attack* frames (``label > 0``); ties go to the smaller code.
    Counting only attack frames keeps benign windows at type 0 even when a
    reader tags every row of an attack file with the file's attack type. An
    attack frame with type 0 counts as ``unknown``, so ``label == 1`` exactly
    when ``attack_type != 0``.
    """
    starts = validate_starts(frames, starts, size)
    label = np.zeros(len(starts), np.uint8)
    attack_type = np.zeros(len(starts), np.uint8)
    for lo in range(0, len(starts), _CHUNK):
        part = slice(lo, lo + _CHUNK)
        label[part], attack_type[part] = _labels(frames, starts[part], size)
    return label, attack_type


def _labels(frames: Frames, starts: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    attack = _window_rows(frames.label, starts, size) > 0
    kinds = np.where(attack, _window_rows(frames.attack_type, starts, size), 0)
    kinds[attack & (kinds == 0)] = _UNKNOWN_ATTACK
    label = attack.any(axis=1).astype(np.uint8)
    present = np.unique(kinds[attack])
    if present.size == 0:
        return label, np.zeros(len(starts), np.uint8)
    # One count per attack type that occurs: a handful, not one per frame or window.
    counts = np.stack([np.count_nonzero(kinds == k, axis=1) for k in present], axis=1)
    return label, np.where(label > 0, present[np.argmax(counts, axis=1)], 0).astype(np.uint8)
