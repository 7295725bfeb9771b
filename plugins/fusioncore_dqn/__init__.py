"""fusioncore_dqn: DQN fusion of detector scores, its rewards and state encoders.

Registers the fusion ``dqn``, the rewards ``asymmetric`` / ``accuracy`` /
``cost`` and the state encoders ``detector-features`` / ``scores-only``.
"""

from __future__ import annotations

from fusioncore import hookimpl
from fusioncore.hookspecs import Register
from fusioncore_dqn.dqn import DQNFusion, NotFittedError
from fusioncore_dqn.encoders import DetectorFeaturesEncoder, ScoresOnlyEncoder
from fusioncore_dqn.rewards import REWARDS, OutcomeReward, accuracy, asymmetric, cost

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


@hookimpl
def fusioncore_register_fusions(register: Register) -> None:
    register("dqn", DQNFusion, "DQN picks each window's detector weights from a grid (bandit)")


@hookimpl
def fusioncore_register_rewards(register: Register) -> None:
    register("asymmetric", asymmetric, "TP +3, TN +1.5, FP -1.5, FN -6 on the fused decision")
    register("accuracy", accuracy, "+1 right, -1 wrong on the fused decision")
    register("cost", cost, "minus a cost per outcome (tp, tn, fp, fn costs as parameters)")


@hookimpl
def fusioncore_register_state_encoders(register: Register) -> None:
    register(
        "detector-features",
        DetectorFeaturesEncoder,
        "all chosen detectors' named features, standardised on training outputs",
    )
    register("scores-only", ScoresOnlyEncoder, "each detector's score, standardised")
