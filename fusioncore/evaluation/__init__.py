"""Evaluation: what a security engineer decides on, computed the same way for every method.

* :mod:`.metrics` -- window metrics and thresholds (the project's one implementation);
* :mod:`.events` -- captures, attack events and the windows that observe them;
* :mod:`.alarms` -- the alarm-stage contract (decisions -> alarms);
* :mod:`.outcomes` -- detections, time to detect, false alarm episodes;
* :mod:`.scenario` -- :func:`evaluate_scenario` and :func:`budget_thresholds`, what the pipeline calls;
* :mod:`.aggregate` -- means over scenarios (undefined left out), worst scenarios, seeds;
* :mod:`.report`, :mod:`.tables`, :mod:`.plots` -- report.json / report.md / metrics.csv, the
  console table, timelines and curves; :mod:`.provenance` -- version, commit, citation.

Definitions are in ``docs/evaluation.md``.
"""

from fusioncore.evaluation.aggregate import aggregate_seeds, mean_over_scenarios, worst_scenarios
from fusioncore.evaluation.alarms import AlarmStage
from fusioncore.evaluation.events import AttackEvents, ScenarioLayout, find_events
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
from fusioncore.evaluation.provenance import dataset_citation, provenance
from fusioncore.evaluation.scenario import (
    BudgetThreshold,
    EvaluationSettings,
    ScenarioEvaluation,
    attack_types_present,
    budget_thresholds,
    evaluate_scenario,
)

__all__ = [
    "AlarmStage",
    "AttackEvents",
    "BudgetThreshold",
    "EvaluationSettings",
    "ScenarioEvaluation",
    "ScenarioLayout",
    "aggregate_seeds",
    "attack_types_present",
    "auroc",
    "auroc_rows",
    "average_precision",
    "best_mcc_rows",
    "best_mcc_threshold",
    "binary_metrics",
    "budget_thresholds",
    "dataset_citation",
    "evaluate_scenario",
    "find_events",
    "mcc_from_counts",
    "mean_over_scenarios",
    "provenance",
    "recall_at_fpr",
    "scenario_metrics",
    "worst_scenarios",
]
