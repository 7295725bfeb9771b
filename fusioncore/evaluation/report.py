"""Run artifacts: report.json, report.md and metrics.csv.

report.md opens with the table a reader decides from (per scenario x method:
MCC, AUROC, event recall, false alarms per hour, median time to detect), then
one worst-scenario line per method, then the detail: window metrics, events
and alarms, per attack type, the scenarios themselves, the validation block,
the protocol, means over scenarios and where the numbers come from. The
schema of report.json is ``fusioncore/evaluation/schema/report.schema.json``
(see ``docs/evaluation.md``). Plots live in :mod:`fusioncore.evaluation.plots`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from fusioncore.adapt.report import capture_lines, protocol_lines
from fusioncore.evaluation.aggregate import mean_over_scenarios, metric, worst_scenarios
from fusioncore.evaluation.plots import plot_curves, plot_policy
from fusioncore.evaluation.provenance import dataset_citation, provenance
from fusioncore.evaluation.tables import (
    DECISION_HEADER,
    UNLABELLED_NOTE,
    ReportView,
    decision_rows,
    fmt,
    markdown_table,
    note,
    unlabelled,
)

if TYPE_CHECKING:
    from fusioncore.evaluation.alarms import AlarmStage
    from fusioncore.evaluation.scenario import EvaluationSettings, ScenarioEvaluation

__all__ = [
    "METRIC_COLUMNS",
    "REPORT_SCHEMA_VERSION",
    "evaluation_report",
    "plot_curves",
    "plot_policy",
    "render_markdown",
    "report_schema",
    "summary_rows",
    "write_report",
]

#: Version of report.json's layout (``schema/report.schema.json``); bumped when a field changes meaning.
REPORT_SCHEMA_VERSION = 1

METRIC_COLUMNS = ("mcc", "f1", "precision", "recall", "auroc", "ap", "accuracy", "n_windows",
                  "n_attack_windows")
_CSV_EXTRA = ("event_recall", "false_alarms_per_hour", "ttd_ms_median", "alarm_episodes_per_hour")
_NO_EVENTS = "no events"
_BY = {"mcc": "MCC", "auroc": "AUROC", "event_recall": "event recall"}


def report_schema() -> dict[str, Any]:
    """The JSON Schema of report.json (a test validates every report against it)."""
    text = resources.files("fusioncore.evaluation").joinpath("schema/report.schema.json").read_text()
    return json.loads(text)


def evaluation_report(
    *,
    dataset: str,
    settings: EvaluationSettings,
    alarm: AlarmStage,
    scenarios: Mapping[str, ScenarioEvaluation],
    validation: ScenarioEvaluation,
    thresholds: Mapping[str, float],
    threshold_rule: str = "best MCC",
    split_attack_types: Mapping[str, list[str]] | None = None,
    protocol: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The evaluation part of report.json, to merge with the run's own fields.

    The run adds ``dataset``, ``detectors``, ``fusions``, ``seed`` and its
    bookkeeping (``timings``, ``training``, ``prediction_cache``, ...).
    """
    out: dict[str, Any] = {
        "schema_version": REPORT_SCHEMA_VERSION,
        "threshold_rule": threshold_rule,
        "thresholds": {m: float(t) for m, t in thresholds.items()},
        "evaluation": {
            **{k: list(v) if isinstance(v, tuple) else v for k, v in attrs.asdict(settings).items()},
            "alarm": {"name": alarm.name, "params": dict(alarm.config()), "memory": int(alarm.memory)},
        },
        "scenarios": {s: e.methods for s, e in scenarios.items()},
        "scenario_info": {s: e.info for s, e in scenarios.items()},
        "validation": validation.methods,
        "validation_info": validation.info,
        "split_attack_types": dict(split_attack_types or {}),
        "provenance": provenance(),
        "citation": dataset_citation(dataset),
    }
    out["mean_over_scenarios"] = mean_over_scenarios(out["scenarios"])
    out["worst_scenario"] = worst_scenarios(out["scenarios"])
    if protocol:
        out["protocol"] = dict(protocol)
    return out


def summary_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One flat row per (scenario, method): window metrics, then event and alarm headlines."""
    rows = []
    for scenario, methods in (report.get("scenarios") or {}).items():
        for method, m in methods.items():
            rows.append({"scenario": scenario, "method": method, **{k: m.get(k) for k in METRIC_COLUMNS},
                         **{k: metric(m, k) for k in _CSV_EXTRA}})
    return rows


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return float(value)


def write_report(out_dir: Path, report: Mapping[str, Any]) -> None:
    """Write report.json, report.md and metrics.csv into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2, default=_json_default))
    with open(out_dir / "metrics.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["scenario", "method", *METRIC_COLUMNS, *_CSV_EXTRA])
        writer.writeheader()
        writer.writerows(summary_rows(report))
    (out_dir / "report.md").write_text(render_markdown(report))


def _names(values) -> str:
    return ", ".join(str(v) for v in values) if values else "none"


def _intro(report: Mapping[str, Any], view: ReportView) -> list[str]:
    seeds = view.seeds or ([report["seed"]] if "seed" in report else [])
    seed_text = (f"seeds {_names(seeds)} (cells: mean ± std over seeds)" if len(seeds) > 1
                 else f"seed {seeds[0]}" if seeds else "seed unknown")
    ev = report.get("evaluation") or {}
    alarm = ev.get("alarm") or {}
    params = ", ".join(f"{k}={v}" for k, v in (alarm.get("params") or {}).items())
    rule = report.get("threshold_rule") or "best MCC"
    lines = [
        f"# fusioncore report: {report.get('dataset', '?')}",
        "",
        f"Detectors: {_names(report.get('detectors'))}; fusions: {_names(report.get('fusions'))}; "
        f"{seed_text}. Thresholds chosen on the validation block ({rule}).",
    ]
    if alarm:
        lines.append(
            f"Alarm stage: {alarm.get('name')}{f' ({params})' if params else ''}; attack events merge "
            f"attack runs less than {ev.get('event_gap_s', '?')} s apart. "
            "Definitions: [docs/evaluation.md](docs/evaluation.md)."
        )
    lines += protocol_lines(report)  # capture adaptation: adapter, warm-up (fusioncore.adapt.report)
    return [*lines, ""]


def _worst(report: Mapping[str, Any]) -> list[str]:
    worst = report.get("worst_scenario") or {}
    if not worst:
        return []
    lines = ["## Worst scenario per method", ""]
    for method, w in worst.items():
        if not w:
            lines.append(f"- **{method}**: every metric undefined on every scenario")
            continue
        ttd = w.get("ttd_ms_median")
        lines.append(
            f"- **{method}**: {w['scenario']} (lowest {_BY[w['by']]}): MCC {fmt(w.get('mcc'))}, "
            f"AUROC {fmt(w.get('auroc'))}, event recall {fmt(w.get('event_recall'), 'share')}, "
            f"false alarms / h {fmt(w.get('false_alarms_per_hour'), 'rate')}, median time to detect "
            + (f"{fmt(ttd, 'ms')} ms" if ttd is not None else "undefined (no event detected)")
        )
    return [*lines, ""]


def _each(report: Mapping[str, Any], view: ReportView):
    """``(scenario, method, view of its record)`` for every method on every scenario."""
    for scenario, methods in (report.get("scenarios") or {}).items():
        for method in methods:
            yield scenario, method, view.at("scenarios", scenario, method)


def _window_detail(report: Mapping[str, Any], view: ReportView) -> list[str]:
    levels = (report.get("evaluation") or {}).get("fpr_levels") or []
    header = ["scenario", "method", "threshold", "MCC", "F1", "AUROC", "AP", "precision", "recall", "FPR",
              *[f"recall @ FPR {lv:g}" for lv in levels], "alert rate", "windows", "attack windows"]
    rows = [
        [scenario, method, m.cell("threshold", kind="threshold"),
         *[m.cell(k) for k in ("mcc", "f1", "auroc", "ap", "precision", "recall", "fpr")],
         *[m.cell("recall_at_fpr", repr(float(lv))) for lv in levels],
         m.cell("alert_rate"), m.cell("n_windows", kind="int"), m.cell("n_attack_windows", kind="int")]
        for scenario, method, m in _each(report, view)
    ]
    return ["## Window metrics", "", *markdown_table(header, rows), ""]


def _event_detail(report: Mapping[str, Any], view: ReportView) -> list[str]:
    header = ["scenario", "method", "events detected", "unobserved", "TTD median ms", "TTD p95 ms",
              "TTD median frames", "TTD p95 frames", "false alarm episodes", "alarm episodes",
              "alarm episodes / h", "stage delay vs raw, median / p95 ms"]
    rows = []
    for scenario, method, m in _each(report, view):
        if not m.value("events"):
            continue
        cost = m.at("alarm_cost")
        delay = (f"{cost.cell('delay_ms', 'median', kind='ms')} / {cost.cell('delay_ms', 'p95', kind='ms')}"
                 if cost.value() else "–")
        e, a = m.at("events"), m.at("alarms")
        rows.append([
            scenario, method, e.count_of(), e.cell("unobserved", kind="int"),
            e.cell("ttd_ms", "median", kind="ms"), e.cell("ttd_ms", "p95", kind="ms"),
            e.cell("ttd_frames", "median", kind="frames"), e.cell("ttd_frames", "p95", kind="frames"),
            a.cell("false_alarm_episodes", kind="int"), a.cell("episodes", kind="int"),
            a.cell("alarm_episodes_per_hour", kind="rate"), delay,
        ])
    return ["## Events and alarms", "", *markdown_table(header, rows), ""] if rows else []


def _per_type(report: Mapping[str, Any], view: ReportView) -> list[str]:
    header = ["scenario", "attack type", "method", "window recall", "window AUROC", "events detected",
              "event recall", "TTD median ms"]
    rows = []
    for scenario, methods in (report.get("scenarios") or {}).items():
        kinds = dict.fromkeys(
            k for m in methods.values()
            for k in [*(m.get("per_attack_type") or {}), *(m.get("events") or {}).get("per_attack_type", {})]
        )
        for kind in kinds:
            for method in methods:
                m = view.at("scenarios", scenario, method)
                w, e = m.at("per_attack_type", kind), m.at("events", "per_attack_type", kind)
                rows.append([scenario, kind, method, w.cell("recall"), w.cell("auroc"),
                             e.count_of() if e.value() else _NO_EVENTS, e.cell("recall", kind="share"),
                             e.cell("ttd_ms", "median", kind="ms")])
    return ["## Per attack type", "", *markdown_table(header, rows, numeric_from=3), ""] if rows else []


def _scenario_info(report: Mapping[str, Any]) -> list[str]:
    info = report.get("scenario_info") or {}
    if not info:
        return []
    header = ["scenario", "captures", "windows", "excluded", "labelled", "attack types", "observed h",
              "benign h", "events", "unobserved events"]
    rows = [[s, str(len(i.get("captures", []))), fmt(i.get("n_windows"), "int"),
             fmt(i.get("n_windows_excluded"), "int"), fmt(i.get("labelled")), _names(i.get("attack_types")),
             f"{i.get('observed_hours', 0):.4f}", f"{i.get('benign_hours', 0):.4f}",
             fmt(i.get("n_events"), "int"), fmt(i.get("n_events_unobserved"), "int")]
            for s, i in info.items()]
    return ["## Scenarios", "", *markdown_table(header, rows, numeric_from=2), ""]


def _validation(report: Mapping[str, Any], view: ReportView) -> list[str]:
    val = report.get("validation") or {}
    if not val:
        return []
    lines = ["## Validation block (where the thresholds come from)", "",
             "Its own metrics say how separable it was: MCC 1.0 for every method means the thresholds "
             "were set on a trivially separable block and say little about harder traffic.", ""]
    held = report.get("split_attack_types") or {}
    if held:
        blocks = ", ".join(f"{split} block held: {_names(kinds)}" for split, kinds in held.items())
        lines += [blocks + ".", ""]
    header = ["method", "threshold", "MCC", "AUROC", "AP", "event recall", "false alarms / h", "note"]
    rows = []
    for method in val:
        m = view.at("validation", method)
        rows.append([method, view.cell("thresholds", method, kind="threshold"), m.cell("mcc"),
                     m.cell("auroc"), m.cell("ap"), m.cell("events", "recall", kind="share"),
                     m.cell("alarms", "false_alarms_per_hour", kind="rate"), note(m)])
    return [*lines, *markdown_table(header, rows, numeric_from=1, left=("note",)), ""]


def _means(report: Mapping[str, Any], view: ReportView) -> list[str]:
    means = report.get("mean_over_scenarios") or {}
    if not means:
        return []
    names = ("mcc", "auroc", "event_recall", "false_alarms_per_hour", "ttd_ms_median")
    header = ["method", "MCC", "AUROC", "event recall", "false alarms / h", "median TTD ms"]
    kinds = {"event_recall": "share", "false_alarms_per_hour": "rate", "ttd_ms_median": "ms"}
    rows = []
    for method, m in means.items():
        counted = m.get("n_scenarios") or {}
        rows.append([method, *[view.cell("mean_over_scenarios", method, k, kind=kinds.get(k, "score"))
                               + (f" ({counted[k]})" if k in counted else "") for k in names]])
    return ["## Mean over test scenarios", "",
            "Undefined values are left out; the count of scenarios each mean covers is in brackets.", "",
            *markdown_table(header, rows, numeric_from=1), ""]


def _provenance(report: Mapping[str, Any]) -> list[str]:
    lines = ["## Where the numbers come from", ""]
    p = report.get("provenance") or {}
    if p:
        commit = p.get("git_commit") or "not a git checkout"
        dirty = " (uncommitted changes)" if p.get("git_dirty") else ""
        lines.append(f"- fusioncore {p.get('fusioncore_version')}, commit {commit}{dirty}; torch "
                     f"{p.get('torch_version')} with {p.get('torch_threads')} thread(s); "
                     f"Python {p.get('python')}")
        if p.get("allocator"):
            lines.append(f"- Memory allocator: {p['allocator']}")
    if report.get("citation"):
        lines.append(f"- Data: {report['citation']}")
    protocol = report.get("protocol")
    if protocol:
        lines.append("- Adaptation protocol: " + ", ".join(f"{k} = {v}" for k, v in protocol.items()
                                                          if not isinstance(v, (dict, list))))
    cache = report.get("prediction_cache") or {}
    if cache:
        lines.append(f"- Prediction store: {cache.get('hits', 0)} hits, {cache.get('misses', 0)} misses")
    lines.append("")
    timings = report.get("timings") or {}
    if timings:
        lines += ["| stage | seconds |", "|---|---:|", *[f"| {k} | {v:.2f} |" for k, v in timings.items()],
                  ""]
    memory = report.get("memory") or {}
    if memory.get("peak_rss_mb"):
        lines += [f"Peak memory: {memory['peak_rss_mb']:,.0f} MiB resident.", ""]
    return lines


def render_markdown(report: Mapping[str, Any]) -> str:
    """report.md: the decision table first, then worst scenarios, then the detail."""
    view = ReportView(report)
    lines = _intro(report, view)
    lines += markdown_table(DECISION_HEADER, decision_rows(report), left=("note",))
    lines += ["", UNLABELLED_NOTE] if unlabelled(report) else []
    lines.append("")
    lines += _worst(report)
    lines += _window_detail(report, view)
    lines += _event_detail(report, view)
    lines += _per_type(report, view)
    lines += _scenario_info(report)
    lines += capture_lines(report)
    lines += _validation(report, view)
    lines += _means(report, view)
    lines += _provenance(report)
    return "\n".join(lines) + "\n"

