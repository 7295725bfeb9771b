"""A slow, plain reference for the profile-relative features, one window at a time.

The specification of :data:`~fusioncore.adapt.features.RELATIVE_NODE_FEATURES`
and :data:`~fusioncore.adapt.features.RELATIVE_EDGE_FEATURES` written for a
reader: Python loops over one window's frames and one
:class:`~fusioncore.adapt.profile.VehicleProfile`, no tricks. The vectorised
graph builder must agree with it; the tests check that column by column.
Never use it on real data volumes.
"""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np

from fusioncore.adapt.features import (
    RELATIVE_EDGE_FEATURES,
    RELATIVE_NODE_FEATURES,
    SURPRISE_REFERENCE_PAIRS,
)
from fusioncore.adapt.profile import VehicleProfile
from fusioncore.data.frames import FLAG_FD, Frames

__all__ = ["reference_relative_graph"]


def _mean_std(values: list[float]) -> tuple[float, float]:
    if not values:
        return 0.0, 0.0
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def _log_ratio(value: float, scale: float) -> float:
    return math.log(max(value, 1e-3 * scale) / scale)


def reference_relative_graph(
    frames: Frames, start: int, size: int, profile: VehicleProfile | None
) -> tuple[dict, dict]:
    """``(node features by (extended, id), edge features by ((ext, id), (ext, id)))`` of one window."""
    rows = slice(start, start + size)
    keys = [(bool(e), int(i)) for e, i in zip(frames.extended[rows], frames.can_id[rows])]
    times = [float(t) for t in frames.timestamp[start:start + size]]
    payloads = [[int(b) for b in row] for row in frames.data[start:start + size]]
    dlcs = [int(d) for d in frames.dlc[start:start + size]]
    fd = [bool(f & FLAG_FD) for f in frames.flags[start:start + size]]
    rows = {}
    if profile is not None:
        rows = {(bool(e), int(i)): r for r, (e, i) in enumerate(zip(profile.extended, profile.can_id))}
        seen = {(int(a), int(b)) for a, b, _ in profile.transitions}
    else:
        seen = set()

    transitions: dict[tuple, list[int]] = {}
    for r in range(size - 1):
        transitions.setdefault((keys[r], keys[r + 1]), []).append(r)

    def unseen(u, v) -> bool:
        return not (u in rows and v in rows and (rows[u], rows[v]) in seen)

    nodes = {}
    for key in sorted(set(keys)):
        at = [r for r in range(size) if keys[r] == key]
        row = rows.get(key)
        f = {"count_share": len(at) / size, "first_position": at[0] / size, "last_position": at[-1] / size}
        iats = [max(times[b] - times[a], 0.0) for a, b in pairwise(at)]
        iat_mean, iat_std = _mean_std(iats)
        changes = [payloads[a] != payloads[b] for a, b in pairwise(at)]
        f["payload_change_rate"] = sum(changes) / len(changes) if changes else 0.0
        f["in_degree"] = len({u for (u, v) in transitions if v == key}) / size
        f["out_degree"] = len({v for (u, v) in transitions if u == key}) / size
        f["unseen_in"] = sum(unseen(u, v) for (u, v) in transitions if v == key) / size
        f["unseen_out"] = sum(unseen(u, v) for (u, v) in transitions if u == key) / size
        f["unknown_id"] = float(row is None)
        f["fd_share"] = sum(fd[r] for r in at) / len(at)
        zero = ("count_vs_profile", "dlc_shift", "period_ratio", "jitter_ratio", "change_rate_shift",
                *(f"byte{k}_change" for k in range(8)), *(f"byte{k}_surprise" for k in range(8)))
        f.update(dict.fromkeys(zero, 0.0))
        if row is not None:
            p = profile
            f["count_vs_profile"] = _log_ratio(len(at) / size, float(p.share[row]))
            f["dlc_shift"] = (sum(dlcs[r] for r in at) / len(at) - float(p.dlc[row])) / 8
            period, jitter = float(p.period[row]), float(p.jitter[row])
            if math.isfinite(period) and period > 0:
                if len(at) > 1:
                    f["period_ratio"] = _log_ratio(iat_mean, period)
                if len(at) > 2 and math.isfinite(jitter):
                    f["jitter_ratio"] = math.log((iat_std + period / 100) / (jitter + period / 100))
            rate = float(p.change_rate[row])
            if len(at) > 1 and math.isfinite(rate):
                f["change_rate_shift"] = f["payload_change_rate"] - rate
            for k in range(8):
                pchange = float(p.byte_change[row, k])
                if len(at) > 1 and math.isfinite(pchange):
                    moved = [payloads[b][k] != payloads[a][k] for a, b in pairwise(at)]
                    f[f"byte{k}_change"] = sum(moved) / len(moved) - pchange
                    # how many standard deviations the change count is from what this ID's reference
                    # rate predicts: beta-binomial, the reference worth at most SURPRISE_REFERENCE_PAIRS
                    # pairs, the rate smoothed by half a pair, the variance floored at 1
                    n_ref = min(max(int(p.count[row]) - 1, 0), SURPRISE_REFERENCE_PAIRS)
                    rate_k = (pchange * n_ref + 0.5) / (n_ref + 1)
                    m = len(moved)
                    var = m * rate_k * (1 - rate_k) * (n_ref + 1 + m) / (n_ref + 2)
                    z = (sum(moved) - m * rate_k) / math.sqrt(var + 1.0)
                    f[f"byte{k}_surprise"] = math.asinh(z)
        nodes[key] = f

    gap = profile.median_gap_s if profile is not None else math.nan
    edges = {}
    for (u, v), at in transitions.items():
        gap_mean, gap_std = _mean_std([max(times[r + 1] - times[r], 0.0) for r in at])
        hamming = [sum(payloads[r][k] != payloads[r + 1][k] for k in range(8)) for r in at]
        absdiff = [sum(abs(payloads[r][k] - payloads[r + 1][k]) for k in range(8)) for r in at]
        ok = math.isfinite(gap) and gap > 0
        edges[(u, v)] = {
            "transition_share": len(at) / size,
            "gap_ratio": _log_ratio(gap_mean, gap) if ok else 0.0,
            "gap_spread": math.log1p(gap_std / gap) if ok else 0.0,
            "hamming_mean": sum(hamming) / len(at) / 8,
            "byte_absdiff_mean": sum(absdiff) / len(at) / 8 / 255,
            "self_loop": float(u == v),
            "unseen_transition": float(unseen(u, v)),
        }
    assert all(set(f) == set(RELATIVE_NODE_FEATURES) for f in nodes.values())
    assert all(set(f) == set(RELATIVE_EDGE_FEATURES) for f in edges.values())
    return nodes, edges


def as_arrays(nodes: dict, edges: dict) -> tuple[np.ndarray, np.ndarray]:
    """Node rows in (format, ID) order and edge rows in (from, to) order, as the builder lays them out."""
    x = np.array([[nodes[k][f] for f in RELATIVE_NODE_FEATURES] for k in sorted(nodes)])
    e = np.array([[edges[k][f] for f in RELATIVE_EDGE_FEATURES] for k in sorted(edges)])
    return x, e
