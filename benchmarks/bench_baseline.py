"""``--baseline COMMIT``: this tree and that commit measured side by side (see :mod:`benchmarks.sidebyside`).

Collected only when ``--baseline`` is given. The per-round figures of both
sides go into the run's JSON (``fusioncore.side_by_side``), and the summary
writes them with their ratios.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from .bench_scoring import write_first_windows
from .cli_runs import Side
from .common import BenchSizes
from .sidebyside import BaselineError, baseline_side, side_by_side
from .system import REPO, DataSource

#: batch sizes the probe scores with; the best of them is compared
PROBE_BATCH_SIZES = (64, 256, 1024)


def _warmup_windows(capture: Path, size: int = 100) -> int:
    """Windows of ``size`` rows in the capture's first DEFAULT_WARMUP_S seconds (its reference segment)."""
    from fusioncore.adapt.base import DEFAULT_WARMUP_S
    from fusioncore.data.formats import read_capture

    stamps = read_capture(capture).frames.timestamp
    late = np.flatnonzero(stamps > stamps[0] + DEFAULT_WARMUP_S) if len(stamps) else np.zeros(0, np.int64)
    rows = int(late[0]) if late.size else len(stamps)
    return -(-rows // size)


def test_side_by_side(pytestconfig: pytest.Config, source: DataSource, sizes: BenchSizes, bench_env: Path,
                      git_stamp, tmp_path_factory, side_by_side_result):
    if source.name != "hcrl_sa":
        pytest.fail("--baseline compares on hcrl_sa: ../shared/data/can-train-and-test/hcrl_sa not found")
    keep = pytestconfig.getoption("--baseline-dir")
    workdir = tmp_path_factory.mktemp("side-by-side")
    # at least the default warm-up's windows too: a run that adapts to each capture scores none
    # before its reference segment (the smoke mode's few windows are shorter than that)
    windows = max(sizes.scoring_windows, _warmup_windows(source.capture) + 2)
    capture = write_first_windows(source.capture, windows, 100, workdir / "capture.csv")
    here = Side.here(REPO, git_stamp.get("commit"))
    batch_sizes = [b for b in PROBE_BATCH_SIZES if b <= sizes.scoring_windows] or [1]
    try:
        with baseline_side(REPO, pytestconfig.getoption("--baseline"),
                           env_mode=pytestconfig.getoption("--baseline-env"),
                           keep=Path(keep) if keep else None) as base:
            found = side_by_side(
                [here, base], source, run_options=sizes.run_options, train_options=sizes.train_options,
                capture=capture, batch_sizes=batch_sizes, latency_calls=sizes.latency_windows,
                rounds=pytestconfig.getoption("--baseline-rounds") or sizes.cli_rounds, workdir=workdir,
                data=bench_env / "data",
            )
    except BaselineError as exc:
        pytest.fail(f"side by side with {pytestconfig.getoption('--baseline')}: {exc}")
    found["baseline"] = {"requested": pytestconfig.getoption("--baseline"), "commit": base.commit,
                         "env": pytestconfig.getoption("--baseline-env"),
                         "dir": f"`{keep}` (kept)" if keep else "a temporary folder (removed afterwards)"}
    found["capture_windows"] = windows
    side_by_side_result.update(found)
    assert all(len(s["rounds"]) == len(found["order"]) // 2 for s in found["sides"].values())
