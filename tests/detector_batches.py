"""Random window-graph batches shaped like the real builder's, for detector tests.

One toy "vehicle" (``vehicle_seed``) fixes a payload prototype per CAN ID.
A benign window picks 20-55 distinct known IDs (vocabulary indices
``1..num_ids-1``) and a 100-frame sequence that shows every one of them; nodes
are the IDs, edges the unique transitions ``ID(t) -> ID(t+1)`` (self-loops when
an ID repeats). Node features: ``count`` (standardised occurrences) and the ID's
payload prototype plus noise; edge features: transition count and noise.

Attack windows (``attack_type``):

* ``1`` flood: an unknown ID (vocabulary index 0, random payload) takes about
  40 % of the frames after the first ``n`` -- the fuzzing / DoS signature;
* ``2`` payload: one known ID's payload jumps (malfunction / spoofing).

Everything is generated for a whole batch with array operations, like the real
builder, and returned as ``torch_geometric.data.Batch`` objects.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader
from torch_geometric.data import Batch

from fusioncore.contracts import GraphSchema

__all__ = [
    "ATTACK_TYPES",
    "TOY_SCHEMA",
    "as_loader",
    "make_batches",
    "one_torch_thread",
    "quiet_trainer",
]

TOY_SCHEMA = GraphSchema(
    node_features=("count", *(f"byte_mean_{i}" for i in range(7))),
    edge_features=("count", "gap_mean", "gap_std", "byte_diff"),
    num_ids=64,
    window_size=100,
)
#: attack_type codes of the toy windows.
ATTACK_TYPES = {"benign": 0, "flood": 1, "payload": 2}
_MIN_NODES, _MAX_NODES = 20, 55


def make_batches(
    n_windows: int,
    *,
    batch_size: int = 64,
    attack_share: float = 0.0,
    attack_kinds: tuple[str, ...] = ("flood", "payload"),
    payload_shift: float = 2.0,
    seed: int = 0,
    vehicle_seed: int = 1234,
    schema: GraphSchema = TOY_SCHEMA,
    first_window_id: int = 0,
) -> list[Batch]:
    """``n_windows`` toy windows in batches; a share ``attack_share`` are attacks.

    Attack windows draw their kind uniformly from ``attack_kinds``.
    """
    rng = np.random.default_rng(seed)
    vehicle = np.random.default_rng(vehicle_seed)
    prototypes = vehicle.normal(size=(schema.num_ids, schema.node_dim)).astype(np.float32)
    batches = []
    for start in range(0, n_windows, batch_size):
        n = min(batch_size, n_windows - start)
        is_attack = rng.random(n) < attack_share
        kind = np.where(
            is_attack,
            np.asarray([ATTACK_TYPES[k] for k in attack_kinds])[rng.integers(len(attack_kinds), size=n)],
            0,
        )
        batches.append(_batch(rng, prototypes, kind, schema, payload_shift, first_window_id + start))
    return batches


def as_loader(batches: list[Batch]) -> DataLoader:
    """Pre-built batches as a DataLoader (a bare list means "several loaders" to Lightning)."""
    return DataLoader(batches, batch_size=None, collate_fn=_identity)


def _identity(batch: Batch) -> Batch:
    return batch


def quiet_trainer(max_epochs: int, root: Path) -> pl.Trainer:
    """A CPU trainer that writes nothing but what a test asks for."""
    return pl.Trainer(
        max_epochs=max_epochs,
        accelerator="cpu",
        default_root_dir=root,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
    )


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch on one intra-op thread, restoring the setting afterwards.

    On a shared 2-core machine, two OpenMP threads stall whenever another
    process holds a core: the same 10-epoch toy fit took 2 s to 60 s with two
    threads and a steady 3.5 s with one.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _batch(
    rng: np.random.Generator,
    prototypes: np.ndarray,
    kind: np.ndarray,
    schema: GraphSchema,
    payload_shift: float,
    first_window_id: int,
) -> Batch:
    g, w = len(kind), schema.window_size
    n_known = rng.integers(_MIN_NODES, _MAX_NODES + 1, size=g)
    flood = kind == ATTACK_TYPES["flood"]
    n_nodes = n_known + flood
    ptr = np.concatenate([[0], np.cumsum(n_nodes)])
    width = int(n_nodes.max()) + 1

    # Node table [g, width]: distinct known IDs first, the flood node (ID 0) after them.
    table = rng.random((g, schema.num_ids - 1)).argsort(axis=1)[:, :width] + 1
    local = np.arange(width)
    table[flood, n_known[flood]] = 0
    valid = local < n_nodes[:, None]
    node_id = table[valid]

    # Frame sequence of local node indices: every known ID once, then random repeats.
    frame = np.arange(w)
    seq = np.where(
        frame < n_known[:, None],
        frame,
        (rng.random((g, w)) * n_known[:, None]).astype(np.int64),
    )
    hijack = flood[:, None] & (frame >= n_known[:, None]) & (rng.random((g, w)) < 0.4)
    seq = np.where(hijack, n_known[:, None], seq)
    count = np.bincount((ptr[:-1, None] + seq).ravel(), minlength=int(ptr[-1]))

    graph = np.repeat(np.arange(g), n_nodes)
    x = prototypes[node_id] + 0.1 * rng.normal(size=(len(node_id), schema.node_dim))
    x[:, 0] = (count - 2.5) / 2.0
    x[node_id == 0, 1:] = rng.normal(size=(int((node_id == 0).sum()), schema.node_dim - 1))
    corrupted = (kind == ATTACK_TYPES["payload"])[graph] & (np.arange(len(graph)) == ptr[graph])
    x[corrupted, 1:4] += payload_shift

    # Unique transitions with their counts, all windows at once.
    key = (np.arange(g)[:, None] * width + seq[:, :-1]) * width + seq[:, 1:]
    uniq, edge_count = np.unique(key.ravel(), return_counts=True)
    edge_graph, rest = np.divmod(uniq, width * width)
    src, dst = np.divmod(rest, width)
    edge_index = np.stack([ptr[edge_graph] + src, ptr[edge_graph] + dst])
    edge_attr = rng.normal(scale=0.5, size=(len(uniq), schema.edge_dim))
    edge_attr[:, 0] = (edge_count - 1.5) / 2.0

    return Batch(
        x=torch.as_tensor(x, dtype=torch.float32),
        node_id=torch.as_tensor(node_id, dtype=torch.int64),
        edge_index=torch.as_tensor(edge_index, dtype=torch.int64),
        edge_attr=torch.as_tensor(edge_attr, dtype=torch.float32),
        batch=torch.as_tensor(graph, dtype=torch.int64),
        ptr=torch.as_tensor(ptr, dtype=torch.int64),
        y=torch.as_tensor(kind > 0, dtype=torch.int64),
        attack_type=torch.as_tensor(kind, dtype=torch.int64),
        window_id=torch.arange(first_window_id, first_window_id + g, dtype=torch.int64),
    )
