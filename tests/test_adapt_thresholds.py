"""Threshold adaptation: the benign-quantile anchor and what it leaves out of cache keys."""

from __future__ import annotations

import numpy as np
import pytest

from fusioncore.adapt.base import NoAdapter, ProfileAdapter, ScoresAdapter
from fusioncore.adapt.thresholds import benign_side_threshold
from fusioncore.errors import ConfigError
from fusioncore.evaluation import best_mcc_threshold


def _validation(rng, outlier: float | None = 19.0):
    """Benign scores around 0 with one drifting window far out; easy attacks far above."""
    benign = rng.normal(0.0, 1.0, 400)
    if outlier is not None:
        benign[0] = outlier
    attacks = rng.normal(60.0, 2.0, 100)
    labels = np.r_[np.zeros(400, int), np.ones(100, int)]
    return labels, np.r_[benign, attacks]


def test_quantile_one_is_the_best_mcc_range_rule():
    labels, scores = _validation(np.random.default_rng(0))
    lo, hi = 19.0, scores[labels == 1].min()
    assert benign_side_threshold(labels, scores, 0.25, 1.0) == pytest.approx(lo + 0.25 * (hi - lo))
    assert benign_side_threshold(labels, scores, 0.5) == pytest.approx(best_mcc_threshold(labels, scores))


def test_one_drifting_benign_window_does_not_lift_the_threshold():
    rng = np.random.default_rng(1)
    labels, scores = _validation(rng)
    # a quieter attack on a new vehicle: above the benign bulk, below the one drifting window
    quiet = rng.normal(12.0, 1.0, 200)
    test_benign = rng.normal(0.0, 1.0, 400)
    max_rule = benign_side_threshold(labels, scores, 0.1, 1.0)
    quantile_rule = benign_side_threshold(labels, scores, 0.1, 0.99)
    assert (quiet > max_rule).mean() == 0.0  # anchored on the outlier: the attack is missed
    assert (quiet > quantile_rule).mean() > 0.95
    assert (test_benign > quantile_rule).mean() < 0.01
    q99 = np.quantile(scores[labels == 0], 0.99, method="higher")
    assert q99 < quantile_rule < 0.2 * scores[labels == 1].min() + 0.8 * q99 + 1e-9


def test_attacks_inside_the_benign_tail_leave_the_threshold_at_the_quantile():
    labels = np.r_[np.zeros(100, int), np.ones(5, int)]
    scores = np.r_[np.arange(100.0), [10.0, 20.0, 30.0, 40.0, 50.0]]
    q = np.quantile(scores[:100], 0.9, method="higher")
    assert benign_side_threshold(labels, scores, 0.5, 0.9) == q


def test_bad_quantiles_fail_with_a_config_error():
    with pytest.raises(ConfigError, match="benign_quantile"):
        benign_side_threshold(np.r_[0, 1], np.r_[0.0, 1.0], 0.1, 0.0)
    with pytest.raises(ConfigError, match="benign_quantile"):
        ProfileAdapter(benign_quantile=1.5)


def test_decision_parameters_do_not_change_the_data_fingerprint():
    base = ProfileAdapter()
    assert ProfileAdapter(threshold_share=0.4, benign_quantile=1.0).fingerprint() == base.fingerprint()
    assert ProfileAdapter(profile_share=0.25).fingerprint() != base.fingerprint()
    assert ScoresAdapter(benign_quantile=0.9).fingerprint() == ScoresAdapter().fingerprint()
    assert NoAdapter().fingerprint() != ScoresAdapter().fingerprint()
    assert base.params()["benign_quantile"] == 0.99  # still saved with the run


def test_the_report_header_prints_seed_means_of_parameters_plainly():
    from fusioncore.adapt.report import protocol_lines

    params = {"threshold_share": (0.1 + 0.1 + 0.1) / 3, "benign_quantile": 0.99,
              "features": True, "buckets": 16}
    report = {"protocol": {"adapter": "profile", "warmup_s": 4.0, "params": params}}
    header = protocol_lines(report)[0]
    assert "threshold_share=0.1," in header and "0.10000000000000002" not in header
    assert "features=True" in header and "buckets=16" in header
