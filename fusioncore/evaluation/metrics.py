"""Window-level metrics and decision thresholds, vectorised in numpy.

With 0.1-18 % attack windows, accuracy hides collapse, so reports lead with
MCC, AUROC and average precision. AUROC is the Mann-Whitney statistic with
ties counted half; AP is the step-wise area under precision-recall (as in
scikit-learn). A metric that is undefined for the data (AUROC with one class)
is ``None`` rather than a misleading number.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fusioncore.data.frames import attack_type_name

__all__ = ["auroc", "average_precision", "best_mcc_threshold", "binary_metrics", "scenario_metrics"]


def auroc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    labels = np.asarray(labels).astype(bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    s = np.asarray(scores)[order]
    # average ranks for ties
    _, first, counts = np.unique(s, return_index=True, return_counts=True)
    avg_rank = first + (counts + 1) / 2.0
    ranks = np.repeat(avg_rank, counts)
    pos_rank_sum = ranks[labels[order]].sum()
    return float((pos_rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _curve(labels: np.ndarray, scores: np.ndarray):
    """TP and FP counts when thresholding at each distinct score (descending)."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="mergesort")
    s = np.asarray(scores, dtype=np.float64)[order]
    y = np.asarray(labels)[order].astype(np.int64)
    distinct = np.flatnonzero(np.diff(s)) if len(s) > 1 else np.zeros(0, np.int64)
    idx = np.concatenate([distinct, [len(s) - 1]])
    tp = np.cumsum(y)[idx]
    fp = (idx + 1) - tp
    return s[idx], tp, fp


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float | None:
    labels = np.asarray(labels).astype(bool)
    n_pos = int(labels.sum())
    if n_pos == 0 or len(labels) == 0:
        return None
    _, tp, fp = _curve(labels, scores)
    precision = tp / np.maximum(tp + fp, 1)
    recall = tp / n_pos
    return float(np.sum(np.diff(np.concatenate([[0.0], recall])) * precision))


def _mcc(tp, fp, tn, fn) -> np.ndarray:
    tp, fp, tn, fn = (np.asarray(a, dtype=np.float64) for a in (tp, fp, tn, fn))
    denom = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return np.where(denom > 0, (tp * tn - fp * fn) / np.where(denom > 0, denom, 1), 0.0)


def best_mcc_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """Threshold maximising MCC (attack if ``score > threshold``); 0.5 if undefined.

    The threshold sits midway between the cut's lowest attack-side score and
    the next lower score (the maximum-margin choice); if several consecutive
    cut points tie for the best MCC, midway across the whole tied range.
    """
    labels = np.asarray(labels).astype(bool)
    if len(labels) == 0 or labels.all() or not labels.any():
        return 0.5
    s, tp, fp = _curve(labels, scores)
    n_pos = labels.sum()
    n_neg = len(labels) - n_pos
    mcc = _mcc(tp, fp, n_neg - fp, n_pos - tp)
    tied = mcc >= mcc.max() - 1e-12
    first = int(np.argmax(tied))
    after = np.flatnonzero(~tied[first:])
    last = first + int(after[0]) - 1 if after.size else len(mcc) - 1
    # cut points first..last tie; "score > t" reproduces them for t in [s[last + 1], s[first])
    bottom = s[last + 1] if last + 1 < len(s) else s[last] - 1e-6
    return float((s[first] + bottom) / 2.0)


def binary_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, Any]:
    labels = np.asarray(labels).astype(bool)
    pred = np.asarray(scores) > threshold
    tp = int(np.sum(pred & labels))
    fp = int(np.sum(pred & ~labels))
    tn = int(np.sum(~pred & ~labels))
    fn = int(np.sum(~pred & labels))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "mcc": float(_mcc(tp, fp, tn, fn)),
        "f1": f1,
        "precision": precision,
        "recall": recall,
        "auroc": auroc(labels, scores),
        "ap": average_precision(labels, scores),
        "accuracy": (tp + tn) / len(labels) if len(labels) else None,
        "n_windows": len(labels),
        "n_attack_windows": int(labels.sum()),
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
    }


def scenario_metrics(
    labels: np.ndarray, scores: np.ndarray, attack_types: np.ndarray, threshold: float
) -> dict[str, Any]:
    """Overall metrics plus, per attack type present, that type's windows against all benign ones."""
    out = binary_metrics(labels, scores, threshold)
    benign = np.asarray(labels) == 0
    per_type = {}
    for code in np.unique(np.asarray(attack_types)[~benign]):
        mask = benign | (np.asarray(attack_types) == code)
        m = binary_metrics(np.asarray(labels)[mask], np.asarray(scores)[mask], threshold)
        per_type[attack_type_name(int(code))] = {
            k: m[k] for k in ("recall", "auroc", "ap", "mcc", "f1", "n_attack_windows")
        }
    out["per_attack_type"] = per_type
    out["threshold"] = float(threshold)
    return out
