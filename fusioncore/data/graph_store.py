"""Every window graph of one split built once; a batch is then a gather of rows.

Detector training visits the same training and validation windows every
epoch (20 epochs by default) and each detector scores the same splits, so
building every batch afresh (:meth:`WindowGraphBuilder.build`) repeats the
same work many times over. :class:`GraphStore` builds a split's normalised
graphs once, in chunks, and :meth:`GraphStore.take` assembles the batch of any
subset of its windows with index arithmetic only (``np.repeat`` / prefix sums,
no loop per window). The batch is the one ``builder.build`` would return for
those windows: window graphs do not depend on which other windows share their
batch, and the tests hold the two equal.
"""

from __future__ import annotations

import numpy as np
from torch_geometric.data import Batch

from fusioncore.data.frames import Frames
from fusioncore.data.graph_features import WindowGraphs, compute_window_graphs
from fusioncore.data.graphs import WindowGraphBuilder, graphs_to_batch
from fusioncore.data.windows import validate_starts, window_labels

__all__ = ["GraphStore"]


def _ranges(lo: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``concat(arange(lo[i], lo[i] + counts[i]))`` without a loop."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    offsets = np.cumsum(counts) - counts  # where each range starts in the output
    return np.repeat(lo - offsets, counts) + np.arange(total, dtype=np.int64)


def _ptr(counts: np.ndarray) -> np.ndarray:
    return np.concatenate(([0], np.cumsum(counts))).astype(np.int64)


class GraphStore:
    """The normalised graphs of the windows at ``starts`` of ``frames`` as one set of arrays."""

    def __init__(self, builder: WindowGraphBuilder, frames: Frames, starts: np.ndarray, *,
                 chunk: int = 2048) -> None:
        size = builder.spec.size
        starts = validate_starts(frames, starts, size)
        parts: list[WindowGraphs] = []
        for lo in range(0, len(starts), chunk):
            parts.append(compute_window_graphs(
                frames, starts[lo:lo + chunk], size, builder._table,
                node_features=builder.node_features, edge_features=builder.edge_features,
            ))
        self.label, self.attack_type = window_labels(frames, starts, size)
        if parts:
            node_counts = np.concatenate([np.diff(p.node_ptr) for p in parts])
            edge_counts = np.concatenate([np.diff(p.edge_ptr) for p in parts])
            # edge_index of each chunk counts from the chunk's first node: make it count from the split's
            node_base = np.cumsum([0] + [p.node_ptr[-1] for p in parts[:-1]])
            edge_index = np.concatenate([p.edge_index + b for p, b in zip(parts, node_base)], axis=1)
            x = np.concatenate([p.x for p in parts])
            edge_attr = np.concatenate([p.edge_attr for p in parts])
            self.can_id = np.concatenate([p.can_id for p in parts])
            self.node_id = np.concatenate([p.node_id for p in parts])
        else:
            node_counts = edge_counts = np.zeros(0, np.int64)
            edge_index = np.zeros((2, 0), np.int64)
            x = np.zeros((0, len(builder.node_features)), np.float32)
            edge_attr = np.zeros((0, len(builder.edge_features)), np.float32)
            self.can_id = np.zeros(0, np.uint32)
            self.node_id = np.zeros(0, np.int64)
        if builder.normalizer is not None:
            x = builder.normalizer.normalize_nodes(x)
            edge_attr = builder.normalizer.normalize_edges(edge_attr)
        self.x, self.edge_attr = x, edge_attr
        self.node_ptr, self.edge_ptr = _ptr(node_counts), _ptr(edge_counts)
        # each edge's end points relative to its own window's first node
        edge_window = np.repeat(np.arange(len(edge_counts)), edge_counts)
        self.local_edges = edge_index - self.node_ptr[:-1][edge_window]

    def __len__(self) -> int:
        return len(self.node_ptr) - 1

    @property
    def nbytes(self) -> int:
        arrays = (self.x, self.edge_attr, self.local_edges, self.can_id, self.node_id, self.node_ptr,
                  self.edge_ptr, self.label, self.attack_type)
        return int(sum(a.nbytes for a in arrays))

    def take(self, rows: np.ndarray, window_ids: np.ndarray) -> Batch:
        """The batch of windows ``rows`` (indices into this store), labelled ``window_ids``."""
        rows = np.asarray(rows, np.int64)
        node_counts = self.node_ptr[rows + 1] - self.node_ptr[rows]
        edge_counts = self.edge_ptr[rows + 1] - self.edge_ptr[rows]
        nodes = _ranges(self.node_ptr[rows], node_counts)
        edges = _ranges(self.edge_ptr[rows], edge_counts)
        node_ptr = _ptr(node_counts)
        edge_index = self.local_edges[:, edges] + np.repeat(node_ptr[:-1], edge_counts)
        graphs = WindowGraphs(
            x=self.x[nodes], can_id=self.can_id[nodes], node_id=self.node_id[nodes], node_ptr=node_ptr,
            edge_index=edge_index, edge_attr=self.edge_attr[edges], edge_ptr=_ptr(edge_counts),
        )
        return graphs_to_batch(graphs, graphs.x, graphs.edge_attr, self.label[rows], self.attack_type[rows],
                               np.asarray(window_ids, np.int64))
