"""The DQN fusion's hyper-parameters as one validated, frozen record."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from fusioncore import ConfigError

__all__ = ["DECISIONS", "MONITORS", "DQNConfig"]

#: Validation metrics early stopping can watch (both "higher is better").
MONITORS = ("val_reward", "val_mcc")
#: Where the training reward's decision threshold comes from.
DECISIONS = ("val", "fixed")


def _check(condition_name: str, test):
    def validator(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if value is not None and not test(value):
            raise ConfigError(f"dqn: {attribute.name} must be {condition_name}, got {value!r}")

    return validator


_positive = _check("> 0", lambda v: v > 0)
_nonneg = _check(">= 0", lambda v: v >= 0)
_unit = _check("in [0, 1]", lambda v: 0.0 <= v <= 1.0)


def _hidden(value: int | Sequence[int]) -> tuple[int, ...]:
    return (int(value),) if isinstance(value, int) else tuple(int(h) for h in value)


@attrs.frozen
class DQNConfig:
    """Every knob of :class:`~fusioncore_dqn.dqn.DQNFusion` (see its docstring)."""

    threshold: float = attrs.field(default=0.5, converter=float, validator=_unit)
    decision: str = attrs.field(
        default="val", validator=_check(f"one of {DECISIONS}", lambda v: v in DECISIONS)
    )
    margin: float = attrs.field(
        default=0.05, converter=float, validator=_check("in [0, 0.5)", lambda v: 0 <= v < 0.5)
    )
    k: int = attrs.field(default=21, converter=int, validator=_check(">= 2", lambda v: v >= 2))
    hidden: tuple[int, ...] = attrs.field(
        default=(64, 64),
        converter=_hidden,
        validator=_check("positive sizes", lambda v: all(h > 0 for h in v)),
    )
    include_scores: bool = attrs.field(default=True, converter=bool)
    lr: float = attrs.field(default=1e-3, converter=float, validator=_positive)
    batch_size: int = attrs.field(default=512, converter=int, validator=_positive)
    minibatch_size: int | None = attrs.field(default=None, validator=_positive)
    epochs: int = attrs.field(default=20, converter=int, validator=_positive)
    min_steps: int = attrs.field(default=1000, converter=int, validator=_nonneg)
    gamma: float = attrs.field(
        default=0.0, converter=float, validator=_check("in [0, 1)", lambda v: 0 <= v < 1)
    )
    epsilon_start: float = attrs.field(default=1.0, converter=float, validator=_unit)
    epsilon_end: float = attrs.field(default=0.05, converter=float, validator=_unit)
    epsilon_decay: float = attrs.field(default=0.5, converter=float, validator=_unit)
    target_update: int = attrs.field(default=100, converter=int, validator=_positive)
    tau: float | None = attrs.field(
        default=None, validator=_check("in (0, 1]", lambda v: 0 < v <= 1)
    )
    double: bool = attrs.field(default=True, converter=bool)
    buffer_size: int = attrs.field(default=100_000, converter=int, validator=_positive)
    patience: int | None = attrs.field(default=5, validator=_nonneg)
    monitor: str = attrs.field(
        default="val_reward", validator=_check(f"one of {MONITORS}", lambda v: v in MONITORS)
    )
    seed: int = attrs.field(default=0, converter=int)

    @property
    def replay_minibatch(self) -> int:
        return self.minibatch_size or self.batch_size

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)
