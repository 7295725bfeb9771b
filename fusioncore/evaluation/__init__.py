"""Evaluation: window metrics and thresholds (:mod:`.metrics`, the project's one implementation),
run reports and plots (:mod:`.report`)."""

from fusioncore.evaluation.metrics import (
    auroc,
    auroc_rows,
    average_precision,
    best_mcc_rows,
    best_mcc_threshold,
    binary_metrics,
    mcc_from_counts,
    recall_at_fpr,
    scenario_metrics,
)

__all__ = [
    "auroc",
    "auroc_rows",
    "average_precision",
    "best_mcc_rows",
    "best_mcc_threshold",
    "binary_metrics",
    "mcc_from_counts",
    "recall_at_fpr",
    "scenario_metrics",
]
