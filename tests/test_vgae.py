"""The unsupervised VGAE detector plugin (``vgae``) on toy window graphs."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from detector_batches import (
    TOY_SCHEMA,
    as_loader,
    make_batches,
    one_torch_thread,
    quiet_trainer,
)
from fusioncore_vgae import CHANNELS, PRESETS, ScoreCalibration, VGAEDetector
from torchmetrics.functional.classification import binary_auroc

from fusioncore.contracts import DetectorOutput
from fusioncore.errors import ConfigError
from fusioncore.plugins import load_plugins

# Lightning 2.6 on torch 2.13 warns about its own use of torch's pytree API.
pytestmark = pytest.mark.filterwarnings(
    r"ignore:`isinstance\(treespec, LeafSpec\)` is deprecated:FutureWarning"
)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small VGAE trained on benign toy windows and calibrated on benign validation ones."""
    torch.manual_seed(0)
    train = make_batches(512, seed=1)
    val = make_batches(128, seed=2, first_window_id=10_000)
    test = make_batches(256, attack_share=0.4, payload_shift=2.0, seed=3, first_window_id=50_000)
    model = VGAEDetector(TOY_SCHEMA)
    trainer = quiet_trainer(8, tmp_path_factory.mktemp("vgae"))
    trainer.fit(model, as_loader(train), as_loader(val))
    model.calibrate(val)
    return model, trainer, val, test


def _predict(model: VGAEDetector, batches) -> DetectorOutput:
    model.eval()
    return DetectorOutput.concat([model.predict_step(b) for b in batches])


def _channels(model: VGAEDetector, batches) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return torch.cat([model(b)[1].channels() for b in batches])


def test_registered_through_the_entry_point():
    assert load_plugins().registry.get("detector", "vgae") is VGAEDetector
    assert VGAEDetector.supervised is False


def test_scores_attacks_above_benign(trained):
    model, trainer, _, test = trained
    out = DetectorOutput.concat(trainer.predict(model, as_loader(test)))
    labels = torch.cat([b.y for b in test])
    kinds = torch.cat([b.attack_type for b in test])
    score = torch.from_numpy(out.score)
    assert binary_auroc(score, labels).item() >= 0.9
    for kind in (1, 2):  # unknown-ID flood and a corrupted payload of a known ID
        rows = (kinds == 0) | (kinds == kind)
        assert binary_auroc(score[rows], labels[rows]).item() >= 0.9
    assert score[labels == 1].median() > 2.0 > score[labels == 0].median()


def test_benign_validation_scores_are_z_scores(trained):
    model, _, val, _ = trained
    assert model.is_calibrated
    score = _predict(model, val).score.astype(np.float64)
    assert abs(score.mean()) < 1e-3
    assert abs(score.std(ddof=1) - 1.0) < 1e-3


def test_both_combine_rules_separate_subtle_corruption(trained):
    """``sum`` (the default) is not materially worse than ``max`` (see fusioncore_vgae.scoring)."""
    model, _, val, _ = trained
    test = make_batches(256, attack_share=0.4, payload_shift=1.5, seed=4)
    labels = torch.cat([b.y for b in test])
    benign, errors = _channels(model, val), _channels(model, test)
    auroc = {}
    for rule in ("sum", "max"):
        calibration = ScoreCalibration(len(CHANNELS), rule)
        calibration.fit(benign)
        auroc[rule] = binary_auroc(calibration(errors), labels).item()
    assert min(auroc.values()) >= 0.85
    assert auroc["sum"] >= auroc["max"] - 0.02


def test_output_shapes_and_features(trained):
    model, _, _, test = trained
    batch = test[0]
    out = model.eval().predict_step(batch)
    n = batch.num_graphs
    assert out.feature_names == VGAEDetector.feature_names == (
        "node_mse", "id_ce", "edge_bce", "z_mean", "z_std", "z_max", "z_min", "confidence",
        "standardised_max",
    )  # fmt: skip
    assert out.score.shape == (n,) and out.features.shape == (n, 9)
    np.testing.assert_array_equal(out.window_ids, batch.window_id.numpy())
    f = dict(zip(out.feature_names, out.features.T))
    assert np.all(f["node_mse"] >= 0) and np.all(f["id_ce"] >= 0) and np.all(f["edge_bce"] > 0)
    assert np.all(f["z_min"] <= f["z_mean"]) and np.all(f["z_mean"] <= f["z_max"])
    assert np.all(f["z_std"] >= 0)
    np.testing.assert_allclose(f["confidence"], 1 / (1 + np.maximum(out.score, 0)), rtol=1e-6)
    # the toy schema has no column standardised by construction: the channel is 0
    assert np.all(f["standardised_max"] == 0)


def test_standardised_max_is_the_worst_error_among_the_self_standardised_columns():
    import attrs

    names = list(TOY_SCHEMA.node_features)
    names[1], names[3] = "byte0_surprise", "byte5_surprise"
    schema = attrs.evolve(TOY_SCHEMA, node_features=tuple(names))
    torch.manual_seed(0)
    model = VGAEDetector(schema).eval()
    batch = make_batches(8, seed=4)[0]
    with torch.no_grad():
        encoding = model.network.encode(batch, sample=False)
        errors = model(batch)[1]
        diff = (model.network.decode_features(encoding.z, batch.node_id) - batch.x)[:, [1, 3]].abs()
    for g in range(batch.num_graphs):
        nodes = batch.batch == g
        torch.testing.assert_close(errors.standardised_max[g], diff[nodes].max())
    # a large value in one such column of one node moves its window's channel, not the others'
    bumped = batch.clone()
    bumped.x = batch.x.clone()
    first = int((batch.batch == 2).nonzero()[0])
    bumped.x[first, 3] += 50.0
    with torch.no_grad():
        after = model(bumped)[1].standardised_max
    assert after[2] > errors.standardised_max[2] + 40
    others = torch.arange(batch.num_graphs) != 2
    torch.testing.assert_close(after[others], errors.standardised_max[others])


def test_vectorised_errors_match_a_per_window_reference(trained):
    model, _, _, test = trained
    batch = test[0]
    model.eval()
    with torch.no_grad():
        encoding = model.network.encode(batch, sample=False)
        errors = model(batch)[1]
        out = model.predict_step(batch)
        for g in (0, 5):
            nodes = (batch.batch == g).nonzero().squeeze(1)
            z, node_id = encoding.z[nodes], batch.node_id[nodes]
            x_hat = model.network.decode_features(z, node_id)
            mse = (x_hat - batch.x[nodes]).pow(2).mean(dim=1)
            ce = F.cross_entropy(model.network.decode_ids(z), node_id, reduction="none")
            local = {int(n): i for i, n in enumerate(nodes)}
            linked = {
                frozenset((local[int(s)], local[int(d)]))
                for s, d in batch.edge_index.T
                if int(s) in local and s != d
            }
            pos, neg = [], []
            for i in range(len(nodes)):
                for j in range(len(nodes)):
                    if i != j:
                        target = float(frozenset((i, j)) in linked)
                        bce = F.binary_cross_entropy_with_logits(z[i] @ z[j], torch.tensor(target))
                        (pos if target else neg).append(bce)
            edge_bce = 0.5 * (torch.stack(pos).mean() + torch.stack(neg).mean())
            torch.testing.assert_close(errors.node_mse[g], mse.mean())
            torch.testing.assert_close(errors.node_mse_max[g], mse.max())
            torch.testing.assert_close(errors.id_ce[g], ce.mean())
            torch.testing.assert_close(errors.id_ce_max[g], ce.max())
            torch.testing.assert_close(errors.edge_bce[g], edge_bce)
            mu = encoding.mu[nodes]
            expected = [mu.mean(), mu.std(unbiased=False), mu.max(), mu.min()]
            np.testing.assert_allclose(out.features[g, 3:7], torch.stack(expected), rtol=1e-4)


def test_attack_windows_never_reach_the_loss(trained):
    model = copy.deepcopy(trained[0]).eval()
    batch = make_batches(16, attack_share=0.5, seed=7)[0]
    attacks = batch.y == 1
    assert 0 < int(attacks.sum()) < 16
    loss, n_benign = model._benign_loss(batch)
    assert n_benign == int((~attacks).sum())
    scrambled = batch.clone()
    scrambled.x = torch.where(attacks[batch.batch, None], batch.x * 100, batch.x)
    torch.testing.assert_close(model._benign_loss(scrambled)[0], loss)

    all_attack = batch.clone()
    all_attack.y = torch.ones_like(batch.y)
    loss, n_benign = model._benign_loss(all_attack)
    assert n_benign == 0 and loss.item() == 0.0 and loss.requires_grad


def test_predictions_deterministic_in_eval_mode(trained):
    model, _, _, test = trained
    first, second = _predict(model, test[:2]), _predict(model, test[:2])
    np.testing.assert_array_equal(first.score, second.score)
    np.testing.assert_array_equal(first.features, second.features)


def test_fingerprint_covers_weights_and_calibration(trained):
    model, _, val, _ = trained
    fresh = VGAEDetector(TOY_SCHEMA)
    fresh.load_state_dict(model.state_dict())
    assert fresh.fingerprint() == model.fingerprint()
    fresh.calibration.score_std.mul_(2)
    assert fresh.fingerprint() != model.fingerprint()
    fresh.calibrate(val)
    assert fresh.fingerprint() == model.fingerprint()
    with torch.no_grad():
        fresh.network.mu.bias[0] += 1e-3
    assert fresh.fingerprint() != model.fingerprint()


def test_checkpoint_round_trip_with_weights_only(trained, tmp_path):
    model, trainer, _, test = trained
    path = tmp_path / "vgae.ckpt"
    trainer.save_checkpoint(path)  # after calibrate(): the statistics travel with the weights
    checkpoint = torch.load(path, weights_only=True)
    rebuilt = VGAEDetector(**checkpoint["hyper_parameters"])
    rebuilt.load_state_dict(checkpoint["state_dict"])
    loaded = VGAEDetector.load_from_checkpoint(path, weights_only=True)
    expected = _predict(model, test[:2])
    for other in (rebuilt, loaded):
        assert other.is_calibrated
        assert other.fingerprint() == model.fingerprint()
        got = _predict(other, test[:2])
        np.testing.assert_array_equal(got.score, expected.score)
        np.testing.assert_array_equal(got.features, expected.features)


def test_uncalibrated_score_is_the_raw_combination():
    model = VGAEDetector(TOY_SCHEMA).eval()
    batch = make_batches(4)[0]
    assert not model.is_calibrated
    out = model.predict_step(batch)
    with torch.no_grad():
        raw = model(batch)[1].channels().sum(dim=1)
    np.testing.assert_allclose(out.score, raw.numpy(), rtol=1e-5)


def test_calibration_needs_benign_windows():
    model = VGAEDetector(TOY_SCHEMA)
    with pytest.raises(ConfigError, match="no batches"):
        model.calibrate([])
    attacks = make_batches(8, attack_share=1.0)
    with pytest.raises(ConfigError, match="at least 2 benign windows, got 0"):
        model.calibrate(attacks)
    assert model.training  # calibrate restores the mode it found


@pytest.mark.parametrize(
    ("preset", "width", "layers", "heads", "latent"),
    [("small", 64, 2, 4, 16), ("large", 256, 3, 8, 32)],
)
def test_presets_have_documented_sizes(preset, width, layers, heads, latent):
    model = VGAEDetector(TOY_SCHEMA, preset=preset).eval()
    convs = model.network.convs
    assert len(convs) == layers
    assert all(c.heads == heads and c.out_channels * c.heads == width for c in convs)
    assert all(c.edge_dim == TOY_SCHEMA.edge_dim for c in convs)
    batch = make_batches(3)[0]
    with torch.no_grad():
        encoding = model.network.encode(batch, sample=False)
    assert encoding.mu.shape == (batch.num_nodes, latent)
    assert model.network.decode_ids(encoding.z).shape == (batch.num_nodes, TOY_SCHEMA.num_ids)
    assert model.hparams["latent"] == PRESETS[preset].latent


def test_bad_options_raise_config_error():
    with pytest.raises(ConfigError, match=r"unknown vgae preset 'tiny'.*large, small"):
        VGAEDetector(TOY_SCHEMA, preset="tiny")
    with pytest.raises(TypeError, match="latnet"):  # an explicit signature: the config names close keys
        VGAEDetector(TOY_SCHEMA, latnet=4)
    with pytest.raises(ConfigError, match="combine"):
        VGAEDetector(TOY_SCHEMA, combine="mean")
    with pytest.raises(ConfigError, match="kl_weight"):
        VGAEDetector(TOY_SCHEMA, kl_weight=-1)
