"""report.json against its schema, report.md's order and marks, seeds, the console table, plots."""

from __future__ import annotations

import json
import re

import jsonschema
import numpy as np
import pytest
from evaluation_toy import DECISIONS, GAP_S, WINDOW, drive, toy_report, windows
from fusioncore_alarms import KOfNAlarms
from rich.console import Console

from fusioncore.evaluation import EvaluationSettings, aggregate_seeds, evaluate_scenario, worst_scenarios
from fusioncore.evaluation.metrics import curve_points
from fusioncore.evaluation.plots import plot_curves, plot_timelines
from fusioncore.evaluation.provenance import dataset_citation, provenance
from fusioncore.evaluation.report import render_markdown, report_schema, write_report
from fusioncore.evaluation.tables import DECISION_HEADER, summary_table


def _validate(report):
    validator = jsonschema.Draft202012Validator(report_schema())
    errors = sorted(validator.iter_errors(json.loads(json.dumps(report))), key=lambda e: e.path)
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


def test_the_schema_is_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(report_schema())


def test_a_report_and_a_seed_aggregate_validate_against_the_schema():
    _validate(toy_report(0))
    _validate(aggregate_seeds([toy_report(s) for s in range(3)]))


@pytest.mark.parametrize(("path", "value"), [
    (("scenarios", "test_known", "a", "mcc"), "high"),
    (("scenarios", "test_known", "a", "events", "recall"), 1.5),
    (("scenarios", "test_known", "a", "alarms"), None),
    (("schema_version",), 2),
])
def test_the_schema_rejects_broken_reports(path, value):
    report = toy_report(0)
    node = report
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(AssertionError):
        _validate(report)


def test_report_md_opens_with_the_decision_table_then_worst_scenarios(tmp_path):
    report = toy_report(0)
    write_report(tmp_path, report)
    md = (tmp_path / "report.md").read_text()
    lines = md.splitlines()
    first_table = next(i for i, line in enumerate(lines) if line.startswith("|"))
    assert lines[first_table] == "| " + " | ".join(DECISION_HEADER) + " |"
    rows = lines[first_table + 2 : first_table + 6]
    assert [r.split(" | ")[:2] for r in rows] == [["| test_known", "a"], ["| test_known", "b"],
                                                  ["| test_suppress", "a"], ["| test_suppress", "b"]]
    assert "alerts on all windows, constant score" in rows[1]
    suppress = rows[2].split(" | ")
    assert suppress[2] == "undefined" and suppress[3] == "undefined"  # MCC, AUROC with one class
    assert suppress[5].endswith(" †") and "† unlabelled scenario" in md
    first_section = next(line for line in lines[first_table:] if line.startswith("## "))
    assert first_section == "## Worst scenario per method"
    for section in ("## Window metrics", "## Events and alarms", "## Per attack type", "## Scenarios",
                    "## Validation block", "## Mean over test scenarios", "## Where the numbers come from"):
        assert section in md, section
    assert md.index("## Worst scenario") < md.index("## Window metrics")
    assert "fusion block held: flooding, fuzzing, spoofing" in md
    assert f"with {provenance()['torch_threads']} thread(s)" in md
    assert f"- Memory allocator: {provenance()['allocator']}" in md
    assert "fusioncore's vehicle simulator" in md and "Adaptation protocol: adapter = None" in md
    assert "stage delay vs raw" in md
    assert json.loads((tmp_path / "report.json").read_text())["scenarios"]["test_known"]["a"]["events"]
    header = (tmp_path / "metrics.csv").read_text().splitlines()[0]
    assert header.endswith("event_recall,false_alarms_per_hour,ttd_ms_median,alarm_episodes_per_hour")


def test_undefined_metrics_stay_out_of_the_means():
    report = toy_report(0)
    means = report["mean_over_scenarios"]["a"]
    known = report["scenarios"]["test_known"]["a"]
    assert means["mcc"] == pytest.approx(known["mcc"]) and means["n_scenarios"]["mcc"] == 1
    assert means["event_recall"] == pytest.approx(known["events"]["recall"])


def test_seeds_aggregate_to_mean_and_spread_and_report_md_shows_it():
    reports = [toy_report(s) for s in range(3)]
    agg = aggregate_seeds(reports)
    assert agg["seeds"] == [0, 1, 2] and "seed" not in agg
    values = [r["scenarios"]["test_known"]["a"]["auroc"] for r in reports]
    assert agg["scenarios"]["test_known"]["a"]["auroc"] == pytest.approx(np.mean(values))
    spread = agg["spread"]["scenarios"]["test_known"]["a"]["auroc"]
    assert spread["std"] == pytest.approx(np.std(values)) and spread["n"] == 3
    assert agg["scenarios"]["test_suppress"]["a"]["mcc"] is None  # undefined in every seed
    assert agg["scenarios"]["test_known"]["a"]["n_windows"] == 15  # counts the seeds agree on stay counts
    assert agg["scenarios"]["test_known"]["b"]["flags"]["alerts_on_all_windows"] is True
    reports[1]["scenarios"]["test_known"]["a"]["flags"]["constant_score"] = True
    assert "constant score (1 of 3 seeds)" in render_markdown(aggregate_seeds(reports))
    md = render_markdown(agg)
    assert "seeds 0, 1, 2 (cells: mean ± std over seeds)" in md
    row = next(line for line in md.splitlines() if line.startswith("| test_known | a |"))
    assert row.count("±") >= 2


def test_worst_scenario_falls_back_when_mcc_is_undefined():
    scen = {"s1": {"m": {"mcc": 0.2, "auroc": 0.9}}, "s2": {"m": {"mcc": 0.6, "auroc": 0.4}},
            "s3": {"m": {"mcc": None, "auroc": 0.1}}}
    assert worst_scenarios(scen)["m"]["scenario"] == "s1"
    only_auroc = worst_scenarios({"s3": scen["s3"], "s4": {"m": {"mcc": None, "auroc": 0.7}}})["m"]
    assert only_auroc["scenario"] == "s3" and only_auroc["by"] == "auroc"


def test_the_console_table_keeps_scenario_names_whole_at_80_columns():
    report = toy_report(0)
    long_name = "test_04_unknown_vehicle_unknown_attack"
    report["scenarios"][long_name] = report["scenarios"].pop("test_known")
    report["scenario_info"][long_name] = report["scenario_info"].pop("test_known")
    console = Console(width=80, record=True, color_system=None)
    console.print(summary_table(report))
    text = console.export_text()
    assert all(len(line) <= 80 for line in text.splitlines())
    assert any(line.strip() == long_name for line in text.splitlines())
    assert "…" not in text and "* b: alerts on all windows, constant score" in text


def test_provenance_and_citations():
    p = provenance()
    assert p["torch_threads"] >= 1 and p["fusioncore_version"]
    assert p["git_commit"] is None or re.fullmatch(r"[0-9a-f]{40}", p["git_commit"])
    assert "Survival Analysis" in dataset_citation("hcrl-sa")
    assert "Lampe & Meng" in dataset_citation("hcrl_sa")
    assert "Lampe & Meng" in dataset_citation("set_03") and dataset_citation("my-own") is None


# ------------------------------------------------------------------------ plots
def test_a_timeline_per_capture_is_rendered(tmp_path):
    import matplotlib.image

    starts, labels, kinds = windows(drive())
    result = evaluate_scenario(drive(), starts, labels, kinds, {"a": DECISIONS, "b": DECISIONS * 0.3},
                               {"a": 0.5, "b": 0.1}, window=WINDOW, alarm=KOfNAlarms(2, 3),
                               settings=EvaluationSettings(event_gap_s=GAP_S), name="test_01")
    paths = plot_timelines(tmp_path, result)
    assert [p.name for p in paths] == ["timeline_test_01_drive.png"]
    image = matplotlib.image.imread(paths[0])
    assert image.shape[1] == 1100 and 300 <= image.shape[0] <= 500  # 11 in wide, two panels, 100 dpi
    assert paths[0].stat().st_size > 10_000


def test_tied_scores_draw_one_curve_whatever_the_row_order(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    scores = {"constant": np.full(200, 0.3), "coarse": np.round(y * 0.3 + rng.random(200), 1)}
    _, tp, fp = curve_points(y, scores["constant"])
    assert (tp.tolist(), fp.tolist()) == ([int(y.sum())], [int((y == 0).sum())])  # one point: the diagonal
    order = rng.permutation(200)
    plot_curves(tmp_path / "a.png", "s", y, scores)
    plot_curves(tmp_path / "b.png", "s", y[order], {k: v[order] for k, v in scores.items()})
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_compare_reads_event_and_alarm_headlines(tmp_path):
    from fusioncore.evaluation.compare import compare_runs, load_reports

    for seed in (0, 1):
        write_report(tmp_path / f"run{seed}", toy_report(seed))
    table = compare_runs(load_reports([tmp_path / "run0", tmp_path / "run1"]),
                         ("mcc", "event_recall", "false_alarms_per_hour"))
    cells = table.rows[("test_known", "a")]["run0"]
    known = toy_report(0)["scenarios"]["test_known"]["a"]
    assert cells == {"mcc": known["mcc"], "event_recall": known["events"]["recall"],
                     "false_alarms_per_hour": known["alarms"]["false_alarms_per_hour"]}
    assert table.rows[("mean over scenarios", "a")]["run1"]["event_recall"] is not None
