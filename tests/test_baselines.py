"""Baseline fusions: fixed rules, single learned weights, stacking, and their metrics."""

from __future__ import annotations

import itertools

import fusioncore_baselines
import numpy as np
import pytest
import torch
from fusioncore_baselines import (
    MaxFusion,
    MeanFusion,
    MixtureOfExpertsFusion,
    NotFittedError,
    SingleDetectorFusion,
    StackingFusion,
    WeightedFusion,
    simplex_grid,
)

from fusioncore import ConfigError, FusionData, UnknownComponentError
from fusioncore.evaluation.metrics import auroc_rows, best_mcc_rows

DETECTORS = ("gat", "vgae")


@pytest.fixture(autouse=True)
def _one_thread():
    """Small full-batch fits on a shared 2-core machine: extra threads only add contention."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _data(scores, labels, states=None, detectors=DETECTORS) -> FusionData:
    scores = np.asarray(scores, dtype=np.float32)
    states = np.zeros((len(labels), 1)) if states is None else states
    return FusionData(states=states, scores=scores, labels=labels, detectors=detectors)


def _random(n: int, seed: int, m: int = 2) -> FusionData:
    rng = np.random.default_rng(seed)
    detectors = tuple(f"d{i}" for i in range(m))
    labels = (rng.random(n) < 0.3).astype(int)
    return _data(rng.random((n, m)), labels, rng.normal(size=(n, 3)), detectors)


def _mcc(pred: np.ndarray, y: np.ndarray) -> float:
    tp = float((pred & (y == 1)).sum())
    tn = float((~pred & (y == 0)).sum())
    fp = float((pred & (y == 0)).sum())
    fn = float((~pred & (y == 1)).sum())
    den = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return 0.0 if den == 0 else (tp * tn - fp * fn) / den


def _test_mcc(fusion, val: FusionData, test: FusionData) -> float:
    """MCC on test at the threshold that is best on val (what the core does)."""
    threshold = best_mcc_rows(fusion.fuse(val), val.labels).threshold[0]
    return _mcc(fusion.fuse(test) > threshold, test.labels)


# ----------------------------------------------------------------- metrics
def test_best_mcc_rows_matches_brute_force_with_ties():
    rng = np.random.default_rng(0)
    labels = (rng.random(60) < 0.4).astype(int)
    rows = np.round(rng.random((4, 60)), 1)  # coarse values: many ties
    rows[1] = labels * 0.5 + rows[1] * 0.6
    result = best_mcc_rows(rows, labels)
    for row, mcc, thr in zip(rows, result.mcc, result.threshold):
        cuts = [_mcc(row > t, labels) for t in np.unique(row)] + [_mcc(row >= 0, labels)]
        brute = max([0.0, *cuts])
        assert mcc == pytest.approx(brute)
        assert _mcc(row > thr, labels) == pytest.approx(mcc)


def test_best_mcc_never_negative_and_perfect_when_separable():
    labels = np.array([0, 0, 1, 1])
    assert best_mcc_rows(np.array([0.9, 0.8, 0.1, 0.2]), labels).mcc[0] == 0.0  # inverted
    perfect = best_mcc_rows(np.array([0.1, 0.2, 0.8, 0.9]), labels)
    assert perfect.mcc[0] == pytest.approx(1.0) and 0.2 < perfect.threshold[0] < 0.8


def test_auroc_rows_matches_pairwise_count_with_ties():
    rng = np.random.default_rng(1)
    labels = (rng.random(40) < 0.5).astype(int)
    rows = np.round(rng.random((3, 40)), 1)
    for row, auc in zip(rows, auroc_rows(rows, labels)):
        pos, neg = row[labels == 1], row[labels == 0]
        pairs = [(p > q) + 0.5 * (p == q) for p, q in itertools.product(pos, neg)]
        assert auc == pytest.approx(np.mean(pairs))
    assert np.isnan(auroc_rows(rows, np.zeros(40))).all()


# ------------------------------------------------------------ fixed rules
def test_mean_max_single_values_and_shapes():
    data = _random(200, 0)
    for fusion, expected in [
        (MeanFusion(), data.scores.mean(axis=1)),
        (MaxFusion(), data.scores.max(axis=1)),
        (SingleDetectorFusion("d1"), data.scores[:, 1]),
    ]:
        fused = fusion.fit(data, data).fuse(data)
        assert fused.shape == (200,) and fused.dtype == np.float32
        assert (fused >= 0).all() and (fused <= 1).all()
        np.testing.assert_allclose(fused, expected, rtol=1e-6)
    np.testing.assert_array_equal(MeanFusion().policy(data), np.full((200, 2), 0.5))
    np.testing.assert_array_equal(SingleDetectorFusion("d0").policy(data)[0], [1.0, 0.0])


def test_single_unknown_detector_lists_names():
    with pytest.raises(UnknownComponentError, match="available: d0, d1"):
        SingleDetectorFusion("gat").fuse(_random(10, 0))


# ---------------------------------------------------------------- weighted
def test_simplex_grid():
    np.testing.assert_allclose(simplex_grid(2, 21)[:, 1], np.linspace(0, 1, 21), atol=1e-6)
    grid = simplex_grid(3, 5)
    assert grid.shape == (15, 3)
    np.testing.assert_allclose(grid.sum(axis=1), 1.0, atol=1e-6)
    assert len({tuple(r) for r in grid.tolist()}) == 15


def _perfect_second_detector(n: int, seed: int) -> FusionData:
    """Detector 1 separates the classes with a thin margin; detector 0 is noise.

    The margin is thin so that any weight on detector 0 breaks the separation:
    alpha = 1 is the only perfect candidate.
    """
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.3).astype(int)
    s1 = np.where(labels == 1, rng.uniform(0.51, 0.6, n), rng.uniform(0.4, 0.49, n))
    return _data(np.stack([rng.random(n), s1], axis=1), labels)


@pytest.mark.parametrize("criterion", ["mcc", "auroc"])
def test_weighted_learns_alpha_of_the_perfect_detector(criterion):
    train, val = _perfect_second_detector(2000, 0), _perfect_second_detector(2000, 1)
    fusion = WeightedFusion(criterion=criterion).fit(train, val)
    np.testing.assert_allclose(fusion.weights, [0.0, 1.0])
    assert fusion.score == pytest.approx(1.0)
    np.testing.assert_allclose(fusion.fuse(val), val.scores[:, 1])
    assert fusion.policy(val).shape == (2000, 2)


def test_weighted_fits_on_val_by_default():
    perfect, noise = _perfect_second_detector(500, 0), _random(500, 1)
    noise = _data(noise.scores, noise.labels)
    assert WeightedFusion().fit(noise, perfect).weights.tolist() == [0.0, 1.0]
    assert WeightedFusion(fit_on="train").fit(perfect, noise).weights.tolist() == [0.0, 1.0]


def test_weighted_three_detectors_on_the_simplex_and_round_trip():
    base = _perfect_second_detector(1000, 2)
    rng = np.random.default_rng(3)
    scores = np.stack([rng.random(1000), rng.random(1000), base.scores[:, 1]], axis=1)
    data = _data(scores, base.labels, detectors=("a", "b", "c"))
    fusion = WeightedFusion(levels=11).fit(data, data)
    np.testing.assert_allclose(fusion.weights, [0.0, 0.0, 1.0])
    fresh = WeightedFusion()
    fresh.load_state_dict(fusion.state_dict())
    np.testing.assert_array_equal(fresh.fuse(data), fusion.fuse(data))
    with pytest.raises(NotFittedError):
        WeightedFusion().fuse(data)


def test_weighted_needs_both_classes():
    data = _random(100, 0)
    one_class = _data(data.scores, np.zeros(100, dtype=int), detectors=data.detectors)
    with pytest.raises(ConfigError, match="both classes"):
        WeightedFusion().fit(data, one_class)


# ---------------------------------------------------------------- stacking
def _noisy_second_detector(n: int, seed: int) -> FusionData:
    """Detector 0 is informative but imperfect, detector 1 pure noise: the mean is hurt."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.2).astype(int)
    s0 = np.clip(0.35 + 0.3 * labels + rng.normal(0, 0.12, n), 0, 1)
    states = rng.normal(size=(n, 2))
    return _data(np.stack([s0, rng.random(n)], axis=1), labels, states)


def test_stacking_beats_mean_and_is_deterministic():
    train, val, test = (_noisy_second_detector(3000, s) for s in (0, 1, 2))
    stack = StackingFusion().fit(train, val)
    fused = stack.fuse(test)
    assert fused.shape == (3000,) and fused.dtype == np.float32
    assert (fused >= 0).all() and (fused <= 1).all()
    mean_mcc = _test_mcc(MeanFusion(), val, test)
    stack_mcc = _test_mcc(stack, val, test)
    assert stack_mcc > mean_mcc + 0.1, (stack_mcc, mean_mcc)
    np.testing.assert_array_equal(StackingFusion().fit(train, val).fuse(test), fused)


def test_stacking_mlp_learns_region_dependent_trust():
    """Detector 0 is right where state[0] < 0, detector 1 elsewhere: linear stacking can't."""

    def regions(n, seed):
        rng = np.random.default_rng(seed)
        states = rng.normal(size=(n, 2))
        labels = (rng.random(n) < 0.3).astype(int)
        good = np.where(labels == 1, rng.uniform(0.55, 1, n), rng.uniform(0, 0.45, n))
        noise = rng.random(n)
        a = states[:, 0] < 0
        scores = np.stack([np.where(a, good, noise), np.where(a, noise, good)], axis=1)
        return _data(scores, labels, states)

    train, val, test = regions(3000, 0), regions(2000, 1), regions(2000, 2)
    mlp = StackingFusion(hidden=(16,), max_iter=300).fit(train, val)
    assert _test_mcc(mlp, val, test) > 0.9 > _test_mcc(MeanFusion(), val, test)
    fresh = StackingFusion()
    fresh.load_state_dict(mlp.state_dict())
    np.testing.assert_allclose(fresh.fuse(test), mlp.fuse(test), atol=1e-6)
    with pytest.raises(NotFittedError):
        StackingFusion().fuse(test)


def _regions(n, seed):
    """Detector 0 is right where state[0] < 0, detector 1 elsewhere."""
    rng = np.random.default_rng(seed)
    states = rng.normal(size=(n, 2))
    labels = (rng.random(n) < 0.3).astype(int)
    good = np.where(labels == 1, rng.uniform(0.55, 1, n), rng.uniform(0, 0.45, n))
    noise = rng.random(n)
    a = states[:, 0] < 0
    scores = np.stack([np.where(a, good, noise), np.where(a, noise, good)], axis=1)
    return _data(scores, labels, states)


def test_mixture_of_experts_learns_whom_to_trust_where():
    train, val, test = _regions(3000, 0), _regions(2000, 1), _regions(2000, 2)
    moe = MixtureOfExpertsFusion(seed=0).fit(train, val)
    weights = moe.policy(test)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(moe.fuse(test), (weights * test.scores).sum(axis=1), atol=1e-6)
    a = test.states[:, 0] < 0
    assert weights[a, 0].mean() > 0.8 and weights[~a, 1].mean() > 0.8  # the right expert per region
    assert _test_mcc(moe, val, test) > 0.9 > _test_mcc(MeanFusion(), val, test)
    np.testing.assert_array_equal(MixtureOfExpertsFusion(seed=0).fit(train, val).fuse(test), moe.fuse(test))
    with pytest.raises(NotFittedError):
        MixtureOfExpertsFusion().policy(test)


def test_registration_hook_registers_every_baseline():
    seen = {}
    # registered lazily: each entry names its class, imported on first lookup
    fusioncore_baselines.fusioncore_register_fusions(lambda n, c, d=None: seen.setdefault(n, c.load()))
    assert seen == {
        "mean": MeanFusion,
        "max": MaxFusion,
        "single": SingleDetectorFusion,
        "weighted": WeightedFusion,
        "stacking": StackingFusion,
        "moe": MixtureOfExpertsFusion,
    }
