"""Window metrics against brute-force definitions; undefined is None, never 0."""

from __future__ import annotations

import numpy as np
import pytest

from fusioncore.evaluation import (
    auroc,
    auroc_rows,
    average_precision,
    best_mcc_rows,
    best_mcc_threshold,
    binary_metrics,
    mcc_from_counts,
    recall_at_fpr,
)


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


# ------------------------------------------------------- one implementation, row-wise and 1-D
def test_row_wise_and_one_row_metrics_agree():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 120)
    rows = np.round(rng.random((5, 120)) + 0.4 * y, 1)
    np.testing.assert_allclose(auroc_rows(rows, y), [auroc(y, r) for r in rows])
    best = best_mcc_rows(rows, y)
    for r, mcc, thr in zip(rows, best.mcc, best.threshold):
        assert best_mcc_threshold(y, r) == pytest.approx(thr)
        assert binary_metrics(y, r, thr)["mcc"] == pytest.approx(mcc)


def test_best_threshold_is_midway_and_never_below_no_attack():
    y = np.array([0, 0, 1, 1])
    assert best_mcc_threshold(y, np.array([0.1, 0.2, 0.8, 0.9])) == pytest.approx(0.5)
    # inverted scores: no cut beats "nothing is an attack", so the threshold is the top score
    assert best_mcc_threshold(y, np.array([0.9, 0.8, 0.2, 0.1])) == pytest.approx(0.9)
    assert best_mcc_rows(np.array([0.9, 0.8, 0.2, 0.1]), y).mcc[0] == 0.0
    assert best_mcc_threshold(np.zeros(4), np.arange(4.0)) == 0.5  # one class: nothing to learn
    assert np.isnan(best_mcc_rows(np.arange(4.0), np.zeros(4)).mcc[0])


def test_mcc_is_undefined_with_one_label_class_and_zero_with_one_verdict():
    assert np.isnan(mcc_from_counts(0, 3, 7, 0))  # no attack windows at all
    assert mcc_from_counts(0, 0, 7, 3) == 0.0  # attacks exist, nothing flagged
    assert mcc_from_counts(5, 0, 7, 0) == 1.0


def test_binary_metrics_say_undefined_instead_of_zero():
    benign_only = binary_metrics(np.zeros(6), np.arange(6.0), 2.5)
    for key in ("mcc", "f1", "recall", "auroc", "ap"):
        assert benign_only[key] is None, key
    assert benign_only["fpr"] == 0.5 and benign_only["precision"] == 0.0
    silent = binary_metrics(np.array([0, 1, 0, 1]), np.zeros(4), 0.5)
    assert silent["precision"] is None and silent["recall"] == 0.0 and silent["mcc"] == 0.0
    assert silent["f1"] == 0.0


def test_recall_at_fixed_false_positive_rates_cuts_tie_groups_whole():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 400)
    s = np.round(y * 0.5 + rng.normal(0, 0.5, 400), 1)
    got = recall_at_fpr(y, s, (1e-2, 0.1, 0.5))
    for level in (1e-2, 0.1, 0.5):
        best = max([0.0] + [
            ((s >= t) & (y == 1)).sum() / y.sum() for t in np.unique(s)
            if ((s >= t) & (y == 0)).sum() / (y == 0).sum() <= level
        ])
        assert got[repr(level)] == pytest.approx(best)
    assert recall_at_fpr(np.zeros(5), np.arange(5.0), (0.01,)) == {"0.01": None}


def test_metric_code_has_one_home():
    """Window metrics are implemented once, in fusioncore/evaluation/metrics.py."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    pattern = re.compile(r"^\s*def \w*(mcc|auroc|average_precision)\w*\(", re.M)
    homes = sorted(
        str(p.relative_to(root)) for top in ("fusioncore", "plugins") for p in (root / top).rglob("*.py")
        if pattern.search(p.read_text())
    )
    assert homes == ["fusioncore/evaluation/metrics.py"]
