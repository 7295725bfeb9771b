"""Raw (unnormalised) window-graph features, computed for many windows at once.

A window of W consecutive frames becomes one graph: a node per distinct CAN
ID, a directed edge per distinct transition ``ID(t) -> ID(t+1)`` (a self-loop
when an ID follows itself). Everything here works on all windows of a batch
together with sorts, prefix sums and ``np.bincount``; there is no Python
loop over frames or windows. :mod:`fusioncore.data.graphs_reference` computes
the same numbers one window at a time, and the tests hold the two together.

Time deltas are clipped at 0: some captures have timestamps that step
backwards, and a negative gap carries no timing information.

Every lookup of an ID's known behaviour (is it known, its period, ...) goes
through a :class:`~fusioncore.adapt.reference.ReferenceTable`: the training
vocabulary (one reference for every capture) or one profile per capture
(:mod:`fusioncore.adapt`). Features are built as a dict of named columns and
stacked in the order the caller asks for, so the absolute columns below and
the profile-relative ones of :mod:`fusioncore.adapt.features` come from one
pass over the windows.
"""

from __future__ import annotations

import attrs
import numpy as np

from fusioncore.adapt.features import (
    EdgeStats,
    NodeStats,
    relative_edge_columns,
    relative_node_columns,
    unseen_edges,
)
from fusioncore.adapt.reference import ReferenceTable
from fusioncore.data.frames import FLAG_FD, Frames
from fusioncore.data.vocab import IdVocabulary

__all__ = ["EDGE_FEATURES", "NODE_FEATURES", "WindowGraphs", "compute_window_graphs"]

_BYTES = range(8)

#: Node feature columns, in order. W is the window length; "IAT" is the gap
#: between consecutive frames of the node's ID inside the window.
NODE_FEATURES: tuple[str, ...] = (
    "count_share",  # occurrences / W
    "first_position",  # row of the first occurrence in the window / W
    "last_position",  # row of the last occurrence / W
    *(f"byte{k}_mean" for k in _BYTES),  # mean payload byte k / 255
    *(f"byte{k}_std" for k in _BYTES),  # population std of payload byte k / 255
    "dlc_mean",  # mean DLC / 8
    "iat_mean",  # log1p(mean IAT in ms); 0 for an ID seen once
    "iat_std",  # log1p(population std of the IATs in ms); 0 for fewer than 2 IATs
    "iat_vs_period",  # log1p(iat mean ms) - log1p(reference period ms); 0 if either is unknown
    "in_degree",  # distinct predecessor IDs (itself included on a self-loop) / W
    "out_degree",  # distinct successor IDs (itself included on a self-loop) / W
    "unknown_id",  # 1 if the ID is not in the reference (the training vocabulary)
    "payload_change_rate",  # share of consecutive same-ID frame pairs whose 8 bytes differ
    "fd_share",  # share of the node's frames that are CAN FD (payload length: dlc_mean, bytes / 8)
)

#: Edge feature columns, in order, over all transitions u -> v in the window.
EDGE_FEATURES: tuple[str, ...] = (
    "transition_share",  # number of transitions / W
    "gap_mean",  # log1p(mean time between the two frames in ms)
    "gap_std",  # log1p(population std of that time in ms)
    "hamming_mean",  # mean number of differing payload bytes between the two frames / 8
    "byte_absdiff_mean",  # mean over transitions and 8 bytes of |byte difference| / 255
    "self_loop",  # 1 if u == v
)


@attrs.frozen(eq=False)
class WindowGraphs:
    """Raw graphs of n windows, concatenated in PyG layout (numpy).

    Nodes are grouped by window and, inside a window, ordered by CAN ID;
    edges are grouped by window and ordered by (source, target) node.
    ``edge_index`` holds global node rows. ``node_ptr[i]:node_ptr[i + 1]`` are
    window i's nodes, likewise ``edge_ptr`` for its edges.
    """

    x: np.ndarray  #: float32 [n_nodes, len(node features)]
    can_id: np.ndarray  #: uint32 [n_nodes]
    node_id: np.ndarray  #: int64 [n_nodes], the reference's identity index (0 = unknown)
    node_ptr: np.ndarray  #: int64 [n + 1]
    edge_index: np.ndarray  #: int64 [2, n_edges]
    edge_attr: np.ndarray  #: float32 [n_edges, len(edge features)]
    edge_ptr: np.ndarray  #: int64 [n + 1]
    extended: np.ndarray | None = None  #: bool [n_nodes], 29-bit identifier

    @property
    def num_graphs(self) -> int:
        return len(self.node_ptr) - 1

    @property
    def node_window(self) -> np.ndarray:
        """Window (graph) index of every node."""
        return np.repeat(np.arange(self.num_graphs), np.diff(self.node_ptr))


def _log_ms(seconds: np.ndarray) -> np.ndarray:
    return np.log1p(seconds * 1000.0)


def _group_mean_std(
    group: np.ndarray, values: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population std of ``values`` per group (two passes; 0 for empty groups)."""
    n = np.bincount(group, minlength=n_groups)
    safe = np.maximum(n, 1)
    mean = np.bincount(group, weights=values, minlength=n_groups) / safe
    dev = values - mean[group]
    var = np.bincount(group, weights=dev * dev, minlength=n_groups) / safe
    return mean, np.sqrt(var)


def _ptr(group: np.ndarray, n_groups: int) -> np.ndarray:
    return np.concatenate(([0], np.cumsum(np.bincount(group, minlength=n_groups)))).astype(np.int64)


def _stack(columns: dict[str, np.ndarray], names: tuple[str, ...]) -> np.ndarray:
    """Columns in the documented order (a KeyError here means a feature was left out)."""
    out = np.empty((len(columns[names[0]]), len(names)), np.float32)
    for j, name in enumerate(names):
        out[:, j] = columns[name]
    return out


def _empty(n_windows: int, n_node: int, n_edge: int) -> WindowGraphs:
    return WindowGraphs(
        x=np.zeros((0, n_node), np.float32),
        can_id=np.zeros(0, np.uint32),
        node_id=np.zeros(0, np.int64),
        node_ptr=np.zeros(n_windows + 1, np.int64),
        edge_index=np.zeros((2, 0), np.int64),
        edge_attr=np.zeros((0, n_edge), np.float32),
        edge_ptr=np.zeros(n_windows + 1, np.int64),
        extended=np.zeros(0, bool),
    )


def _edge_features(
    inv: np.ndarray, t: np.ndarray, data: np.ndarray
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Edges (deduplicated transitions between consecutive rows of a window) and their features.

    ``inv[i, r]`` is the global node of row r of window i; ``t`` and ``data`` are
    the rows' timestamps and payloads, window by window.
    """
    n_nodes = int(inv.max()) + 1
    w = inv.shape[1]
    src = inv[:, :-1].ravel()
    dst = inv[:, 1:].ravel()
    edge_key, edge_of = np.unique(src * n_nodes + dst, return_inverse=True)
    edge_of = edge_of.ravel()
    n_edges = len(edge_key)
    esrc, edst = edge_key // n_nodes, edge_key % n_nodes
    gap = np.maximum(np.diff(t, axis=1), 0.0).ravel()
    step = data[:, 1:].astype(np.int16) - data[:, :-1]
    hamming = np.count_nonzero(step, axis=2).ravel() / 8.0
    absdiff = np.abs(step).sum(axis=2, dtype=np.int64).ravel() / (8.0 * 255.0)
    e_count = np.bincount(edge_of, minlength=n_edges)
    gap_mean, gap_std = _group_mean_std(edge_of, gap, n_edges)
    edge: dict[str, np.ndarray] = {
        "transition_share": e_count / w,
        "gap_mean": _log_ms(gap_mean),
        "gap_std": _log_ms(gap_std),
        "hamming_mean": np.bincount(edge_of, weights=hamming, minlength=n_edges) / e_count,
        "byte_absdiff_mean": np.bincount(edge_of, weights=absdiff, minlength=n_edges) / e_count,
        "self_loop": (esrc == edst).astype(np.float64),
    }
    edge["_gap_mean_s"], edge["_gap_std_s"] = gap_mean, gap_std
    return esrc, edst, edge


def compute_window_graphs(
    frames: Frames,
    starts: np.ndarray,
    size: int,
    reference: ReferenceTable | IdVocabulary,
    *,
    node_features: tuple[str, ...] = NODE_FEATURES,
    edge_features: tuple[str, ...] = EDGE_FEATURES,
) -> WindowGraphs:
    """Raw node and edge features of the windows ``frames[s : s + size]`` for s in ``starts``.

    ``reference`` is what IDs are compared with (an :class:`IdVocabulary` is
    the zero-shot reference of every capture); ``node_features`` /
    ``edge_features`` name the columns to return, absolute ones
    (:data:`NODE_FEATURES`) or profile-relative ones
    (:data:`~fusioncore.adapt.features.RELATIVE_NODE_FEATURES`).
    ``starts`` must already be valid (see :func:`~fusioncore.data.windows.validate_starts`).
    """
    if isinstance(reference, IdVocabulary):
        reference = ReferenceTable.from_vocabulary(reference)
    n = len(starts)
    if n == 0 or size == 0:
        return _empty(n, len(node_features), len(edge_features))
    w = size
    rows = (starts[:, None] + np.arange(w)).ravel()
    t = frames.timestamp[rows]
    data = frames.data[rows]
    window = np.repeat(np.arange(n, dtype=np.int64), w)

    # ---- nodes: one stable sort by (window, format, CAN ID) keeps each node's frames in time order.
    # The 29-bit flag is part of the key: 11-bit 0x100 and 29-bit 0x100 are different nodes.
    key = (window << 33) | (frames.extended[rows].astype(np.int64) << 32) | frames.can_id[rows]
    order = np.argsort(key, kind="stable")
    skey = key[order]
    new = np.ones(len(skey), bool)
    new[1:] = skey[1:] != skey[:-1]
    node_of = np.cumsum(new) - 1  # node of each sorted frame
    node_start = np.flatnonzero(new)
    n_nodes = len(node_start)
    node_end = np.append(node_start[1:], len(skey))
    count = node_end - node_start
    node_key = skey[node_start]
    node_window = node_key >> 33
    can_id = (node_key & 0xFFFFFFFF).astype(np.uint32)
    extended = ((node_key >> 32) & 1).astype(bool)
    window_ref = reference.refs_for(frames.sources)[frames.source[starts]]
    node_ref = window_ref[node_window]
    node_row = reference.rows(node_ref, can_id, extended)
    node_id = reference.identity_of(node_row)
    inverse = np.empty_like(node_of)
    inverse[order] = node_of

    pos = order % w  # row of each sorted frame inside its window
    sdata = data[order]
    node: dict[str, np.ndarray] = {
        "count_share": count / w,
        "first_position": pos[node_start] / w,
        "last_position": pos[node_end - 1] / w,
        "dlc_mean": np.add.reduceat(frames.dlc[rows][order], node_start, dtype=np.int64)
        / count
        / 8.0,
        "unknown_id": (node_row < 0).astype(np.float64),
        "fd_share": np.add.reduceat((frames.flags[rows][order] & FLAG_FD) > 0, node_start, dtype=np.int64)
        / count,
    }
    # Integer sums are exact, so the variance (n*sum(x^2) - sum(x)^2) / n^2 is too.
    byte_sum = np.add.reduceat(sdata, node_start, axis=0, dtype=np.int64)
    byte_sq = np.add.reduceat(sdata.astype(np.int64) ** 2, node_start, axis=0)
    c = count[:, None]
    byte_mean = byte_sum / c  # in byte units 0..255
    byte_std = np.sqrt((c * byte_sq - byte_sum * byte_sum) / (c * c))
    for k in _BYTES:
        node[f"byte{k}_mean"] = byte_mean[:, k] / 255.0
        node[f"byte{k}_std"] = byte_std[:, k] / 255.0

    # Pairs of consecutive frames of one node (sorted neighbours that share a node).
    same = ~new[1:]
    pair_node = node_of[1:][same]
    iat = np.maximum(np.diff(t[order]), 0.0)[same]
    iat_mean, iat_std = _group_mean_std(pair_node, iat, n_nodes)
    node["iat_mean"] = _log_ms(iat_mean)
    node["iat_std"] = _log_ms(iat_std)
    period = reference.column("period", node_row)
    rel = (count > 1) & (node_row >= 0) & np.isfinite(period)
    node["iat_vs_period"] = np.where(
        rel, node["iat_mean"] - _log_ms(np.where(rel, period, 0.0)), 0.0
    )
    payload = sdata.view(np.uint64).ravel()
    changed = (payload[1:] != payload[:-1])[same]
    node["payload_change_rate"] = np.bincount(
        pair_node, weights=changed, minlength=n_nodes
    ) / np.maximum(count - 1, 1)

    esrc, edst, edge = _edge_features(inverse.reshape(n, w), t.reshape(n, w), data.reshape(n, w, 8))
    node["in_degree"] = np.bincount(edst, minlength=n_nodes) / w
    node["out_degree"] = np.bincount(esrc, minlength=n_nodes) / w
    if not (set(node_features) <= set(node) and set(edge_features) <= set(edge)):
        # profile-relative columns (fusioncore.adapt.features), from the same per-node quantities
        # node k's frame pairs are pairs [start_k - k, end_k - k - 1): sums from one cumulative sum
        moved = np.cumsum((sdata[1:] != sdata[:-1])[same], axis=0, dtype=np.int64)
        moved = np.concatenate([np.zeros((1, 8), np.int64), moved])
        k = np.arange(n_nodes)
        byte_change = moved[node_end - k - 1] - moved[node_start - k]
        stats = NodeStats(
            window=w, count=count,
            byte_change=byte_change / np.maximum(count - 1, 1)[:, None],
            dlc_mean=node["dlc_mean"] * 8.0, iat_mean=iat_mean, iat_std=iat_std,
            change_rate=node["payload_change_rate"], row=node_row, ref=node_ref,
        )
        estats = EdgeStats(src=esrc, dst=edst, gap_mean=edge["_gap_mean_s"], gap_std=edge["_gap_std_s"])
        unseen = unseen_edges(reference, stats, estats)
        node.update(relative_node_columns(reference, stats, estats, unseen))
        edge.update(relative_edge_columns(reference, stats, estats, unseen))
    return WindowGraphs(
        x=_stack(node, node_features),
        can_id=can_id,
        node_id=node_id,
        node_ptr=_ptr(node_window, n),
        edge_index=np.stack([esrc, edst]).astype(np.int64),
        edge_attr=_stack(edge, edge_features),
        edge_ptr=_ptr(node_window[esrc], n),
        extended=extended,
    )
