"""``ReferenceTable``: what each capture's frames are compared against, for vectorised lookups.

Graph features compare every node of every window with a reference: today's
zero-shot protocol uses one reference for all captures (the training
vocabulary), capture-relative adaptation one per capture (its own
:class:`~fusioncore.adapt.profile.VehicleProfile`). Both are the same table:
the per-ID rows of all references concatenated and sorted by the int64 key
``reference << 33 | extended << 32 | can_id``, so the rows of a whole batch
of windows, whatever capture each came from, are found with one
``searchsorted``. Transitions are a sorted array of ``row_u * n_rows +
row_v`` keys, looked up the same way.

Columns (one value per row, NaN where unknown):

``identity``      int64, the embedding index a detector sees (0 is reserved
                  for "unknown to the reference")
``period``        median inter-arrival time, seconds
``jitter``        robust std of the inter-arrival time, seconds
``share``         the ID's share of the reference's frames
``dlc``           mean DLC
``change_rate``   share of consecutive frames whose payload changed
``byte_change``   [n, 8] share of consecutive frames in which each byte changed
``pairs``         consecutive frame pairs of the ID behind ``byte_change`` (its count - 1)

Per reference: ``median_gap`` (seconds between consecutive frames of the bus).
A table maps capture names (``Frames.sources``) to references; ``default``
serves names it does not list (the training vocabulary serves every capture;
a live stream's profile serves ``<stream>``); -1 means "no reference", i.e.
every ID is unknown.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import attrs
import numpy as np

from fusioncore.adapt.profile import VehicleProfile
from fusioncore.data.vocab import IdVocabulary, id_keys
from fusioncore.errors import ConfigError

__all__ = ["COLUMNS", "ReferenceTable", "period_rank_identity"]

_REF_SHIFT = 33
#: Per-row columns of every table, with the value rows of an ID missing from a reference get.
COLUMNS: dict[str, float] = {
    "period": np.nan, "jitter": np.nan, "share": np.nan, "dlc": np.nan, "change_rate": np.nan,
    "pairs": np.nan,
}


def period_rank_identity(period: np.ndarray, buckets: int) -> np.ndarray:
    """``1..buckets``: the ID's period rank in its profile, cut into equal buckets (fastest first).

    Ties share their mean rank and IDs without a period rank slowest, so the
    identity depends only on the profile's timing: renaming IDs or scaling
    every period leaves it unchanged. It replaces the training vocabulary's
    index, which means nothing on a vehicle the model never saw.
    """
    n = len(period)
    if n == 0:
        return np.zeros(0, np.int64)
    p = np.where(np.isfinite(period), period, np.inf)
    order = np.argsort(p, kind="stable")
    sp = p[order]
    new = np.ones(n, bool)
    new[1:] = sp[1:] != sp[:-1]
    group = np.cumsum(new) - 1
    first = np.flatnonzero(new)
    size = np.diff(np.append(first, n))
    mean_rank = first[group] + (size[group] - 1) / 2.0
    rank = np.empty(n)
    rank[order] = mean_rank
    return 1 + np.minimum((rank * buckets / n).astype(np.int64), buckets - 1)


@attrs.frozen(eq=False)
class ReferenceTable:
    """Concatenated per-ID rows of one or more references; see the module docs."""

    names: tuple[str, ...] = attrs.field(converter=tuple)
    keys: np.ndarray = attrs.field(converter=lambda v: np.ascontiguousarray(v, np.int64))
    identity: np.ndarray = attrs.field(converter=lambda v: np.ascontiguousarray(v, np.int64))
    columns: Mapping[str, np.ndarray] = attrs.field(factory=dict)
    byte_change: np.ndarray | None = None
    transitions: np.ndarray = attrs.field(
        factory=lambda: np.zeros(0, np.int64), converter=lambda v: np.ascontiguousarray(v, np.int64)
    )
    median_gap: np.ndarray = attrs.field(
        factory=lambda: np.zeros(0), converter=lambda v: np.ascontiguousarray(v, np.float64)
    )
    default: int = -1
    num_ids: int = 1  #: embedding size a detector needs: max identity + 1

    def __attrs_post_init__(self) -> None:
        n = len(self.keys)
        if n > 1 and np.any(np.diff(self.keys) <= 0):
            raise ConfigError("ReferenceTable keys must be strictly increasing")
        if len(self.identity) != n or any(len(c) != n for c in self.columns.values()):
            raise ConfigError("ReferenceTable columns must have one value per row")
        if not -1 <= self.default < max(len(self.names), 1):
            raise ConfigError(f"ReferenceTable.default {self.default} names no reference")

    # ----------------------------------------------------------- building
    @classmethod
    def from_vocabulary(cls, vocab: IdVocabulary, name: str = "<training>") -> ReferenceTable:
        """The zero-shot reference: the training vocabulary, serving every capture."""
        return cls(
            names=(name,), keys=vocab.keys, identity=np.arange(1, len(vocab), dtype=np.int64),
            columns={"period": vocab.period[1:]}, default=0, num_ids=len(vocab),
        )

    @classmethod
    def from_profiles(
        cls, profiles: Mapping[str, VehicleProfile], *, buckets: int, default: str | None = None
    ) -> ReferenceTable:
        """One reference per named profile; identity = period-rank bucket within each profile."""
        names = tuple(profiles)
        parts = [profiles[n] for n in names]
        ref = np.concatenate(
            [np.full(len(p), i, np.int64) for i, p in enumerate(parts)] or [np.zeros(0, np.int64)])
        keys = (ref << _REF_SHIFT) | np.concatenate([p.keys for p in parts] or [np.zeros(0, np.int64)])
        offset = np.cumsum([0] + [len(p) for p in parts])
        cat = lambda f: np.concatenate([f(p) for p in parts]) if parts else np.zeros(0)  # noqa: E731
        trans = [
            (p.transitions[:, 0] + o) * int(offset[-1]) + p.transitions[:, 1] + o
            for p, o in zip(parts, offset[:-1])
        ]
        return cls(
            names=names,
            keys=keys,
            identity=cat(lambda p: period_rank_identity(p.period, buckets)).astype(np.int64),
            columns={
                "period": cat(lambda p: p.period), "jitter": cat(lambda p: p.jitter),
                "share": cat(lambda p: p.share), "dlc": cat(lambda p: p.dlc),
                "change_rate": cat(lambda p: p.change_rate),
                "pairs": cat(lambda p: np.maximum(p.count - 1, 0).astype(np.float64)),
            },
            byte_change=np.concatenate([p.byte_change for p in parts]) if parts else np.zeros((0, 8)),
            transitions=np.sort(np.concatenate(trans)) if trans else np.zeros(0, np.int64),
            median_gap=[p.median_gap_s for p in parts],
            default=names.index(default) if default is not None else -1,
            num_ids=buckets + 1,
        )

    # ------------------------------------------------------------ lookups
    def __len__(self) -> int:
        return len(self.keys)

    def refs_for(self, sources: Sequence[str]) -> np.ndarray:
        """Reference index of each capture name (``default`` for names not in the table)."""
        index = {n: i for i, n in enumerate(self.names)}
        return np.asarray([index.get(s, self.default) for s in sources], np.int64)

    def rows(self, ref: np.ndarray, can_id: np.ndarray, extended: np.ndarray) -> np.ndarray:
        """Row of each (reference, ID); -1 where the reference does not know the ID."""
        query = (np.asarray(ref, np.int64) << _REF_SHIFT) | id_keys(can_id, extended)
        if len(self.keys) == 0:
            return np.full(query.shape, -1, np.int64)
        pos = np.searchsorted(self.keys, query)
        found = (self.keys[np.minimum(pos, len(self.keys) - 1)] == query) & (np.asarray(ref) >= 0)
        return np.where(found, pos, -1).astype(np.int64)

    def column(self, name: str, rows: np.ndarray) -> np.ndarray:
        """Values of column ``name`` at ``rows`` (NaN at -1 and for columns this table lacks)."""
        rows = np.asarray(rows, np.int64)
        col = self.columns.get(name)
        if col is None:
            return np.full(rows.shape, COLUMNS.get(name, np.nan))
        values = col[np.maximum(rows, 0)] if len(col) else np.nan
        return np.where(rows >= 0, values, COLUMNS.get(name, np.nan))

    def identity_of(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, np.int64)
        if len(self.identity) == 0:
            return np.zeros(rows.shape, np.int64)
        return np.where(rows >= 0, self.identity[np.maximum(rows, 0)], 0)

    def has_transition(self, row_u: np.ndarray, row_v: np.ndarray) -> np.ndarray:
        """Whether the reference saw ``u -> v`` (False whenever either ID is unknown)."""
        key = np.asarray(row_u, np.int64) * len(self.keys) + np.asarray(row_v, np.int64)
        if len(self.transitions) == 0:
            return np.zeros(key.shape, bool)
        pos = np.searchsorted(self.transitions, key)
        hit = self.transitions[np.minimum(pos, len(self.transitions) - 1)] == key
        return hit & (np.asarray(row_u) >= 0) & (np.asarray(row_v) >= 0)

    def gap_of(self, ref: np.ndarray) -> np.ndarray:
        ref = np.asarray(ref, np.int64)
        if len(self.median_gap) == 0:
            return np.full(ref.shape, np.nan)
        return np.where(ref >= 0, self.median_gap[np.maximum(ref, 0)], np.nan)

    def fingerprint(self) -> str:
        h = hashlib.sha256(b"ReferenceTable/1")
        h.update("\0".join(self.names).encode())
        h.update(repr((self.default, self.num_ids)).encode())
        for arr in (self.keys, self.identity, self.transitions, self.median_gap,
                    *(self.columns[k] for k in sorted(self.columns)),
                    *(a for a in (self.byte_change,) if a is not None)):
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()
