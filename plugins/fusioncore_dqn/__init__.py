"""fusioncore_dqn: DQN fusion of detector scores, its rewards and state encoders.

Registers the fusion ``dqn``, the rewards ``asymmetric`` / ``accuracy`` /
``cost`` and the state encoders ``detector-features`` / ``scores-only``, all
lazily: nothing here imports PyTorch until a run asks for a component.
"""

from __future__ import annotations

from fusioncore import Lazy, hookimpl
from fusioncore.hookspecs import Register
from fusioncore.registry import lazy_exports

__all__ = [
    "REWARDS",
    "DQNFusion",
    "DetectorFeaturesEncoder",
    "NotFittedError",
    "OutcomeReward",
    "ScoresOnlyEncoder",
    "accuracy",
    "asymmetric",
    "cost",
]

_REWARDS = "fusioncore_dqn.rewards"
_ENCODERS = "fusioncore_dqn.encoders"
__getattr__ = lazy_exports({
    "DQNFusion": "fusioncore_dqn.dqn",
    "NotFittedError": "fusioncore_dqn.dqn",
    "DetectorFeaturesEncoder": _ENCODERS,
    "ScoresOnlyEncoder": _ENCODERS,
    **dict.fromkeys(("REWARDS", "OutcomeReward", "accuracy", "asymmetric", "cost"), _REWARDS),
})


@hookimpl
def fusioncore_register_fusions(register: Register) -> None:
    register("dqn", Lazy("fusioncore_dqn.dqn:DQNFusion"),
             "DQN picks each window's detector weights from a grid (bandit)")


@hookimpl
def fusioncore_register_rewards(register: Register) -> None:
    register("asymmetric", Lazy(f"{_REWARDS}:asymmetric"),
             "TP +3, TN +1.5, FP -1.5, FN -6 on the fused decision")
    register("accuracy", Lazy(f"{_REWARDS}:accuracy"), "+1 right, -1 wrong on the fused decision")
    register("cost", Lazy(f"{_REWARDS}:cost"),
             "minus a cost per outcome (tp, tn, fp, fn costs as parameters)")


@hookimpl
def fusioncore_register_state_encoders(register: Register) -> None:
    register(
        "detector-features",
        Lazy(f"{_ENCODERS}:DetectorFeaturesEncoder"),
        "all chosen detectors' named features, standardised on training outputs",
    )
    register("scores-only", Lazy(f"{_ENCODERS}:ScoresOnlyEncoder"), "each detector's score, standardised")
