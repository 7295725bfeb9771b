"""Rewards of the dqn plugin: values per outcome, validation, resolution by name."""

from __future__ import annotations

import pytest
import torch
from fusioncore_dqn.rewards import REWARDS, OutcomeReward, resolve_reward

from fusioncore import ConfigError, RewardFunction, UnknownComponentError

# decision, label for TP, TN, FP, FN
DECISION = torch.tensor([True, False, True, False])
LABEL = torch.tensor([1, 0, 0, 1])
FUSED = torch.tensor([0.9, 0.1, 0.8, 0.2])

EXPECTED = {  # (tp, tn, fp, fn) with default parameters
    "asymmetric": (3.0, 1.5, -1.5, -6.0),
    "accuracy": (1.0, 1.0, -1.0, -1.0),
    "cost": (0.0, 0.0, -1.0, -5.0),
}


@pytest.mark.parametrize("name", sorted(REWARDS))
def test_default_reward_per_outcome(name):
    reward = REWARDS[name]()
    assert isinstance(reward, RewardFunction)
    assert reward(DECISION, LABEL, FUSED).tolist() == list(EXPECTED[name])


@pytest.mark.parametrize("name", sorted(REWARDS))
def test_signs_wrong_decisions_are_penalised(name):
    tp, tn, fp, fn = REWARDS[name]()(DECISION, LABEL, FUSED).tolist()
    assert fp < 0 and fn < 0
    assert tp >= 0 and tn >= 0
    assert tp > fn and tn > fp


def test_asymmetric_missed_attack_is_worst():
    tp, tn, fp, fn = REWARDS["asymmetric"]()(DECISION, LABEL, FUSED).tolist()
    assert fn < fp < 0 < tn < tp


def test_parameters_change_values():
    def values(name, **params):
        return REWARDS[name](**params)(DECISION, LABEL, FUSED).tolist()

    assert values("asymmetric", tp=5, fn=-10) == [5.0, 1.5, -1.5, -10.0]
    assert values("accuracy", right=2, wrong=-3) == [2.0, 2.0, -3.0, -3.0]
    # cost: the reward is minus the cost of each outcome
    assert values("cost", tp=0.5, tn=0, fp=2, fn=20) == [-0.5, 0.0, -2.0, -20.0]


def test_reward_ignores_fused_value_given_the_decision():
    reward = REWARDS["asymmetric"]()
    other_fused = torch.tensor([0.51, 0.49, 0.99, 0.0])
    assert torch.equal(reward(DECISION, LABEL, FUSED), reward(DECISION, LABEL, other_fused))


def test_vectorised_on_large_batches():
    n = 100_000
    gen = torch.Generator().manual_seed(0)
    decision = torch.rand(n, generator=gen) > 0.5
    label = (torch.rand(n, generator=gen) > 0.9).long()
    out = REWARDS["asymmetric"]()(decision, label, torch.rand(n, generator=gen))
    assert out.shape == (n,) and out.dtype == torch.float32
    tp = (decision & label.bool()).sum().item()
    fn = (~decision & label.bool()).sum().item()
    fp = (decision & ~label.bool()).sum().item()
    tn = n - tp - fn - fp
    assert out.sum().item() == pytest.approx(3 * tp + 1.5 * tn - 1.5 * fp - 6 * fn)


@pytest.mark.parametrize(
    "params",
    [dict(tp=-7.0), dict(tn=-2.0), dict(fp=float("nan"))],
)
def test_rewards_that_teach_the_wrong_thing_are_refused(params):
    with pytest.raises(ConfigError):
        REWARDS["asymmetric"](**params)


def test_resolve_reward_by_name_object_and_errors():
    assert resolve_reward("asymmetric") == OutcomeReward(3.0, 1.5, -1.5, -6.0)
    assert resolve_reward("Accuracy", {"right": 2.0}) == OutcomeReward(2.0, 2.0, -1.0, -1.0)
    custom = OutcomeReward(1, 1, -1, -2)
    assert resolve_reward(custom) is custom
    with pytest.raises(UnknownComponentError, match="asymmetric"):
        resolve_reward("asymetric")
    with pytest.raises(ConfigError, match="bad parameters"):
        resolve_reward("accuracy", {"tp": 1.0})
    with pytest.raises(ConfigError, match="reward_params"):
        resolve_reward(custom, {"tp": 1.0})
