"""Detector / fusion / validation splits of the training files: time blocks, never random windows.

Every training file (every run of ``frames.source``) is cut in time; no
window is ever assigned at random, and no window is in two splits. Two
policies:

``contiguous``
    Each file is cut into three consecutive blocks by its shares of rows
    (default 70 / 15 / 15 %): detector, fusion, validation. Fine when attacks
    are spread over every file; when a file's attacks all sit in its first
    half, fusion and validation get none of them.

``attack-aware`` (default)
    Each file is cut into a grid of ``blocks`` contiguous blocks of windows.
    A file without attacks keeps the contiguous layout. In a file with
    attacks, the blocks holding attack windows are ranked in time and shared
    out by rank -- the earliest to the detectors, the next to fusion, the
    latest to validation, each split of positive share getting at least one
    when there are enough -- and the benign blocks fill each split up to its
    share, again in time order. So when the training files contain attacks,
    fusion and validation get attack windows, and every attack type of a file
    with at least three attack blocks reaches every split. Attack types whose
    files have fewer attack blocks are shared out over all training files of
    that type together, with priority detector > validation > fusion (two
    blocks: detector and validation; three: one each).

Both policies then **purge** at every cut between two splits: the first
windows after the cut are dropped so that at least ``purge`` window lengths
of frames separate any two windows of different splits (with overlapping
windows, enough more are dropped that no frame is in two splits). Whole
files can be sent to later splits with per-file shares (``run_shares``:
``split.fusion_attacks`` files get ``(0, fusion, val)``, a dataset's
``validation`` files ``(0, 0, 1)``).

:func:`summarize_splits` counts windows and attack windows per split and
attack type, for the preflight table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs
import numpy as np

from fusioncore.data.frames import ATTACK_TYPES, Frames
from fusioncore.data.windows import WindowSpec, source_runs, window_labels, window_starts
from fusioncore.errors import ConfigError

__all__ = [
    "POLICIES",
    "SPLITS",
    "SplitCounts",
    "SplitPolicy",
    "SplitSummary",
    "TimeSplit",
    "plan_splits",
    "summarize_splits",
]

POLICIES = ("attack-aware", "contiguous")
SPLITS = ("train", "fusion", "val")
_PRIORITY = (0, 2, 1)  # detector > validation > fusion


def _check_policy(instance, attribute, value) -> None:
    if value not in POLICIES:
        raise ConfigError(f"split policy must be one of {', '.join(POLICIES)}, got {value!r}")


def _check_shares(instance, attribute, value) -> None:
    if len(value) != 3 or any(s < 0 for s in value) or sum(value) <= 0:
        raise ConfigError(f"split shares must be 3 numbers >= 0 with a positive sum, got {list(value)}")


def _at_least(minimum: int):
    def check(instance, attribute, value) -> None:
        if value < minimum:
            raise ConfigError(f"split {attribute.name} must be >= {minimum}, got {value}")

    return check


@attrs.frozen
class SplitPolicy:
    """How training files become the detector (``train``), ``fusion`` and ``val`` splits."""

    name: str = attrs.field(default="attack-aware", validator=_check_policy)
    shares: tuple[float, float, float] = attrs.field(
        default=(0.7, 0.15, 0.15), converter=lambda v: tuple(float(x) for x in v), validator=_check_shares
    )
    purge: int = attrs.field(default=1, converter=int, validator=_at_least(0))
    blocks: int = attrs.field(default=20, converter=int, validator=_at_least(3))


@attrs.frozen(eq=False)
class TimeSplit:
    """Window starts of each split (row order) and how many windows the purge dropped."""

    starts: Mapping[str, np.ndarray]
    labels: Mapping[str, np.ndarray]
    attack_types: Mapping[str, np.ndarray]
    purged: int
    policy: SplitPolicy

    def __getitem__(self, name: str) -> np.ndarray:
        return self.starts[name]


def plan_splits(
    frames: Frames,
    spec: WindowSpec,
    policy: SplitPolicy | None = None,
    *,
    run_shares: np.ndarray | None = None,
) -> TimeSplit:
    """Assign every window of ``frames`` (the training files) to one split, or to none.

    ``run_shares[r]`` overrides the policy's shares for the r-th file (run of
    ``frames.source``). Pure numpy; loops run over files and blocks only.
    """
    policy = policy or SplitPolicy()
    starts = window_starts(frames, spec)
    labels, types = window_labels(frames, starts, spec.size)
    begin, _ = source_runs(frames)
    table = np.tile(np.asarray(policy.shares, np.float64), (len(begin), 1))
    if run_shares is not None:
        table = np.asarray(run_shares, np.float64).reshape(len(begin), 3)
        if (table < 0).any() or (table.sum(axis=1) <= 0).any():
            raise ConfigError("per-file split shares must be >= 0 with a positive sum")
    run = np.searchsorted(begin, starts, side="right") - 1
    # windows of run r are starts[lo[r]:hi[r]] (starts are in row order)
    lo = np.searchsorted(run, np.arange(len(begin)), side="left")
    hi = np.searchsorted(run, np.arange(len(begin)), side="right")
    if policy.name == "contiguous":
        assign = _contiguous(frames, starts, run, table, spec.size)
    else:
        assign = _attack_aware(labels, types, lo, hi, table, policy)
    kept = assign >= 0
    assign = _purge(assign, run, _purge_distance(policy.purge, spec))
    purged = int(np.count_nonzero(kept & (assign < 0)))
    out = {name: np.flatnonzero(assign == k) for k, name in enumerate(SPLITS)}
    return TimeSplit(
        starts={n: starts[i] for n, i in out.items()},
        labels={n: labels[i] for n, i in out.items()},
        attack_types={n: types[i] for n, i in out.items()},
        purged=purged,
        policy=policy,
    )


def _contiguous(
    frames: Frames, starts: np.ndarray, run: np.ndarray, table: np.ndarray, size: int
) -> np.ndarray:
    """Today's layout: three consecutive blocks of each file's rows; straddling windows dropped."""
    begin, end = source_runs(frames)
    bounds = np.concatenate([np.zeros((len(table), 1)), np.cumsum(table, 1) / table.sum(1, keepdims=True)], 1)
    length = (end - begin)[run]
    assign = np.full(len(starts), -1, np.int8)
    for k in range(3):
        first = begin[run] + np.floor(length * bounds[run, k]).astype(np.int64)
        last = begin[run] + np.floor(length * bounds[run, k + 1]).astype(np.int64)
        assign[(starts >= first) & (starts + size <= last)] = k
    return assign


def _largest_remainder(total: int, weights: np.ndarray) -> np.ndarray:
    """``total`` split into integers proportional to ``weights`` (ties to the earlier split)."""
    weights = np.asarray(weights, np.float64)
    if total <= 0 or weights.sum() <= 0:
        return np.zeros(len(weights), np.int64)
    exact = total * weights / weights.sum()
    out = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - out), kind="stable")
    out[order[: total - out.sum()]] += 1
    return out


def _quotas(k: int, shares: np.ndarray) -> np.ndarray:
    """How many of k attack blocks go to (train, fusion, val): one each by priority, then by share."""
    quota = np.zeros(3, np.int64)
    left = k
    for s in _PRIORITY:
        if shares[s] > 0 and left > 0:
            quota[s] += 1
            left -= 1
    return quota + _largest_remainder(left, shares)


def _attack_aware(
    labels: np.ndarray, types: np.ndarray, lo: np.ndarray, hi: np.ndarray, table: np.ndarray,
    policy: SplitPolicy,
) -> np.ndarray:
    assign = np.full(len(labels), -1, np.int8)
    grids = []  # per run: (block edges in window index, block split, block attack type)
    pools: dict[int, list[tuple[int, int]]] = {}  # attack type -> [(run, block)] of sparse groups
    for r in range(len(lo)):
        n = int(hi[r] - lo[r])
        g = min(policy.blocks, n)
        edges = lo[r] + (np.arange(g + 1) * n) // max(g, 1)
        split = np.full(g, -1, np.int64)
        kind = np.zeros(g, np.int64)
        if g:
            block = np.repeat(np.arange(g), np.diff(edges))
            attack = labels[lo[r] : hi[r]] > 0
            counts = np.zeros((g, len(ATTACK_TYPES)), np.int64)
            np.add.at(counts, (block[attack], types[lo[r] : hi[r]][attack].astype(np.int64)), 1)
            kind = np.where(counts.sum(1) > 0, np.argmax(counts, axis=1), 0)
            for t in np.unique(kind[kind > 0]):
                ranked = np.flatnonzero(kind == t)  # time order
                if table[r, 0] > 0 and len(ranked) < int((table[r] > 0).sum()):
                    pools.setdefault(int(t), []).extend((r, int(b)) for b in ranked)
                else:
                    split[ranked] = _by_rank(len(ranked), table[r])
        grids.append((edges, split, kind))
    shares = np.asarray(policy.shares, np.float64)
    for blocks in pools.values():  # sparse attack types: shared out over all their files
        for (r, b), s in zip(blocks, _by_rank(len(blocks), shares)):
            grids[r][1][b] = s
    for r, (edges, split, _) in enumerate(grids):
        benign = np.flatnonzero(split < 0)
        target = _largest_remainder(len(split), table[r])
        have = np.bincount(split[split >= 0], minlength=3)
        need = np.maximum(target - have, 0)
        fill = _largest_remainder(len(benign), need if need.sum() else table[r])
        split[benign] = np.repeat(np.arange(3), fill)  # benign blocks in time order
        assign[edges[0] : edges[-1]] = np.repeat(split, np.diff(edges)).astype(np.int8)
    return assign


def _by_rank(k: int, shares: np.ndarray) -> np.ndarray:
    """Splits of k blocks in time order: the earliest to train, then fusion, the latest to val."""
    return np.repeat(np.arange(3), _quotas(k, shares))


def _purge_distance(purge: int, spec: WindowSpec) -> int:
    """Window positions to clear after a cut so that ``purge`` window lengths of frames separate
    two splits (and, with overlapping windows, no frame is shared)."""
    return -(-(purge + 1) * spec.size // spec.stride) - 1


def _purge(assign: np.ndarray, run: np.ndarray, distance: int) -> np.ndarray:
    """Drop every window preceded within ``distance`` positions (same file) by one of another split."""
    out = assign.copy()
    for d in range(1, distance + 1):
        if d >= len(assign):
            break
        prev, cur = assign[:-d], assign[d:]
        clash = (prev >= 0) & (cur >= 0) & (prev != cur) & (run[:-d] == run[d:])
        out[d:][clash] = -1
    return out


# ---------------------------------------------------------------- summaries
@attrs.frozen
class SplitCounts:
    """Windows of one split: in all, attack windows, and attack windows per attack type."""

    name: str
    windows: int
    attack_windows: int
    by_type: Mapping[str, int] = attrs.field(factory=dict)

    def to_json(self) -> dict:
        return {"windows": self.windows, "attack_windows": self.attack_windows, "by_type": dict(self.by_type)}


@attrs.frozen
class SplitSummary:
    """:class:`SplitCounts` of every split, in order, for a preflight table or a report."""

    splits: tuple[SplitCounts, ...]

    def __getitem__(self, name: str) -> SplitCounts:
        for counts in self.splits:
            if counts.name == name:
                return counts
        raise KeyError(name)

    @property
    def attack_types(self) -> tuple[str, ...]:
        """Every attack type with a window in any split, in :data:`ATTACK_TYPES` order."""
        seen = {t for c in self.splits for t in c.by_type}
        return tuple(t for t in ATTACK_TYPES if t in seen)

    def missing(self, split: str, reference: str = "train") -> tuple[str, ...]:
        """Attack types that ``reference`` has and ``split`` lacks."""
        have = self[split].by_type
        return tuple(t for t in self[reference].by_type if not have.get(t))

    def to_json(self) -> dict:
        return {c.name: c.to_json() for c in self.splits}


def summarize_splits(splits: Mapping[str, object] | Sequence[tuple[str, object]]) -> SplitSummary:
    """Counts per split of anything with ``labels`` and ``attack_types`` arrays (a ``SplitWindows``),
    or of ``(labels, attack_types)`` pairs."""
    items = splits.items() if isinstance(splits, Mapping) else splits
    out = []
    for name, split in items:
        labels, types = (split.labels, split.attack_types) if hasattr(split, "labels") else split
        labels, types = np.asarray(labels), np.asarray(types)
        codes = np.bincount(types[labels > 0].astype(np.int64), minlength=len(ATTACK_TYPES))
        by_type = {ATTACK_TYPES[c]: int(n) for c, n in enumerate(codes) if n and c > 0}
        out.append(SplitCounts(name, len(labels), int(np.count_nonzero(labels)), by_type))
    return SplitSummary(tuple(out))
