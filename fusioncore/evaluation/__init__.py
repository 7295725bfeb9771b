"""Evaluation: window metrics and thresholds (:mod:`.metrics`), run reports and plots (:mod:`.report`)."""

from fusioncore.evaluation.metrics import (
    auroc,
    average_precision,
    best_mcc_threshold,
    binary_metrics,
    scenario_metrics,
)

__all__ = ["auroc", "average_precision", "best_mcc_threshold", "binary_metrics", "scenario_metrics"]
