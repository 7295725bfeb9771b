"""fusioncore_baselines: the fusions every learned fusion must beat.

``mean``, ``max`` and ``single`` are fixed rules; ``weighted`` learns one weight
vector for all windows; ``stacking`` learns a logistic regression (or small MLP)
on states and scores; ``moe`` learns per-window detector weights with a gating
network (a mixture of experts). All are deterministic, and registered lazily.
"""

from __future__ import annotations

from fusioncore import Lazy, hookimpl
from fusioncore.hookspecs import Register
from fusioncore.registry import lazy_exports

__all__ = [
    "MaxFusion",
    "MeanFusion",
    "MixtureOfExpertsFusion",
    "NotFittedError",
    "SingleDetectorFusion",
    "StackingFusion",
    "WeightedFusion",
    "simplex_grid",
]

_RULES = "fusioncore_baselines.rules"
__getattr__ = lazy_exports({
    "NotFittedError": "fusioncore.errors",
    "MixtureOfExpertsFusion": "fusioncore_baselines.moe",
    **dict.fromkeys(("MaxFusion", "MeanFusion", "SingleDetectorFusion"), _RULES),
    "StackingFusion": "fusioncore_baselines.stacking",
    "WeightedFusion": "fusioncore_baselines.weighted",
    "simplex_grid": "fusioncore_baselines.weighted",
})


@hookimpl
def fusioncore_register_fusions(register: Register) -> None:
    register("mean", Lazy(f"{_RULES}:MeanFusion"), "average of the detectors' calibrated scores")
    register("max", Lazy(f"{_RULES}:MaxFusion"), "highest calibrated score (attack if any detector says so)")
    register("single", Lazy(f"{_RULES}:SingleDetectorFusion"), "one detector's score (param detector=<name>)")
    register("weighted", Lazy("fusioncore_baselines.weighted:WeightedFusion"),
             "one weight vector fitted on val by grid search (MCC)")
    register("stacking", Lazy("fusioncore_baselines.stacking:StackingFusion"),
             "class-weighted logistic regression on states + scores")
    register("moe", Lazy("fusioncore_baselines.moe:MixtureOfExpertsFusion"),
             "mixture of experts: a gating MLP weighs detectors per window")
