"""End-to-end scoring (frames on disk -> a fused verdict per window) and single-window latency.

Scoring runs through ``fusioncore.scoring.ScoringSystem`` (what ``fusioncore
detect`` uses: vgae + gat + dqn) built from the session's trained objects.
One call covers the whole path: read the capture (``read_capture``), cut
windows, then score them B at a time as a stream would deliver them. Every
batch size scores the same windows (as many as B = 1 finishes in a round),
so B = 1 is measured on the same work as the others, never scaled.

Latency: single-window ``score`` calls on frames already in memory, one
call per round, with one torch thread (``fusioncore detect``'s default) and
with all of them; p50 and p99 of those rounds go into ``extra_info``.
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

from .common import BenchSizes, describe, sizes_for
from .system import DataSource, TrainedSystem

COMPARISON = "end-to-end scoring"
CASE = "frames on disk -> verdicts"
BATCH_SIZES = (1, 64, 256, 1024)


def write_first_windows(capture: Path, windows: int, size: int, path: Path) -> Path:
    """The first ``windows`` windows' rows of a can-train-and-test CSV, header included."""
    with capture.open() as src, path.open("w") as dst:
        dst.writelines(itertools.islice(src, windows * size + 1))
    return path


@pytest.fixture(scope="module")
def capture(source: DataSource, system: TrainedSystem, sizes: BenchSizes, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("scoring")
    return write_first_windows(source.capture, sizes.scoring_windows, system.scorer.window_size,
                               folder / f"first-{sizes.scoring_windows}-windows.csv")


def score_file(system: ScoringSystem, path: Path, batch_size: int) -> WindowVerdicts:
    """Read ``path``, cut windows, score them ``batch_size`` windows per call."""
    frames = read_capture(path).frames
    starts = window_starts(frames, system.builder.spec)
    return WindowVerdicts.concat(
        [system.score(frames, starts[i : i + batch_size]) for i in range(0, len(starts), batch_size)]
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "batch_size" in metafunc.fixturenames:
        windows = sizes_for(metafunc.config).scoring_windows
        # a batch size above the window count would repeat the largest one that fits
        chosen = [b for b in BATCH_SIZES if b <= windows] or [1]
        metafunc.parametrize("batch_size", chosen, ids=lambda b: f"B{b}")


def test_scoring_throughput(benchmark, batch_size, system, capture, source, sizes):
    windows = sizes.scoring_windows
    scorer = attrs.evolve(system.scorer, batch_size=batch_size)
    workers = scorer._workers(min(windows, batch_size))  # detectors scoring each batch side by side
    describe(benchmark, comparison=COMPARISON, case=CASE, variant=f"batch size {batch_size}",
             does=f"read_capture, window_starts, then ScoringSystem.score on {batch_size} window(s) per call "
                  f"({torch.get_num_threads()} torch thread(s), {workers} detector thread(s))",
             baselines=[] if batch_size == 1 else ["batch size 1"], items=windows * scorer.window_size,
             unit="frames", source=source, windows=windows, batch_size=batch_size,
             work=f"the first {windows:,} windows of the largest test capture, from disk to fused verdicts "
                  "(vgae + gat + dqn)",
             note="windows limited so batch size 1 finishes a round")
    verdicts = benchmark.pedantic(
        score_file, args=(scorer, capture, batch_size),
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


def test_single_window_latency(benchmark, torch_threads, system, capture, source, sizes):
    frames = read_capture(capture).frames
    scorer = attrs.evolve(system.scorer, batch_size=1)
    starts = window_starts(frames, scorer.builder.spec)
    describe(benchmark, comparison="latency", case="one window per call (frames in memory)",
             variant=f"ScoringSystem.score, {torch_threads} torch thread(s)", items=1, unit="windows",
             does="score one window already in memory: graph, both detectors, calibration, state, DQN",
             work="single-window calls, one per round", source=source, threads=torch_threads,
             detect_default=torch_threads == 1)
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
