"""Comparison 3: frames -> a PyG batch of window graphs.

The vectorised ``WindowGraphBuilder.build`` on batches of 1024 windows
against the plain per-window reference (``reference_window_graph``, the
specification the builder is tested against) turned into one ``Data`` per
window, normalised the same way, then ``Batch.from_data_list``: what a
per-window pipeline does. The reference runs on fewer windows; both are
reported per frame, and the reference's time is scaled to the builder's
window count for the ratio (labelled extrapolated).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch, Data

from fusioncore.data.formats import read_capture
from fusioncore.data.frames import Frames
from fusioncore.data.graph_features import EDGE_FEATURES, NODE_FEATURES
from fusioncore.data.graphs import WindowGraphBuilder
from fusioncore.data.graphs_reference import reference_window_graph
from fusioncore.data.windows import window_starts

from .common import BenchSizes, describe
from .system import DataSource, TrainedSystem

COMPARISON = "graph building"
CASE = "1024-window batches"
BATCH = 1024


@pytest.fixture(scope="module")
def capture(source: DataSource, system: TrainedSystem) -> tuple[Frames, np.ndarray]:
    frames = read_capture(source.capture).frames
    return frames, window_starts(frames, system.dm.builder.spec)


def _cycled(starts: np.ndarray, n: int) -> np.ndarray:
    """``n`` window starts, repeating the capture's windows if it has fewer."""
    return starts[np.arange(n) % len(starts)]


def reference_batch(builder: WindowGraphBuilder, frames: Frames, starts: np.ndarray) -> Batch:
    """One ``Data`` per window from the reference graphs, then ``Batch.from_data_list``."""
    size, vocab, norm = builder.spec.size, builder.vocab, builder.normalizer
    graphs = []
    for start in starts:
        ref = reference_window_graph(frames, int(start), size, vocab)
        position = {can_id: i for i, can_id in enumerate(ref.can_ids)}
        edges = sorted(ref.edge_features)
        x = np.array([[ref.node_features[c][f] for f in NODE_FEATURES] for c in ref.can_ids])
        e = np.array([[ref.edge_features[k][f] for f in EDGE_FEATURES] for k in edges])
        graphs.append(
            Data(
                x=torch.from_numpy(norm.normalize_nodes(x)),
                node_id=torch.from_numpy(vocab.lookup(np.asarray(ref.can_ids))).long(),
                edge_index=torch.tensor([[position[u] for u, _ in edges], [position[v] for _, v in edges]]),
                edge_attr=torch.from_numpy(norm.normalize_edges(e.reshape(-1, len(EDGE_FEATURES)))),
            )
        )
    return Batch.from_data_list(graphs)


def test_vectorised_builder(benchmark, capture, system, source, sizes: BenchSizes):
    frames, starts = capture
    batches = [_cycled(starts, BATCH * sizes.graph_batches)[i::sizes.graph_batches]
               for i in range(sizes.graph_batches)]
    builder = system.dm.builder
    describe(benchmark, comparison=COMPARISON, case=CASE, variant="WindowGraphBuilder.build",
             role="fast", items=BATCH * sizes.graph_batches * builder.spec.size, unit="frames",
             source=source, windows=BATCH * sizes.graph_batches)

    def build_all() -> list[Batch]:
        return [builder.build(frames, b) for b in batches]

    built = benchmark.pedantic(build_all, rounds=sizes.rounds, warmup_rounds=1)
    assert [b.num_graphs for b in built] == [BATCH] * sizes.graph_batches


def test_per_window_reference(benchmark, capture, system, source, sizes: BenchSizes):
    frames, starts = capture
    builder = system.dm.builder
    chosen = _cycled(starts, sizes.reference_windows)
    fast_windows = BATCH * sizes.graph_batches
    describe(benchmark, comparison=COMPARISON, case=CASE, variant="reference_window_graph per window",
             role="baseline", items=sizes.reference_windows * builder.spec.size, unit="frames",
             source=source, scale=fast_windows / sizes.reference_windows, windows=sizes.reference_windows)
    batch = benchmark.pedantic(reference_batch, args=(builder, frames, chosen), rounds=sizes.slow_rounds)
    # the same graphs as the builder's (up to edge order): same sizes, same node features
    fast = builder.build(frames, chosen)
    assert batch.num_graphs == fast.num_graphs and batch.num_edges == fast.num_edges
    np.testing.assert_allclose(batch.x.numpy(), fast.x.numpy(), atol=1e-4)
