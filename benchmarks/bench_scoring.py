"""Comparison 4: frames on disk -> a fused verdict per window (vgae + gat + dqn).

Scoring runs through ``fusioncore.scoring.ScoringSystem`` (what ``fusioncore
detect`` uses) built from the session's trained objects. One call covers the
whole path: read the capture (``read_capture``), cut windows, then score
them B at a time as a stream would deliver them (B = 1, 64, 1024; each
``score`` call gets B windows). Batch size 1 runs on fewer windows; all are
reported as frames/s and windows/s, and the summary compares each batch size
with B = 1.

Latency: single-window ``score`` calls on frames already in memory, one call
per round, with one torch thread and with all of them; p50 and p99 of those
rounds go into ``extra_info``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import attrs
import numpy as np
import pytest
import torch

from fusioncore.data.formats import read_capture
from fusioncore.data.windows import window_starts
from fusioncore.scoring import ScoringSystem, WindowVerdicts

from .common import BenchSizes, describe
from .system import DataSource, TrainedSystem

COMPARISON = "end-to-end scoring"
CASE = "frames on disk -> verdicts"
BATCH_SIZES = (1, 64, 1024)


@attrs.frozen(eq=False)
class Captures:
    """The first rows of the test capture as temp CSVs: one per window count scored."""

    by_windows: dict[int, Path]


@pytest.fixture(scope="module")
def captures(source: DataSource, system: TrainedSystem, sizes: BenchSizes, tmp_path_factory) -> Captures:
    folder = tmp_path_factory.mktemp("scoring")
    size = system.scorer.window_size
    paths = {}
    for windows in {sizes.scoring_windows, sizes.scoring_single_windows}:
        path = folder / f"first-{windows}-windows.csv"
        with source.capture.open() as src, path.open("w") as dst:
            dst.writelines(itertools.islice(src, windows * size + 1))  # header + rows
        paths[windows] = path
    return Captures(paths)


def score_file(system: ScoringSystem, path: Path, batch_size: int) -> WindowVerdicts:
    """Read ``path``, cut windows, score them ``batch_size`` windows per call."""
    frames = read_capture(path).frames
    starts = window_starts(frames, system.builder.spec)
    return WindowVerdicts.concat(
        [system.score(frames, starts[i : i + batch_size]) for i in range(0, len(starts), batch_size)]
    )


@pytest.mark.parametrize("batch_size", BATCH_SIZES, ids=lambda b: f"B{b}")
def test_scoring_throughput(benchmark, batch_size, system, captures, source, sizes):
    windows = sizes.scoring_single_windows if batch_size == 1 else sizes.scoring_windows
    scorer = attrs.evolve(system.scorer, batch_size=batch_size)
    describe(benchmark, comparison=COMPARISON, case=CASE, variant=f"batch size {batch_size}",
             role="baseline" if batch_size == 1 else "fast", items=windows * scorer.window_size,
             unit="frames", source=source, windows=windows, batch_size=batch_size,
             scale=sizes.scoring_windows / windows)
    verdicts = benchmark.pedantic(
        score_file, args=(scorer, captures.by_windows[windows], batch_size),
        # a warm-up round only when there are rounds to spare: each one reads and scores a file
        rounds=sizes.scoring_rounds, warmup_rounds=min(1, sizes.scoring_rounds - 1),
    )
    assert len(verdicts) == windows
    assert np.isfinite(verdicts.fused).all() and ((verdicts.fused >= 0) & (verdicts.fused <= 1)).all()


@pytest.fixture(params=sorted({1, torch.get_num_threads()}), ids=lambda t: f"threads{t}")
def torch_threads(request) -> Iterator[int]:
    """Intra-op threads for the call: with 2 threads, a tiny op waits for the other core."""
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


def test_single_window_latency(benchmark, torch_threads, system, captures, source, sizes):
    frames = read_capture(captures.by_windows[sizes.scoring_single_windows]).frames
    scorer = attrs.evolve(system.scorer, batch_size=1)
    starts = window_starts(frames, scorer.builder.spec)
    describe(benchmark, comparison="latency", case="one window per call (frames in memory)",
             variant=f"ScoringSystem.score, {torch_threads} torch thread(s)", role="fast", items=1,
             unit="windows", source=source)
    windows = itertools.cycle(starts)

    def next_window():
        return (frames, np.array([next(windows)])), {}

    verdict = benchmark.pedantic(scorer.score, setup=next_window, rounds=sizes.latency_windows,
                                 warmup_rounds=5)
    assert len(verdict) == 1
    if benchmark.stats is not None:  # None under --benchmark-disable
        rounds = np.asarray(benchmark.stats.stats.data)
        benchmark.extra_info.update(
            p50_ms=float(np.percentile(rounds, 50) * 1e3), p99_ms=float(np.percentile(rounds, 99) * 1e3),
        )
