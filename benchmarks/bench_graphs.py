"""Frames in memory -> PyG batches of window graphs, three ways, on the same windows.

* ``WindowGraphBuilder.build`` on batches of up to 1024 windows (what the
  data module and the scorer do);
* the same builder called once per window, one ``Data`` each
  (``get_example(0)``), collated with ``Batch.from_data_list`` into the same
  batches: what a per-window ``Dataset`` behind a PyG ``DataLoader`` does;
* a pandas implementation in the predecessor's style, one window at a time
  (:mod:`benchmarks.pandas_graphs`, a reimplementation of the approach
  ``../shared/BRIEF.md`` section 3 describes), collated the same way.

All three build the same graphs (checked: nodes, edges, features, labels).
The windows are as many as the pandas variant finishes in a round.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from torch_geometric.data import Batch

from fusioncore.data.formats import read_capture
from fusioncore.data.frames import Frames
from fusioncore.data.graphs import WindowGraphBuilder
from fusioncore.data.windows import window_starts

from .common import BenchSizes, describe
from .pandas_graphs import capture_frame, pandas_batch
from .system import DataSource, TrainedSystem

COMPARISON = "graph building"
BATCH = 1024
BATCHED = "WindowGraphBuilder.build, batched"
PER_WINDOW = "the same builder per window"
PANDAS = "pandas per window (predecessor style)"


@pytest.fixture(scope="module")
def capture(source: DataSource, system: TrainedSystem, sizes: BenchSizes) -> tuple[Frames, list[np.ndarray]]:
    """The capture's frames and the chosen window starts, cut into batches of up to 1024."""
    frames = read_capture(source.capture).frames
    starts = window_starts(frames, system.dm.builder.spec)
    chosen = starts[np.arange(sizes.graph_windows) % len(starts)]  # repeats only if the capture is short
    return frames, [chosen[i : i + BATCH] for i in range(0, len(chosen), BATCH)]


@pytest.fixture(scope="module")
def table(capture) -> pd.DataFrame:
    return capture_frame(capture[0])


def batched(builder: WindowGraphBuilder, frames: Frames, batches: list[np.ndarray]) -> list[Batch]:
    return [builder.build(frames, b) for b in batches]


def per_window(builder: WindowGraphBuilder, frames: Frames, batches: list[np.ndarray]) -> list[Batch]:
    return [Batch.from_data_list([builder.build(frames, b[i : i + 1]).get_example(0) for i in range(len(b))])
            for b in batches]


def with_pandas(builder: WindowGraphBuilder, table: pd.DataFrame, batches: list[np.ndarray]) -> list[Batch]:
    return [pandas_batch(table, b, builder) for b in batches]


def _same_graphs(built: list[Batch], reference: list[Batch]) -> None:
    for got, want in zip(built, reference, strict=True):
        sizes = (got.num_graphs, got.num_nodes, got.num_edges)
        assert sizes == (want.num_graphs, want.num_nodes, want.num_edges)
        np.testing.assert_array_equal(got.edge_index.numpy(), want.edge_index.numpy())
        np.testing.assert_array_equal(got.node_id.numpy(), want.node_id.numpy())
        np.testing.assert_array_equal(got.y.numpy(), want.y.numpy())
        np.testing.assert_allclose(got.x.numpy(), want.x.numpy(), atol=1e-4, rtol=1e-4)
        np.testing.assert_allclose(got.edge_attr.numpy(), want.edge_attr.numpy(), atol=1e-4, rtol=1e-4)


def _tags(system: TrainedSystem, sizes: BenchSizes) -> dict:
    n, size = sizes.graph_windows, system.dm.builder.spec.size
    return dict(
        comparison=COMPARISON, case=f"{n:,} windows of {size} frames", items=n * size, unit="frames",
        work=f"{n:,} windows of the largest test capture (frames in memory) -> normalised graphs, "
             f"collated into batches of up to {BATCH}",
        note="windows limited so the pandas variant finishes a round" if n < 4 * BATCH else "",
        windows=n,
    )


VARIANTS = {
    BATCHED: ("builder.build on each batch: every window's features at once (sorts, bincount)",
              [PER_WINDOW, PANDAS]),
    PER_WINDOW: ("builder.build on one window at a time, get_example(0), Batch.from_data_list", [PANDAS]),
    PANDAS: ("a DataFrame slice per window, groupby / shift for node and edge features, one Data each, "
             "Batch.from_data_list", []),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_graph_building(benchmark, variant, capture, table, system, source, sizes):
    frames, batches = capture
    builder = system.dm.builder
    does, baselines = VARIANTS[variant]
    describe(benchmark, variant=variant, does=does, baselines=baselines, source=source,
             **_tags(system, sizes))
    if variant == PANDAS:
        built = benchmark.pedantic(with_pandas, args=(builder, table, batches), rounds=sizes.slow_rounds)
    elif variant == PER_WINDOW:
        built = benchmark.pedantic(per_window, args=(builder, frames, batches), rounds=sizes.slow_rounds)
    else:
        built = benchmark.pedantic(batched, args=(builder, frames, batches), rounds=sizes.rounds,
                                   warmup_rounds=1)
    _same_graphs(built, batched(builder, frames, batches))
