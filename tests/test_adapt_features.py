"""Profile-relative features: vectorised builder vs the per-window reference, and their invariances."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusioncore.adapt.base import ProfileAdapter
from fusioncore.adapt.features import RELATIVE_EDGE_FEATURES, RELATIVE_NODE_FEATURES
from fusioncore.adapt.features_reference import as_arrays, reference_relative_graph
from fusioncore.adapt.profile import VehicleProfile
from fusioncore.adapt.reference import ReferenceTable, period_rank_identity
from fusioncore.adapt.splits import fit_profiles
from fusioncore.data.frames import Frames
from fusioncore.data.graphs import WindowGraphBuilder
from fusioncore.data.vocab import IdVocabulary
from fusioncore.data.windows import WindowSpec, window_starts

SPEC = WindowSpec(size=25, stride=25)
IDS = np.array([0x0A0, 0x153, 0x2C0, 0x316, 0x43F, 0x18E], np.uint32)
PERIODS = np.array([0.010, 0.010, 0.020, 0.050, 0.100, 0.020])


def periodic_capture(seed: int, seconds: float = 3.0, *, extra_ids=(), n_files: int = 1,
                     epoch: float = 1.6e9) -> Frames:
    """Periodic traffic with jitter, counters and a drifting signal; optional never-profiled IDs."""
    rng = np.random.default_rng(seed)
    parts = []
    for f in range(n_files):
        t, ids, data = [], [], []
        for can_id, period in zip(IDS, PERIODS):
            n = int(seconds / period)
            times = np.arange(n) * period + rng.uniform(0, period) + rng.normal(0, period * 0.02, n)
            payload = np.zeros((n, 8), np.uint8)
            payload[:, 0] = np.cumsum(rng.random(n) < 0.8) % 16  # a counter that sometimes stalls
            payload[:, 1] = (np.linspace(0, 40, n) + rng.normal(0, 2, n)).clip(0, 255)  # signal
            payload[:, 2] = can_id & 0xFF  # constant
            late = np.arange(n) > n // 2  # bytes 3..7 flip more often later in the drive
            for b in range(3, 8):
                flips = rng.random(n) < np.where(late, 0.1 * b - 0.2, 0.05)
                payload[:, b] = np.cumsum(flips) % 4
            t.append(times)
            ids.append(np.full(n, can_id))
            data.append(payload)
        for can_id in extra_ids:
            n = 20
            t.append(rng.uniform(seconds / 2, seconds, n))
            ids.append(np.full(n, can_id))
            data.append(rng.integers(0, 256, (n, 8)).astype(np.uint8))
        t, ids, data = np.concatenate(t), np.concatenate(ids), np.concatenate(data)
        order = np.argsort(t, kind="stable")
        dlc = np.where(ids[order] == 0x43F, rng.integers(6, 9, len(t)), 8)
        parts.append(Frames.from_columns(timestamp=epoch + t[order], can_id=ids[order], data=data[order],
                                         dlc=dlc, sources=[f"capture-{f}.csv"]))
    return Frames.concat(parts)


def adapted_builder(frames: Frames, warmup_s: float = 1.0, *, transitions: bool = True
                    ) -> tuple[WindowGraphBuilder, dict]:
    # transitions=True by default: every relative column, so each is checked against the spec
    adapter = ProfileAdapter(warmup_s=warmup_s, transitions=transitions)
    profiles = fit_profiles(adapter, frames)
    builder = WindowGraphBuilder(IdVocabulary.fit(frames), SPEC, representation=adapter.representation)
    return builder.with_reference(adapter.reference_table(profiles)), profiles


@pytest.fixture(scope="module")
def case():
    frames = periodic_capture(3, extra_ids=(0x7AB, 0x001), n_files=2)
    builder, profiles = adapted_builder(frames)
    starts = window_starts(frames, SPEC)
    graphs = builder.features(frames, starts)
    refs = [
        reference_relative_graph(frames, int(s), SPEC.size, profiles[frames.sources[frames.source[s]]])
        for s in starts
    ]
    xs, es = zip(*(as_arrays(*r) for r in refs))
    return graphs, np.concatenate(xs), np.concatenate(es)


@pytest.mark.parametrize("feature", RELATIVE_NODE_FEATURES)
def test_relative_node_feature_matches_reference(case, feature):
    graphs, ref_x, _ = case
    j = RELATIVE_NODE_FEATURES.index(feature)
    np.testing.assert_allclose(graphs.x[:, j], ref_x[:, j], atol=1e-6, rtol=1e-6, err_msg=feature)


@pytest.mark.parametrize("feature", RELATIVE_EDGE_FEATURES)
def test_relative_edge_feature_matches_reference(case, feature):
    graphs, _, ref_e = case
    j = RELATIVE_EDGE_FEATURES.index(feature)
    np.testing.assert_allclose(graphs.edge_attr[:, j], ref_e[:, j], atol=1e-6, rtol=1e-6, err_msg=feature)


def test_relative_features_vary(case):
    graphs, _, _ = case
    constant = [n for n, sd in zip(RELATIVE_NODE_FEATURES, graphs.x.std(axis=0)) if sd == 0]
    assert constant == ["byte2_change", "fd_share"]  # a byte that never changes; no CAN FD frames
    assert graphs.x[:, RELATIVE_NODE_FEATURES.index("unknown_id")].max() == 1.0  # the extra IDs


def test_each_capture_is_compared_with_its_own_profile():
    a, b = periodic_capture(1), periodic_capture(2)
    b = Frames(**{**b._columns(), "can_id": b.can_id + 1}, sources=("other.csv",))  # another vehicle
    both = Frames.concat([a, b])
    builder, _ = adapted_builder(both)
    g = builder.features(both, window_starts(both, SPEC))
    unknown = g.x[:, RELATIVE_NODE_FEATURES.index("unknown_id")]
    assert unknown.max() == 0.0  # each ID is known to its own capture's profile
    alone, _ = adapted_builder(a)
    table = alone.reference  # a's profile only: b's IDs are unknown there
    g_b = alone.with_reference(table).features(both, window_starts(both, SPEC))
    b_nodes = both.source[window_starts(both, SPEC)][g_b.node_window] == 1
    assert (g_b.x[b_nodes, RELATIVE_NODE_FEATURES.index("unknown_id")] == 1).all()


def test_period_rank_identity_ignores_id_values_and_ties():
    p = np.array([0.1, 0.01, 0.01, np.nan, 0.5])
    ident = period_rank_identity(p, 4)
    assert ident[1] == ident[2]  # tied periods share a bucket
    assert ident[1] < ident[0] < ident[4] <= ident[3]
    assert ((ident >= 1) & (ident <= 4)).all()


# ---------------------------------------------------------------- invariance
def transformed(frames: Frames, mapping: dict[int, int], scale: float) -> Frames:
    """The same capture with IDs renamed by ``mapping`` and every time interval times ``scale``."""
    ids = np.array([mapping[int(i)] for i in frames.can_id], np.uint32)
    t0 = frames.timestamp[0]
    t = t0 + (frames.timestamp - t0) * scale
    return Frames(**{**frames._columns(), "can_id": ids, "timestamp": t}, sources=frames.sources)


def node_table(frames: Frames, warmup_s: float, inverse: dict[int, int] | None = None):
    builder, _ = adapted_builder(frames, warmup_s)
    g = builder.features(frames, window_starts(frames, SPEC))
    ids = g.can_id if inverse is None else np.array([inverse[int(i)] for i in g.can_id])
    order = np.lexsort((ids, g.node_window))
    src = ids[g.edge_index[0]]
    dst = ids[g.edge_index[1]]
    ew = g.node_window[g.edge_index[0]]
    eorder = np.lexsort((dst, src, ew))
    return g.x[order], g.node_id[order], g.edge_attr[eorder]


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 1000),
    scale=st.floats(0.25, 4.0),
    targets=st.permutations(list(range(0x000, 0x7FF, 37))),
)
def test_relative_features_are_invariant_to_renaming_ids_and_scaling_time(seed, scale, targets):
    # a small epoch: at 1.6e9 s, float64 rounds timestamps to 0.24 us, which is not a property of
    # the features (the invariance is exact up to that rounding)
    frames = periodic_capture(seed, extra_ids=(0x555,), epoch=100.0)
    present = sorted({int(i) for i in frames.can_id})
    mapping = dict(zip(present, targets))
    inverse = {v: k for k, v in mapping.items()}
    x, ident, e = node_table(frames, 1.0)
    x2, ident2, e2 = node_table(transformed(frames, mapping, scale), 1.0 * scale, inverse)
    np.testing.assert_allclose(x2, x, atol=1e-6)
    np.testing.assert_array_equal(ident2, ident)
    np.testing.assert_allclose(e2, e, atol=1e-6)


# ------------------------------------------------------------------- profile
def test_profile_round_trips_through_json_bit_for_bit(tmp_path):
    frames = periodic_capture(5, extra_ids=(0x1FFFFFFF,))
    frames = Frames(**{**frames._columns(), "extended": frames.can_id > 0x7FF}, sources=frames.sources)
    profile = VehicleProfile.fit(frames, source="x.csv", warmup_s=3.0)
    path = tmp_path / "vehicle.json"
    path.write_text(profile.to_json())
    loaded = VehicleProfile.from_json(path.read_text())
    for name in ("can_id", "extended", "count", "period", "jitter", "dlc", "change_rate", "byte_mean",
                 "byte_std", "byte_change", "transitions"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(profile, name), err_msg=name)
    assert (loaded.frames, loaded.duration_s, loaded.median_gap_s) == (
        profile.frames, profile.duration_s, profile.median_gap_s)
    assert loaded.fingerprint() == profile.fingerprint()
    assert '"id": "1FFFFFFF"' in path.read_text()  # inspectable: hex IDs


def test_profile_is_deterministic_and_measures_the_bus():
    frames = periodic_capture(9)
    p1, p2 = VehicleProfile.fit(frames), VehicleProfile.fit(periodic_capture(9))
    assert p1.to_json() == p2.to_json()
    row = {int(i): r for r, i in enumerate(p1.can_id)}
    for can_id, period in zip(IDS, PERIODS):
        assert p1.period[row[int(can_id)]] == pytest.approx(period, rel=0.05)
    assert p1.change_rate[row[0x0A0]] > 0.9  # the signal byte keeps moving
    assert p1.byte_change[row[0x0A0], 2] == 0.0  # a constant byte never does
    assert len(p1.transitions) > len(IDS)
    assert "IDs (0 29-bit)" in p1.summary()


def test_profile_keeps_11_and_29_bit_ids_apart():
    frames = periodic_capture(4)
    ext = np.zeros(len(frames), bool)
    ext[::2] = True  # half the frames of every ID claim the 29-bit format
    frames = Frames(**{**frames._columns(), "extended": ext}, sources=frames.sources)
    profile = VehicleProfile.fit(frames)
    assert len(profile) == 2 * len(IDS)
    table = ReferenceTable.from_profiles({"x": profile}, buckets=4)
    rows = table.rows(np.zeros(2, np.int64), np.array([0x153, 0x153]), np.array([False, True]))
    assert rows[0] != rows[1] and (rows >= 0).all()


def test_malformed_profiles_fail_with_one_line():
    from fusioncore.errors import ConfigError

    with pytest.raises(ConfigError, match="not a fusioncore vehicle profile"):
        VehicleProfile.from_json('{"format": "something"}')
    with pytest.raises(ConfigError, match="not JSON"):
        VehicleProfile.from_json("{")
    good = VehicleProfile.fit(periodic_capture(1)).to_dict()
    del good["ids"][0]["period_s"]
    with pytest.raises(ConfigError, match="malformed vehicle profile"):
        VehicleProfile.from_dict(good)


def test_default_profile_representation_leaves_out_the_drifting_transition_columns():
    from fusioncore.adapt.features import TRANSITION_EDGE_FEATURES, TRANSITION_NODE_FEATURES

    default, full = ProfileAdapter(), ProfileAdapter(transitions=True)
    assert not set(TRANSITION_NODE_FEATURES) & set(default.representation.node_features)
    assert not set(TRANSITION_EDGE_FEATURES) & set(default.representation.edge_features)
    assert full.representation.node_features == RELATIVE_NODE_FEATURES
    assert full.representation.edge_features == RELATIVE_EDGE_FEATURES
    # the rest keeps its order, so the two representations differ only by the left-out columns
    assert default.representation.node_features == tuple(
        f for f in RELATIVE_NODE_FEATURES if f not in TRANSITION_NODE_FEATURES)
    assert default.fingerprint() != full.fingerprint()


def test_default_profile_graphs_match_the_full_ones_without_the_transition_columns():
    frames = periodic_capture(5, extra_ids=(0x7AB,), n_files=1)
    starts = window_starts(frames, SPEC)
    full_builder, _ = adapted_builder(frames)
    default_builder, _ = adapted_builder(frames, transitions=False)
    full, default = full_builder.features(frames, starts), default_builder.features(frames, starts)
    keep = [RELATIVE_NODE_FEATURES.index(f) for f in default_builder.node_features]
    keep_e = [RELATIVE_EDGE_FEATURES.index(f) for f in default_builder.edge_features]
    np.testing.assert_array_equal(default.x, full.x[:, keep])
    np.testing.assert_array_equal(default.edge_attr, full.edge_attr[:, keep_e])


def _one_id_capture(payload_of_frame, n: int, period: float = 0.02) -> Frames:
    """One periodic ID whose frame i carries ``payload_of_frame(i)``."""
    data = np.array([payload_of_frame(i) for i in range(n)], np.uint8)
    return Frames.from_columns(timestamp=1e9 + np.arange(n) * period, can_id=np.full(n, 0x123),
                               data=data, sources=["one.csv"])


def _surprise_of_window(reference: Frames, window: Frames) -> np.ndarray:
    """The byte-surprise columns of ``window`` (one 25-frame window) against ``reference``'s profile."""
    from fusioncore.adapt.features import STANDARDISED_NODE_FEATURES

    profile = VehicleProfile.fit(reference, source="one.csv")
    adapter = ProfileAdapter(warmup_s=1.0)
    builder = WindowGraphBuilder(IdVocabulary.fit(window), SPEC, representation=adapter.representation)
    builder = builder.with_reference(adapter.reference_table({"one.csv": profile}))
    graphs = builder.features(window, np.array([0]))
    cols = [builder.node_features.index(f) for f in STANDARDISED_NODE_FEATURES]
    return graphs.x[0, cols]


def test_byte_surprise_flags_a_garbled_byte_and_a_frozen_counter_but_not_a_noisy_byte():
    rng = np.random.default_rng(0)
    noisy = rng.random(400) < 0.5  # byte 2 changes in about half the frames
    noise = np.cumsum(noisy) % 200

    def benign(i):
        return [i % 16, 7, noise[i], 0, 0, 0, 0, 0]  # counter, constant, noisy byte

    reference = _one_id_capture(benign, 200)
    normal = _surprise_of_window(reference, _one_id_capture(lambda i: benign(200 + i), 25))
    assert np.all(np.abs(normal) < 1.5), normal
    # byte 1 turns random, the counter (byte 0) freezes, the noisy byte 2 goes quiet
    garbled = _one_id_capture(lambda i: [5, rng.integers(0, 256), 9, 0, 0, 0, 0, 0], 25)
    s = _surprise_of_window(reference, garbled)
    assert s[1] > 2.5  # a byte constant in 199 reference pairs changed in ~24 of 24
    assert s[0] < -2.5  # a counter that changed in every pair never changed
    # the same 0.5 drop in change share is no surprise on a byte that was noisy anyway
    assert abs(s[2]) < abs(s[0]) and abs(s[2]) < abs(s[1])
    assert np.all(s[3:] == pytest.approx(normal[3:]))


def test_byte_surprise_does_not_trust_a_reference_of_a_few_frames():
    # two reference frames: "this byte never changes" is one pair's evidence
    reference = _one_id_capture(lambda i: [0, 7, 0, 0, 0, 0, 0, 0], 2)
    window = _one_id_capture(lambda i: [0, i % 2, 0, 0, 0, 0, 0, 0], 25)
    few = _surprise_of_window(reference, window)[1]
    many = _surprise_of_window(_one_id_capture(lambda i: [0, 7, 0, 0, 0, 0, 0, 0], 300), window)[1]
    assert 0 < few < many


def test_normaliser_keeps_the_standardised_columns_as_they_are():
    from fusioncore.adapt.features import STANDARDISED_NODE_FEATURES
    from fusioncore.data.graphs import FeatureNormalizer

    frames = periodic_capture(7)
    builder, _ = adapted_builder(frames, transitions=False)
    norm = FeatureNormalizer.fit(builder, frames, window_starts(frames, SPEC))
    fixed = np.isin(np.asarray(builder.node_features, dtype=object), STANDARDISED_NODE_FEATURES)
    assert fixed.sum() == 8
    np.testing.assert_array_equal(norm.node_mean[fixed], 0.0)
    np.testing.assert_array_equal(norm.node_std[fixed], 1.0)
    assert np.all(norm.node_mean[~fixed] != 0.0) or np.any(norm.node_std[~fixed] != 1.0)


def test_profile_adapter_surprise_switch_removes_only_the_surprise_columns():
    from fusioncore.adapt.features import STANDARDISED_NODE_FEATURES

    on, off = ProfileAdapter(), ProfileAdapter(surprise=False)
    assert set(STANDARDISED_NODE_FEATURES) <= set(on.representation.node_features)
    assert off.representation.node_features == tuple(
        f for f in on.representation.node_features if f not in STANDARDISED_NODE_FEATURES)
    assert on.params()["surprise"] is True and off.params()["surprise"] is False
    assert on.fingerprint() != off.fingerprint()


def test_byte_surprise_caps_how_much_a_long_reference_is_trusted():
    """A signal byte that held still through the reference and then moves a little is drift, not failure."""
    from fusioncore.adapt.features import SURPRISE_REFERENCE_PAIRS

    def steady(i):
        return [i % 16, 7, 0, 0, 0, 0, 0, 0]

    def moved_once(i):
        return [i % 16, 7 + (i > 20), 0, 0, 0, 0, 0, 0]

    def garbage(i):
        return [i % 16, (37 * i) % 256, 0, 0, 0, 0, 0, 0]

    still = _one_id_capture(steady, 400)  # 399 pairs, byte 1 never moved
    drift = _surprise_of_window(still, _one_id_capture(moved_once, 25))
    garbled = _surprise_of_window(still, _one_id_capture(garbage, 25))
    # the same as from a reference of exactly SURPRISE_REFERENCE_PAIRS pairs
    short = _one_id_capture(steady, int(SURPRISE_REFERENCE_PAIRS) + 1)
    np.testing.assert_allclose(drift, _surprise_of_window(short, _one_id_capture(moved_once, 25)), rtol=1e-6)
    assert drift[1] < 1.0 < 2.5 < garbled[1]  # one change in 24 pairs vs 24 of 24
    # by hand: n = 10, p = 0.5 / 11, m = 24, k = 1, beta-binomial variance + 1
    p, m, n = 0.5 / 11, 24, 10
    z = (1 - m * p) / np.sqrt(m * p * (1 - p) * (n + 1 + m) / (n + 2) + 1)
    assert drift[1] == pytest.approx(np.arcsinh(z), rel=1e-6)
