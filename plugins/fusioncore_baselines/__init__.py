"""fusioncore_baselines: the fusions every learned fusion must beat.

``mean``, ``max`` and ``single`` are fixed rules; ``weighted`` learns one weight
vector for all windows; ``stacking`` learns a logistic regression (or small MLP)
on states and scores. All are deterministic.
"""

from __future__ import annotations

from fusioncore import hookimpl
from fusioncore.hookspecs import Register
from fusioncore_baselines.errors import NotFittedError
from fusioncore_baselines.metrics import BestThreshold, auroc_rows, best_mcc_rows
from fusioncore_baselines.rules import MaxFusion, MeanFusion, SingleDetectorFusion
from fusioncore_baselines.stacking import StackingFusion
from fusioncore_baselines.weighted import WeightedFusion, simplex_grid

__all__ = [
    "BestThreshold",
    "MaxFusion",
    "MeanFusion",
    "NotFittedError",
    "SingleDetectorFusion",
    "StackingFusion",
    "WeightedFusion",
    "auroc_rows",
    "best_mcc_rows",
    "simplex_grid",
]


@hookimpl
def fusioncore_register_fusions(register: Register) -> None:
    register("mean", MeanFusion, "average of the detectors' calibrated scores")
    register("max", MaxFusion, "highest calibrated score (attack if any detector says so)")
    register("single", SingleDetectorFusion, "one detector's score (param detector=<name>)")
    register("weighted", WeightedFusion, "one weight vector fitted on val by grid search (MCC)")
    register("stacking", StackingFusion, "class-weighted logistic regression on states + scores")
