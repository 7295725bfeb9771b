"""Window-level metrics and decision thresholds: the one implementation the whole project uses.

With 0.1-18 % attack windows, accuracy hides collapse, so reports lead with
MCC, AUROC and average precision. AUROC is the Mann-Whitney statistic with
ties counted half; AP is the step-wise area under precision-recall (as in
scikit-learn). Every curve and threshold treats tied scores as one cut: a
group of equal scores is always on one side of a threshold.

**Undefined is not zero.** A metric that the data cannot define is ``None``
(``NaN`` in the row-wise functions), never a number that would pull a mean
down: AUROC and MCC with one label class present; AP, F1 and recall without
attack windows; precision with no window flagged. MCC with both label classes but
one *predicted* class is 0 (the limit of the formula: a constant verdict
carries no information), as in scikit-learn.

The row-wise versions (:func:`auroc_rows`, :func:`best_mcc_rows`) score many
candidate score vectors at once (a fusion's weight grid) with one sort; the
one-row functions are thin wrappers over them or over :func:`curve_points`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np

from fusioncore.data.frames import attack_type_name

__all__ = [
    "BestThreshold",
    "auroc",
    "auroc_rows",
    "average_precision",
    "best_mcc_rows",
    "best_mcc_threshold",
    "binary_metrics",
    "curve_points",
    "mcc_from_counts",
    "recall_at_fpr",
    "scenario_metrics",
]


def _none(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def mcc_from_counts(tp, fp, tn, fn) -> np.ndarray:
    """Matthews correlation from confusion counts (broadcasting arrays).

    ``NaN`` where a *label* class is absent (``tp + fn == 0`` or ``tn + fp == 0``):
    undefined. 0 where both label classes exist but one *predicted* class is absent.
    """
    tp, fp, tn, fn = (np.asarray(a, dtype=np.float64) for a in (tp, fp, tn, fn))
    pos, neg = tp + fn, tn + fp
    denom = np.sqrt((tp + fp) * pos * neg * (tn + fn))
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.where(denom > 0, (tp * tn - fp * fn) / np.where(denom > 0, denom, 1.0), 0.0)
    return np.where((pos > 0) & (neg > 0), value, np.nan)


def curve_points(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(threshold, tp, fp)`` at every distinct score, highest first.

    Row ``k`` counts the windows with ``score >= threshold[k]``: a tie group is
    added all at once, so a constant score is a single point, never a staircase
    whose shape depends on row order.
    """
    s = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-s, kind="stable")
    s = s[order]
    y = np.asarray(labels)[order].astype(bool)
    if len(s) == 0:
        empty = np.zeros(0, np.int64)
        return np.zeros(0), empty, empty
    last_of_group = np.concatenate([np.flatnonzero(s[1:] != s[:-1]), [len(s) - 1]])
    tp = np.cumsum(y)[last_of_group]
    fp = (last_of_group + 1) - tp
    return s[last_of_group], tp, fp


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Step-wise area under precision-recall; ``None`` without attack windows."""
    n_pos = int(np.asarray(labels).astype(bool).sum())
    if n_pos == 0:
        return None
    _, tp, fp = curve_points(labels, scores)
    precision = tp / (tp + fp)
    recall = tp / n_pos
    return float(np.sum(np.diff(np.concatenate([[0.0], recall])) * precision))


def recall_at_fpr(labels: np.ndarray, scores: np.ndarray, levels: Sequence[float]) -> dict[str, float | None]:
    """Highest window recall among thresholds whose false-positive rate is at most each level.

    Threshold-free (the best cut for each level); tie groups are cut whole.
    Keys are the levels as written by ``repr`` (``"0.001"``); ``None`` with one class.
    """
    y = np.asarray(labels).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return {repr(float(level)): None for level in levels}
    _, tp, fp = curve_points(y, scores)
    tpr = np.concatenate([[0.0], tp / n_pos])
    fpr = np.concatenate([[0.0], fp / n_neg])
    return {repr(float(level)): float(tpr[fpr <= level + 1e-15].max()) for level in levels}


# ----------------------------------------------------------------- row-wise
def _as_rows(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim == 1:
        s = s[None]
    y = np.asarray(labels).astype(bool).ravel()
    if s.ndim != 2 or s.shape[1] != len(y):
        raise ValueError(f"scores have shape {s.shape} but there are {len(y)} labels")
    return s, y


def auroc_rows(scores, labels) -> np.ndarray:
    """ROC AUC of each row of ``scores[G, N]`` (or ``[N]``), ties counted half; NaN with one class."""
    s, y = _as_rows(scores, labels)
    g, n = s.shape
    pos = float(y.sum())
    neg = n - pos
    if pos == 0 or neg == 0:
        return np.full(g, np.nan)
    order = np.argsort(s, axis=1, kind="stable")
    vals = np.take_along_axis(s, order, axis=1)
    idx = np.broadcast_to(np.arange(n), (g, n))
    new_group = np.ones((g, n), bool)
    new_group[:, 1:] = vals[:, 1:] != vals[:, :-1]
    last_of_group = np.ones((g, n), bool)
    last_of_group[:, :-1] = new_group[:, 1:]
    first = np.maximum.accumulate(np.where(new_group, idx, 0), axis=1)
    last = np.minimum.accumulate(np.where(last_of_group, idx, n)[:, ::-1], axis=1)[:, ::-1]
    rank = (first + last) / 2.0 + 1.0  # average 1-based rank of each tie group
    pos_rank_sum = (rank * y[order]).sum(axis=1)
    return (pos_rank_sum - pos * (pos + 1) / 2.0) / (pos * neg)


def auroc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """ROC AUC (Mann-Whitney, ties counted half); ``None`` with one class."""
    return _none(auroc_rows(np.asarray(scores), labels)[0])


@attrs.frozen(eq=False)
class BestThreshold:
    """Per row: the best MCC over all thresholds, and the threshold reaching it."""

    mcc: np.ndarray  #: float64[G]; NaN where the labels hold one class
    threshold: np.ndarray  #: float64[G]; decision is ``score > threshold``


def best_mcc_rows(scores, labels) -> BestThreshold:
    """Best MCC of each row of ``scores[G, N]`` (or ``[N]``) over every threshold.

    Candidate cuts lie between distinct score values (ties stay together),
    plus "nothing is an attack" (MCC 0), so the best MCC is never negative.
    The threshold is the maximum-margin choice: if consecutive cuts tie for
    the best MCC, midway across the whole tied range, i.e. between the lowest
    attack-side score of the first and the next lower score after the last.
    When no cut beats "nothing is an attack", the threshold is the top score.
    """
    s, y = _as_rows(scores, labels)
    g, n = s.shape
    pos = int(y.sum())
    if n == 0 or pos == 0 or pos == n:
        top = s.max(axis=1) if n else np.zeros(g)
        return BestThreshold(np.full(g, np.nan), top)
    order = np.argsort(-s, axis=1, kind="stable")
    vals = np.take_along_axis(s, order, axis=1)
    # cut k (0..n): the top k rows say "attack"; k = 0 is "nothing is an attack"
    tp = np.zeros((g, n + 1))
    np.cumsum(y[order], axis=1, out=tp[:, 1:])
    fp = np.arange(n + 1, dtype=np.float64) - tp
    mcc = mcc_from_counts(tp, fp, (n - pos) - fp, pos - tp)
    valid = np.ones((g, n + 1), bool)
    valid[:, 1:n] = vals[:, :-1] > vals[:, 1:]  # a cut inside a tie group is no cut
    mcc = np.where(valid, mcc, -np.inf)
    best = mcc.max(axis=1)
    tied = mcc >= (best - 1e-12)[:, None]
    first = np.argmax(tied, axis=1)
    idx = np.arange(n + 1)
    breaker = valid & ~tied & (idx > first[:, None])
    prev_valid = np.maximum.accumulate(np.where(valid, idx, -1), axis=1)
    stop = np.where(breaker.any(axis=1), np.argmax(breaker, axis=1), n + 1)
    last = prev_valid[np.arange(g), stop - 1]
    rows = np.arange(g)
    low_end = vals[:, -1] - np.maximum(1e-6, 1e-9 * np.abs(vals[:, -1]))
    lower = np.concatenate([vals, low_end[:, None]], axis=1)  # next score below cut k
    high = vals[rows, np.maximum(first - 1, 0)]  # lowest attack-side score of cut `first`
    threshold = np.where(first == 0, vals[:, 0], (high + lower[rows, last]) / 2.0)
    return BestThreshold(best, threshold)


def best_mcc_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """Threshold maximising MCC (attack if ``score > threshold``), see :func:`best_mcc_rows`.

    0.5 when the labels hold one class (no threshold can be learned from them).
    """
    result = best_mcc_rows(np.asarray(scores), labels)
    return 0.5 if np.isnan(result.mcc[0]) else float(result.threshold[0])


# --------------------------------------------------------------- at a threshold
def binary_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, Any]:
    """Window metrics at ``threshold`` (attack if ``score > threshold``); undefined ones are ``None``."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores)
    pred = scores > threshold
    tp = int(np.sum(pred & labels))
    fp = int(np.sum(pred & ~labels))
    tn = int(np.sum(~pred & ~labels))
    fn = int(np.sum(~pred & labels))
    n = len(labels)
    n_pos = tp + fn
    return {
        "mcc": _none(mcc_from_counts(tp, fp, tn, fn)),
        "f1": 2 * tp / (2 * tp + fp + fn) if n_pos else None,
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / n_pos if n_pos else None,
        "fpr": fp / (fp + tn) if fp + tn else None,
        "auroc": auroc(labels, scores),
        "ap": average_precision(labels, scores),
        "accuracy": (tp + tn) / n if n else None,
        "alert_rate": (tp + fp) / n if n else None,
        "n_windows": n,
        "n_attack_windows": int(n_pos),
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
    }


def scenario_metrics(
    labels: np.ndarray, scores: np.ndarray, attack_types: np.ndarray, threshold: float
) -> dict[str, Any]:
    """Overall metrics plus, per attack type present, that type's windows against all benign ones."""
    labels = np.asarray(labels)
    scores = np.asarray(scores)
    attack_types = np.asarray(attack_types)
    out = binary_metrics(labels, scores, threshold)
    benign = labels == 0
    per_type = {}
    for code in np.unique(attack_types[~benign]):
        mask = benign | (attack_types == code)
        m = binary_metrics(labels[mask], scores[mask], threshold)
        per_type[attack_type_name(int(code))] = {
            k: m[k] for k in ("recall", "auroc", "ap", "mcc", "f1", "n_attack_windows")
        }
    out["per_attack_type"] = per_type
    out["threshold"] = float(threshold)
    return out
