"""A slow, plain reference for the window-graph features, one window at a time.

This is the specification of :data:`~fusioncore.data.graph_features.NODE_FEATURES`
and :data:`~fusioncore.data.graph_features.EDGE_FEATURES` written for a
reader: Python loops, one window and one ID at a time, no tricks. The
vectorised :func:`~fusioncore.data.graph_features.compute_window_graphs` must
agree with it; the tests check that column by column. Never use it on real
data volumes.
"""

from __future__ import annotations

import math
from itertools import pairwise

import attrs
import numpy as np

from fusioncore.data.frames import FLAG_FD, Frames
from fusioncore.data.graph_features import EDGE_FEATURES, NODE_FEATURES
from fusioncore.data.vocab import IdVocabulary

__all__ = ["ReferenceGraph", "reference_window_graph"]


@attrs.frozen(eq=False)
class ReferenceGraph:
    """One window's graph: nodes in ascending CAN-ID order, edges keyed by CAN IDs."""

    can_ids: list[int]
    node_features: dict[int, dict[str, float]]  #: CAN ID -> feature name -> value
    edge_features: dict[tuple[int, int], dict[str, float]]  #: (from ID, to ID) -> features


def _log_ms(seconds: float) -> float:
    return math.log1p(seconds * 1000.0)


def _mean_std(values: list[float]) -> tuple[float, float]:
    if not values:
        return 0.0, 0.0
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def reference_window_graph(
    frames: Frames, start: int, size: int, vocab: IdVocabulary
) -> ReferenceGraph:
    """The graph of ``frames[start : start + size]``, computed the obvious way."""
    ids = [int(i) for i in frames.can_id[start : start + size]]
    times = [float(t) for t in frames.timestamp[start : start + size]]
    payloads = [[int(b) for b in row] for row in frames.data[start : start + size]]
    dlcs = [int(d) for d in frames.dlc[start : start + size]]
    fd = [bool(f & FLAG_FD) for f in frames.flags[start : start + size]]

    transitions: dict[tuple[int, int], list[int]] = {}  # (u, v) -> rows r with ids[r], ids[r+1]
    for r in range(size - 1):
        transitions.setdefault((ids[r], ids[r + 1]), []).append(r)

    node_features: dict[int, dict[str, float]] = {}
    for can_id in sorted(set(ids)):
        rows = [r for r in range(size) if ids[r] == can_id]
        index = int(vocab.lookup(np.array([can_id]))[0])
        f: dict[str, float] = {
            "count_share": len(rows) / size,
            "first_position": rows[0] / size,
            "last_position": rows[-1] / size,
        }
        for k in range(8):
            mean, std = _mean_std([payloads[r][k] for r in rows])
            f[f"byte{k}_mean"] = mean / 255
            f[f"byte{k}_std"] = std / 255
        f["dlc_mean"] = sum(dlcs[r] for r in rows) / len(rows) / 8
        f["fd_share"] = sum(fd[r] for r in rows) / len(rows)
        # Timestamps may step backwards; a negative gap counts as 0.
        iats = [max(times[b] - times[a], 0.0) for a, b in pairwise(rows)]
        iat_mean, iat_std = _mean_std(iats)
        f["iat_mean"] = _log_ms(iat_mean)
        f["iat_std"] = _log_ms(iat_std)
        period = float(vocab.period[index])
        if index > 0 and iats and math.isfinite(period):
            f["iat_vs_period"] = _log_ms(iat_mean) - _log_ms(period)
        else:
            f["iat_vs_period"] = 0.0
        f["in_degree"] = len({u for (u, v) in transitions if v == can_id}) / size
        f["out_degree"] = len({v for (u, v) in transitions if u == can_id}) / size
        f["unknown_id"] = float(index == 0)
        changes = [payloads[a] != payloads[b] for a, b in pairwise(rows)]
        f["payload_change_rate"] = sum(changes) / len(changes) if changes else 0.0
        node_features[can_id] = f

    edge_features: dict[tuple[int, int], dict[str, float]] = {}
    for (u, v), rows in transitions.items():
        gap_mean, gap_std = _mean_std([max(times[r + 1] - times[r], 0.0) for r in rows])
        hamming = [sum(payloads[r][k] != payloads[r + 1][k] for k in range(8)) for r in rows]
        absdiff = [sum(abs(payloads[r][k] - payloads[r + 1][k]) for k in range(8)) for r in rows]
        edge_features[(u, v)] = {
            "transition_share": len(rows) / size,
            "gap_mean": _log_ms(gap_mean),
            "gap_std": _log_ms(gap_std),
            "hamming_mean": sum(hamming) / len(rows) / 8,
            "byte_absdiff_mean": sum(absdiff) / len(rows) / 8 / 255,
            "self_loop": float(u == v),
        }

    assert all(set(f) == set(NODE_FEATURES) for f in node_features.values())
    assert all(set(f) == set(EDGE_FEATURES) for f in edge_features.values())
    return ReferenceGraph(
        can_ids=sorted(node_features), node_features=node_features, edge_features=edge_features
    )
