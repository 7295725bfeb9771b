"""Platt calibration of detector scores and the non-saturating unit map behind it."""

from __future__ import annotations

import numpy as np

from fusioncore.calibration import TAIL_START, PlattScaler, unit_score
from fusioncore.evaluation import auroc


def test_unit_score_is_the_logistic_function_where_it_is_a_probability():
    z = np.linspace(-TAIL_START, TAIL_START, 101)
    np.testing.assert_allclose(unit_score(z), 1 / (1 + np.exp(-z)), rtol=0, atol=1e-15)


def test_unit_score_is_smooth_symmetric_and_strictly_increasing():
    z = np.concatenate([np.linspace(-2000, 2000, 40_001), [-1e6, 1e6]])
    z.sort()
    p = unit_score(z)
    assert np.all(np.diff(p) > 0) and p.min() > 0 and p.max() < 1
    np.testing.assert_allclose(unit_score(-z), 1 - p, atol=1e-15)
    # continuous slope where the tail starts
    eps = 1e-6
    left = (unit_score(TAIL_START) - unit_score(TAIL_START - eps)) / eps
    right = (unit_score(TAIL_START + eps) - unit_score(TAIL_START)) / eps
    assert abs(left - right) < 1e-6
    assert unit_score(np.nan) == 0.5


def test_confident_scores_do_not_tie_in_float32():
    """A float32 sigmoid is exactly 1.0 past z ~ 17; the calibrated scores stay apart."""
    z = np.arange(18.0, 400.0, 0.5)
    assert len(np.unique((1 / (1 + np.exp(-z))).astype(np.float32))) == 1
    assert len(np.unique(unit_score(z).astype(np.float32))) == len(z)


def test_platt_scaler_keeps_the_ranking_of_heavy_tailed_scores():
    rng = np.random.default_rng(0)
    benign = rng.normal(0, 1, 2000)
    floods = 1e3 * 1.01 ** np.arange(150)  # 1e3 .. 4.4e3 sigma, 1 % apart
    attacks = np.concatenate([rng.uniform(8, 40, 150), floods])  # subtle attacks + floods
    scores = np.concatenate([benign, attacks]).astype(np.float32)
    labels = np.r_[np.zeros(2000), np.ones(300)]
    cal = PlattScaler.fit(scores, labels)
    p = cal(scores)
    assert p.dtype == np.float32 and cal.a > 0
    # strictly increasing: distinct scores stay distinct, the order (and AUROC) is the scores' own
    order = np.argsort(scores, kind="stable")
    assert np.all(np.diff(p[order]) > 0)
    assert auroc(labels, p) == auroc(labels, scores)
    # the step lies between benign traffic and the subtle attacks, not under the floods
    assert p[:2000].max() < 0.5 < p[2000:2150].min()
