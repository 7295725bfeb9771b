"""Rewards for fusion decisions: one value per outcome (TP / TN / FP / FN).

Every reward here is a :class:`OutcomeReward`: a table of four numbers looked up
with the *decision taken from the fused score* and the window label. It never
sees the action index, so the agent cannot be paid for "choosing the GAT"
instead of for being right -- the mistake that once turned the predecessor's
fusion into a classifier of its own. Agreement or balance bonuses are
deliberately absent: in the predecessor they made "always benign" or a
constant alpha optimal.

The registered names are factories ``(**params) -> RewardFunction``:

============ ================================= =========================
name         outcome values (tp, tn, fp, fn)   meaning
============ ================================= =========================
asymmetric   +3, +1.5, -1.5, -6 (default)      a missed attack costs most
accuracy     +1, +1, -1, -1                    every error counts the same
cost         -(cost of each outcome)           give costs, reward = -cost
============ ================================= =========================
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import torch

from fusioncore import ConfigError, RewardFunction, UnknownComponentError

__all__ = ["REWARDS", "OutcomeReward", "accuracy", "asymmetric", "cost", "resolve_reward"]


def _finite(instance: Any, attribute: attrs.Attribute, value: float) -> None:
    if not math.isfinite(value):
        raise ConfigError(f"reward value {attribute.name} must be finite, got {value!r}")


@attrs.frozen
class OutcomeReward:
    """Reward = one of four values, by (decision, label) outcome; vectorised.

    Validated so that, for each class, the right decision pays more than the
    wrong one (``tp > fn`` and ``tn > fp``); otherwise the agent would be
    trained to be wrong.
    """

    tp: float = attrs.field(converter=float, validator=_finite)
    tn: float = attrs.field(converter=float, validator=_finite)
    fp: float = attrs.field(converter=float, validator=_finite)
    fn: float = attrs.field(converter=float, validator=_finite)

    def __attrs_post_init__(self) -> None:
        if not (self.tp > self.fn and self.tn > self.fp):
            raise ConfigError(
                f"reward must pay a right decision more than a wrong one "
                f"(tp > fn and tn > fp), got tp={self.tp}, tn={self.tn}, "
                f"fp={self.fp}, fn={self.fn}"
            )

    def __call__(
        self, decision: torch.Tensor, label: torch.Tensor, fused: torch.Tensor
    ) -> torch.Tensor:
        """``decision[N]`` (bool, fused score above threshold), ``label[N]`` (0/1) -> ``reward[N]``.

        ``fused`` is accepted for the contract; these rewards depend only on the outcome.
        """
        attack = label.to(torch.bool)
        said_attack = decision.to(torch.bool)
        dtype = fused.dtype if fused.is_floating_point() else torch.float32
        on_attack = torch.where(said_attack, self.tp, self.fn)
        on_benign = torch.where(said_attack, self.fp, self.tn)
        return torch.where(attack, on_attack, on_benign).to(dtype)


def asymmetric(
    tp: float = 3.0, tn: float = 1.5, fp: float = -1.5, fn: float = -6.0
) -> OutcomeReward:
    """TP +3, TN +1.5, FP -1.5, FN -6: a missed attack is the costliest outcome."""
    return OutcomeReward(tp=tp, tn=tn, fp=fp, fn=fn)


def accuracy(right: float = 1.0, wrong: float = -1.0) -> OutcomeReward:
    """+1 for a right decision, -1 for a wrong one."""
    return OutcomeReward(tp=right, tn=right, fp=wrong, fn=wrong)


def cost(tp: float = 0.0, tn: float = 0.0, fp: float = 1.0, fn: float = 5.0) -> OutcomeReward:
    """Reward = minus the cost of the outcome (costs given per outcome)."""
    return OutcomeReward(tp=-tp, tn=-tn, fp=-fp, fn=-fn)


#: The bundled reward factories, by registered name.
REWARDS: dict[str, Callable[..., OutcomeReward]] = {
    "asymmetric": asymmetric,
    "accuracy": accuracy,
    "cost": cost,
}


def resolve_reward(
    reward: str | RewardFunction, params: Mapping[str, Any] | None = None
) -> RewardFunction:
    """A reward object as is, or one of the bundled rewards built from its name and params."""
    if isinstance(reward, str):
        key = reward.strip().lower().replace("_", "-")
        if key not in REWARDS:
            raise UnknownComponentError("reward", reward, REWARDS)
        try:
            return REWARDS[key](**dict(params or {}))
        except TypeError as exc:
            raise ConfigError(f"bad parameters for reward {key!r}: {exc}") from None
    if params:
        raise ConfigError("reward_params only apply when the reward is given by name")
    if not callable(reward):
        raise ConfigError(f"reward must be a name or a RewardFunction, got {type(reward).__name__}")
    return reward
