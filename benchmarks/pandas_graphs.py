"""Window graphs built one window at a time with pandas, in the predecessor's style.

A reimplementation of the approach ``../shared/BRIEF.md`` section 3
describes ("their graph building was per-window pandas work"): the capture as
one ``DataFrame``, and for every window a slice of it, ``groupby`` on the CAN
ID for the node features, ``shift`` for the transitions and a second
``groupby`` on (ID, next ID) for the edge features, then one PyG ``Data`` per
window and ``Batch.from_data_list``. The predecessor's code is not
available; this computes exactly fusioncore's features
(:data:`~fusioncore.data.graph_features.NODE_FEATURES` /
:data:`~fusioncore.data.graph_features.EDGE_FEATURES`), so the benchmark can
check it builds the same graphs as :class:`~fusioncore.data.graphs.WindowGraphBuilder`
and time equal work. It exists to be timed: never use it on real data volumes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch_geometric.data import Batch, Data

from fusioncore.data.frames import FLAG_FD, Frames
from fusioncore.data.graph_features import EDGE_FEATURES, NODE_FEATURES
from fusioncore.data.graphs import WindowGraphBuilder

__all__ = ["capture_frame", "pandas_batch", "pandas_window_graph"]

BYTES = [f"b{k}" for k in range(8)]


def capture_frame(frames: Frames) -> pd.DataFrame:
    """The whole capture as one table (the predecessor kept its CSV as a DataFrame)."""
    table = pd.DataFrame(frames.data.astype(np.int64), columns=BYTES)
    table.insert(0, "t", frames.timestamp)
    table.insert(1, "can_id", frames.can_id.astype(np.int64))
    table.insert(2, "dlc", frames.dlc.astype(np.int64))
    table["fd"] = ((frames.flags & FLAG_FD) > 0).astype(np.int64)
    table["attack"] = frames.label.astype(np.int64)
    return table


def _log_ms(seconds: pd.Series | np.ndarray):
    return np.log1p(seconds * 1000.0)


def pandas_window_graph(window: pd.DataFrame, builder: WindowGraphBuilder) -> Data:
    """One window's graph, features from pandas group-bys, normalised as the builder does."""
    w = len(window)
    df = window.reset_index(drop=True)
    df["pos"] = np.arange(w)
    by_id = df.groupby("can_id", sort=True)

    nodes = pd.DataFrame({
        "count_share": by_id["pos"].size() / w,
        "first_position": by_id["pos"].min() / w,
        "last_position": by_id["pos"].max() / w,
    })
    means, stds = by_id[BYTES].mean() / 255.0, by_id[BYTES].std(ddof=0) / 255.0
    for k, col in enumerate(BYTES):
        nodes[f"byte{k}_mean"] = means[col]
        nodes[f"byte{k}_std"] = stds[col]
    nodes["dlc_mean"] = by_id["dlc"].mean() / 8.0
    # gaps between consecutive frames of one ID; negative gaps (timestamps stepping back) count as 0
    df["iat"] = by_id["t"].diff().clip(lower=0.0)
    iat = df.groupby("can_id", sort=True)["iat"]
    iat_mean = iat.mean().fillna(0.0)
    nodes["iat_mean"] = _log_ms(iat_mean)
    nodes["iat_std"] = _log_ms(iat.std(ddof=0).fillna(0.0))
    ids = nodes.index.to_numpy()
    vocab_index = builder.vocab.lookup(ids.astype(np.uint32))
    period = builder.vocab.period[vocab_index]
    counts = by_id["pos"].size().to_numpy()
    rel = (counts > 1) & (vocab_index > 0) & np.isfinite(period)
    nodes["iat_vs_period"] = np.where(rel, nodes["iat_mean"] - _log_ms(np.where(rel, period, 0.0)), 0.0)

    # transitions row r -> r + 1
    nxt = df.shift(-1).iloc[:-1]
    cur = df.iloc[:-1]
    steps = pd.DataFrame({
        "u": cur["can_id"].to_numpy(), "v": nxt["can_id"].to_numpy().astype(np.int64),
        "gap": (nxt["t"] - cur["t"]).clip(lower=0.0).to_numpy(),
        "hamming": (nxt[BYTES].to_numpy() != cur[BYTES].to_numpy()).sum(axis=1) / 8.0,
        "absdiff": np.abs(nxt[BYTES].to_numpy() - cur[BYTES].to_numpy()).sum(axis=1) / (8.0 * 255.0),
    })
    by_edge = steps.groupby(["u", "v"], sort=True)
    edges = pd.DataFrame({
        "transition_share": by_edge.size() / w,
        "gap_mean": _log_ms(by_edge["gap"].mean()),
        "gap_std": _log_ms(by_edge["gap"].std(ddof=0)),
        "hamming_mean": by_edge["hamming"].mean(),
        "byte_absdiff_mean": by_edge["absdiff"].mean(),
    })
    u = edges.index.get_level_values("u").to_numpy()
    v = edges.index.get_level_values("v").to_numpy()
    edges["self_loop"] = (u == v).astype(np.float64)
    nodes["in_degree"] = pd.Series(v).value_counts().reindex(ids, fill_value=0).to_numpy() / w
    nodes["out_degree"] = pd.Series(u).value_counts().reindex(ids, fill_value=0).to_numpy() / w
    nodes["unknown_id"] = (vocab_index == 0).astype(np.float64)
    # share of consecutive same-ID frames whose payload changed
    changed = (by_id[BYTES].diff().fillna(0) != 0).any(axis=1) & df["iat"].notna()
    nodes["payload_change_rate"] = changed.groupby(df["can_id"]).sum() / np.maximum(counts - 1, 1)
    nodes["fd_share"] = by_id["fd"].mean()

    row = {can_id: i for i, can_id in enumerate(ids)}
    x = nodes[list(NODE_FEATURES)].to_numpy(np.float32)
    edge_attr = edges[list(EDGE_FEATURES)].to_numpy(np.float32)
    norm = builder.normalizer
    if norm is not None:
        x, edge_attr = norm.normalize_nodes(x), norm.normalize_edges(edge_attr)
    return Data(
        x=torch.from_numpy(np.ascontiguousarray(x, np.float32)),
        node_id=torch.from_numpy(vocab_index.astype(np.int64)),
        edge_index=torch.tensor([[row[a] for a in u], [row[b] for b in v]], dtype=torch.long),
        edge_attr=torch.from_numpy(np.ascontiguousarray(edge_attr, np.float32)),
        y=torch.tensor([int(df["attack"].any())]),
    )


def pandas_batch(table: pd.DataFrame, starts: Sequence[int], builder: WindowGraphBuilder) -> Batch:
    """Every window sliced from ``table`` and built on its own, then collated."""
    size = builder.spec.size
    graphs = [pandas_window_graph(table.iloc[int(s) : int(s) + size], builder) for s in starts]
    return Batch.from_data_list(graphs)
