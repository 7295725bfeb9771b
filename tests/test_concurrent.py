"""Detectors trained and scored side by side in forked processes (fusioncore.pipeline.concurrent)."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest

from fusioncore.errors import ConfigError
from fusioncore.paths import redirected_dirs
from fusioncore.pipeline.concurrent import ChildTrainingError, concurrent_jobs, run_lanes
from fusioncore.pipeline.engine import TrainerSettings
from fusioncore.pipeline.resources import format_resources

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="concurrent work needs fork (Linux)")
CPU = TrainerSettings(accelerator="cpu")


def test_jobs_follow_the_cores_the_threads_and_the_request():
    assert concurrent_jobs(0, 2, CPU, threads=1, cores=2) == (2 if sys.platform == "linux" else 1)
    assert concurrent_jobs(0, 3, CPU, threads=1, cores=2) == (2 if sys.platform == "linux" else 1)
    assert concurrent_jobs(0, 2, CPU, threads=2, cores=2) == 1  # two threads each: no room for a second
    assert concurrent_jobs(0, 2, CPU, threads=1, cores=1) == 1
    assert concurrent_jobs(1, 2, CPU, threads=1, cores=16) == 1  # trainer.jobs=1: one after another
    assert concurrent_jobs(0, 1, CPU, threads=1, cores=16) == 1  # nothing to run beside it
    with pytest.raises(ConfigError, match="trainer.jobs"):
        concurrent_jobs(-1, 2, CPU)


@pytest.mark.skipif(sys.platform != "linux", reason="concurrent work needs fork (Linux)")
def test_automatic_jobs_stay_within_free_memory():
    gib = 2**30
    assert concurrent_jobs(0, 4, CPU, threads=1, cores=8, available=16 * gib, resident=2 * gib) == 4
    # each extra process is counted at half the run's resident set: 2 GiB free hold two more, not three
    assert concurrent_jobs(0, 4, CPU, threads=1, cores=8, available=2 * gib, resident=2 * gib) == 3
    assert concurrent_jobs(0, 4, CPU, threads=1, cores=8, available=gib // 2, resident=2 * gib) == 1
    # an explicit trainer.jobs is the user's call
    assert concurrent_jobs(3, 4, CPU, threads=1, cores=8, available=gib // 2, resident=2 * gib) == 3


@pytest.mark.parametrize("settings", [
    TrainerSettings(accelerator="cpu", strategy="ddp", devices=2),  # DDP launches its own processes
    TrainerSettings(accelerator="gpu"),  # one device: trainings take turns on it
    TrainerSettings(accelerator="cpu", num_nodes=2),
])
def test_no_concurrency_where_it_is_unsafe(settings):
    assert concurrent_jobs(0, 2, settings, threads=1, cores=16) == 1
    assert concurrent_jobs(2, 2, settings, threads=1, cores=16) == 1


@linux_only
def test_lanes_return_every_result_and_run_in_other_processes():
    parent = os.getpid()
    mine, theirs = run_lanes(["a", "b", "c"], 2, lambda x: (x, os.getpid()), lambda x: (x, os.getpid()),
                             pack=lambda r, _s: r, unpack=lambda _x, d: tuple(d))
    assert set(mine) == {"a", "c"} and set(theirs) == {"b"}  # round-robin: lane 0 here, lane 1 there
    assert all(pid == parent for _, pid in mine.values())
    assert theirs["b"][0] == "b" and theirs["b"][1] != parent


@linux_only
def test_a_failing_child_raises_its_own_error_here():
    def fail(x):
        raise ConfigError(f"bad parameter in {x}")

    with pytest.raises(ConfigError, match="bad parameter in b"):
        run_lanes(["a", "b"], 2, lambda x: x, fail, pack=lambda r, _s: r, unpack=lambda _x, d: d)


@linux_only
def test_a_child_that_dies_is_named_with_its_signal():
    def die(x):
        os.kill(os.getpid(), signal.SIGKILL)

    with pytest.raises(ChildTrainingError, match=r"training b ended with signal 9.*trainer.jobs=1"):
        run_lanes(["a", "b"], 2, lambda x: x, die, pack=lambda r, _s: r, unpack=lambda _x, d: d)


@linux_only
def test_an_error_here_stops_the_children():
    import time

    def slow(x):
        time.sleep(60)

    def boom(x):
        raise RuntimeError("here")

    start = time.perf_counter()
    with pytest.raises(RuntimeError, match="here"):
        run_lanes(["a", "b"], 2, boom, slow, pack=lambda r, _s: r, unpack=lambda _x, d: d)
    assert time.perf_counter() - start < 30  # the sleeping child was terminated, not waited for


def test_the_total_leaves_out_timings_that_ran_side_by_side():
    timings = {"data": 1.0, "train": 10.0, "train.vgae": 10.0, "train.gat": 8.0, "plots": 1.0}
    line = format_resources(timings, {"peak_rss_mb": 100.0},
                            overlapping={"train": ["train.vgae", "train.gat"]}).splitlines()[0]
    assert line.startswith("time: 12.0 s in all")
    assert format_resources(timings, {"peak_rss_mb": 100.0}).startswith("time: 30.0 s in all")


@linux_only
def test_side_by_side_training_gives_the_same_report(tmp_path):
    """trainer.jobs=2 and trainer.jobs=1: the same models, scores, thresholds and metrics."""
    from fusioncore.cli import main

    reports = {}
    for jobs in (1, 2):
        with redirected_dirs(tmp_path / f"env{jobs}"):  # each its own cache: both train from scratch
            out = tmp_path / f"run{jobs}"
            assert main(["run", "--preset", "quick", "--fusion", "dqn,mean", "--out", str(out),
                         "trainer.progress=false", f"trainer.jobs={jobs}"]) == 0
            reports[jobs] = json.loads((out / "report.json").read_text())
    one, two = reports[1], reports[2]
    assert one["scenarios"] == two["scenarios"] and one["thresholds"] == two["thresholds"]
    assert "timings_overlapping" not in one
    assert two["timings_overlapping"]["train"] == ["train.vgae", "train.gat"]
    assert two["timings_overlapping"]["predict"] == ["predict.vgae", "predict.gat"]
    assert two["timings"]["train"] <= two["timings"]["train.vgae"] + two["timings"]["train.gat"]
    assert two["memory"]["children_peak_rss_mb"] > 0
    assert set(two["timings"]) <= set(two["memory"]["peak_rss_mb_after_stage"])
    for out in (tmp_path / "run1", tmp_path / "run2"):  # a checkpoint per detector, wherever it trained
        assert (out / "detectors" / "gat.pt").exists() and list((out / "checkpoints" / "gat").glob("*.ckpt"))
    assert sorted(p.name for p in (tmp_path / "run2").glob("*.png")) == sorted(
        p.name for p in (tmp_path / "run1").glob("*.png"))


@linux_only
def test_a_second_run_reuses_what_the_child_trained(tmp_path):
    from fusioncore.cli import main

    with redirected_dirs(tmp_path / "env"):
        args = ["train", "--preset", "quick", "trainer.progress=false", "trainer.jobs=2"]
        assert main([*args, "--out", str(tmp_path / "a")]) == 0
        assert main([*args, "--out", str(tmp_path / "b")]) == 0
    report = json.loads(Path(tmp_path / "b" / "report.json").read_text())
    assert all(t["reused"] for t in report["training"].values())
    assert "train" not in report.get("timings_overlapping", {})  # nothing left to train side by side
