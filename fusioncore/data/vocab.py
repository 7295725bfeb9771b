"""``IdVocabulary``: the CAN IDs seen in training, with their benign timing.

Index 0 is the unknown slot: an ID never seen in training (the signature of
fuzzing) maps to 0 and becomes a feature, never an error. Known IDs get
indices ``1..n`` in ascending ID order. The vocabulary also remembers, per
ID, how often it occurred and its median inter-arrival time in benign
training traffic; graph node features compare a window's timing against it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import attrs
import numpy as np

from fusioncore.data.frames import Frames
from fusioncore.data.windows import source_runs
from fusioncore.errors import ConfigError

__all__ = ["IdVocabulary", "per_id_intervals"]


def _u32(value) -> np.ndarray:
    return np.ascontiguousarray(value, dtype=np.uint32)


def _i64(value) -> np.ndarray:
    return np.ascontiguousarray(value, dtype=np.int64)


def _f64(value) -> np.ndarray:
    return np.ascontiguousarray(value, dtype=np.float64)


def per_id_intervals(frames: Frames) -> tuple[np.ndarray, np.ndarray]:
    """``(can_id, interval_seconds)`` of every pair of consecutive same-ID frames of one file.

    Pairs are taken in stored order inside each run of one source file;
    negative intervals (timestamps that step backwards) are clipped to 0.
    """
    begin, _ = source_runs(frames)
    run = np.zeros(len(frames), np.int64)
    run[begin[1:]] = 1
    run = np.cumsum(run)
    order = np.lexsort((frames.can_id, run))  # stable: keeps time order within (run, ID)
    ids = frames.can_id[order]
    t = frames.timestamp[order]
    same = (ids[1:] == ids[:-1]) & (run[order][1:] == run[order][:-1])
    dt = np.maximum(t[1:] - t[:-1], 0.0)
    return ids[1:][same], dt[same]


@attrs.frozen(eq=False)
class IdVocabulary:
    """Known CAN IDs (sorted, unique) with per-ID count and benign period.

    ``ids[i]`` has index ``i + 1``; ``count`` and ``period`` have one entry per
    index (entry 0, the unknown slot, is 0 / NaN). ``period`` is the median
    interval in seconds between consecutive frames of the ID in benign
    training traffic, NaN where it was seen fewer than twice in one file.
    """

    ids: np.ndarray = attrs.field(converter=_u32)
    count: np.ndarray = attrs.field(converter=_i64)
    period: np.ndarray = attrs.field(converter=_f64)

    def __attrs_post_init__(self) -> None:
        if self.ids.ndim != 1 or (self.ids.size > 1 and np.any(np.diff(self.ids.astype(np.int64)) <= 0)):
            raise ConfigError("IdVocabulary.ids must be a 1-D strictly increasing array")
        n = len(self.ids) + 1
        if self.count.shape != (n,) or self.period.shape != (n,):
            raise ConfigError(
                f"IdVocabulary.count and .period need {n} entries (unknown slot + {n - 1} IDs), "
                f"got {self.count.shape} and {self.period.shape}"
            )

    @classmethod
    def fit(
        cls, frames: Frames, *, benign_only: bool = True, min_count: int = 1, rows: np.ndarray | None = None
    ) -> IdVocabulary:
        """Learn the vocabulary from training frames.

        ``benign_only`` drops attack frames first, so injected IDs stay unknown
        and a spoofed ID's period is its owner's. IDs seen fewer than
        ``min_count`` times are left out (they will map to unknown). ``rows``
        (a boolean mask) fits on those rows only, exactly as if ``frames.take(rows)``
        had been passed, without copying the columns.

        The work runs file by file (one run of ``frames.source``), so besides
        the intervals themselves (8 bytes per frame) memory stays at one
        file's share: a 20 M-frame training pool costs a few hundred MB, not GB.
        """
        keep = np.ones(len(frames), bool) if rows is None else np.asarray(rows, bool).copy()
        if keep.shape != (len(frames),):
            raise ConfigError(f"rows must be a boolean mask of {len(frames)} frames, got {keep.shape}")
        if benign_only:
            keep &= np.asarray(frames.label) == 0
        found_ids, found_counts = [], []
        gaps: dict[int, list[np.ndarray]] = {}
        for b, e in zip(*source_runs(frames)):
            mask = keep[b:e]
            can_id = np.asarray(frames.can_id[b:e])[mask]
            if can_id.size == 0:
                continue
            order = np.argsort(can_id, kind="stable")  # time order kept within each ID
            can_id = can_id[order]
            t = np.asarray(frames.timestamp[b:e])[mask][order]
            run_ids, first, counts = np.unique(can_id, return_index=True, return_counts=True)
            found_ids.append(run_ids)
            found_counts.append(counts)
            dt = np.maximum(np.diff(t), 0.0)
            for can, lo, n in zip(run_ids.tolist(), first.tolist(), counts.tolist()):
                if n > 1:  # intervals between consecutive frames of the ID in this file
                    gaps.setdefault(can, []).append(dt[lo : lo + n - 1])
        if found_ids:
            all_ids, where = np.unique(np.concatenate(found_ids), return_inverse=True)
            all_counts = np.bincount(where, weights=np.concatenate(found_counts)).astype(np.int64)
        else:
            all_ids, all_counts = np.zeros(0, np.uint32), np.zeros(0, np.int64)
        chosen = all_counts >= min_count
        ids, count = all_ids[chosen], all_counts[chosen]
        period = np.full(len(ids) + 1, np.nan)
        for slot, can in enumerate(ids.tolist()):
            if can in gaps:
                dt = np.concatenate(gaps.pop(can))
                lo, hi = (len(dt) - 1) // 2, len(dt) // 2
                part = np.partition(dt, (lo, hi))
                period[slot + 1] = 0.5 * (part[lo] + part[hi])
        return cls(ids=ids, count=np.concatenate(([0], count)), period=period)

    # -- lookups ------------------------------------------------------------
    def __len__(self) -> int:
        """Number of indices, the unknown slot included (an embedding table's size)."""
        return len(self.ids) + 1

    @property
    def size(self) -> int:
        return len(self)

    def lookup(self, can_ids: np.ndarray) -> np.ndarray:
        """Vocabulary index (int64) of each CAN ID; 0 for IDs not in the vocabulary."""
        can_ids = np.asarray(can_ids)
        if self.ids.size == 0:
            return np.zeros(can_ids.shape, np.int64)
        pos = np.searchsorted(self.ids, can_ids)
        found = self.ids[np.minimum(pos, len(self.ids) - 1)] == can_ids
        return np.where(found, pos + 1, 0).astype(np.int64)

    # -- persistence --------------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"ids": self.ids, "count": self.count, "period": self.period}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> IdVocabulary:
        return cls(ids=arrays["ids"], count=arrays["count"], period=arrays["period"])

    def fingerprint(self) -> str:
        """sha256 of the IDs, counts and periods: equal iff the same vocabulary."""
        h = hashlib.sha256(b"IdVocabulary/1")
        for name, arr in self.to_arrays().items():
            h.update(name.encode())
            h.update(arr.tobytes())
        return h.hexdigest()
