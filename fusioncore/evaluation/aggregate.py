"""Summaries across scenarios and across seeds: means that skip undefined values, worst scenarios.

A metric that is undefined for a scenario (``None``) is left out of every
mean and counted: ``mean_over_scenarios`` says how many scenarios each mean
covers. :func:`aggregate_seeds` turns several per-seed reports into one
report of the same shape holding the means, plus a ``spread`` tree with the
standard deviation (population, over the seeds where the value is defined),
the count and the per-seed values of every number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "HEADLINE",
    "MEAN_METRICS",
    "aggregate_seeds",
    "mean_over_scenarios",
    "mean_std",
    "metric",
    "worst_scenarios",
]

#: Where each headline number lives in a method record (report.json ``scenarios[s][m]``).
HEADLINE: dict[str, tuple[str, ...]] = {
    "mcc": ("mcc",),
    "auroc": ("auroc",),
    "ap": ("ap",),
    "f1": ("f1",),
    "event_recall": ("events", "recall"),
    "false_alarms_per_hour": ("alarms", "false_alarms_per_hour"),
    "ttd_ms_median": ("events", "ttd_ms", "median"),
    "alarm_episodes_per_hour": ("alarms", "alarm_episodes_per_hour"),
}
#: Metrics averaged over test scenarios.
MEAN_METRICS = ("mcc", "auroc", "ap", "f1", "event_recall", "false_alarms_per_hour", "ttd_ms_median")


def metric(record: Mapping[str, Any] | None, name: str) -> Any:
    """A headline metric of a method record (``None`` when absent or undefined)."""
    value: Any = record
    for key in HEADLINE[name]:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def mean_std(values: Sequence[Any]) -> tuple[float | None, float | None, int]:
    """Mean and population standard deviation of the defined values, and how many there were."""
    vals = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if vals.size == 0:
        return None, None, 0
    return float(vals.mean()), float(vals.std()), int(vals.size)


def mean_over_scenarios(scenarios: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """Per method, the mean of each metric over the scenarios where it is defined, and their number."""
    methods = list(dict.fromkeys(m for per in scenarios.values() for m in per))
    out = {}
    for method in methods:
        records = [per[method] for per in scenarios.values() if method in per]
        entry: dict[str, Any] = {}
        counted: dict[str, int] = {}
        for name in MEAN_METRICS:
            entry[name], _, counted[name] = mean_std([metric(r, name) for r in records])
        entry["n_scenarios"] = counted
        out[method] = entry
    return out


def worst_scenarios(scenarios: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """Per method, the scenario where it does worst: lowest MCC (else AUROC, else event recall)."""
    methods = list(dict.fromkeys(m for per in scenarios.values() for m in per))
    out: dict[str, Any] = {}
    for method in methods:
        out[method] = None
        for by in ("mcc", "auroc", "event_recall"):
            ranked = [(metric(per[method], by), s) for s, per in scenarios.items()
                      if method in per and metric(per[method], by) is not None]
            if ranked:
                scenario = min(ranked, key=lambda vs: vs[0])[1]
                record = scenarios[scenario][method]
                out[method] = {"scenario": scenario, "by": by,
                               **{k: metric(record, k) for k in HEADLINE}}
                break
    return out


def _number(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)))


def _merge(values: list[Any]) -> tuple[Any, Any]:
    """(mean tree, spread tree) of one node across seeds."""
    first = next((v for v in values if v is not None), None)
    if isinstance(first, Mapping):
        merged, spread = {}, {}
        for key in dict.fromkeys(k for v in values if isinstance(v, Mapping) for k in v):
            m, s = _merge([v.get(key) if isinstance(v, Mapping) else None for v in values])
            merged[key] = m
            if s is not None:
                spread[key] = s
        return merged, spread or None
    if first is not None and all(_number(v) for v in values):
        mean, std, n = mean_std(values)
        if all(isinstance(v, (int, np.integer)) for v in values) and len(set(values)) == 1:
            mean = int(values[0])  # a count every seed agrees on stays a count
        return mean, {"std": std, "n": n, "values": [None if v is None else float(v) for v in values]}
    if isinstance(first, (bool, np.bool_)):
        held = [float(bool(v)) for v in values if v is not None]
        return bool(any(held)), {"std": None, "n": len(held), "values": held}
    return first, None


def aggregate_seeds(reports: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One report from per-seed reports of the same run: means, with ``spread`` and ``seeds``.

    Numbers become their mean over the seeds where they are defined (so
    ``scenarios[s][m]["mcc"]`` reads the mean MCC); flags are true if they
    held in any seed (their spread leaf lists the seeds, 1.0 where it held);
    everything else comes from the first report.
    ``worst_scenario`` is recomputed from the means. ``spread`` mirrors the
    numeric part of the tree with ``{"std", "n", "values"}`` leaves.
    """
    if not reports:
        raise ValueError("aggregate_seeds needs at least one report")
    body = [{k: v for k, v in r.items() if k not in ("seed", "seeds", "spread")} for r in reports]
    merged, spread = _merge(body)
    merged["seeds"] = [r.get("seed") for r in reports]
    merged["spread"] = spread or {}
    if isinstance(merged.get("scenarios"), Mapping):
        merged["worst_scenario"] = worst_scenarios(merged["scenarios"])
        merged["spread"].pop("worst_scenario", None)
    return merged
