"""The supervised GAT detector plugin (``gat``) on toy window graphs."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from detector_batches import (
    TOY_SCHEMA,
    as_loader,
    make_batches,
    one_torch_thread,
    quiet_trainer,
)
from fusioncore_gat import PRESETS, GATConfig, GATDetector
from torchmetrics.functional.classification import binary_auroc

from fusioncore.contracts import DetectorOutput
from fusioncore.errors import ConfigError
from fusioncore.plugins import load_plugins

# Lightning 2.6 on torch 2.13 warns about its own use of torch's pytree API.
pytestmark = pytest.mark.filterwarnings(
    r"ignore:`isinstance\(treespec, LeafSpec\)` is deprecated:FutureWarning"
)
PAYLOAD_SHIFT = 3.0


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small GAT trained for a few epochs on toy windows, its trainer and held-out windows."""
    torch.manual_seed(0)
    train = make_batches(512, attack_share=0.3, payload_shift=PAYLOAD_SHIFT, seed=1)
    val = make_batches(128, attack_share=0.3, payload_shift=PAYLOAD_SHIFT, seed=2)
    test = make_batches(256, attack_share=0.3, payload_shift=PAYLOAD_SHIFT, seed=3, first_window_id=50_000)
    model = GATDetector(TOY_SCHEMA, lr=5e-3)
    trainer = quiet_trainer(10, tmp_path_factory.mktemp("gat"))
    trainer.fit(model, as_loader(train), as_loader(val))
    return model, trainer, test


def _predict(model: GATDetector, batches) -> DetectorOutput:
    model.eval()
    return DetectorOutput.concat([model.predict_step(b) for b in batches])


def test_registered_through_the_entry_point():
    plugins = load_plugins()
    assert plugins.registry.get("detector", "gat") is GATDetector
    assert GATDetector.supervised is True


def test_separates_held_out_toy_attacks(trained):
    model, trainer, test = trained
    out = DetectorOutput.concat(trainer.predict(model, as_loader(test)))
    labels = torch.cat([b.y for b in test])
    kinds = torch.cat([b.attack_type for b in test])
    assert 0.1 < labels.float().mean() < 0.5
    score = torch.from_numpy(out.score)
    assert binary_auroc(score, labels).item() >= 0.95
    for kind in (1, 2):  # every attack kind, not just the easy one
        rows = (kinds == 0) | (kinds == kind)
        assert binary_auroc(score[rows], labels[rows]).item() >= 0.9
    # score orientation: attacks score higher, and the score is the log-odds of P(attack)
    assert score[labels == 1].mean() > 0.0 > score[labels == 0].mean()


def test_output_shapes_and_features(trained):
    model, _, test = trained
    out = model.eval().predict_step(test[0])
    n = test[0].num_graphs
    assert out.feature_names == GATDetector.feature_names == (
        "p_benign", "p_attack", "emb_mean", "emb_std", "emb_max", "emb_min", "confidence",
        "logit_margin",
    )  # fmt: skip
    assert out.score.shape == (n,) and out.features.shape == (n, 8)
    np.testing.assert_array_equal(out.window_ids, test[0].window_id.numpy())
    f = dict(zip(out.feature_names, out.features.T))
    np.testing.assert_allclose(f["p_benign"] + f["p_attack"], 1.0, atol=1e-6)
    np.testing.assert_array_equal(out.score, f["logit_margin"])
    # the margin is the log-odds of the attack probability
    np.testing.assert_allclose(1 / (1 + np.exp(-out.score.astype(np.float64))), f["p_attack"], atol=1e-6)
    assert np.all((f["confidence"] >= -1e-6) & (f["confidence"] <= 1 + 1e-6))
    assert np.all(f["emb_min"] <= f["emb_mean"]) and np.all(f["emb_mean"] <= f["emb_max"])
    # confidence is 1 - H(p)/ln 2
    p = np.clip(out.features[:, :2], 1e-12, 1)
    entropy = -(p * np.log(p)).sum(axis=1)
    np.testing.assert_allclose(f["confidence"], 1 - entropy / math.log(2), atol=1e-5)


def test_scores_keep_their_ranking_where_the_probability_saturates(trained):
    """Logits far past float32's sigmoid range: P(attack) is exactly 1.0 everywhere, the scores are not."""
    model = copy.deepcopy(trained[0]).eval()
    batch = make_batches(64, attack_share=1.0, payload_shift=PAYLOAD_SHIFT, seed=9)[0]
    with torch.no_grad():
        last = model.network.head[-1]
        last.weight.mul_(200.0)
        last.bias.copy_(torch.tensor([-500.0, 500.0]))
        out = model.predict_step(batch)
    p_attack = out.features[:, GATDetector.feature_names.index("p_attack")]
    assert np.all(p_attack == 1.0)  # the saturated probability ties every window
    assert np.isfinite(out.score).all() and out.score.min() > 17.0
    assert len(np.unique(out.score)) == len(out.score)  # the margin ranks them all


def test_predictions_deterministic_in_eval_mode(trained):
    model, _, test = trained
    first, second = _predict(model, test[:2]), _predict(model, test[:2])
    np.testing.assert_array_equal(first.score, second.score)
    np.testing.assert_array_equal(first.features, second.features)


def test_edge_features_reach_the_attention(trained):
    model, _, test = trained
    batch = test[0]
    shuffled = batch.clone()
    shuffled.edge_attr = batch.edge_attr[torch.randperm(batch.edge_attr.size(0))]
    model.eval()
    with torch.no_grad():
        assert not torch.allclose(model(batch)[0], model(shuffled)[0])


def test_fingerprint_tracks_weights(trained):
    model = copy.deepcopy(trained[0])
    before = model.fingerprint()
    assert model.fingerprint() == before
    with torch.no_grad():
        model.network.head[-1].bias[0] += 1e-3
    assert model.fingerprint() != before


def test_checkpoint_round_trip_with_weights_only(trained, tmp_path):
    model, trainer, test = trained
    path = tmp_path / "gat.ckpt"
    trainer.save_checkpoint(path)
    checkpoint = torch.load(path, weights_only=True)
    rebuilt = GATDetector(**checkpoint["hyper_parameters"])
    rebuilt.load_state_dict(checkpoint["state_dict"])
    loaded = GATDetector.load_from_checkpoint(path, weights_only=True)
    expected = _predict(model, test[:2])
    for other in (rebuilt, loaded):
        assert other.fingerprint() == model.fingerprint()
        got = _predict(other, test[:2])
        np.testing.assert_array_equal(got.score, expected.score)
        np.testing.assert_array_equal(got.features, expected.features)


@pytest.mark.parametrize(
    ("preset", "width", "layers", "heads", "embed_dim"),
    [("small", 96, 2, 4, 384), ("large", 384, 3, 8, 2304)],
)
def test_presets_have_documented_sizes(preset, width, layers, heads, embed_dim):
    model = GATDetector(TOY_SCHEMA, preset=preset).eval()
    convs = model.network.convs
    assert len(convs) == layers
    assert all(c.heads == heads and c.out_channels * c.heads == width for c in convs)
    assert all(c.edge_dim == TOY_SCHEMA.edge_dim for c in convs)
    batch = make_batches(3)[0]
    with torch.no_grad():
        logits, embedding = model(batch)
    assert logits.shape == (3, 2) and embedding.shape == (3, embed_dim)
    assert model.hparams["preset"] == preset and model.hparams["hidden"] == PRESETS[preset].hidden


def test_overrides_and_bad_options():
    model = GATDetector(TOY_SCHEMA, hidden=8, jk="max", dropout=0.0)
    assert model.settings.embed_dim == 2 * 8 * 4
    with pytest.raises(ConfigError, match=r"unknown gat preset 'huge'.*large, small"):
        GATDetector(TOY_SCHEMA, preset="huge")
    with pytest.raises(TypeError, match="hiden"):  # an explicit signature: the config names close keys
        GATDetector(TOY_SCHEMA, hiden=8)
    with pytest.raises(ConfigError, match="hidden"):
        GATDetector(TOY_SCHEMA, hidden=0)
    with pytest.raises(ConfigError, match="class_weights"):
        GATConfig.from_preset(class_weights=(1.0, -1.0))


def test_class_weighting_rules():
    y = torch.tensor([0, 0, 0, 1])
    by_batch = GATDetector(TOY_SCHEMA)
    torch.testing.assert_close(by_batch.class_weights(y), torch.tensor([4 / 6, 2.0]))
    torch.testing.assert_close(by_batch.class_weights(torch.zeros(4, dtype=torch.long)),
                               torch.tensor([0.5, 1.0]))  # fmt: skip
    from_share = GATDetector(TOY_SCHEMA, positive_share=0.2)
    torch.testing.assert_close(from_share.class_weights(y), torch.tensor([0.625, 2.5]))
    explicit = GATDetector(TOY_SCHEMA, class_weights=[1.0, 3.0], positive_share=0.2)
    torch.testing.assert_close(explicit.class_weights(y), torch.tensor([1.0, 3.0]))
    assert explicit.hparams["class_weights"] == [1.0, 3.0]  # JSON-able, not a tuple
