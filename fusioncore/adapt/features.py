"""Profile-relative window-graph features: each node and edge compared with its capture's profile.

The absolute features of :mod:`fusioncore.data.graph_features` describe a
window in the training vehicles' terms (payload byte values, milliseconds,
the training vocabulary). These describe it in the terms of the capture's own
:class:`~fusioncore.adapt.profile.VehicleProfile`: how far each ID's payload,
timing, rate and transitions are from what *this* vehicle did in its
reference segment. They are computed from the same per-node / per-edge
quantities the absolute ones are (one pass, all windows of a batch at once)
and are invariant to a consistent renaming of CAN IDs and to a uniform
change of all periods: every timing feature is a ratio of two durations of
the same capture, every payload feature a comparison of one ID with itself.

An ID the profile does not know gets ``unknown_id = 1`` and 0 in every
comparison column (there is nothing to compare with); a comparison that needs
more frames than the window holds (a period from one frame) is 0 as well.
"""

from __future__ import annotations

import attrs
import numpy as np

__all__ = ["RELATIVE_EDGE_FEATURES", "RELATIVE_NODE_FEATURES", "STANDARDISED_NODE_FEATURES",
           "SURPRISE_REFERENCE_PAIRS",
           "TRANSITION_EDGE_FEATURES",
           "TRANSITION_NODE_FEATURES", "EdgeStats", "NodeStats", "relative_edge_columns",
           "relative_node_columns"]

_BYTES = range(8)
#: Interval ratios are floored at this share of the reference (repeated timestamps: ratio 0).
_MIN_RATIO = 1e-3
#: Added to the binomial variance of a byte's change count: one change more or less than expected
#: is never more than about one standard deviation (a signal constant in a short reference may
#: start moving later without looking like a failure).
_SURPRISE_VARIANCE_FLOOR = 1.0
#: The byte surprise trusts a reference change share as if it came from at most this many frame
#: pairs. Without the cap, bytes that held still in the profile's two seconds and moved later
#: raised the DQN's benign false-positive windows by 8-49 % on hcrl_sa and its derived copy;
#: with it they fell on three of four datasets (docs/adaptation.md, "Current default").
SURPRISE_REFERENCE_PAIRS = 10.0

#: Node feature columns of the profile-relative representation, in order.
RELATIVE_NODE_FEATURES: tuple[str, ...] = (
    "count_share",  # occurrences / W
    "first_position",  # row of the first occurrence / W
    "last_position",  # row of the last occurrence / W
    "count_vs_profile",  # log(count share / the ID's share of the reference)
    *(f"byte{k}_change" for k in _BYTES),  # share of frame pairs where byte k changed - the profile's
    *(f"byte{k}_surprise" for k in _BYTES),  # asinh of the binomial z of byte k's changes (below)
    "dlc_shift",  # (mean DLC - profile mean DLC) / 8
    "period_ratio",  # log(mean IAT / profile period); 0 with fewer than 2 frames
    "jitter_ratio",  # log((IAT std + p/100) / (profile jitter + p/100)), p = period; needs 3 frames
    "in_degree",  # distinct predecessor IDs / W
    "out_degree",  # distinct successor IDs / W
    "unknown_id",  # 1 if the profile does not know the ID
    "payload_change_rate",  # share of consecutive same-ID frame pairs whose payload differs
    "change_rate_shift",  # payload_change_rate - the profile's change rate of the ID
    "unseen_in",  # distinct incoming transitions the profile never saw / W
    "unseen_out",  # distinct outgoing transitions the profile never saw / W
    "fd_share",  # share of the node's frames that are CAN FD (a property of the frame, not the vehicle)
)

#: Edge feature columns of the profile-relative representation, in order.
RELATIVE_EDGE_FEATURES: tuple[str, ...] = (
    "transition_share",  # number of transitions / W
    "gap_ratio",  # log(mean gap / the profile's median inter-frame gap)
    "gap_spread",  # log1p(gap std / the profile's median inter-frame gap)
    "hamming_mean",  # mean number of differing payload bytes / 8
    "byte_absdiff_mean",  # mean |byte difference| / 255
    "self_loop",  # 1 if u == v
    "unseen_transition",  # 1 if the profile never saw u -> v
)


#: Columns that are standardised by construction (a binomial z per byte): the normaliser leaves
#: them as they are, because z-scoring each against the training vehicles' benign spread would
#: blow up the bytes that rarely move there and make the columns incomparable with each other.
STANDARDISED_NODE_FEATURES: tuple[str, ...] = tuple(f"byte{k}_surprise" for k in _BYTES)

#: The columns that compare a window's transitions with the profile's. They drift: on a periodic
#: bus which ID follows which depends on the senders' phases, and clocks drift apart, so the
#: share of transitions a short reference never saw grows with the time since it (benign hcrl_sa
#: kia: 0.077 unseen per window in the first 30 s after the warm-up, 0.138 after 90 s). The default
#: profile representation leaves them out; see docs/adaptation.md for the measurements.
TRANSITION_NODE_FEATURES: tuple[str, ...] = ("unseen_in", "unseen_out")
TRANSITION_EDGE_FEATURES: tuple[str, ...] = ("unseen_transition",)


@attrs.frozen(eq=False)
class NodeStats:
    """Per-node quantities of a batch of windows, in natural units (bytes 0..255, seconds)."""

    window: int
    count: np.ndarray
    byte_change: np.ndarray  #: [n, 8] share of consecutive frame pairs of the node where byte k changed
    dlc_mean: np.ndarray
    iat_mean: np.ndarray
    iat_std: np.ndarray
    change_rate: np.ndarray
    row: np.ndarray  #: reference row of each node, -1 if unknown
    ref: np.ndarray  #: reference index of each node's window, -1 if none


@attrs.frozen(eq=False)
class EdgeStats:
    """Per-edge quantities: endpoints (node indices) and gap statistics in seconds."""

    src: np.ndarray
    dst: np.ndarray
    gap_mean: np.ndarray
    gap_std: np.ndarray


def _log_ratio(value: np.ndarray, scale: np.ndarray, valid: np.ndarray) -> np.ndarray:
    safe = np.where(valid, scale, 1.0)
    return np.where(valid, np.log(np.maximum(np.where(valid, value, 1.0), _MIN_RATIO * safe) / safe), 0.0)


def unseen_edges(table, nodes: NodeStats, edges: EdgeStats) -> np.ndarray:
    """1.0 for each edge whose transition the window's reference never saw."""
    return (~table.has_transition(nodes.row[edges.src], nodes.row[edges.dst])).astype(np.float64)


def byte_surprise(nodes: NodeStats, pchange: np.ndarray, ref_pairs: np.ndarray, has: np.ndarray
                  ) -> np.ndarray:
    """``[n, 8]``: how unlikely each byte's number of changes in the window is for this ID.

    A byte that changed in share ``p`` of the reference's ``n`` frame pairs is
    expected to change in ``m p`` of the window's ``m`` pairs. ``p`` is smoothed
    to ``(p n + 1/2) / (n + 1)``, so a reference of few frames never claims a
    byte cannot change, and the column is ``asinh((k - m p) / sqrt(v + 1))`` for
    ``k`` observed changes, with ``v = m p (1 - p) (n + 1 + m) / (n + 2)`` the
    beta-binomial variance of ``k`` given the reference. ``n`` is capped at
    :data:`SURPRISE_REFERENCE_PAIRS`: a bus is not stationary (a signal that
    held still for the two seconds of a profile moves later), so the reference
    share is trusted as a rough estimate, never as the truth. A byte turning random (changes
    where the vehicle's signal barely moves) or a frozen counter (no changes
    where every frame changes it) is many binomial standard deviations out,
    while the same share difference on a noisy byte is not: ``byte<k>_change``
    reports the share difference, this its significance. Counts only, so it
    is invariant to renaming IDs and to rescaling time.
    """
    pairs = np.maximum(nodes.count - 1, 0).astype(np.float64)[:, None]
    changes = nodes.byte_change * pairs
    n_ref = np.where(np.isfinite(ref_pairs), np.maximum(ref_pairs, 0.0), 0.0)[:, None]
    n_ref = np.minimum(n_ref, SURPRISE_REFERENCE_PAIRS)
    p = (np.nan_to_num(pchange) * n_ref + 0.5) / (n_ref + 1.0)
    # beta-binomial predictive variance of the window's count under Beta(p n + 1/2, (1 - p) n + 1/2)
    variance = pairs * p * (1.0 - p) * (n_ref + 1.0 + pairs) / (n_ref + 2.0)
    z = (changes - pairs * p) / np.sqrt(variance + _SURPRISE_VARIANCE_FLOOR)
    return np.where(has, np.arcsinh(z), 0.0)


def relative_node_columns(
    table, nodes: NodeStats, edges: EdgeStats, unseen: np.ndarray
) -> dict[str, np.ndarray]:
    """The node columns of :data:`RELATIVE_NODE_FEATURES` that are not also absolute ones."""
    w, row = nodes.window, nodes.row
    known = row >= 0
    n_nodes = len(row)
    share = table.column("share", row)
    period = table.column("period", row)
    jitter = table.column("jitter", row)
    out: dict[str, np.ndarray] = {
        "count_vs_profile": _log_ratio(nodes.count / w, share, known & (share > 0)),
        "dlc_shift": np.where(known, (nodes.dlc_mean - np.nan_to_num(table.column("dlc", row))) / 8.0, 0.0),
        "unknown_id": (~known).astype(np.float64),
    }
    has_period = known & np.isfinite(period) & (period > 0)
    out["period_ratio"] = _log_ratio(nodes.iat_mean, period, has_period & (nodes.count > 1))
    floor = 0.01 * np.where(has_period, period, 1.0)
    ok = has_period & np.isfinite(jitter) & (nodes.count > 2)
    out["jitter_ratio"] = np.where(
        ok, np.log((nodes.iat_std + floor) / (np.where(ok, jitter, 0.0) + floor)), 0.0
    )
    rate = table.column("change_rate", row)
    out["change_rate_shift"] = np.where(known & np.isfinite(rate) & (nodes.count > 1),
                                        nodes.change_rate - np.nan_to_num(rate), 0.0)
    if table.byte_change is not None and len(table.byte_change):
        pchange = np.where(known[:, None], table.byte_change[np.maximum(row, 0)], np.nan)
    else:
        pchange = np.full((n_nodes, 8), np.nan)
    has = known[:, None] & np.isfinite(pchange) & (nodes.count > 1)[:, None]
    change = np.where(has, nodes.byte_change - np.nan_to_num(pchange), 0.0)
    for k in _BYTES:
        out[f"byte{k}_change"] = change[:, k]
    surprise = byte_surprise(nodes, pchange, table.column("pairs", row), has)
    for k in _BYTES:
        out[f"byte{k}_surprise"] = surprise[:, k]
    out["unseen_in"] = np.bincount(edges.dst, weights=unseen, minlength=n_nodes) / w
    out["unseen_out"] = np.bincount(edges.src, weights=unseen, minlength=n_nodes) / w
    return out


def relative_edge_columns(
    table, nodes: NodeStats, edges: EdgeStats, unseen: np.ndarray
) -> dict[str, np.ndarray]:
    """The edge columns of :data:`RELATIVE_EDGE_FEATURES` that are not also absolute ones."""
    gap = table.gap_of(nodes.ref[edges.src])
    valid = np.isfinite(gap) & (gap > 0)
    safe = np.where(valid, gap, 1.0)
    return {
        "gap_ratio": _log_ratio(edges.gap_mean, gap, valid),
        "gap_spread": np.where(valid, np.log1p(edges.gap_std / safe), 0.0),
        "unseen_transition": unseen,
    }
