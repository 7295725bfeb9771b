"""The windows of one split (``SplitWindows``) and the collate function that builds their graphs.

A split is columns (``Frames``) plus window start rows, labels and attack
types; with capture adaptation also each window's reference flag and the
reference table of its captures. :class:`BuildBatch` turns a loader's window
indices into one PyG batch, from a split's stored graphs when there are any.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs
import numpy as np

from fusioncore.adapt.reference import ReferenceTable
from fusioncore.data.frames import ATTACK_TYPES, Frames
from fusioncore.data.graph_store import GraphStore
from fusioncore.data.graphs import WindowGraphBuilder
from fusioncore.data.splits import SplitPolicy, plan_splits
from fusioncore.data.windows import WindowSpec, source_runs

__all__ = ["BuildBatch", "SplitWindows", "file_shares", "split_time_blocks"]


@attrs.frozen(eq=False)
class SplitWindows:
    """One split: its frames, window start rows, labels and per-file hashes.

    ``tag`` says how a derived split (a cross-fitting fold, injected windows)
    was made; it is part of the split's fingerprint, so outputs stored for one
    recipe are never served for another.
    ``reference`` flags the windows of a capture's reference segment (see the
    module docs); ``table`` is the per-capture reference graph building uses
    for this split's captures (None: the training vocabulary).
    """

    name: str
    frames: Frames
    starts: np.ndarray
    labels: np.ndarray
    attack_types: np.ndarray
    file_hashes: tuple[str, ...] = ()
    tag: str = ""
    reference: np.ndarray | None = None
    table: ReferenceTable | None = None

    def __attrs_post_init__(self) -> None:
        if self.reference is None:
            object.__setattr__(self, "reference", np.zeros(len(self.starts), bool))

    @property
    def window_ids(self) -> np.ndarray:
        return np.arange(len(self.starts), dtype=np.int64)

    @property
    def capture(self) -> np.ndarray:
        """Index into ``frames.sources`` of each window's capture file."""
        return self.frames.source[self.starts].astype(np.int64)

    @property
    def scored(self) -> np.ndarray:
        """Windows that count: everything but reference windows."""
        return ~self.reference

    def __len__(self) -> int:
        return len(self.starts)

    def subset(self, mask: np.ndarray, name: str | None = None, tag: str | None = None) -> SplitWindows:
        return attrs.evolve(
            self,
            name=name or self.name,
            starts=self.starts[mask],
            labels=self.labels[mask],
            attack_types=self.attack_types[mask],
            tag=self.tag if tag is None else tag,
            reference=self.reference[mask],
        )


def split_time_blocks(
    frames: Frames, spec: WindowSpec, shares: Sequence[float], run_shares: np.ndarray | None = None
) -> list[np.ndarray]:
    """Window starts of three consecutive time blocks of every file (the ``contiguous`` policy
    without purge): ``shares`` cut each file's rows in order, ``run_shares[r]`` overrides them
    for the r-th file. Windows straddling a cut are dropped, so no frame is in two blocks."""
    plan = plan_splits(frames, spec, SplitPolicy("contiguous", shares, purge=0), run_shares=run_shares)
    return [plan.starts[name] for name in ("train", "fusion", "val")]


def file_shares(frames: Frames, shares: Sequence[float], fusion_attacks: Sequence[str],
                validation: Sequence) -> np.ndarray | None:
    """Per-file shares: held-out attack types go to fusion + val, validation files to val.

    Files of a held-out attack type carry attacks the detectors never
    trained on, so a fusion fitted on them learns what to do when the
    supervised detector meets an attack it does not know (the situation of
    every unknown-attack test). None: every file gets ``shares``.
    """
    from fusioncore.data.formats import attack_type_from_filename

    validation = {str(p) for p in validation}
    if not fusion_attacks and not validation:
        return None
    held = {ATTACK_TYPES.index(a) for a in fusion_attacks}
    begin, _ = source_runs(frames)
    table = np.tile(np.asarray(shares, dtype=np.float64), (len(begin), 1))
    for r, b in enumerate(begin):
        name = frames.sources[int(frames.source[b])]
        path = name if name in validation else name.rsplit("#", 1)[0]  # file#bus sources
        if path in validation:
            table[r] = (0.0, 0.0, 1.0)
        elif attack_type_from_filename(path) in held:
            table[r] = (0.0, shares[1], shares[2])
    return table


class BuildBatch:
    """collate_fn: window indices -> one PyG batch (picklable for worker processes).

    ``store(n)`` (:meth:`CANDataModule._stored_graphs`) is told how many
    windows are about to be built and returns the split's graphs built once,
    if there are any; ``rows`` maps this loader's windows to the store's.
    """

    def __init__(self, builder: WindowGraphBuilder, split: SplitWindows, rows: np.ndarray | None = None,
                 store: Callable[[int], GraphStore | None] | None = None) -> None:
        self.builder, self.split, self.rows, self._store = builder, split, rows, store

    def __call__(self, indices: Sequence[int]):
        idx = np.asarray(indices, dtype=np.int64)
        stored = self._store(len(idx)) if self._store is not None else None
        if stored is not None:
            return stored.take(self.rows[idx], idx)
        builder = self.builder if self.split.table is None else self.builder.with_reference(self.split.table)
        return builder.build(self.split.frames, self.split.starts[idx], window_ids=idx)
