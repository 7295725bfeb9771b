"""State encoders of the dqn plugin: layout, standardisation, non-finite values, persistence."""

from __future__ import annotations

import numpy as np
import pytest
from fusioncore_dqn.encoders import DetectorFeaturesEncoder, ScoresOnlyEncoder

from fusioncore import ConfigError, DetectorOutput
from fusioncore.contracts import arrays_to_npz_bytes, npz_bytes_to_arrays


def _output(n: int, names: tuple[str, ...], seed: int, start: int = 0, scale: float = 1.0):
    rng = np.random.default_rng(seed)
    return DetectorOutput(
        window_ids=np.arange(start, start + n),
        score=rng.random(n),
        features=rng.normal(3.0, 2.0 * scale, size=(n, len(names))),
        feature_names=names,
    )


@pytest.fixture
def train():
    # deliberately not in name order: the encoder must sort
    return {"vgae": _output(500, ("mse", "kl"), 1), "gat": _output(500, ("p1", "conf", "std"), 2)}


def test_detector_features_layout_is_sorted_and_prefixed(train):
    enc = DetectorFeaturesEncoder().fit(train)
    assert enc.state_names == ("gat.p1", "gat.conf", "gat.std", "vgae.mse", "vgae.kl")
    assert enc.dim == 5
    state = enc.encode(dict(reversed(list(train.items()))))
    assert state.dtype == np.float32 and state.shape == (500, 5)
    column = train["gat"].features[:, 0]
    np.testing.assert_allclose(state[:, 0], (column - column.mean()) / column.std(), atol=1e-5)


def test_standardised_with_training_statistics_only(train):
    enc = DetectorFeaturesEncoder().fit(train)
    state = enc.encode(train)
    np.testing.assert_allclose(state.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(state.std(axis=0), 1.0, atol=1e-4)
    shifted = {
        name: DetectorOutput(o.window_ids, o.score, o.features + 10.0, o.feature_names)
        for name, o in train.items()
    }
    # new data is encoded with the *training* mean / std, so a shift shows up
    assert (enc.encode(shifted).mean(axis=0) > 3.0).all()


def test_detectors_param_selects_outputs(train):
    enc = DetectorFeaturesEncoder(detectors=["vgae"]).fit(train)
    assert enc.state_names == ("vgae.mse", "vgae.kl")
    assert enc.encode({"vgae": train["vgae"]}).shape == (500, 2)
    with pytest.raises(ConfigError, match="requested"):
        DetectorFeaturesEncoder(detectors=["vgae", "iat"]).fit(train)


def test_nonfinite_values_become_zero_or_raise(train):
    enc = DetectorFeaturesEncoder().fit(train)
    gat = train["gat"]
    feats = gat.features.copy()
    feats[3, 1], feats[7, 2], feats[9, 0] = np.nan, np.inf, -np.inf
    dirty = dict(train, gat=DetectorOutput(gat.window_ids, gat.score, feats, gat.feature_names))
    state = enc.encode(dirty)
    assert np.isfinite(state).all()
    assert state[3, 1] == 0.0 and state[7, 2] == 0.0 and state[9, 0] == 0.0
    np.testing.assert_array_equal(state[4], enc.encode(train)[4])  # other rows untouched
    strict = DetectorFeaturesEncoder(nonfinite="raise").fit(train)
    with pytest.raises(ConfigError, match="3 non-finite values, first in column 'gat.conf' of row 3"):
        strict.encode(dirty)


def test_nonfinite_and_constant_training_columns(train):
    gat = train["gat"]
    feats = gat.features.copy()
    feats[:10, 0] = np.nan  # statistics from the finite values only
    feats[:, 1] = 4.0  # constant: std would be 0
    fit_on = {"gat": DetectorOutput(gat.window_ids, gat.score, feats, gat.feature_names)}
    enc = DetectorFeaturesEncoder().fit(fit_on)
    state = enc.encode(fit_on)
    assert np.isfinite(state).all()
    np.testing.assert_allclose(state[10:, 0].mean(), 0.0, atol=1e-5)
    np.testing.assert_array_equal(state[:, 1], 0.0)


def test_misaligned_missing_or_changed_outputs_are_errors(train):
    enc = DetectorFeaturesEncoder().fit(train)
    shifted = dict(train, vgae=_output(500, ("mse", "kl"), 1, start=1))
    with pytest.raises(ConfigError, match="not aligned"):
        enc.encode(shifted)
    with pytest.raises(ConfigError, match="missing outputs for \\['vgae'\\]"):
        enc.encode({"gat": train["gat"]})
    with pytest.raises(ConfigError, match="columns changed"):
        enc.encode(dict(train, vgae=_output(500, ("kl", "mse"), 1)))
    with pytest.raises(ConfigError, match="not fitted"):
        DetectorFeaturesEncoder().encode(train)
    with pytest.raises(ConfigError, match="no detector outputs"):
        DetectorFeaturesEncoder().fit({})
    with pytest.raises(ConfigError, match="scores-only"):
        DetectorFeaturesEncoder().fit({"x": _output(5, (), 0)})
    with pytest.raises(ConfigError, match="nonfinite"):
        DetectorFeaturesEncoder(nonfinite="ignore")


@pytest.mark.parametrize("cls", [DetectorFeaturesEncoder, ScoresOnlyEncoder])
def test_state_dict_round_trip_through_safe_arrays(cls, train):
    enc = cls().fit(train)
    blob = arrays_to_npz_bytes(enc.state_dict())  # no pickle: what a run stores
    fresh = cls()
    fresh.load_state_dict(npz_bytes_to_arrays(blob))
    assert fresh.state_names == enc.state_names
    val = {"vgae": _output(50, ("mse", "kl"), 8), "gat": _output(50, ("p1", "conf", "std"), 9)}
    np.testing.assert_array_equal(fresh.encode(val), enc.encode(val))


def test_scores_only(train):
    enc = ScoresOnlyEncoder().fit(train)
    assert enc.state_names == ("gat.score", "vgae.score")
    state = enc.encode(train)
    assert state.shape == (500, 2)
    np.testing.assert_allclose(state.mean(axis=0), 0.0, atol=1e-5)
    ranks = np.argsort(np.argsort(state[:, 1]))
    np.testing.assert_array_equal(ranks, np.argsort(np.argsort(train["vgae"].score)))
