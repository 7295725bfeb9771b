"""The reward contract: vectorised, one finite value per window, right decisions pay more.

Rewards are registered as factories ``(**params) -> RewardFunction``::

    from fusioncore.testing import RewardContract

    class TestMyReward(RewardContract):
        reward_factory = my_reward
        params = {"fn": -10.0}

or call :func:`check_reward`. A learned fusion calls the reward on whole
batches of windows (``decision`` a bool tensor, ``label`` int64, ``fused``
float32), so the checks use batches that hold every outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import pytest
import torch

from fusioncore.contracts import RewardFunction
from fusioncore.testing.checks import ContractViolation, configured, describe, max_abs_diff, require

__all__ = [
    "RewardContract",
    "build_reward",
    "check_reward",
    "check_reward_is_elementwise",
    "check_reward_output",
    "check_reward_prefers_right_decisions",
    "outcome_batch",
]


def outcome_batch(n: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(decision, label, fused)`` with every (decision, label) outcome present."""
    g = torch.Generator().manual_seed(seed)
    fused = torch.rand(n, generator=g)
    label = torch.randint(0, 2, (n,), generator=g)
    label[:4] = torch.tensor([0, 0, 1, 1])
    decision = fused > 0.5
    decision[:4] = torch.tensor([False, True, False, True])
    return decision, label, fused


def build_reward(factory: Callable[..., Any], params: Mapping[str, Any] | None = None) -> RewardFunction:
    """``factory(**params)``, checked to be a callable reward."""
    try:
        reward = factory(**dict(params or {}))
    except Exception as exc:
        raise ContractViolation(
            f"reward factory {getattr(factory, '__name__', factory)!r}(**{dict(params or {})}) "
            f"raised {type(exc).__name__}: {exc}"
        ) from exc
    require(
        isinstance(reward, RewardFunction),
        f"the factory must return a callable reward(decision, label, fused), got {describe(reward)}",
    )
    return reward


def check_reward_output(reward: RewardFunction, n: int = 64) -> torch.Tensor:
    """One finite floating-point reward per window, inputs left untouched."""
    decision, label, fused = outcome_batch(n)
    copies = (decision.clone(), label.clone(), fused.clone())
    try:
        out = reward(decision, label, fused)
    except Exception as exc:
        raise ContractViolation(
            f"reward(decision[{n}], label[{n}], fused[{n}]) raised {type(exc).__name__}: {exc}"
        ) from exc
    require(isinstance(out, torch.Tensor), f"reward must return a tensor, got {describe(out)}")
    require(
        tuple(out.shape) == (n,),
        f"reward has shape {tuple(out.shape)}, expected ({n},): one value per window (vectorised)",
    )
    require(out.is_floating_point(), f"reward must be floating point, got {out.dtype}")
    require(bool(torch.isfinite(out).all()), "reward has non-finite values")
    require(
        all(torch.equal(a, b) for a, b in zip((decision, label, fused), copies)),
        "reward modified its input tensors in place",
    )
    empty = reward(decision[:0], label[:0], fused[:0])
    require(tuple(empty.shape) == (0,), f"reward of 0 windows has shape {tuple(empty.shape)}, expected (0,)")
    return out


def check_reward_is_elementwise(reward: RewardFunction, n: int = 64) -> None:
    """A window's reward depends on that window only, not on the rest of the batch."""
    decision, label, fused = outcome_batch(n)
    whole = reward(decision, label, fused)
    half = n // 2
    part = reward(decision[:half], label[:half], fused[:half])
    diff = max_abs_diff(whole[:half].numpy(), part.numpy())
    require(
        diff <= 1e-6,
        f"the reward of a window changes with the rest of the batch (max |diff| = {diff:.3g} "
        "between a batch and its first half); rewards must be per window",
    )
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(1))
    diff = max_abs_diff(whole[perm].numpy(), reward(decision[perm], label[perm], fused[perm]).numpy())
    require(diff <= 1e-6, f"the reward depends on window order (max |diff| = {diff:.3g})")


def check_reward_prefers_right_decisions(reward: RewardFunction) -> None:
    """For each class and fused score, the right decision earns more than the wrong one."""
    fused = torch.tensor([0.2, 0.2, 0.8, 0.8, 0.2, 0.2, 0.8, 0.8])
    label = torch.tensor([1, 1, 1, 1, 0, 0, 0, 0])
    decision = torch.tensor([True, False, True, False, False, True, False, True])
    r = reward(decision, label, fused)
    right, wrong = r[0::2], r[1::2]
    bad = (right <= wrong).nonzero().flatten().tolist()
    outcomes = ("attack, fused=0.2", "attack, fused=0.8", "benign, fused=0.2", "benign, fused=0.8")
    require(
        not bad,
        "a wrong decision earns at least as much as the right one for "
        + "; ".join(
            f"{outcomes[i]} (right {float(right[i]):.3g} vs wrong {float(wrong[i]):.3g})" for i in bad
        )
        + ": a fusion trained on this reward learns to be wrong",
    )


def check_reward(factory: Callable[..., Any], params: Mapping[str, Any] | None = None) -> None:
    """Every reward check in one call; raises :class:`ContractViolation` at the first failure."""
    reward = build_reward(factory, params)
    check_reward_output(reward)
    check_reward_is_elementwise(reward)
    check_reward_prefers_right_decisions(reward)


class RewardContract:
    """pytest base class: set ``reward_factory`` (and ``params``); every test below runs against it."""

    reward_factory: ClassVar[Callable[..., Any]]
    params: ClassVar[Mapping[str, Any]] = {}

    @pytest.fixture
    def reward(self) -> RewardFunction:
        factory = configured(self, "reward_factory", "your reward factory")
        return build_reward(factory, self.params)  # read from the class: a function stays unbound

    def test_one_finite_reward_per_window(self, reward: RewardFunction) -> None:
        check_reward_output(reward)

    def test_reward_is_per_window(self, reward: RewardFunction) -> None:
        check_reward_is_elementwise(reward)

    def test_right_decisions_pay_more(self, reward: RewardFunction) -> None:
        check_reward_prefers_right_decisions(reward)
