"""Tests of the iat detector: fusioncore's detector contract, its entry point, and what it detects."""

from __future__ import annotations

import importlib.metadata as md

import fusioncore_iat
import numpy as np
import pytest
import torch
from fusioncore_iat import IATDetector

import fusioncore
from fusioncore import ConfigError
from fusioncore.evaluation import auroc
from fusioncore.plugins import load_plugins
from fusioncore.testing import DetectorContract, tiny_dataset, train_for_contract


class TestIATContract(DetectorContract):
    """Everything fusioncore expects of a detector: trains, predicts, fingerprints, reloads."""

    detector_cls = IATDetector


@pytest.fixture(scope="module")
def trained() -> IATDetector:
    return train_for_contract(IATDetector).model


def test_registered_through_its_entry_point():
    eps = md.entry_points(group="fusioncore", name="iat")
    if not eps:
        pytest.skip("fusioncore-iat is not installed (pip install -e .)")
    (ep,) = eps
    plugins = load_plugins(strict=True, entry_points=[ep])
    assert plugins.registry.get("detector", "iat") is IATDetector
    assert plugins.infos["iat"].distribution == "fusioncore-iat"


def test_declares_a_hook_api_range_that_includes_this_fusioncore():
    low, high = fusioncore_iat.FUSIONCORE_HOOK_API
    assert low <= fusioncore.HOOK_API_VERSION <= high


@pytest.mark.parametrize("attack", ["flooding", "fuzzing"])
def test_flooding_and_fuzzing_windows_score_far_above_benign(trained, attack):
    data = tiny_dataset()
    codes = {"flooding": 1, "fuzzing": 2}  # fusioncore.data.frames.ATTACK_TYPES
    outputs = [trained.predict_step(b) for b in data.loader("test")]
    score = np.concatenate([o.score for o in outputs])
    kind = data.splits["test"].attack_types
    chosen = (kind == 0) | (kind == codes[attack])
    assert auroc(kind[chosen] > 0, score[chosen]) > 0.95


def test_a_slowed_down_id_raises_the_timing_deviation(trained):
    batch = next(iter(tiny_dataset().loader("test", benign_only=True)))
    before = trained.components(batch)
    column = list(trained.schema.node_features).index("iat_vs_period")
    slowed = batch.clone()
    first_node = batch.ptr[0]  # one ID of window 0 now arrives 10 benign std's late
    slowed.x[first_node, column] += 10.0
    after = trained.components(slowed)
    names = IATDetector.feature_names
    assert after[0, names.index("iat_deviation_max")] > before[0, names.index("iat_deviation_max")] + 5
    assert torch.equal(after[1:], before[1:])  # other windows are untouched


def test_unknown_feature_names_are_refused_with_the_choices():
    with pytest.raises(ConfigError, match="no_such_feature.*available: count_share"):
        IATDetector(tiny_dataset().schema, features=["no_such_feature"])


def test_profile_relative_graphs_get_the_relative_timing_features():
    """Under the default `profile` adapter the graphs carry period_ratio / jitter_ratio instead."""
    import attrs
    from fusioncore_iat import RELATIVE_FEATURES

    schema = tiny_dataset().schema
    rename = {"iat_vs_period": "period_ratio", "iat_std": "jitter_ratio"}
    names = [rename.get(n, n) for n in schema.node_features]
    relative = attrs.evolve(schema, node_features=tuple(names))
    detector = IATDetector(relative)
    assert detector.hparams["features"] == list(RELATIVE_FEATURES)
    assert IATDetector(schema).hparams["features"] == ["iat_vs_period", "iat_std", "count_share"]
