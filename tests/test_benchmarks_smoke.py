"""The benchmark suites as a correctness check: each runs once, tiny, and the summary renders.

The run of every suite is marked slow (CI runs it; locally ``--run-slow``).

``benchmarks/`` is outside ``testpaths``; here it runs in a subprocess with
``--smoke --benchmark-disable`` (every benchmark body once, on tiny sizes,
with its own assertions: same frames from every reader, same graphs from
the builder and the reference, same DQN with and without the cache).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(*args: str, cwd: Path = REPO, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow  # 40 s of CPU (detector training on hcrl_sa included): 80 s wall on a busy 2-core box
def test_every_benchmark_runs_once(tmp_path):
    proc = _run("-m", "pytest", "benchmarks", "--smoke", "--benchmark-disable", "-q",
                "-p", "no:cacheprovider", f"--basetemp={tmp_path / 'bench'}")
    tail = proc.stdout[-6000:] + proc.stderr[-3000:]
    assert proc.returncode == 0, tail
    passed = re.search(r"(\d+) passed", proc.stdout)
    # 4 ingest + 2 graph + 2x2 cache (E = 1, 2) + 2 fusion + 3 scoring + latency per thread count
    assert passed and int(passed.group(1)) >= 16, tail
    assert not re.search(r"\d+ (skipped|failed|error)", proc.stdout), tail


def _bench(comparison, case, variant, role, median, items, unit, **extra) -> dict:
    info = dict(comparison=comparison, case=case, variant=variant, role=role, items=items, unit=unit,
                **extra)
    return {"name": variant, "extra_info": info, "stats": {"median": median, "rounds": 3}}


def test_summary_pairs_ratios_and_targets(tmp_path):
    doc = {
        "datetime": "2026-01-01T00:00:00",
        "commit_info": {"id": "abcdef1234567", "dirty": False},
        "machine_info": {"python_version": "3.11", "fusioncore": {
            "cpu_model": "Test CPU", "cores": 2, "torch": "2.x", "torch_geometric": "2.y",
            "accelerator": "none (CPU)", "mode": "quick", "data_source": "synthetic (generated, seed 0)"}},
        "benchmarks": [
            _bench("prediction cache", "E=50", "store", "fast", 0.1, 100, "window-epochs"),
            _bench("prediction cache", "E=50", "recompute", "baseline", 5.0, 100, "window-epochs"),
            _bench("ingest", "can-train-and-test CSV -> columns", "fusioncore", "fast", 1.0, 1e6, "frames"),
            # timed on a tenth of the work: scaled by 10 before the ratio
            _bench("ingest", "can-train-and-test CSV -> columns", "pandas", "baseline", 0.4, 1e5, "frames",
                   scale=10),
            _bench("latency", "one window", "score", "fast", 0.004, 1, "windows", p50_ms=4.0, p99_ms=7.5),
        ],
    }
    results, out = tmp_path / "run.json", tmp_path / "summary.md"
    results.write_text(json.dumps(doc))
    proc = _run("-m", "benchmarks.summarize", str(results), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert "| prediction cache | E=50 | store | 100.00 ms | recompute | 5.00 s | **50.0x** |" in text
    assert "4.00 s (extrapolated x10 from 100000 frames) | **4.0x**" in text
    assert "| prediction cache speed-up at E = 50 | ≥ 20.0x | 50.0x | yes |" in text
    assert ("| ingest, can-train-and-test CSV -> Frames | ≥ 2.00 M frames/s | 1.00 M frames/s | **no** |"
            in text)
    assert "| graph building, 1024-window batches | ≥ 1.00 M frames/s | not measured | - |" in text
    assert "p50 4.00 ms, p99 7.50 ms" in text
    assert "| p99 latency per window, batch size 1 (best thread setting) | ≤ 5.00 ms | 7.50 ms | **no** |" \
        in text
    assert "Test CPU" in text and "synthetic (generated, seed 0)" in text


def test_summary_refuses_a_run_without_timings(tmp_path):
    results = tmp_path / "disabled.json"
    results.write_text(json.dumps({"benchmarks": [{"name": "x", "extra_info": {"comparison": "c"},
                                                    "stats": None}]}))
    proc = _run("-m", "benchmarks.summarize", str(results), "--out", str(tmp_path / "s.md"))
    assert proc.returncode == 2
    assert "holds no fusioncore benchmarks" in proc.stderr
    assert not (tmp_path / "s.md").exists()
