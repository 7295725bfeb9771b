"""Sizes of a benchmark run and the tags the summary reads.

Every benchmark records in ``extra_info`` (see :func:`describe`) what
:mod:`benchmarks.summarize` needs to pair it with its counterpart:
``comparison``, ``case``, ``variant``, ``role`` (``fast`` or ``baseline``),
``items`` / ``unit`` (the work one call does, for rates), ``scale``: where a
slow baseline runs on a smaller sample, the factor that extrapolates its time
to the fast variant's work (the summary labels such figures as extrapolated),
and optionally ``pairs_with``: the cases whose fast variant a baseline is
compared with (default: its own case).
"""

from __future__ import annotations

import attrs
import pytest

from .system import DataSource

__all__ = ["FULL", "QUICK", "SIZES", "SMOKE", "BenchSizes", "describe", "sizes_for"]


@attrs.frozen
class BenchSizes:
    """How much data and how many rounds each comparison uses."""

    mode: str  #: "full" or "quick"
    rounds: int  #: rounds of the fast benchmarks
    slow_rounds: int  #: rounds of the slow baselines
    cache_windows: int | None  #: fusion-split windows for the cache comparison (None: all)
    cache_epochs: tuple[int, ...]  #: E values of the cache comparison
    ingest_rows: int | None  #: rows of the capture to ingest (None: all)
    graph_batches: int  #: batches of 1024 windows built per round
    reference_windows: int  #: windows given to the per-window reference builder
    scoring_windows: int  #: windows scored at batch sizes 64 / 1024
    scoring_single_windows: int  #: windows scored one at a time (batch size 1)
    latency_windows: int  #: single-window calls timed for p50 / p99
    fusion_states: int  #: states in the vectorised DQN epoch
    per_sample_states: int  #: samples the per-sample DQN loop is timed on
    scoring_rounds: int  #: rounds of each scoring batch size (each round reads and scores a file)
    #: detector training (epochs, batches per epoch): it shapes accuracy, not the costs measured
    training: tuple[int, int] = (2, 8)


FULL = BenchSizes(
    mode="full", rounds=5, slow_rounds=3, cache_windows=None, cache_epochs=(1, 10, 50),
    ingest_rows=None, graph_batches=4, reference_windows=200, scoring_windows=2048,
    scoring_single_windows=256, latency_windows=1000, fusion_states=100_000, per_sample_states=2000,
    scoring_rounds=3,
)
#: all five comparisons, E = 50 included, on less data and fewer rounds (a few minutes)
QUICK = BenchSizes(
    mode="quick", rounds=3, slow_rounds=1, cache_windows=32, cache_epochs=(1, 10, 50),
    ingest_rows=100_000, graph_batches=2, reference_windows=50, scoring_windows=1024,
    scoring_single_windows=32, latency_windows=200, fusion_states=100_000, per_sample_states=200,
    scoring_rounds=1,
)
#: tiny sizes for the correctness check with --benchmark-disable (tests/test_benchmarks_smoke.py)
SMOKE = BenchSizes(
    mode="smoke", rounds=1, slow_rounds=1, cache_windows=16, cache_epochs=(1, 2),
    ingest_rows=2000, graph_batches=1, reference_windows=4, scoring_windows=32,
    scoring_single_windows=3, latency_windows=3, fusion_states=4096, per_sample_states=20,
    scoring_rounds=1, training=(1, 2),
)
SIZES = {s.mode: s for s in (FULL, QUICK, SMOKE)}


def sizes_for(config: pytest.Config) -> BenchSizes:
    """The sizes chosen on the command line (``--quick`` / ``--smoke``; full by default)."""
    if config.getoption("--smoke"):
        return SMOKE
    return QUICK if config.getoption("--quick") else FULL


def describe(benchmark, *, comparison: str, case: str, variant: str, role: str, items: float,
             unit: str, source: DataSource, scale: float = 1.0, **extra: object) -> None:
    """Tag a benchmark for the summary (see the module docstring)."""
    benchmark.group = f"{comparison}: {case}"
    benchmark.extra_info.update(
        comparison=comparison, case=case, variant=variant, role=role, items=items, unit=unit,
        scale=scale, data_source=source.label, **extra,
    )
