"""Threshold-free ranking metrics, vectorised over many candidate score rows at once.

Used to pick fusion weights on a grid: every candidate's fused scores form one
row of ``scores[G, N]`` and all G candidates are scored with one sort.
"""

from __future__ import annotations

import attrs
import numpy as np
import torch

__all__ = ["BestThreshold", "auroc_rows", "best_mcc_rows"]


@attrs.frozen(eq=False)
class BestThreshold:
    """Per row: the best MCC over all thresholds, and a threshold reaching it."""

    mcc: np.ndarray  #: float64[G]
    threshold: np.ndarray  #: float64[G]; decision is ``score > threshold``


def _as_rows(scores: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor):
    s = torch.as_tensor(np.asarray(scores), dtype=torch.float64)
    if s.ndim == 1:
        s = s[None]
    y = torch.as_tensor(np.asarray(labels), dtype=torch.float64)
    if s.shape[1] != len(y):
        raise ValueError(f"scores have {s.shape[1]} columns but there are {len(y)} labels")
    return s, y


def best_mcc_rows(
    scores: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor
) -> BestThreshold:
    """Best MCC of each row of ``scores[G, N]`` (or ``[N]``) over every threshold.

    Only cuts between distinct score values are considered, so tied scores
    always fall on the same side. Predicting no attack at all (MCC 0) is
    always available, so the result is never negative.
    """
    s, y = _as_rows(scores, labels)
    g, n = s.shape
    if n == 0:
        return BestThreshold(np.zeros(g), np.zeros(g))
    vals, order = s.sort(dim=1, descending=True)
    tp = y[order].cumsum(dim=1)  # cut after position k: the top k + 1 rows say "attack"
    fp = torch.arange(1, n + 1, dtype=torch.float64) - tp
    pos = y.sum()
    fn, tn = pos - tp, (n - pos) - fp
    denom = ((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)).sqrt()
    mcc = torch.where(denom > 0, (tp * tn - fp * fn) / denom.clamp_min(1e-300), 0.0)
    lower = torch.cat([vals[:, 1:], vals[:, -1:] - 1.0], dim=1)  # next score below each cut
    valid = vals > lower
    mcc = torch.where(valid, mcc, -torch.inf)
    best, k = mcc.max(dim=1)
    rows = torch.arange(g)
    threshold = (vals[rows, k] + lower[rows, k]) / 2
    # No cut beats "never say attack" (MCC 0): threshold at the top score.
    none_better = best <= 0
    threshold = torch.where(none_better, vals[:, 0], threshold)
    best = best.clamp_min(0.0)
    return BestThreshold(best.numpy(), threshold.numpy())


def auroc_rows(
    scores: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor
) -> np.ndarray:
    """ROC AUC of each row of ``scores[G, N]`` (ties count one half); NaN with one class."""
    s, y = _as_rows(scores, labels)
    g, n = s.shape
    pos = float(y.sum())
    neg = n - pos
    if pos == 0 or neg == 0:
        return np.full(g, np.nan)
    vals, order = s.sort(dim=1)
    idx = torch.arange(n).expand(g, n)
    new_group = torch.ones(g, n, dtype=torch.bool)
    new_group[:, 1:] = vals[:, 1:] != vals[:, :-1]
    last_of_group = torch.ones(g, n, dtype=torch.bool)
    last_of_group[:, :-1] = new_group[:, 1:]
    first = torch.where(new_group, idx, 0).cummax(dim=1).values
    last = torch.where(last_of_group, idx, n).flip(1).cummin(dim=1).values.flip(1)
    rank = (first + last).double() / 2 + 1  # average rank of each tie group, 1-based
    pos_rank_sum = (rank * y[order]).sum(dim=1)
    return ((pos_rank_sum - pos * (pos + 1) / 2) / (pos * neg)).numpy()
