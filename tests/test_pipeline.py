"""`fusioncore run` / `train` end to end on the synthetic dataset (quick preset)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fusioncore.cli import main
from fusioncore.paths import redirected_dirs

ARTIFACTS = ("config.yaml", "metrics.csv", "report.json", "report.md", "policy.png")
METRICS = {"mcc", "f1", "precision", "recall", "auroc", "ap", "accuracy", "n_windows", "n_attack_windows"}


@pytest.fixture(scope="module", autouse=True)
def env(tmp_path_factory):
    """A cache of this module's own: its first run computes everything, later runs hit the store."""
    with redirected_dirs(tmp_path_factory.mktemp("pipeline-env")) as base:
        yield base


def _run(out: Path, *extra: str) -> dict:
    code = main(["run", "--preset", "quick", "--fusion", "dqn,mean,weighted,stacking",
                 "--out", str(out), "trainer.progress=false", *extra])
    assert code == 0
    return json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module")
def first_run(env):
    out = env / "run1"
    return out, _run(out)


def test_run_writes_every_artifact(first_run):
    out, report = first_run
    for name in ARTIFACTS:
        assert (out / name).stat().st_size > 0, name
    scenarios = report["scenarios"]
    assert len(scenarios) == 6  # the synthetic dataset's six test folders
    for scenario, methods in scenarios.items():
        assert (out / f"curves_{scenario}.png").exists()
        assert set(methods) == {"vgae", "gat", "dqn", "mean", "weighted", "stacking"}
        for m in methods.values():
            assert METRICS <= set(m)
            assert m["n_windows"] > 0
    assert "per_attack_type" in scenarios["test_01_known_vehicle_known_attack"]["dqn"]
    assert {"data", "train.vgae", "train.gat", "fit.dqn"} <= set(report["timings"])
    memory = report["memory"]
    assert memory["peak_rss_mb"] > 0 and set(report["timings"]) <= set(memory["peak_rss_mb_after_stage"])
    assert all(0 < v <= memory["peak_rss_mb"] for v in memory["peak_rss_mb_after_stage"].values())
    assert list((out / "checkpoints").rglob("*.ckpt")), "Lightning checkpoints"
    assert list((out / "logs").rglob("events.out.tfevents.*")), "TensorBoard logs"
    assert list((out / "logs").rglob("metrics.csv")), "CSV logs"
    assert (out / "detectors" / "gat.pt").exists() and (out / "model" / "bundle.json").exists()


def test_the_fusion_set_and_the_policy_plot_are_described_in_words(first_run, env, monkeypatch):
    _, report = first_run
    fusion_set = report["fusion_set"]
    assert set(fusion_set["windows"]) == {"block", "injected"}  # the default recipe
    assert fusion_set["windows"]["injected"]["attack_windows"] == fusion_set["windows"]["injected"]["windows"]
    assert sum(fusion_set["injected_kinds"].values()) == fusion_set["windows"]["injected"]["windows"]
    import fusioncore.pipeline.run as run

    calls = []
    monkeypatch.setattr(run, "plot_policy", lambda path, x, y, w, **words: calls.append((x, y, w, words)))
    _run(env / "run-policy")
    x, y, weight, words = calls[0]
    assert words["x_label"] == "VGAE reconstruction error (z-score vs benign)"
    assert words["y_label"] == "GAT attack log-odds (logit margin)"
    assert "weight on gat" in words["weight_label"]
    assert len(x) == len(y) == len(weight) > 0 and ((weight >= 0) & (weight <= 1)).all()


def _comparable(report: dict) -> dict:
    # wall times and the process's memory high-water mark differ from run to run
    skip = ("timings", "timings_overlapping", "memory", "training", "prediction_cache")
    return {k: v for k, v in report.items() if k not in skip}


def test_same_seed_same_report_and_store_hits(first_run, env):
    _, first = first_run
    second = _run(env / "run2")
    assert _comparable(second) == _comparable(first)
    # the second run reuses both detectors and reads every output from the store
    assert second["prediction_cache"]["misses"] == 0
    assert second["prediction_cache"]["hits"] == first["prediction_cache"]["misses"] > 0
    assert all(t["reused"] for t in second["training"].values())


def test_store_hit_runs_no_forward_pass(first_run, env, monkeypatch):
    import fusioncore.pipeline.detectors as detectors

    def forbidden(*args, **kwargs):
        raise AssertionError("a detector forward pass ran despite a store hit")

    monkeypatch.setattr(detectors, "run_detector", forbidden)
    report = _run(env / "run3")
    assert report["prediction_cache"]["misses"] == 0


def test_train_command_evaluates_detectors_alone(env, capsys):
    out = env / "train"
    assert main(["train", "--preset", "quick", "--detectors", "gat", "--out", str(out),
                 "trainer.progress=false"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["fusions"] == []
    assert set(report["scenarios"]["test_01_known_vehicle_known_attack"]) == {"gat"}
    text = capsys.readouterr().out
    assert "AUROC" in text and "peak memory:" in text and "time:" in text and "train.gat" in text


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["run", "--detectors", "vgea"], "unknown detector 'vgea'; available:"),
        (["run", "--fusion", "dqm"], "Did you mean 'dqn'?"),
        (["run", "--dataset", "set_09"], "unknown dataset 'set_09'"),
        (["run", "--dataset", "hcrl_sa", "--data-root", "/nonexistent"], "not found: looked in"),
        (["run", "--strategy", "ddp", "--devices", "1"], "needs --devices 2"),
        (["run", "fusion.dqn.nope=1"], "unknown config key 'fusion.dqn.nope'"),
        (["run", "notakeyvalue"], "is not KEY=VALUE"),
        (["inspect", "/nonexistent.csv"], "no such file"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, needle, capsys, tmp_path):
    assert main([*argv, *(["--out", str(tmp_path / "o")] if argv[0] == "run" else [])]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err
    assert "Traceback" not in err and err.startswith("error:")


def test_resume_continues_an_interrupted_run(env, tmp_path, monkeypatch):
    """A run killed mid-training leaves no run folder; --resume with the same config continues it."""
    import csv

    import pytorch_lightning as pl
    import torch

    import fusioncore.pipeline.training as training_module

    out = tmp_path / "resume"
    base = ["train", "--preset", "quick", "--detectors", "gat", "--out", str(out), "trainer.progress=false",
            "trainer.patience=0", "--max-epochs", "4"]

    class PowerCut(pl.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            if trainer.current_epoch == 2:
                raise RuntimeError("power cut")

    make_trainer = training_module.make_trainer

    def crashing(*args, **kwargs):
        trainer = make_trainer(*args, **kwargs)
        trainer.callbacks.insert(0, PowerCut())
        return trainer

    monkeypatch.setattr(training_module, "make_trainer", crashing)
    with pytest.raises(RuntimeError, match="power cut"):
        main([*base, "--seed", "21"])
    monkeypatch.undo()
    assert not out.exists()  # an interrupted run never looks like a finished one
    staging = tmp_path / ".resume.partial"
    assert torch.load(staging / "checkpoints" / "gat" / "last.ckpt", weights_only=True)["epoch"] == 1
    # another seed (or config) would mix two runs: refused, and the partial run is kept
    assert main([*base, "--seed", "22", "--resume"]) == 2
    assert main([*base, "--seed", "21", "--resume"]) == 0
    first, second = sorted((out / "logs" / "gat").glob("*/metrics.csv"))  # one log folder per attempt
    for log, want in ((first, {0, 1}), (second, {2, 3})):  # resumed: only the epochs that were missing
        with open(log) as fh:
            assert {int(row["epoch"]) for row in csv.DictReader(fh)} == want
    report = json.loads((out / "report.json").read_text())
    assert report["training"]["gat"]["resumed"] is True
    # a resumed training is not bit-identical to an uninterrupted one: it never enters the reuse cache
    fresh = json.loads(Path(_train_only(tmp_path / "fresh", base, "21")).read_text())
    assert fresh["training"]["gat"]["reused"] is False


def _train_only(out: Path, base: list[str], seed: str) -> Path:
    argv = [a if a != str(base[base.index("--out") + 1]) else str(out) for a in base]
    assert main([*argv, "--seed", seed]) == 0
    return out / "report.json"


def test_an_existing_run_is_not_overwritten_without_asking(first_run, capsys):
    out, _ = first_run
    assert main(["run", "--preset", "quick", "--out", str(out), "trainer.progress=false"]) == 2
    assert "already holds a run; pass --overwrite" in capsys.readouterr().err


def test_resume_needs_an_output_folder(capsys):
    assert main(["train", "--resume"]) == 2
    assert "--resume needs --out" in capsys.readouterr().err


def test_the_report_validates_against_its_schema_and_opens_with_the_decision_table(first_run):
    import jsonschema

    from fusioncore.evaluation.report import report_schema

    out, report = first_run
    jsonschema.validate(report, report_schema())
    md = (out / "report.md").read_text()
    assert "| scenario | method | MCC | AUROC | event recall | false alarms / h |" in md.split("\n\n")[2]
    assert list(out.glob("timeline_test_01_known_vehicle_known_attack_*.png"))
    events = report["scenarios"]["test_01_known_vehicle_known_attack"]["dqn"]["events"]
    assert events["n"] > 0 and 0 <= events["recall"] <= 1


def test_several_seeds_share_the_data_and_report_mean_and_spread(env, capsys):
    import jsonschema

    from fusioncore.evaluation.report import report_schema

    out = env / "seeds"
    assert main(["run", "--preset", "quick", "--detectors", "gat", "--fusion", "mean", "--seeds", "0,1",
                 "--out", str(out), "trainer.progress=false"]) == 0
    report = json.loads((out / "report.json").read_text())
    jsonschema.validate(report, report_schema())
    assert report["seeds"] == [0, 1]
    spread = report["spread"]["scenarios"]["test_01_known_vehicle_known_attack"]["gat"]["mcc"]
    assert spread["n"] == 2 and len(spread["values"]) == 2
    assert report["scenarios"]["test_01_known_vehicle_known_attack"]["gat"]["mcc"] == pytest.approx(
        sum(spread["values"]) / 2)
    assert "±" in (out / "report.md").read_text()
    assert "mean ± std over seeds" in capsys.readouterr().out
    assert report["timings"]["data"] > 0  # read once, not once per seed
