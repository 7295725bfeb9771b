"""``IdVocabulary``: the CAN IDs seen in training, with their benign timing.

Index 0 is the unknown slot: an ID never seen in training (the signature of
fuzzing) maps to 0 and becomes a feature, never an error. Known IDs get
indices ``1..n`` in ascending key order. The vocabulary also remembers, per
ID, how often it occurred and its median inter-arrival time in benign
training traffic; graph node features compare a window's timing against it.

An identifier is the pair (frame format, ID): the 11-bit ID 0x100 and the
29-bit ID 0x100 are different messages and get different slots. Both are
packed into one int64 key by :func:`id_keys` (format bit above the 32 ID bits)
so every lookup is a single ``searchsorted``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import attrs
import numpy as np

from fusioncore.data.frames import Frames
from fusioncore.data.windows import source_runs
from fusioncore.errors import ConfigError

__all__ = ["IdVocabulary", "id_keys", "per_id_intervals"]


def _u32(value) -> np.ndarray:
    return np.ascontiguousarray(value, dtype=np.uint32)


def _i64(value) -> np.ndarray:
    return np.ascontiguousarray(value, dtype=np.int64)


def _f64(value) -> np.ndarray:
    return np.ascontiguousarray(value, dtype=np.float64)


def id_keys(can_id: np.ndarray, extended: np.ndarray | None = None) -> np.ndarray:
    """int64 key of each (frame format, ID): ``extended << 32 | can_id``.

    ``extended=None`` infers the format from the value (> 0x7FF: 29-bit), as
    :meth:`Frames.from_columns` does for readers that do not record it.
    """
    can_id = np.asarray(can_id).astype(np.int64)
    ext = can_id > 0x7FF if extended is None else np.asarray(extended, bool)
    return (ext.astype(np.int64) << 32) | can_id


def per_key_intervals(frames: Frames) -> tuple[np.ndarray, np.ndarray]:
    """``(id key, interval_seconds)`` of every pair of consecutive same-ID frames of one file.

    Pairs are taken in stored order inside each run of one source file;
    negative intervals (timestamps that step backwards) are clipped to 0.
    """
    begin, _ = source_runs(frames)
    run = np.zeros(len(frames), np.int64)
    run[begin[1:]] = 1
    run = np.cumsum(run)
    keys = id_keys(frames.can_id, frames.extended)
    order = np.lexsort((keys, run))  # stable: keeps time order within (run, ID)
    k = keys[order]
    t = frames.timestamp[order]
    same = (k[1:] == k[:-1]) & (run[order][1:] == run[order][:-1])
    dt = np.maximum(t[1:] - t[:-1], 0.0)
    return k[1:][same], dt[same]


def per_id_intervals(frames: Frames) -> tuple[np.ndarray, np.ndarray]:
    """``(can_id, interval_seconds)``: :func:`per_key_intervals` with plain ID values."""
    keys, dt = per_key_intervals(frames)
    return (keys & 0xFFFFFFFF).astype(np.uint32), dt


@attrs.frozen(eq=False)
class IdVocabulary:
    """Known CAN IDs (sorted, unique) with per-ID count and benign period.

    ``ids[i]`` (with frame format ``extended[i]``) has index ``i + 1``;
    entries are sorted by :func:`id_keys`, so all 11-bit IDs come before the
    29-bit ones. ``count`` and ``period`` have one entry per index (entry 0,
    the unknown slot, is 0 / NaN). ``period`` is the median interval in
    seconds between consecutive frames of the ID in benign training traffic,
    NaN where it was seen fewer than twice in one file.
    """

    ids: np.ndarray = attrs.field(converter=_u32)
    count: np.ndarray = attrs.field(converter=_i64)
    period: np.ndarray = attrs.field(converter=_f64)
    extended: np.ndarray = attrs.field(default=None)

    def __attrs_post_init__(self) -> None:
        ext = self.ids > 0x7FF if self.extended is None else np.asarray(self.extended, bool)
        object.__setattr__(self, "extended", np.ascontiguousarray(ext, dtype=bool))
        if self.ids.ndim != 1 or self.extended.shape != self.ids.shape or (
            self.ids.size > 1 and np.any(np.diff(self.keys) <= 0)
        ):
            raise ConfigError("IdVocabulary.ids must be a 1-D strictly increasing array (by format, then ID)")
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
        extended = np.asarray(frames.extended)
        found_keys, found_counts = [], []
        gaps: dict[int, list[np.ndarray]] = {}
        for b, e in zip(*source_runs(frames)):
            mask = keep[b:e]
            key = id_keys(np.asarray(frames.can_id[b:e])[mask], extended[b:e][mask])
            if key.size == 0:
                continue
            order = np.argsort(key, kind="stable")  # time order kept within each ID
            key = key[order]
            t = np.asarray(frames.timestamp[b:e])[mask][order]
            run_keys, first, counts = np.unique(key, return_index=True, return_counts=True)
            found_keys.append(run_keys)
            found_counts.append(counts)
            dt = np.maximum(np.diff(t), 0.0)
            for k, lo, n in zip(run_keys.tolist(), first.tolist(), counts.tolist()):
                if n > 1:  # intervals between consecutive frames of the ID in this file
                    gaps.setdefault(k, []).append(dt[lo : lo + n - 1])
        if found_keys:
            all_keys, where = np.unique(np.concatenate(found_keys), return_inverse=True)
            all_counts = np.bincount(where, weights=np.concatenate(found_counts)).astype(np.int64)
        else:
            all_keys, all_counts = np.zeros(0, np.int64), np.zeros(0, np.int64)
        chosen = all_counts >= min_count
        keys, count = all_keys[chosen], all_counts[chosen]
        period = np.full(len(keys) + 1, np.nan)
        for slot, k in enumerate(keys.tolist()):
            if k in gaps:
                dt = np.concatenate(gaps.pop(k))
                lo, hi = (len(dt) - 1) // 2, len(dt) // 2
                part = np.partition(dt, (lo, hi))
                period[slot + 1] = 0.5 * (part[lo] + part[hi])
        return cls(
            ids=(keys & 0xFFFFFFFF).astype(np.uint32), count=np.concatenate(([0], count)), period=period,
            extended=(keys >> 32).astype(bool),
        )

    # -- lookups ------------------------------------------------------------
    def __len__(self) -> int:
        """Number of indices, the unknown slot included (an embedding table's size)."""
        return len(self.ids) + 1

    @property
    def size(self) -> int:
        return len(self)

    @property
    def keys(self) -> np.ndarray:
        """:func:`id_keys` of the entries (strictly increasing)."""
        return id_keys(self.ids, self.extended)

    def lookup(self, can_ids: np.ndarray, extended: np.ndarray | None = None) -> np.ndarray:
        """Vocabulary index (int64) of each CAN ID; 0 for IDs not in the vocabulary.

        ``extended`` gives each ID's frame format (default: inferred from the value).
        """
        query = id_keys(can_ids, extended)
        if self.ids.size == 0:
            return np.zeros(query.shape, np.int64)
        keys = self.keys
        pos = np.searchsorted(keys, query)
        found = keys[np.minimum(pos, len(keys) - 1)] == query
        return np.where(found, pos + 1, 0).astype(np.int64)

    # -- persistence --------------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"ids": self.ids, "extended": self.extended, "count": self.count, "period": self.period}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> IdVocabulary:
        extended = arrays["extended"] if "extended" in arrays else None
        return cls(ids=arrays["ids"], count=arrays["count"], period=arrays["period"], extended=extended)

    def fingerprint(self) -> str:
        """sha256 of the IDs, counts and periods: equal iff the same vocabulary."""
        h = hashlib.sha256(b"IdVocabulary/2")
        for name, arr in self.to_arrays().items():
            h.update(name.encode())
            h.update(arr.tobytes())
        return h.hexdigest()
