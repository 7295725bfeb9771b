"""Windowing (start rows, labels) and the CAN-ID vocabulary."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusioncore.data.frames import ATTACK_TYPES, Frames
from fusioncore.data.vocab import IdVocabulary, per_id_intervals
from fusioncore.data.windows import WindowSpec, validate_starts, window_labels, window_starts
from fusioncore.errors import ConfigError

UNKNOWN = ATTACK_TYPES.index("unknown")
FLOODING = ATTACK_TYPES.index("flooding")
FUZZING = ATTACK_TYPES.index("fuzzing")


def make_frames(lengths, *, can_id=None, timestamp=None, label=None, attack_type=None) -> Frames:
    """Frames of consecutive files with the given lengths (other columns simple defaults)."""
    n = sum(lengths)
    if n == 0:
        # Frames.from_columns cannot reshape zero rows yet; slice an empty view instead.
        return make_frames([1])[:0]
    return Frames.from_columns(
        timestamp=np.arange(n, dtype=float) * 0.01 if timestamp is None else timestamp,
        can_id=np.zeros(n) if can_id is None else can_id,
        data=np.zeros((n, 8)),
        label=label,
        attack_type=attack_type,
        source=np.repeat(np.arange(len(lengths)), lengths),
        sources=[f"file{i}.csv" for i in range(len(lengths))],
    )


# ------------------------------------------------------------------ windows
def test_window_spec_rejects_non_positive_sizes():
    with pytest.raises(ConfigError, match="size"):
        WindowSpec(size=0)
    with pytest.raises(ConfigError, match="stride"):
        WindowSpec(size=10, stride=0)


def test_window_starts_restart_at_each_file_and_drop_partial_windows():
    frames = make_frames([250, 130, 40])
    assert window_starts(frames, WindowSpec(100, 100)).tolist() == [0, 100, 250]
    assert window_starts(frames, WindowSpec(100, 50)).tolist() == [0, 50, 100, 150, 250]
    assert window_starts(frames, WindowSpec(40, 1000)).tolist() == [0, 250, 380]
    assert window_starts(make_frames([]), WindowSpec()).dtype == np.int64
    assert window_starts(make_frames([]), WindowSpec()).size == 0


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 40), max_size=5),
    size=st.integers(1, 12),
    stride=st.integers(1, 12),
)
def test_window_starts_match_a_loop_and_never_cross_files(lengths, size, stride):
    frames = make_frames(lengths)
    expected, offset = [], 0
    for length in lengths:
        expected += [offset + k for k in range(0, length - size + 1, stride)]
        offset += length
    starts = window_starts(frames, WindowSpec(size, stride))
    assert starts.tolist() == expected
    for s in starts:
        assert len(set(frames.source[s : s + size].tolist())) == 1


def test_window_starts_keep_stored_order_when_time_goes_backwards():
    t = np.array([5.0, 6.0, 1.0, 2.0, 3.0, 4.0])
    frames = make_frames([6], timestamp=t)
    assert window_starts(frames, WindowSpec(2, 2)).tolist() == [0, 2, 4]


def test_validate_starts_rejects_windows_outside_frames_or_across_files():
    frames = make_frames([10, 10])
    assert validate_starts(frames, np.array([0, 10], np.int32), 10).dtype == np.int64
    with pytest.raises(ConfigError, match="leave the 20 frames"):
        validate_starts(frames, np.array([15]), 10)
    with pytest.raises(ConfigError, match="leave"):
        validate_starts(frames, np.array([-1]), 10)
    with pytest.raises(ConfigError, match=r"straddle two source files.*row 5 \('file0.csv'\)"):
        validate_starts(frames, np.array([0, 5]), 10)
    with pytest.raises(ConfigError, match="integer"):
        validate_starts(frames, np.array([0.0]), 10)


# ------------------------------------------------------------------- labels
def test_window_labels_any_attack_and_majority_type():
    label = np.zeros(12, np.uint8)
    kind = np.zeros(12, np.uint8)
    # window 0 (rows 0-3): benign rows tagged with the file's type do not count
    kind[0:4] = FUZZING
    # window 1 (rows 4-7): 1 flooding, 2 fuzzing attack frames -> fuzzing
    label[[4, 5, 6]] = 1
    kind[[4, 5, 6]] = [FLOODING, FUZZING, FUZZING]
    kind[7] = FLOODING  # benign row, ignored
    # window 2 (rows 8-11): a tie goes to the smaller code
    label[[8, 9]] = 1
    kind[[8, 9]] = [FUZZING, FLOODING]
    frames = make_frames([12], label=label, attack_type=kind)
    y, kinds = window_labels(frames, np.array([0, 4, 8]), 4)
    assert y.tolist() == [0, 1, 1]
    assert kinds.tolist() == [0, FUZZING, FLOODING]
    assert y.dtype == kinds.dtype == np.uint8


def test_window_labels_untyped_attack_is_unknown_and_overlaps_are_counted():
    label = np.array([0, 0, 1, 0, 0, 0], np.uint8)
    frames = make_frames([6], label=label, attack_type=np.zeros(6, np.uint8))
    y, kinds = window_labels(frames, np.array([0, 1, 2, 3]), 3)
    assert y.tolist() == [1, 1, 1, 0]
    assert kinds.tolist() == [UNKNOWN, UNKNOWN, UNKNOWN, 0]


def test_window_labels_on_no_windows():
    y, kinds = window_labels(make_frames([5]), np.zeros(0, np.int64), 3)
    assert y.shape == kinds.shape == (0,)


# ------------------------------------------------------------- vocabulary
def vocab_frames() -> Frames:
    #            file 0 ------------------------------  file 1 -----------
    ids = np.array([0x10, 0x20, 0x10, 0x20, 0x10, 0x666, 0x10, 0x30, 0x10, 0x10])
    t = np.array([0.0, 0.001, 0.010, 0.011, 0.030, 0.031, 0.5, 0.6, 0.4, 0.44])
    label = np.zeros(10, np.uint8)
    label[5] = 1  # 0x666 only ever appears as an attack frame
    return make_frames([6, 4], can_id=ids, timestamp=t, label=label)


def test_vocabulary_is_fitted_on_benign_frames_with_unknown_slot_zero():
    vocab = IdVocabulary.fit(vocab_frames())
    assert vocab.ids.tolist() == [0x10, 0x20, 0x30]
    assert len(vocab) == vocab.size == 4
    assert vocab.count.tolist() == [0, 6, 2, 1]
    with_attacks = IdVocabulary.fit(vocab_frames(), benign_only=False)
    assert 0x666 in with_attacks.ids.tolist()
    assert IdVocabulary.fit(vocab_frames(), min_count=2).ids.tolist() == [0x10, 0x20]


def test_vocabulary_period_is_the_median_interval_within_each_file():
    vocab = IdVocabulary.fit(vocab_frames())
    # 0x10: file 0 gaps 0.010, 0.020; file 1 gaps 0.4-0.5 -> clipped to 0, then 0.04.
    # No gap is taken across the file boundary (0.030 -> 0.5).
    np.testing.assert_allclose(vocab.period[1], np.median([0.010, 0.020, 0.0, 0.04]))
    np.testing.assert_allclose(vocab.period[2], 0.010)
    assert np.isnan(vocab.period[3])  # 0x30 seen once: no interval
    assert np.isnan(vocab.period[0])  # the unknown slot
    ids, gaps = per_id_intervals(vocab_frames())
    assert (gaps >= 0).all()
    assert sorted(ids.tolist()) == [0x10, 0x10, 0x10, 0x10, 0x20]


def test_lookup_maps_unseen_ids_to_zero_without_errors():
    vocab = IdVocabulary.fit(vocab_frames())
    query = np.array([0x10, 0x0, 0x30, 0x31, 0x1FFFFFFF, 0x20, 0x666], np.uint32)
    out = vocab.lookup(query)
    assert out.dtype == np.int64
    assert out.tolist() == [1, 0, 3, 0, 0, 2, 0]
    empty = IdVocabulary.fit(make_frames([0]))
    assert len(empty) == 1
    assert empty.lookup(query).tolist() == [0] * len(query)


def test_vocabulary_round_trips_through_npz_without_pickle():
    vocab = IdVocabulary.fit(vocab_frames())
    buf = io.BytesIO()
    np.savez(buf, **vocab.to_arrays(), allow_pickle=False)
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as z:
        loaded = IdVocabulary.from_arrays(z)
    assert loaded.fingerprint() == vocab.fingerprint()
    np.testing.assert_array_equal(loaded.period, vocab.period)
    other = IdVocabulary.fit(vocab_frames(), benign_only=False)
    assert other.fingerprint() != vocab.fingerprint()


def test_vocabulary_rejects_inconsistent_arrays():
    with pytest.raises(ConfigError, match="strictly increasing"):
        IdVocabulary(ids=[3, 2], count=[0, 1, 1], period=[np.nan, 1, 1])
    with pytest.raises(ConfigError, match="need 3 entries"):
        IdVocabulary(ids=[1, 2], count=[1, 1], period=[np.nan, 1, 1])


def test_labels_and_validation_work_across_internal_chunks(monkeypatch):
    import fusioncore.data.windows as windows

    rng = np.random.default_rng(1)
    label = (rng.random(300) < 0.1).astype(np.uint8)
    frames = make_frames([170, 130], label=label, attack_type=label * FLOODING)
    starts = window_starts(frames, WindowSpec(10, 7))
    whole = window_labels(frames, starts, 10)
    monkeypatch.setattr(windows, "_CHUNK", 4)
    chunked = window_labels(frames, starts, 10)
    np.testing.assert_array_equal(whole[0], chunked[0])
    np.testing.assert_array_equal(whole[1], chunked[1])
    assert 0 < whole[0].sum() < len(starts)
    with pytest.raises(ConfigError, match="1 window"):
        validate_starts(frames, np.concatenate([starts[:9], [165]]), 10)


def test_11_and_29_bit_ids_with_the_same_value_are_different_entries():
    """Issue 13: the 11-bit and the 29-bit ID 0x100 used to share one vocabulary slot."""
    ids = np.array([0x100, 0x100, 0x100, 0x200, 0x100, 0x100])
    ext = np.array([False, True, False, False, True, False])
    frames = Frames.from_columns(timestamp=np.arange(6) * 0.01, can_id=ids, extended=ext,
                                 data=np.zeros((6, 8)))
    vocab = IdVocabulary.fit(frames)
    assert len(vocab) == 4  # unknown slot + 0x100 (11-bit) + 0x200 + 0x100 (29-bit)
    assert vocab.lookup([0x100, 0x100], extended=[False, True]).tolist() == [1, 3]
    assert vocab.lookup([0x1FFFFFFF]).tolist() == [0]  # the format is inferred from the value
    # periods are taken per identifier: 11-bit 0x100 at rows 0, 2, 5 -> 0.02, 0.03; 29-bit at 1, 4 -> 0.03
    np.testing.assert_allclose(vocab.period[1:], [0.025, np.nan, 0.03])
    from fusioncore.data.graph_features import compute_window_graphs

    graphs = compute_window_graphs(frames, np.array([0]), 6, vocab)
    assert graphs.can_id.tolist() == [0x100, 0x200, 0x100]
    assert graphs.extended.tolist() == [False, False, True]
    assert graphs.node_id.tolist() == [1, 2, 3]
