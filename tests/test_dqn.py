"""DQN fusion: what it learns on a toy problem, its reward plumbing, determinism, speed, persistence."""

from __future__ import annotations

import itertools
import time

import attrs
import fusioncore_dqn
import numpy as np
import pytest
import torch
from fusioncore_baselines import MeanFusion, SingleDetectorFusion
from fusioncore_dqn import DQNFusion, NotFittedError, asymmetric
from fusioncore_dqn.actions import simplex_grid
from fusioncore_dqn.config import DQNConfig
from fusioncore_dqn.module import DQNModule, FusionTensors, ShuffledBatches, build_q_network
from fusioncore_dqn.replay import ReplayBuffer, Transitions

from fusioncore import ConfigError, FusionData, UnknownComponentError
from fusioncore.evaluation.metrics import best_mcc_rows

# Lightning 2.6 on torch 2.13 warns about its own use of torch's pytree API.
pytestmark = pytest.mark.filterwarnings(
    r"ignore:`isinstance\(treespec, LeafSpec\)` is deprecated:FutureWarning"
)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny networks on a shared 2-core machine: intra-op threads only add contention."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _regions(n: int, seed: int) -> FusionData:
    """Two detectors, 2-D states: detector 0 is right where state[0] < 0 (region A) and
    uniform noise elsewhere; detector 1 the reverse (region B)."""
    rng = np.random.default_rng(seed)
    states = rng.normal(size=(n, 2))
    labels = (rng.random(n) < 0.3).astype(int)
    good = np.where(labels == 1, rng.uniform(0.55, 1.0, n), rng.uniform(0.0, 0.45, n))
    noise = rng.random(n)
    a = states[:, 0] < 0
    scores = np.stack([np.where(a, good, noise), np.where(a, noise, good)], axis=1)
    return FusionData(states=states, scores=scores, labels=labels, detectors=("d0", "d1"))


def _mcc(pred: np.ndarray, y: np.ndarray) -> float:
    tp, tn = float((pred & (y == 1)).sum()), float((~pred & (y == 0)).sum())
    fp, fn = float((pred & (y == 0)).sum()), float((~pred & (y == 1)).sum())
    den = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return 0.0 if den == 0 else (tp * tn - fp * fn) / den


def _test_mcc(fusion, val: FusionData, test: FusionData) -> float:
    """MCC on test at the threshold that is best on val (as the core chooses it)."""
    threshold = best_mcc_rows(fusion.fuse(val), val.labels).threshold[0]
    return _mcc(fusion.fuse(test) > threshold, test.labels)


TOY = dict(batch_size=128, minibatch_size=512, lr=3e-3, epochs=25, patience=6, seed=0)


@pytest.fixture(scope="module")
def toy():
    train, val, test = _regions(4000, 0), _regions(2000, 1), _regions(2000, 2)
    with torch.random.fork_rng():
        torch.set_num_threads(1)
        fusion = DQNFusion(**TOY).fit(train, val)
    return fusion, train, val, test


# ------------------------------------------------------------- learning
def test_learns_region_dependent_alpha(toy):
    fusion, _, _, test = toy
    alpha = fusion.policy(test)[:, 1]
    # The weight only matters where the detectors disagree about the window.
    disagree = (test.scores[:, 0] > 0.5) != (test.scores[:, 1] > 0.5)
    a = test.states[:, 0] < 0
    in_a, in_b = alpha[disagree & a], alpha[disagree & ~a]
    print(f"mean alpha where it matters: region A {in_a.mean():.3f}, region B {in_b.mean():.3f}")
    # Decisions are thresholded, so a band of alphas near 0 (near 1) is equally right:
    # ask for the right detector to be trusted, and for alpha to sit near the right end.
    assert (in_a < 0.5).mean() > 0.9 and (in_b > 0.5).mean() > 0.9
    assert in_a.mean() < 0.25 and in_b.mean() > 0.75


def test_beats_single_detectors_and_mean(toy):
    fusion, _, val, test = toy
    dqn = _test_mcc(fusion, val, test)
    others = {
        "d0": _test_mcc(SingleDetectorFusion("d0"), val, test),
        "d1": _test_mcc(SingleDetectorFusion("d1"), val, test),
        "mean": _test_mcc(MeanFusion(), val, test),
    }
    print(f"test MCC: dqn {dqn:.3f}, " + ", ".join(f"{k} {v:.3f}" for k, v in others.items()))
    assert dqn > 0.9
    assert dqn > max(others.values()) + 0.1


def test_outputs_shapes_ranges_and_history(toy):
    fusion, _, _, test = toy
    fused, weights = fusion.fuse(test), fusion.policy(test)
    assert fused.shape == (2000,) and fused.dtype == np.float32
    assert (fused >= 0).all() and (fused <= 1).all()
    assert weights.shape == (2000, 2)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(fused, (weights * test.scores).sum(axis=1), atol=1e-6)
    assert 1 <= len(fusion.history) <= TOY["epochs"]
    assert fusion.history[-1].epsilon < fusion.history[0].epsilon
    assert all(h.val_mcc is not None for h in fusion.history)


def test_state_dict_round_trip(toy):
    fusion, _, _, test = toy
    state = fusion.state_dict()
    # what a run stores: plain numbers and arrays
    as_arrays = {k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in state.items()}
    fresh = DQNFusion()
    fresh.load_state_dict(as_arrays)
    np.testing.assert_array_equal(fresh.fuse(test), fusion.fuse(test))
    np.testing.assert_array_equal(fresh.policy(test), fusion.policy(test))
    with pytest.raises(ConfigError, match="missing 'k'"):
        DQNFusion().load_state_dict({k: v for k, v in as_arrays.items() if k != "k"})


# ------------------------------------------------------- reward plumbing
def _module(threshold: float = 0.5, margin: float = 0.0) -> DQNModule:
    config = DQNConfig(threshold=threshold, margin=margin)
    actions = simplex_grid(2, config.k)
    return DQNModule(build_q_network(2, (8,), len(actions)), actions, asymmetric(), config, 10)


def test_reward_comes_from_the_fused_decision_not_the_action_index():
    module = _module()
    top = len(module.actions) - 1  # alpha = 1: "trust detector 1"
    scores = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.1, 0.9], [0.1, 0.9]])
    labels = torch.tensor([1, 0, 1, 0])
    actions = torch.full((4,), top)
    fused, decision, reward = module.outcome(actions, scores, labels)
    np.testing.assert_allclose(fused, [0.1, 0.1, 0.9, 0.9], atol=1e-6)
    # High action index but fused 0.1 < 0.5: benign decision, so a missed attack costs -6.
    assert decision.tolist() == [False, False, True, True]
    assert reward.tolist() == [-6.0, 1.5, 3.0, -1.5]
    # Same windows with alpha = 0: the decisions (and rewards) flip with the fused score.
    _, _, reward0 = module.outcome(torch.zeros(4, dtype=torch.long), scores, labels)
    assert reward0.tolist() == [3.0, -1.5, -6.0, 1.5]


def test_batches_move_to_the_training_device():
    data = _regions(10, 0)
    tensors = FusionTensors(
        torch.from_numpy(data.states), torch.from_numpy(data.scores), torch.from_numpy(data.labels)
    )
    batch = next(iter(ShuffledBatches(tensors, 4, seed=0, with_next=True)))
    moved = _module().transfer_batch_to_device(batch, torch.device("meta"), 0)
    assert {t.device.type for t in attrs.astuple(moved, recurse=False)} == {"meta"}


def test_threshold_moves_the_decision():
    scores, labels = torch.tensor([[0.6, 0.6]]), torch.tensor([1])
    action = torch.tensor([10])
    assert _module(0.5).outcome(action, scores, labels)[2].item() == 3.0
    assert _module(0.7).outcome(action, scores, labels)[2].item() == -6.0


def test_training_reward_asks_for_a_margin_around_the_threshold():
    module = _module(0.5, margin=0.1)
    scores = torch.tensor([[0.55, 0.55], [0.65, 0.65], [0.45, 0.45], [0.35, 0.35]])
    labels = torch.tensor([1, 1, 0, 0])
    action = torch.full((4,), 10)
    # 0.55 clears the threshold but not the margin: in training a miss; 0.45 is benign by too little
    assert module.training_outcome(action, scores, labels).tolist() == [-6.0, 3.0, -1.5, 1.5]
    # the deployed decision (validation, reports) has no margin
    assert module.outcome(action, scores, labels)[2].tolist() == [3.0, 3.0, 1.5, 1.5]


def test_reward_threshold_is_the_one_the_core_deploys():
    """decision="val": the threshold the reward used is the best-MCC validation threshold of the policy."""
    from fusioncore.evaluation import best_mcc_threshold

    train, val = _regions(1500, 3), _regions(600, 4)
    # shift validation scores so its best threshold is far from 0.5
    val = FusionData(val.states, 0.5 * val.scores, val.labels, val.detectors)
    fusion = DQNFusion(batch_size=128, epochs=4, patience=None, min_steps=0, seed=0).fit(train, val)
    deployed = best_mcc_threshold(val.labels, fusion.fuse(val))
    assert fusion.config.threshold == pytest.approx(deployed)
    assert deployed < 0.4
    assert fusion.state_dict()["threshold"] == pytest.approx(deployed)
    fixed = DQNFusion(batch_size=128, epochs=2, patience=None, min_steps=0, decision="fixed").fit(train, val)
    assert fixed.config.threshold == 0.5


def test_small_fusion_sets_still_get_min_steps_updates():
    train = _regions(300, 0)
    fusion = DQNFusion(batch_size=100, epochs=2, patience=None, min_steps=60).fit(train, _regions(100, 1))
    assert len(fusion.history) == 2  # two epochs of 10 passes of 3 batches
    with pytest.raises(ConfigError, match="decision"):
        DQNFusion(decision="oracle")


def test_epsilon_decays_linearly_then_stays():
    module = _module()  # 10 steps, decay over the first half
    eps = [module.epsilon(s) for s in range(12)]
    assert eps[0] == 1.0 and eps[5] == pytest.approx(0.05) and eps[11] == pytest.approx(0.05)
    assert all(a > b for a, b in itertools.pairwise(eps[:6]))


# --------------------------------------------------------- determinism
def test_same_seed_same_policy_other_seed_differs():
    train, val, test = _regions(1500, 3), _regions(500, 4), _regions(500, 5)
    params = dict(batch_size=128, epochs=3, patience=None, min_steps=0)
    first = DQNFusion(seed=7, **params).fit(train, val)
    again = DQNFusion(seed=7, **params).fit(train, val)
    other = DQNFusion(seed=8, **params).fit(train, val)
    np.testing.assert_array_equal(first.fuse(test), again.fuse(test))
    np.testing.assert_array_equal(first.policy(test), again.policy(test))
    assert not np.array_equal(first.policy(test), other.policy(test))


def test_fit_leaves_global_rng_alone():
    train = _regions(300, 0)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    DQNFusion(batch_size=100, epochs=1, patience=None, min_steps=0).fit(train, _regions(100, 1))
    assert torch.equal(torch.rand(3), expected)


# -------------------------------------------------------------- variants
def test_three_detectors_gamma_double_dqn_and_soft_updates():
    base = _regions(1200, 6)
    rng = np.random.default_rng(0)
    scores = np.concatenate([base.scores, rng.random((1200, 1))], axis=1)
    data = FusionData(base.states, scores, base.labels, ("a", "b", "c"))
    for params in (dict(gamma=0.5, double=True, tau=0.05), dict(gamma=0.9, double=False)):
        fusion = DQNFusion(k=5, batch_size=200, epochs=2, target_update=3, min_steps=0, **params)
        fusion.fit(data, data)
        weights = fusion.policy(data)
        assert weights.shape == (1200, 3)
        np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-6)
        assert set(np.round(weights.ravel(), 6)) <= {0.0, 0.25, 0.5, 0.75, 1.0}
        fused = fusion.fuse(data)
        assert ((fused >= 0) & (fused <= 1)).all()


def test_fits_without_a_validation_split():
    train = _regions(400, 0)
    empty = FusionData(np.zeros((0, 2)), np.zeros((0, 2)), np.zeros(0), train.detectors)
    fusion = DQNFusion(batch_size=100, epochs=2, min_steps=0).fit(train, empty)
    assert len(fusion.history) == 2 and fusion.history[-1].val_mcc is None
    assert fusion.fuse(train).shape == (400,)


def test_simplex_actions():
    np.testing.assert_allclose(simplex_grid(2, 21)[:, 1], np.linspace(0, 1, 21), atol=1e-6)
    grid = simplex_grid(3, 21)
    assert grid.shape == (231, 3)
    np.testing.assert_allclose(grid.sum(dim=1), 1.0, atol=1e-6)
    with pytest.raises(ConfigError, match="lower k"):
        simplex_grid(6, 21)


def test_replay_buffer_ring_insertion():
    buf = ReplayBuffer(5, 1)
    for start in (0, 3):  # 3 rows, then 3 more: wraps around and drops the oldest
        rows = torch.arange(start, start + 3, dtype=torch.float32)
        buf.push(Transitions(rows[:, None], rows.long(), rows))
    assert len(buf) == 5
    assert sorted(buf.rewards.tolist()) == [1.0, 2.0, 3.0, 4.0, 5.0]
    buf.push(Transitions(torch.arange(12.0)[:, None], torch.arange(12), torch.arange(12.0)))
    assert sorted(buf.rewards.tolist()) == [7.0, 8.0, 9.0, 10.0, 11.0]  # newest rows survive
    sample = buf.sample(100, torch.Generator().manual_seed(0))
    assert set(sample.rewards.tolist()) <= {7.0, 8.0, 9.0, 10.0, 11.0}
    assert torch.equal(sample.inputs[:, 0], sample.rewards)  # rows stay together


# ------------------------------------------------------------------ errors
def test_errors():
    data = _regions(50, 0)
    with pytest.raises(NotFittedError):
        DQNFusion().fuse(data)
    with pytest.raises(UnknownComponentError, match="asymmetric"):
        DQNFusion(reward="asymetric")
    with pytest.raises(ConfigError, match="gamma"):
        DQNFusion(gamma=1.0)
    with pytest.raises(ConfigError, match="monitor"):
        DQNFusion(monitor="loss")
    hidden = FusionData(data.states, data.scores, np.full(50, -1), data.detectors)
    with pytest.raises(ConfigError, match="labels must be 0/1"):
        DQNFusion().fit(hidden, data)


def test_accepts_a_reward_object_and_registers_components():
    seen: dict[str, dict[str, object]] = {"fusion": {}, "reward": {}, "encoder": {}}

    def into(kind):  # components are registered lazily: resolve them as the registry would
        return lambda n, c, d=None: seen[kind].update({n: c.load()})

    fusioncore_dqn.fusioncore_register_fusions(into("fusion"))
    fusioncore_dqn.fusioncore_register_rewards(into("reward"))
    fusioncore_dqn.fusioncore_register_state_encoders(into("encoder"))
    assert seen["fusion"] == {"dqn": DQNFusion}
    assert set(seen["reward"]) == {"asymmetric", "accuracy", "cost"}
    assert set(seen["encoder"]) == {"detector-features", "scores-only"}
    reward = seen["reward"]["cost"](fn=50.0)
    assert DQNFusion(reward=reward).reward is reward


# ------------------------------------------------------------------- speed
def test_epoch_time_on_100k_states():
    rng = np.random.default_rng(0)
    n, d = 100_000, 15  # the predecessor's 15-D state

    def split(rows: int) -> FusionData:
        labels = rng.random(rows) < 0.1
        return FusionData(rng.normal(size=(rows, d)), rng.random((rows, 2)), labels, ("a", "b"))

    train, val = split(n), split(5000)
    start = time.perf_counter()
    fusion = DQNFusion(epochs=2, patience=None, batch_size=512, min_steps=0).fit(train, val)
    total = time.perf_counter() - start
    per_epoch = [round(h.seconds, 2) for h in fusion.history]
    print(f"DQN on {n} states, batch 512: per-epoch seconds {per_epoch}, fit total {total:.1f} s")
    assert len(per_epoch) == 2
    # ~1 s on an idle core; the bound leaves room for a busy shared CI machine.
    assert min(per_epoch) < 15.0
