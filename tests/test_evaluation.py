"""Metrics against brute-force definitions."""

from __future__ import annotations

import numpy as np
import pytest

from fusioncore.evaluation import auroc, average_precision, best_mcc_threshold, binary_metrics


def _auroc_pairs(y, s):
    pos, neg = s[y == 1], s[y == 0]
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0) + 0.5 * (diff == 0)).mean())


def _ap_brute(y, s):
    total, ap = y.sum(), 0.0
    for t in np.unique(s)[::-1]:
        pred = s >= t
        tp = (pred & (y == 1)).sum()
        prec = tp / pred.sum()
        ap += prec * ((tp - ((s > t) & (y == 1)).sum()) / total)
    return ap


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auroc_and_ap_match_definitions(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 300)
    s = np.round(y * 0.7 + rng.normal(0, 1, 300), 1)  # rounding creates ties
    assert auroc(y, s) == pytest.approx(_auroc_pairs(y, s))
    assert average_precision(y, s) == pytest.approx(_ap_brute(y, s))


def test_undefined_metrics_are_none():
    assert auroc(np.zeros(5), np.arange(5)) is None
    assert average_precision(np.zeros(5), np.arange(5)) is None


def test_best_threshold_maximises_mcc():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 400)
    s = y + rng.normal(0, 0.8, 400)
    t = best_mcc_threshold(y, s)
    best = binary_metrics(y, s, t)["mcc"]
    for cand in np.linspace(s.min(), s.max(), 200):
        assert binary_metrics(y, s, cand)["mcc"] <= best + 1e-12


def test_binary_metrics_counts():
    m = binary_metrics(np.array([1, 1, 0, 0]), np.array([0.9, 0.2, 0.8, 0.1]), 0.5)
    assert (m["tp"], m["fn"], m["fp"], m["tn"]) == (1, 1, 1, 1)
    assert m["mcc"] == 0.0 and m["accuracy"] == 0.5
