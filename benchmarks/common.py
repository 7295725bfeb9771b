"""Sizes of a benchmark run and the tags the summary reads.

Every measurement records (pytest-benchmark's ``extra_info`` through
:func:`describe`, or a :func:`row` for the subprocess benchmarks) what
:mod:`benchmarks.summarize` needs:

* ``comparison`` / ``case`` / ``variant``: what was measured;
* ``does``: what this variant does, in words, and ``work``: the work every
  variant of the case does (the same for all of them);
* ``items`` / ``unit``: the work one call does, for rates; a ratio is only
  ever taken between two variants with the same ``items`` and ``unit``;
* ``baselines``: the variants of the same comparison this one is compared
  against (it is the faster side of each pair);
* ``note``: e.g. why the input is as small as it is.

Nothing is extrapolated: where a slow variant cannot finish a round on the
full input, every variant of that case runs on the smaller one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import pytest

from .system import DataSource

__all__ = ["FULL", "QUICK", "SIZES", "SMOKE", "BenchSizes", "describe", "row", "sizes_for"]


@attrs.frozen
class BenchSizes:
    """How much data and how many rounds each comparison uses."""

    mode: str  #: "full", "quick" or "smoke"
    rounds: int  #: rounds of the fast in-process benchmarks
    slow_rounds: int  #: rounds of the slow in-process baselines
    store_windows: int | None  #: fusion-split windows for the store comparison (None: all)
    store_epochs: int  #: DQN epochs of the store comparison
    ingest_rows: int | None  #: rows of the capture to ingest (None: all)
    graph_windows: int  #: windows every graph-building variant builds (batches of up to 1024)
    scoring_windows: int  #: windows scored by every batch size
    latency_windows: int  #: single-window calls timed for p50 / p99
    dqn_states: int  #: cached states every DQN training variant trains on
    dqn_epochs: int  #: epochs of every DQN training variant
    scoring_rounds: int  #: rounds of each scoring batch size (each round reads and scores a file)
    cli_rounds: int  #: rounds of the `fusioncore run` / `train` subprocess benchmarks
    #: `fusioncore run` options of the subprocess benchmarks ([] = the default configuration)
    run_options: tuple[str, ...]
    #: `fusioncore train` overrides for training throughput: a fixed number of full batches
    train_options: tuple[str, ...]
    #: detector training of the in-process system (epochs, batches per epoch)
    training: tuple[int, int] = (2, 8)


_FUSIONS = ("--detectors", "vgae,gat", "--fusion", "dqn,mean,weighted,stacking")

FULL = BenchSizes(
    mode="full", rounds=5, slow_rounds=3, store_windows=None, store_epochs=20, ingest_rows=None,
    graph_windows=1024, scoring_windows=2048, latency_windows=1000, dqn_states=10_000, dqn_epochs=2,
    scoring_rounds=3, cli_rounds=3, run_options=_FUSIONS,
    train_options=("trainer.max_epochs=2", "trainer.limit_train_batches=8", "trainer.patience=0"),
)
#: every comparison on less data and fewer rounds (a few minutes)
QUICK = BenchSizes(
    mode="quick", rounds=3, slow_rounds=1, store_windows=256, store_epochs=20, ingest_rows=100_000,
    graph_windows=256, scoring_windows=256, latency_windows=200, dqn_states=2000, dqn_epochs=1,
    scoring_rounds=1, cli_rounds=1, run_options=(*_FUSIONS, "--preset", "quick"),
    train_options=("trainer.max_epochs=1", "trainer.limit_train_batches=8", "trainer.patience=0"),
)
#: tiny sizes for the correctness check with --benchmark-disable (tests/test_benchmarks_smoke.py)
SMOKE = BenchSizes(
    mode="smoke", rounds=1, slow_rounds=1, store_windows=16, store_epochs=2, ingest_rows=2000,
    graph_windows=4, scoring_windows=3, latency_windows=3, dqn_states=64, dqn_epochs=1,
    scoring_rounds=1, cli_rounds=1,
    run_options=(*_FUSIONS, "--preset", "quick", "trainer.max_epochs=1", "trainer.limit_train_batches=2"),
    train_options=("trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.patience=0",
                   "batch_size=32"),
    training=(1, 2),
)
SIZES = {s.mode: s for s in (FULL, QUICK, SMOKE)}


def sizes_for(config: pytest.Config) -> BenchSizes:
    """The sizes chosen on the command line (``--quick`` / ``--smoke``; full by default)."""
    if config.getoption("--smoke"):
        return SMOKE
    return QUICK if config.getoption("--quick") else FULL


def _tags(*, comparison: str, case: str, variant: str, does: str, work: str, items: float, unit: str,
          source: DataSource, baselines: Sequence[str] = (), note: str = "", **extra: Any) -> dict:
    return dict(comparison=comparison, case=case, variant=variant, does=does, work=work, items=items,
                unit=unit, baselines=list(baselines), note=note, data_source=source.label, **extra)


def describe(benchmark, **tags: Any) -> None:
    """Tag a pytest-benchmark measurement for the summary (see the module docstring)."""
    info = _tags(**tags)
    benchmark.group = f"{info['comparison']}: {info['case']}"
    benchmark.extra_info.update(info)


def row(times: Sequence[float], **tags: Any) -> dict:
    """A measurement timed by the harness itself (one wall time per round), tagged as above."""
    return {**_tags(**tags), "times": [float(t) for t in times]}
