"""Sweeps (``run -m``), ``fusioncore compare`` and ``fusioncore doctor``."""

from __future__ import annotations

import json

import pytest

from fusioncore.cli import main
from fusioncore.paths import redirected_dirs
from fusioncore.pipeline.sweep import expand_sweep


def test_sweep_expansion_follows_hydra_multirun():
    assert expand_sweep(["seed=0,1", "fusion.dqn.lr=0.001,0.002"]) == [
        ["seed=0", "fusion.dqn.lr=0.001"], ["seed=0", "fusion.dqn.lr=0.002"],
        ["seed=1", "fusion.dqn.lr=0.001"], ["seed=1", "fusion.dqn.lr=0.002"],
    ]
    assert expand_sweep(["seed=range(0,3)"]) == [["seed=0"], ["seed=1"], ["seed=2"]]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    with redirected_dirs(root / "env"):
        out = root / "sweep"
        code = main(["run", "--preset", "quick", "--detectors", "gat", "--fusion", "mean", "-m", "seed=0,1",
                     "--out", str(out), "trainer.progress=false"])
        yield code, out


def test_a_sweep_writes_one_run_per_combination_and_a_summary(sweep):
    code, out = sweep
    assert code == 0
    jobs = json.loads((out / "sweep.json").read_text())["jobs"]
    assert [j["overrides"][0] for j in jobs] == ["seed=0", "seed=1"]
    assert all(j["status"] == "ok" for j in jobs)
    for j in jobs:
        report = json.loads((out / str(j["number"]) / "report.json").read_text())
        assert report["seed"] == int(j["overrides"][0].split("=")[1])
    summary = (out / "summary.md").read_text()
    assert "| 0 | seed=0" in summary and "| 1 | seed=1" in summary


def test_a_bad_combination_fails_before_the_first_job(tmp_path, capsys):
    assert main(["run", "--preset", "quick", "-m", "seed=0,1", "fusion.dqn.k=5,1",
                 "--out", str(tmp_path / "s")]) == 2
    assert "dqn: k must be >= 2" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_compare_prints_and_writes_a_side_by_side_table(sweep, tmp_path, capsys):
    _, out = sweep
    target = tmp_path / "cmp"
    assert main(["compare", str(out), str(out / "0"), "--metrics", "mcc,f1", "--out", str(target)]) == 0
    printed = capsys.readouterr().out
    assert "test_01_known_vehicle_known_attack" in printed
    table = json.loads(target.with_suffix(".json").read_text())
    assert len(table["runs"]) == 3 and table["metrics"] == ["mcc", "f1"]
    row = next(r for r in table["rows"] if r["scenario"] == "test_01_known_vehicle_known_attack"
               and r["method"] == "gat")
    first, _, third = table["runs"]
    assert row["values"][first] == row["values"][third]  # sweep job 0 and the same run named directly
    md = target.with_suffix(".md").read_text()
    assert md.startswith("| scenario | method |") and "mean over scenarios" in md
    assert main(["compare", str(tmp_path / "nothing")]) == 2


def test_doctor_passes_on_this_install_and_fails_on_an_unreadable_data_root(tmp_path, capsys):
    assert main(["doctor", "--out", str(tmp_path / "runs"), "--json"]) == 0
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)}
    assert checks["python"]["status"] == "ok" and checks["torch"]["status"] == "ok"
    assert "--accelerator auto picks" in checks["accelerator"]["detail"]
    assert checks["plugin gat"]["status"] == "ok" and checks["output folder"]["status"] == "ok"
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    assert main(["doctor", "--data-root", str(not_a_folder), "--out", str(tmp_path / "runs")]) == 1
    out = capsys.readouterr().out
    assert "data root" in out and "is not a folder" in out and "1 check(s) failed" in out
