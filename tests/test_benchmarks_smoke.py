"""The benchmark harness as a correctness check: it runs, and it writes what it should.

A benchmark measures and never asserts a timing; these tests check only
that the suites run and the summary says what was measured. Runs of the
suites are marked slow (CI runs them; locally ``--run-slow``).

``benchmarks/`` is outside ``testpaths``; here it runs in a subprocess with
``--smoke`` (every benchmark body once, on tiny sizes, with its own checks:
same frames from every reader, same graphs from the three builders, same
Q-network from every source of detector outputs, the same DQN updates
vectorised and per sample, and what each `fusioncore run` reused).
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _stamp_module():
    """benchmarks/stamp.py by path: ``benchmarks`` is not on the test run's import path."""
    spec = importlib.util.spec_from_file_location("bench_stamp", REPO / "benchmarks" / "stamp.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(*args: str, cwd: Path = REPO, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


# ~60 s of CPU (detector training, four `fusioncore` commands); 2-3 min on a busy 2-core box
@pytest.mark.slow
def test_every_benchmark_runs_once(tmp_path):
    proc = _run("-m", "pytest", "benchmarks", "--smoke", "--benchmark-disable", "-q",
                "-p", "no:cacheprovider", f"--basetemp={tmp_path / 'bench'}")
    tail = proc.stdout[-6000:] + proc.stderr[-3000:]
    assert proc.returncode == 0, tail
    passed = re.search(r"(\d+) passed", proc.stdout)
    # 4 ingest + 3 graph + 3 store + 3 fusion + 1 scoring + latency per thread count + 2 CLI
    assert passed and int(passed.group(1)) >= 17, tail
    assert not re.search(r"\d+ (skipped|failed|error)", proc.stdout), tail


@pytest.mark.slow  # two `fusioncore run`, two `train` and two probes: 2-4 min on a busy 2-core box
@pytest.mark.realdata
def test_side_by_side_runs_and_is_summarised(tmp_path, shared_data):
    """``--baseline HEAD`` (shared environment: no install) writes both sides into the JSON and summary."""
    results, summary = tmp_path / "run.json", tmp_path / "summary.md"
    proc = _run("-m", "pytest", "benchmarks", "--smoke", "-q", "-p", "no:cacheprovider",
                "-k", "side_by_side or fusioncore_csv", "--baseline", "HEAD", "--baseline-env", "shared",
                f"--basetemp={tmp_path / 'bench'}", f"--benchmark-json={results}", "--benchmark-storage",
                f"file://{tmp_path / 'history'}")
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    side = json.loads(results.read_text())["fusioncore"]["side_by_side"]
    assert set(side["sides"]) == {"this tree", f"baseline {side['baseline']['commit'][:7]}"}
    for figures in side["sides"].values():
        (only,) = figures["rounds"]
        assert only["run_wall"] > 0 and set(only["train"]) == {"vgae", "gat", "all detectors together"}
        together = only["train"]["all detectors together"]
        assert together["windows"] == only["train"]["vgae"]["windows"] + only["train"]["gat"]["windows"]
        assert 0 < together["seconds"] <= only["train"]["vgae"]["seconds"] + only["train"]["gat"]["seconds"]
        assert only["latency"]["calls"] == 3 and only["scoring"]
    proc = _run("-m", "benchmarks.summarize", str(results), "--out", str(summary))
    assert proc.returncode == 0, proc.stderr
    text = summary.read_text()
    assert "## Side by side: this tree vs baseline" in text
    row = r"\| full `fusioncore run`, wall time \| [\d.]+ s \| [\d.]+ s \| \*\*[\d.]+x\*\* \|"
    assert re.search(row, text)
    assert "| all detectors together training throughput |" in text


# ------------------------------------------------------------------ summary
def _bench(comparison, variant, median, items, unit, *, baselines=(), case="c", **extra) -> dict:
    info = dict(comparison=comparison, case=case, variant=variant, does=f"{variant} does it",
                work=f"{comparison} work", items=items, unit=unit, baselines=list(baselines), note="",
                **extra)
    stats = {"median": median, "min": median * 0.9, "max": median * 1.2, "rounds": 3}
    return {"name": variant, "extra_info": info, "stats": stats}


def _stamp(**git) -> dict:
    return {
        "git": {"commit": "abcdef1234567", "short": "abcdef1234", "branch": "main", "dirty": False,
                "changes": [], "on_main": True, **git},
        "mode": "full", "load_before": [0.1, 0.2, 0.3], "load_after": [0.4, 0.3, 0.3], "argv": ["benchmarks"],
        "started": 0.0, "finished": 60.0, "data_source": "synthetic (generated, seed 0)",
        "machine": {"cpu_model": "Test CPU", "cores": 2, "usable_cores": 2, "memory_gib": 8.0,
                    "torch": "2.x", "torch_threads": 1, "OMP_NUM_THREADS": "1"},
    }


def _side_rounds(wall: float, rate_scale: float) -> list[dict]:
    return [{
        "run_wall": wall, "run_timings": {"data": 1.0, "train.vgae": wall / 4, "fit.dqn": 0.0},
        "outside_stages": 2.0,
        "train": {"vgae": {"windows": 2048, "seconds": 4.0 / rate_scale}},
        "scoring": {"64": {"seconds": 1.0 / rate_scale, "frames": 100_000, "windows": 1000},
                    "256": {"seconds": 2.0, "frames": 100_000, "windows": 1000}},
        "latency": {"calls": 100, "threads": 1, "p50_ms": 2.0, "p99_ms": 8.0 / rate_scale, "max_ms": 9.0},
        "torch": "2.x", "torch_threads": 1, "load_before": [0.1], "load_after": [0.2],
    }]


def _write(tmp_path, doc) -> tuple[subprocess.CompletedProcess, Path]:
    results, out = tmp_path / "run.json", tmp_path / "summary.md"
    results.write_text(json.dumps(doc))
    return _run("-m", "benchmarks.summarize", str(results), "--out", str(out)), out


def test_summary_pairs_equal_work_and_states_both_sides(tmp_path):
    doc = {
        "benchmarks": [
            _bench("graph building", "batched", 0.1, 1000, "frames", baselines=["pandas"]),
            _bench("graph building", "pandas", 5.0, 1000, "frames"),
            _bench("latency", "score, 1 thread", 0.004, 1, "windows", p50_ms=4.0, p99_ms=7.5,
                   detect_default=True),
            _bench("latency", "score, 2 threads", 0.003, 1, "windows", p50_ms=3.0, p99_ms=4.5),
        ],
        "fusioncore": {
            "stamp": _stamp(),
            "rows": [{**_bench("prediction store", "warm", 0, 1, "runs", baselines=["cold"])["extra_info"],
                      "times": [10.0, 12.0, 11.0], "stages": {"data": [1.0, 1.0, 1.0]},
                      "outside_stages": [5.0, 5.0, 5.0], "store": {"hits": [4], "misses": [0]}},
                     {**_bench("prediction store", "cold", 0, 1, "runs")["extra_info"],
                      "times": [33.0, 30.0, 36.0], "stages": {"data": [2.0, 2.0, 2.0]},
                      "outside_stages": [5.0, 5.0, 5.0],
                      "store": {"hits": [0], "misses": [4]}}],
            "side_by_side": {
                "sides": {"this tree": {"rounds": _side_rounds(50.0, 4.0)},
                          "baseline efc4daf": {"rounds": _side_rounds(100.0, 1.0)}},
                "order": ["this tree", "baseline efc4daf"], "run_options": ["--preset", "quick"],
                "train_options": ["trainer.max_epochs=1"], "batch_sizes": [64, 256], "latency_calls": 100,
                "dataset": "hcrl_sa", "capture_windows": 1000,
                "baseline": {"commit": "efc4daf157d9", "env": "venv", "dir": "a temporary folder"},
            },
        },
    }
    proc, out = _write(tmp_path, doc)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    # every pair states what both sides do, with min-max and rounds, and only an unscaled ratio
    assert ("| batched | batched does it | 100.00 ms (90.00 ms–120.00 ms), 3 rounds | pandas | "
            "pandas does it | 5.00 s (4.50 s–6.00 s), 3 rounds | **50.0x** |") in text
    assert "| warm | warm does it | 11.00 s (10.00 s–12.00 s), 3 rounds | cold |" in text
    assert "**3.0x**" in text
    assert "extrapolated x" not in text
    # stamp: commit, clean, machine, threads, load before and after
    assert "`abcdef1234567` (branch `main`; on main: yes; clean tree: yes)" in text
    assert "Test CPU, 2 cores (2 usable), 8.0 GiB" in text and "OMP_NUM_THREADS=1" in text
    assert "before 0.10 / 0.20 / 0.30; after 0.40 / 0.30 / 0.30" in text and "NOT QUOTABLE" not in text
    # the stage split of the CLI runs
    assert "| data | 1.00 s | 2.00 s |" in text
    assert "| **whole command** | **11.00 s** | **33.00 s** |" in text
    # p99 target read at detect's default thread count, never the best of several settings
    assert "| p99 latency per window, batch size 1, 1 torch thread | ≤ 5.00 ms | 7.50 ms | **no** |" in text
    # side by side: speed-ups of this tree, against issue 17's targets
    assert "| full `fusioncore run`, wall time | 50.00 s | 100.00 s | **2.00x** | ≥ 2.0x: met |" in text
    assert ("| end-to-end scoring, best batch size | 400,000 frames/s, B = 64 | 100,000 frames/s, B = 64 | "
            "**4.00x** | ≥ 2.0x: met |") in text
    assert "| p99 latency, batch size 1, 1 thread(s) | 2.00 ms | 8.00 ms | **4.00x** | ≥ 2.0x: met |" in text
    assert "| vgae training throughput | 2,048 windows/s | 512 windows/s | **4.00x** | ≥ 2.0x: met |" in text


def test_summary_refuses_unequal_work(tmp_path):
    doc = {"benchmarks": [_bench("graph building", "batched", 0.1, 1000, "frames", baselines=["pandas"]),
                          _bench("graph building", "pandas", 0.5, 100, "frames")],
           "fusioncore": {"stamp": _stamp()}}
    proc, out = _write(tmp_path, doc)
    assert proc.returncode == 2 and "a ratio needs equal work" in proc.stderr
    assert not out.exists()


def test_summary_marks_a_dirty_tree_loudly(tmp_path):
    doc = {"benchmarks": [_bench("ingest", "fusioncore", 0.1, 1000, "frames")],
           "fusioncore": {"stamp": {**_stamp(dirty=True, changes=[" M benchmarks/common.py"], on_main=False),
                                    "mode": "quick"}}}
    proc, out = _write(tmp_path, doc)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert "**NOT QUOTABLE: the tree had uncommitted changes (benchmarks/common.py).**" in text
    assert "is not on `main`" in text and "quick mode" in text


@pytest.mark.parametrize("before, after, warned", [(0.1, 0.4, False), (0.3, 1.9, False), (1.4, 0.2, True)])
def test_summary_warns_of_other_work_from_the_load_before_the_run(tmp_path, before, after, warned):
    """The load after a run counts the benchmarks' own processes: only the load before is judged."""
    stamp = {**_stamp(), "load_before": [before, 0.2, 0.3], "load_after": [after, 0.3, 0.3]}
    proc, out = _write(tmp_path, {"benchmarks": [_bench("ingest", "fusioncore", 0.1, 1000, "frames")],
                                  "fusioncore": {"stamp": stamp}})
    assert proc.returncode == 0, proc.stderr
    assert ("**Other work shared the machine**" in out.read_text()) is warned


@pytest.mark.parametrize("doc, message", [
    ({"benchmarks": [{"name": "x", "extra_info": {"comparison": "c"}, "stats": None}],
      "fusioncore": {"stamp": {}}}, "holds no fusioncore benchmarks"),
    ({"benchmarks": [_bench("ingest", "fusioncore", 0.1, 1000, "frames")]}, "has no fusioncore stamp"),
])
def test_summary_refuses_a_run_it_cannot_stamp(tmp_path, doc, message):
    proc, out = _write(tmp_path, doc)
    assert proc.returncode == 2 and message in proc.stderr
    assert not out.exists()


# -------------------------------------------------------------------- stamp
def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_stamp_sees_uncommitted_and_untracked_changes(tmp_path):
    stamp = _stamp_module()
    git_state, dirty_refusal = stamp.git_state, stamp.dirty_refusal
    _git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "a.py").write_text("x = 1\n")
    _git(tmp_path, "add", "a.py")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "a")
    clean = git_state(tmp_path)
    assert not clean["dirty"] and clean["on_main"] and len(clean["commit"]) == 40
    assert dirty_refusal(clean, "full", allow_dirty=False) is None
    (tmp_path / "new_bench.py").write_text("")
    dirty = git_state(tmp_path)
    assert dirty["dirty"] and dirty["changes"] == ["?? new_bench.py"]
    assert "new_bench.py" in dirty_refusal(dirty, "full", allow_dirty=False)
    assert dirty_refusal(dirty, "full", allow_dirty=True) is None
    assert dirty_refusal(dirty, "quick", allow_dirty=False) is None  # quick runs are stamped dirty instead


def test_derived_failures_corrupt_only_benign_frames_of_fast_ids_after_the_warm_up():
    path = REPO / "benchmarks" / "derived_failures.py"
    spec = importlib.util.spec_from_file_location("bench_failures", path)
    failures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(failures)
    import numpy as np

    from fusioncore.data.frames import Frames

    rng = np.random.default_rng(0)
    n = 6000
    ids = rng.choice(np.array([0x100, 0x200, 0x300, 0x400, 0x7FF], np.uint32), n, p=[.3, .3, .2, .15, .05])
    data = np.zeros((n, 8), np.uint8)
    data[:, 0] = np.arange(n) % 16  # a moving byte on every ID
    label = (rng.random(n) < 0.05).astype(np.uint8)  # "attack" frames the derivation removes
    frames = Frames.from_columns(timestamp=np.arange(n) * 0.005, can_id=ids, data=data, label=label,
                                 sources=["x.csv"])
    out = failures.inject_failures(frames, seed=1)
    kept = frames.take(frames.label == 0)
    assert len(out) == len(kept)
    np.testing.assert_array_equal(out.can_id, kept.can_id)
    changed = np.any(out.data != kept.data, axis=1)
    assert out.label.sum() > 0 and not np.any(changed & (out.label == 0))  # only failing frames differ
    assert np.all(out.timestamp[out.label == 1] >= kept.timestamp[0] + 4.0)  # never in the warm-up
    assert 0x7FF not in set(out.can_id[out.label == 1].tolist())  # the slowest ID never fails
    again = failures.inject_failures(frames, seed=1)
    np.testing.assert_array_equal(again.data, out.data)
