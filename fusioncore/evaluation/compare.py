"""Side-by-side tables of several runs: ``fusioncore compare RUN_OR_SWEEP...``.

Each argument is a run folder (its ``report.json``) or a sweep folder (every
job listed in its ``sweep.json``). Rows are (scenario, method); columns are
the runs; cells are the chosen metrics. Written as markdown and JSON.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from fusioncore.errors import ConfigError
from fusioncore.evaluation.aggregate import HEADLINE, metric

__all__ = ["Comparison", "RunReport", "compare_runs", "load_reports"]

DEFAULT_METRICS = ("mcc", "auroc")


@attrs.frozen(eq=False)
class RunReport:
    label: str
    path: Path
    report: dict[str, Any]


def _read(path: Path, label: str) -> RunReport:
    report_path = path / "report.json"
    try:
        return RunReport(label, path, json.loads(report_path.read_text()))
    except FileNotFoundError:
        raise ConfigError(f"{path} holds no report.json (not a finished fusioncore run)") from None
    except ValueError as exc:
        raise ConfigError(f"{report_path} is not valid JSON: {exc}") from None


def load_reports(paths: Sequence[Path]) -> list[RunReport]:
    """The reports of every run named, sweeps expanded into their jobs (in job order)."""
    runs: list[RunReport] = []
    for path in map(Path, paths):
        sweep = path / "sweep.json"
        if sweep.is_file():
            for job in json.loads(sweep.read_text())["jobs"]:
                if job["status"] == "ok":
                    label = f"{path.name}/{job['number']} " + " ".join(job["overrides"])
                    runs.append(_read(Path(job["out"]), label.strip()))
        elif path.is_dir():
            runs.append(_read(path, path.name))
        else:
            raise ConfigError(f"{path}: no such run or sweep folder")
    if not runs:
        raise ConfigError("nothing to compare: no finished runs among " + ", ".join(map(str, paths)))
    return runs


@attrs.frozen(eq=False)
class Comparison:
    runs: tuple[str, ...]
    metrics: tuple[str, ...]
    #: (scenario, method) -> run label -> metric -> value (None: undefined or absent)
    rows: dict[tuple[str, str], dict[str, dict[str, float | None]]]

    def to_json(self) -> dict[str, Any]:
        return {
            "runs": list(self.runs), "metrics": list(self.metrics),
            "rows": [{"scenario": s, "method": m, "values": v} for (s, m), v in self.rows.items()],
        }

    def to_markdown(self) -> str:
        head = ["scenario", "method"] + [f"{r}: {k}" for r in self.runs for k in self.metrics]
        lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
        for (scenario, method), values in self.rows.items():
            cells = [_fmt(values.get(r, {}).get(k)) for r in self.runs for k in self.metrics]
            lines.append(f"| {scenario} | {method} | " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def _value(record: dict[str, Any], key: str) -> float | None:
    """A flat key of a method record, or a headline metric by name (``event_recall``, ...)."""
    return record[key] if key in record else metric(record, key) if key in HEADLINE else None


def compare_runs(runs: Sequence[RunReport], metrics: Sequence[str] = DEFAULT_METRICS) -> Comparison:
    """One row per (scenario, method) seen in any run; the mean over scenarios comes last."""
    labels = [r.label for r in runs]
    if len(set(labels)) != len(labels):  # e.g. two sweeps' job 0: number the columns
        labels = [f"{i}:{label}" for i, label in enumerate(labels)]
    rows: dict[tuple[str, str], dict[str, dict[str, float | None]]] = {}
    for label, run in zip(labels, runs):
        blocks = dict(run.report.get("scenarios", {}))
        blocks["mean over scenarios"] = run.report.get("mean_over_scenarios", {})
        for scenario, methods in blocks.items():
            for method, values in methods.items():
                rows.setdefault((scenario, method), {})[label] = {k: _value(values, k) for k in metrics}
    return Comparison(tuple(labels), tuple(metrics), rows)
