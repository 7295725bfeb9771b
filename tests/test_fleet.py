"""`fusioncore score`: a fleet of captures scored with a trained run, one verdict file each, and a summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from detector_batches import one_torch_thread

from fusioncore.adapt import splits as adapt_splits
from fusioncore.cli import main
from fusioncore.data.formats import read_capture
from fusioncore.data.synthetic.capture import simulate_capture
from fusioncore.data.synthetic.csvfile import format_csv
from fusioncore.data.synthetic.vehicles import build_fleet
from fusioncore.data.windows import WindowSpec, window_labels
from fusioncore.fleet import find_captures, read_summary_row, verdict_names
from fusioncore.fleet.summary import SUMMARY_JSON, SUMMARY_PARQUET
from fusioncore.plugins import get_plugins
from fusioncore.scoring import ScoringSystem

ATTACKS = ("benign", "flooding", "fuzzing", "spoofing")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fleet") / "run"
    assert main(["run", "--preset", "quick", "--out", str(out), "trainer.progress=false"]) == 0
    return out


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> Path:
    """20 short captures of the three vehicles in two sub-folders (can-train-and-test CSV).

    6.5 s each: the run adapts to every capture from its first 4 s (adapt.warmup_s).
    """
    root = tmp_path_factory.mktemp("logs")
    vehicles = build_fleet(0)
    for i in range(20):
        vehicle, attack = vehicles[i % 3], ATTACKS[i % 4]
        capture = simulate_capture(vehicle, attack, rng=np.random.default_rng(100 + i), duration=6.5,
                                   start_us=(1_720_000_000 + 100 * i) * 1_000_000)
        folder = root / f"car{i % 2}"
        folder.mkdir(exist_ok=True)
        (folder / f"{attack}-{vehicle.name}-{i:02d}.csv").write_bytes(format_csv(capture.frames))
    return root


def _score(run: Path, out: Path, *inputs: str, extra=()) -> int:
    patterns = [arg for i in inputs for arg in ("--input", i)]
    return main(["score", "--run", str(run), *patterns, "--out", str(out), "--no-progress", "--threads", "1",
                 *extra])


def _verdict_tables(out: Path) -> dict[str, dict]:
    return {p.relative_to(out).as_posix(): pq.read_table(p).to_pydict()
            for p in sorted(out.rglob("*.parquet")) if p.name != SUMMARY_PARQUET}


def test_one_verdict_file_per_capture_and_a_summary(quick_run, fleet, tmp_path, capsys):
    out = tmp_path / "verdicts"
    assert _score(quick_run, out, str(fleet / "**" / "*.csv")) == 0
    tables = _verdict_tables(out)
    captures = sorted(p.relative_to(fleet).as_posix() for p in fleet.rglob("*.csv"))
    assert sorted(tables) == [f"{c}.parquet" for c in captures] and len(tables) == 20
    meta = json.loads((quick_run / "model" / "bundle.json").read_text())
    methods = list(meta["thresholds"])
    for name, cols in tables.items():
        assert {"window", "start_time", "end_time", "decision", "alarm", "label",
                *(f"score_{m}" for m in methods)} <= set(cols)
        assert len(cols["window"]) >= 10 and all(a <= b for a, b in zip(cols["start_time"], cols["end_time"]))
        assert cols["alarm"] == cols["decision"]  # the run's alarm stage, raw: the alarm is the decision
        row = read_summary_row(out / name)
        assert row["windows"] == len(cols["window"]) and row["alerts"] == sum(cols["decision"])
        assert row["labelled"] and row["attack_windows"] == sum(v == 1 for v in cols["label"])
    summary = pq.read_table(out / SUMMARY_PARQUET).to_pydict()
    assert sorted(summary["capture"]) == captures
    totals = json.loads((out / SUMMARY_JSON).read_text())["totals"]
    assert totals["captures"] == 20 and totals["failed"] == 0
    assert totals["frames"] == sum(summary["frames"]) and totals["alerts"] == sum(summary["alerts"])
    assert totals["alert_rate"] == pytest.approx(totals["alerts"] / totals["windows"])
    assert totals["false_alerts"] == sum(summary["false_alerts"]) and totals["labelled_captures"] == 20
    report = json.loads((out / SUMMARY_JSON).read_text())
    assert report["processes"] == 1 and {"load", "score", "summary"} <= set(report["timings"])
    assert report["memory"]["peak_rss_mb"] > 0
    text = capsys.readouterr().out
    assert "20 captures (0 failed)" in text and "peak memory:" in text and "time:" in text


def test_scores_are_the_runs_own(quick_run, fleet, tmp_path):
    """The verdict file of a capture holds what ScoringSystem (as `detect` uses it) gives its windows."""
    out = tmp_path / "v"
    capture = sorted(fleet.rglob("flooding-*.csv"))[0]
    assert _score(quick_run, out, str(capture), extra=["--method", "gat"]) == 0
    cols = pq.read_table(out / f"{capture.name}.parquet").to_pydict()
    frames = read_capture(capture, errors="skip").frames
    with one_torch_thread():
        system = ScoringSystem.load(quick_run, method="gat")
        assert system.needs_reference  # the default adapter: each capture's first 4 s are its reference
        spec = WindowSpec(system.window_size, system.stride)
        starts, ref = adapt_splits.test_windows(frames, spec, system.adaptation.adapter)
        starts = starts[~ref]
        verdicts = system.adapted_to(frames).score(frames, starts)
    assert read_summary_row(out / f"{capture.name}.parquet")["reference_windows"] == ref.sum() > 0
    np.testing.assert_allclose(cols["score_gat"], verdicts.fused, rtol=1e-6)
    assert cols["decision"] == verdicts.alert.tolist() and cols["start_row"] == starts.tolist()
    assert cols["label"] == window_labels(frames, starts, system.window_size)[0].tolist()
    np.testing.assert_allclose(cols["start_time"], verdicts.start_time)


def test_unlabelled_and_unreadable_captures(quick_run, fleet, tmp_path, capsys):
    logs = tmp_path / "logs"
    logs.mkdir()
    frames = read_capture(sorted(fleet.rglob("*.csv"))[0]).frames
    lines = [f"({t:.6f}) can0 {c:03X}#{bytes(d[:n]).hex().upper()}"
             for t, c, d, n in zip(frames.timestamp, frames.can_id, frames.data, frames.dlc)]
    (logs / "drive.log").write_text("\n".join(lines) + "\n")
    (logs / "broken.log").write_text("this is no capture\n" * 20)
    out = tmp_path / "v"
    assert _score(quick_run, out, str(logs), extra=["--alarm", "2/3"]) == 2
    captured = capsys.readouterr()
    assert "1 of 2 captures could not be scored" in captured.err and "failed: broken.log" in captured.out
    row = read_summary_row(out / "drive.log.parquet")
    assert row["format"] == "candump" and not row["labelled"] and row["false_alerts"] is None
    cols = pq.read_table(out / "drive.log.parquet").to_pydict()
    assert set(cols["label"]) == {-1}
    k_of_n = get_plugins().registry.get("alarm", "k-of-n")(k=2, n=3)
    assert cols["alarm"] == k_of_n.alarms(np.array(cols["decision"])).tolist()
    assert json.loads((out / SUMMARY_JSON).read_text())["alarm"] == "k-of-n (k=2, n=3)"
    assert read_summary_row(out / "broken.log.parquet")["error"]
    totals = json.loads((out / SUMMARY_JSON).read_text())["totals"]
    assert totals["failed"] == 1 and totals["labelled_captures"] == 0 and totals["false_alert_rate"] is None


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--input", "/nonexistent/**/*.log"], "matches no capture file"),
        (["--method", "nope"], "--method 'nope' is not in this run"),
        (["--alarm", "3/2"], "need 1 <= k <= n"),
        (["--alarm", "x/y"], "--alarm wants a registered alarm stage or K/N"),
        (["--alarm", "three"], "unknown alarm"),
        (["--strategy", "ddp", "--devices", "2", "--accelerator", "cpu"], "capture(s) for 2 processes"),
    ],
)
def test_bad_options_are_one_line_errors(quick_run, fleet, tmp_path, capsys, extra, needle):
    one = str(sorted(fleet.rglob("*.csv"))[0])
    argv = ["score", "--run", str(quick_run), "--out", str(tmp_path / "v")]
    if "--input" not in extra:
        argv += ["--input", one]
    assert main([*argv, *extra]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_capture_discovery_and_names(tmp_path):
    for rel in ("a/x.log", "a/x.csv", "b/c/y.log", "b/.hidden"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    found = find_captures([str(tmp_path / "**" / "*.log"), str(tmp_path / "a")])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a/x.csv", "a/x.log", "b/c/y.log"]
    assert verdict_names(found) == ("a/x.csv.parquet", "a/x.log.parquet", "b/c/y.log.parquet")
    # verdicts written among the inputs are not captures of the next run
    assert find_captures([str(tmp_path)], exclude=tmp_path / "b") == found[:2]


@pytest.mark.slow
def test_ddp_two_processes_score_like_one(quick_run, fleet, tmp_path):
    """`--strategy ddp --devices 2` (gloo on CPU) writes the same 20 verdict files as one process.

    Run as real commands: Lightning's DDP launcher re-executes the command line.
    """
    outs = {}
    ddp = ["--strategy", "ddp", "--devices", "2", "--accelerator", "cpu"]
    for name, extra in (("one", []), ("ddp", ddp)):
        outs[name] = tmp_path / name
        proc = subprocess.run(
            [sys.executable, "-m", "fusioncore", "score", "--run", str(quick_run), "--input",
             str(fleet / "**" / "*.csv"), "--out", str(outs[name]), "--no-progress", "--threads", "1",
             *extra],
            capture_output=True, text=True, timeout=600, env=os.environ.copy(),
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
    one, ddp = _verdict_tables(outs["one"]), _verdict_tables(outs["ddp"])
    assert len(ddp) == 20 and sorted(ddp) == sorted(one)
    assert all(ddp[name] == one[name] for name in one)  # every column, bit for bit
    summary = json.loads((outs["ddp"] / SUMMARY_JSON).read_text())
    assert summary["processes"] == 2 and summary["totals"]["captures"] == 20
    assert len(summary["memory"]["process_peak_rss_mb"]) == 2
    ranks = pq.read_table(outs["ddp"] / SUMMARY_PARQUET).to_pydict()["rank"]
    assert sorted(set(ranks)) == [0, 1]
    assert summary["totals"] == json.loads((outs["one"] / SUMMARY_JSON).read_text())["totals"]


def test_the_alarm_stage_defaults_to_the_runs_own():
    from types import SimpleNamespace

    from fusioncore.fleet import alarm_stage

    registry = get_plugins().registry
    saved = SimpleNamespace(sections={"alarm": {"name": "k-of-n", "params": {"k": 2, "n": 4}}})
    stage = alarm_stage(saved, None, registry)
    assert (stage.name, stage.config()) == ("k-of-n", {"k": 2, "n": 4})
    assert alarm_stage(SimpleNamespace(sections={}), None, registry).name == "raw"  # runs from before alarms
    assert alarm_stage(saved, "raw", registry).name == "raw"
    assert alarm_stage(saved, "3/5", registry).config() == {"k": 3, "n": 5}


def test_a_capture_shorter_than_its_reference_segment_fails_alone(quick_run, fleet, tmp_path, capsys):
    """An adapting run needs each capture's first warm-up seconds; a shorter capture is an error row."""
    short = tmp_path / "logs" / "short.csv"
    short.parent.mkdir()
    capture = simulate_capture(build_fleet(0)[0], "benign", rng=np.random.default_rng(7), duration=2.5,
                               start_us=1_720_000_000 * 1_000_000)
    short.write_bytes(format_csv(capture.frames))
    longer = sorted(fleet.rglob("benign-*.csv"))[0]
    out = tmp_path / "v"
    assert _score(quick_run, out, str(short), str(longer)) == 2  # a one-line error after the summary
    rows = {Path(r["capture"]).name: r for r in pq.read_table(out / SUMMARY_PARQUET).to_pylist()}
    assert "ends before its 4 s reference segment" in rows["short.csv"]["error"]
    assert rows[longer.name]["error"] is None and rows[longer.name]["windows"] > 0
    assert "1 of 2 captures could not be scored" in capsys.readouterr().err
    # a shorter warm-up fits it: its first second is the reference, the rest is scored
    assert _score(quick_run, tmp_path / "w", str(short), extra=["--warmup", "1"]) == 0
    row = read_summary_row(tmp_path / "w" / "short.csv.parquet")
    assert row["error"] is None and row["reference_windows"] > 0 and row["windows"] > 0


def test_ctrl_c_while_scoring_exits_130_and_leaves_sigint_as_it_was(quick_run, fleet, tmp_path, monkeypatch):
    """Lightning turns Ctrl-C in Trainer.predict into sys.exit(1) and ignores SIGINT afterwards."""
    import signal

    from fusioncore.fleet import scorer

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(scorer, "score_capture", interrupted)
    assert _score(quick_run, tmp_path / "v", str(fleet)) == 130
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
