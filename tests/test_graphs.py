"""Window graphs: the vectorised builder against the per-window reference, and the PyG batch."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_geometric.nn import GATv2Conv, global_mean_pool

from fusioncore.contracts import GraphSchema
from fusioncore.data.frames import ATTACK_TYPES, FLAG_FD, Frames
from fusioncore.data.graphs import (
    EDGE_FEATURES,
    NODE_FEATURES,
    FeatureNormalizer,
    WindowGraphBuilder,
)
from fusioncore.data.graphs_reference import reference_window_graph
from fusioncore.data.vocab import IdVocabulary
from fusioncore.data.windows import WindowSpec, window_labels, window_starts
from fusioncore.errors import ConfigError

KNOWN_IDS = np.array([0x000, 0x0A0, 0x153, 0x2C0, 0x316, 0x43F, 0x7FF])
UNSEEN_IDS = np.array([0x001, 0x555, 0x18E])
SPEC = WindowSpec(size=20, stride=15)


def random_frames(seed: int, lengths=(173, 131), unseen_share=0.1) -> Frames:
    """Two files of frames: a few IDs (some unseen), low-entropy payloads, a backwards step."""
    rng = np.random.default_rng(seed)
    n = sum(lengths)
    ids = rng.choice(KNOWN_IDS, n, p=np.linspace(3, 1, len(KNOWN_IDS)) / 14)
    unseen = rng.random(n) < unseen_share
    ids[unseen] = rng.choice(UNSEEN_IDS, unseen.sum())
    t = 1.5e9 + np.cumsum(rng.exponential(0.002, n))
    t[40] -= 0.05  # a timestamp that goes backwards inside file 0
    # Few byte values, and runs of repeated payloads, so equal bytes are common.
    data = rng.integers(0, 3, (n, 8))
    repeat = rng.random(n) < 0.4
    data[1:][repeat[1:]] = data[:-1][repeat[1:]]
    label = (rng.random(n) < 0.05).astype(np.uint8)
    kind = np.where(label > 0, rng.choice([1, 2, 4], n), 0)
    return Frames.from_columns(
        timestamp=t,
        can_id=ids,
        data=data,
        dlc=rng.integers(0, 9, n),
        label=label,
        attack_type=kind,
        source=np.repeat([0, 1], lengths),
        sources=["a.csv", "b.csv"],
        flags=np.where(rng.random(n) < 0.3, FLAG_FD, 0),  # some CAN FD frames
    )


def training_vocab(frames: Frames) -> IdVocabulary:
    return IdVocabulary.fit(frames.take(np.isin(frames.can_id, KNOWN_IDS)))


@pytest.fixture(scope="module")
def frames() -> Frames:
    return random_frames(seed=7)


@pytest.fixture(scope="module")
def builder(frames) -> WindowGraphBuilder:
    return WindowGraphBuilder(training_vocab(frames), SPEC)


def reference_arrays(frames, starts, size, vocab):
    """The reference graphs flattened like the builder's output (nodes by window, then ID)."""
    refs = [reference_window_graph(frames, int(s), size, vocab) for s in starts]
    can_ids = [c for r in refs for c in r.can_ids]
    x = np.array([[r.node_features[c][f] for f in NODE_FEATURES] for r in refs for c in r.can_ids])
    edges = [(w, u, v) for w, r in enumerate(refs) for (u, v) in sorted(r.edge_features)]
    e = np.array(
        [[refs[w].edge_features[(u, v)][f] for f in EDGE_FEATURES] for (w, u, v) in edges]
    )
    return can_ids, x.reshape(-1, len(NODE_FEATURES)), edges, e.reshape(-1, len(EDGE_FEATURES))


def builder_arrays(graphs):
    """The builder's edges as (window, from ID, to ID), in the same order as the reference."""
    window = np.repeat(np.arange(graphs.num_graphs), np.diff(graphs.edge_ptr))
    src, dst = graphs.can_id[graphs.edge_index[0]], graphs.can_id[graphs.edge_index[1]]
    edges = list(zip(window.tolist(), src.tolist(), dst.tolist()))
    order = sorted(range(len(edges)), key=edges.__getitem__)
    return [edges[i] for i in order], graphs.edge_attr[order]


@pytest.fixture(scope="module")
def both(frames, builder):
    starts = window_starts(frames, SPEC)
    return builder.features(frames, starts), reference_arrays(frames, starts, SPEC.size, builder.vocab)


# ---------------------------------------------------------- vs reference
def test_nodes_are_the_distinct_ids_of_each_window(both):
    graphs, (ref_ids, _, _, _) = both
    assert graphs.can_id.tolist() == ref_ids


@pytest.mark.parametrize("feature", NODE_FEATURES)
def test_node_feature_matches_reference(both, feature):
    graphs, (_, ref_x, _, _) = both
    j = NODE_FEATURES.index(feature)
    np.testing.assert_allclose(graphs.x[:, j], ref_x[:, j], atol=1e-5, rtol=0, err_msg=feature)


def test_edge_sets_match_reference(both):
    graphs, (_, _, ref_edges, _) = both
    edges, _ = builder_arrays(graphs)
    assert edges == ref_edges
    assert len(set(edges)) == len(edges)  # deduplicated


@pytest.mark.parametrize("feature", EDGE_FEATURES)
def test_edge_feature_matches_reference(both, feature):
    graphs, (_, _, _, ref_e) = both
    _, edge_attr = builder_arrays(graphs)
    j = EDGE_FEATURES.index(feature)
    np.testing.assert_allclose(edge_attr[:, j], ref_e[:, j], atol=1e-5, rtol=0, err_msg=feature)


def test_features_are_not_trivial(both):
    graphs, _ = both
    # Every column varies across nodes / edges, so the comparisons above test something.
    assert (graphs.x.std(axis=0) > 0).all()
    assert (graphs.edge_attr.std(axis=0) > 0).all()


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    size=st.integers(1, 12),
    stride=st.integers(1, 12),
    lengths=st.tuples(st.integers(0, 50), st.integers(0, 50)),
)
def test_any_window_spec_matches_reference(seed, size, stride, lengths):
    frames = random_frames(seed, lengths=(lengths[0] + 41, lengths[1]), unseen_share=0.3)
    spec = WindowSpec(size, stride)
    vocab = training_vocab(frames)
    starts = window_starts(frames, spec)
    graphs = WindowGraphBuilder(vocab, spec).features(frames, starts)
    ref_ids, ref_x, ref_edges, ref_e = reference_arrays(frames, starts, size, vocab)
    edges, edge_attr = builder_arrays(graphs)
    assert graphs.can_id.tolist() == ref_ids
    assert edges == ref_edges
    np.testing.assert_allclose(graphs.x, ref_x, atol=1e-5, rtol=0)
    np.testing.assert_allclose(edge_attr, ref_e, atol=1e-5, rtol=0)


# ------------------------------------------------------------------ batch
def test_batch_layout_dtypes_and_labels(frames, builder):
    starts = window_starts(frames, SPEC)
    batch = builder.build(frames, starts)
    n_nodes, n_edges = batch.num_nodes, batch.num_edges
    assert batch.num_graphs == len(starts)
    assert batch.x.dtype == batch.edge_attr.dtype == torch.float32
    assert batch.x.shape == (n_nodes, builder.schema.node_dim)
    assert batch.edge_attr.shape == (n_edges, builder.schema.edge_dim)
    for name in ("node_id", "edge_index", "batch", "ptr", "y", "attack_type", "window_id"):
        assert getattr(batch, name).dtype == torch.int64, name
    assert batch.edge_index.shape == (2, n_edges)
    # every edge joins two nodes of the same graph
    assert torch.equal(batch.batch[batch.edge_index[0]], batch.batch[batch.edge_index[1]])
    assert torch.equal(batch.ptr, torch.searchsorted(batch.batch, torch.arange(len(starts) + 1)))
    y, kinds = window_labels(frames, starts, SPEC.size)
    assert batch.y.tolist() == y.tolist()
    assert batch.attack_type.tolist() == kinds.tolist()
    assert 0 < int(batch.y.sum()) < len(starts)
    assert batch.window_id.tolist() == starts.tolist()  # default: start rows


def test_brute_force_labels(frames):
    starts = window_starts(frames, SPEC)
    y, kinds = window_labels(frames, starts, SPEC.size)
    for s, label, kind in zip(starts, y, kinds):
        rows = slice(s, s + SPEC.size)
        attack = frames.attack_type[rows][frames.label[rows] > 0]
        assert label == int(attack.size > 0)
        expected = np.bincount(attack, minlength=len(ATTACK_TYPES))[1:].argmax() + 1 if attack.size else 0
        assert kind == expected


def test_to_data_list_recovers_each_window(frames, builder):
    starts = window_starts(frames, SPEC)[5:9]
    batch = builder.build(frames, starts, window_ids=np.array([50, 51, 52, 53]))
    parts = batch.to_data_list()
    assert len(parts) == 4
    for i, (part, start) in enumerate(zip(parts, starts)):
        single = builder.build(frames, np.array([start]))
        assert torch.equal(part.edge_index, single.edge_index)
        assert torch.equal(part.node_id, single.node_id)
        assert torch.allclose(part.x, single.x)
        assert torch.allclose(part.edge_attr, single.edge_attr)
        assert part.window_id.tolist() == [50 + i]
        assert part.y.tolist() == single.y.tolist()


def test_batch_runs_through_edge_aware_attention_and_pooling(frames, builder):
    batch = builder.build(frames, window_starts(frames, SPEC)[:8])
    torch.manual_seed(0)
    conv = GATv2Conv(builder.schema.node_dim, 16, heads=2, edge_dim=builder.schema.edge_dim)
    h = conv(batch.x, batch.edge_index, batch.edge_attr)
    pooled = global_mean_pool(h, batch.batch)
    assert pooled.shape == (8, 32)
    assert torch.isfinite(pooled).all()
    pooled.sum().backward()
    assert conv.lin_edge.weight.grad.abs().sum() > 0  # edge features reach the output


def test_unknown_ids_map_to_slot_zero_and_set_the_flag(frames, builder):
    graphs = builder.features(frames, window_starts(frames, SPEC))
    unseen = np.isin(graphs.can_id, UNSEEN_IDS)
    assert unseen.any() and (~unseen).any()
    flag = graphs.x[:, NODE_FEATURES.index("unknown_id")]
    assert (graphs.node_id[unseen] == 0).all() and (flag[unseen] == 1).all()
    assert (graphs.node_id[~unseen] > 0).all() and (flag[~unseen] == 0).all()
    assert (graphs.x[unseen, NODE_FEATURES.index("iat_vs_period")] == 0).all()


def test_schema_describes_the_batch(builder):
    schema = builder.schema
    assert isinstance(schema, GraphSchema)
    assert schema.node_features == NODE_FEATURES and schema.edge_features == EDGE_FEATURES
    assert schema.num_ids == len(builder.vocab) == len(KNOWN_IDS) + 1
    assert schema.window_size == SPEC.size


def test_no_windows_give_an_empty_batch(frames, builder):
    batch = builder.build(frames, np.zeros(0, np.int64))
    assert batch.num_graphs == 0
    assert batch.x.shape == (0, len(NODE_FEATURES))
    assert batch.edge_index.shape == (2, 0)


def test_build_rejects_bad_windows(frames, builder):
    with pytest.raises(ConfigError, match="straddle"):
        builder.build(frames, np.array([170]))
    with pytest.raises(ConfigError, match="leave"):
        builder.build(frames, np.array([len(frames) - 3]))
    with pytest.raises(ConfigError, match="window_ids"):
        builder.build(frames, np.array([0, 20]), window_ids=np.array([1]))


# ------------------------------------------------------------- normaliser
def test_normalizer_uses_benign_windows_only_and_is_chunk_invariant(frames, builder):
    starts = window_starts(frames, SPEC)
    y, _ = window_labels(frames, starts, SPEC.size)
    norm = FeatureNormalizer.fit(builder, frames, starts, min_std=1e-9)
    benign = builder.features(frames, starts[y == 0])
    np.testing.assert_allclose(norm.node_mean, benign.x.mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(norm.edge_std, benign.edge_attr.std(axis=0), atol=1e-6)
    chunked = FeatureNormalizer.fit(builder, frames, starts, chunk=3, min_std=1e-9)
    np.testing.assert_allclose(chunked.node_std, norm.node_std, atol=1e-9)
    np.testing.assert_allclose(chunked.edge_mean, norm.edge_mean, atol=1e-9)
    # attack windows do not move the statistics
    only_benign = FeatureNormalizer.fit(builder, frames, starts[y == 0], min_std=1e-9)
    np.testing.assert_allclose(only_benign.node_mean, norm.node_mean, atol=1e-12)


def test_normalized_batch_is_z_scored_with_floored_std(frames, builder):
    starts = window_starts(frames, SPEC)
    norm = FeatureNormalizer.fit(builder, frames, starts, min_std=0.05)
    assert (norm.node_std >= 0.05).all() and (norm.edge_std >= 0.05).all()
    raw = builder.features(frames, starts)
    batch = builder.with_normalizer(norm).build(frames, starts)
    np.testing.assert_allclose(
        batch.x.numpy(), (raw.x - norm.node_mean) / norm.node_std, atol=1e-5, rtol=1e-6
    )
    np.testing.assert_allclose(
        batch.edge_attr.numpy(), (raw.edge_attr - norm.edge_mean) / norm.edge_std, atol=1e-5
    )
    assert builder.with_normalizer(norm).fingerprint() != builder.fingerprint()


def test_normalizer_round_trips_and_refuses_mismatches(frames, builder):
    norm = FeatureNormalizer.fit(builder, frames, window_starts(frames, SPEC))
    buf = io.BytesIO()
    np.savez(buf, **norm.to_arrays(), allow_pickle=False)
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as z:
        loaded = FeatureNormalizer.from_arrays(z)
    assert loaded.fingerprint() == norm.fingerprint()
    renamed = FeatureNormalizer(
        node_mean=np.zeros(2), node_std=np.ones(2), edge_mean=np.zeros(1), edge_std=np.ones(1),
        node_features=("a", "b"), edge_features=("c",),
    )  # fmt: skip
    with pytest.raises(ConfigError, match="refit"):
        builder.with_normalizer(renamed)
    with pytest.raises(ConfigError, match="shape"):
        FeatureNormalizer(node_mean=np.zeros(2), node_std=np.ones(3), edge_mean=[0], edge_std=[1],
                          node_features=("a", "b"), edge_features=("c",))  # fmt: skip
    full = builder.with_normalizer(norm)
    for original in (builder, full):
        buf = io.BytesIO()
        np.savez(buf, **original.to_arrays(), allow_pickle=False)
        buf.seek(0)
        with np.load(buf, allow_pickle=False) as z:
            assert WindowGraphBuilder.from_arrays(z).fingerprint() == original.fingerprint()
    attacks_only = frames.take(np.ones(len(frames), bool))
    attacks_only.label[:] = 1
    with pytest.raises(ConfigError, match="benign"):
        FeatureNormalizer.fit(builder, attacks_only, window_starts(attacks_only, SPEC))


# -------------------------------------------------------------- real data
def read_can_train_and_test(path, rows: int, source: int) -> Frames:
    """The first ``rows`` frames of a can-train-and-test CSV (a minimal parser for this test)."""
    lines = path.read_text().splitlines()[1 : rows + 1]
    cols = [line.split(",") for line in lines]
    payload = [bytes.fromhex(c[2]) for c in cols]
    return Frames.from_columns(
        timestamp=np.array([float(c[0]) for c in cols]),
        can_id=np.array([int(c[1], 16) for c in cols]),
        data=np.array([list(p.ljust(8, b"\0")) for p in payload]),
        dlc=np.array([len(p) for p in payload]),
        label=np.array([int(c[3]) for c in cols]),
        source=np.full(len(cols), source),
        sources=[path.name],
    )


@pytest.mark.realdata
def test_real_hcrl_sa_windows_match_reference(shared_data):
    folder = shared_data / "can-train-and-test" / "hcrl_sa"
    train = read_can_train_and_test(folder / "train_01_attack_free" / "attack-free-kia.csv", 4000, 0)
    test = read_can_train_and_test(
        folder / "test_01_known_vehicle_known_attack" / "fuzzing-kia.csv", 46000, 0
    )
    vocab = IdVocabulary.fit(train)
    spec = WindowSpec()
    builder = WindowGraphBuilder(vocab, spec)
    starts = window_starts(test, spec)
    y, _ = window_labels(test, starts, spec.size)
    pick = np.concatenate([starts[y == 0][:6], starts[y == 1][:6]])
    assert len(pick) == 12
    graphs = builder.features(test, pick)
    ref_ids, ref_x, ref_edges, ref_e = reference_arrays(test, pick, spec.size, vocab)
    edges, edge_attr = builder_arrays(graphs)
    assert graphs.can_id.tolist() == ref_ids and edges == ref_edges
    np.testing.assert_allclose(graphs.x, ref_x, atol=1e-5, rtol=0)
    np.testing.assert_allclose(edge_attr, ref_e, atol=1e-5, rtol=0)
    # fuzzing windows bring IDs the benign capture never used
    unknown = graphs.x[:, NODE_FEATURES.index("unknown_id")]
    per_window = np.add.reduceat(unknown, graphs.node_ptr[:-1])
    assert (per_window[6:] > 0).all() and (per_window[:6] == 0).all()
    nodes = np.diff(graphs.node_ptr[:7])
    assert 15 <= nodes.mean() <= 60  # the published 22-54 nodes per benign window
