"""Anomaly injection into copies of benign windows: each kind does what it says, and only that."""

from __future__ import annotations

import numpy as np
import pytest

from fusioncore.data.frames import Frames, attack_type_code
from fusioncore.data.inject import INJECTION_KINDS, InjectionSpec, inject_anomalies
from fusioncore.data.windows import WindowSpec, validate_starts, window_labels, window_starts
from fusioncore.errors import ConfigError

W = 100
PERIODS = {0x100: 0.010, 0x200: 0.020, 0x300: 0.050, 0x400: 0.005}


def _traffic(seconds: float = 30.0, seed: int = 0, source: int = 0) -> Frames:
    """Periodic IDs with a counter in byte 0 and a slowly moving value in byte 1."""
    rng = np.random.default_rng(seed)
    parts = []
    for can_id, period in PERIODS.items():
        t = np.arange(0, seconds, period) + rng.uniform(0, period)
        data = np.zeros((len(t), 8), np.uint8)
        data[:, 0] = np.arange(len(t)) % 256
        data[:, 1] = (64 + 20 * np.sin(t)).astype(np.uint8)
        parts.append((t, np.full(len(t), can_id), data))
    t = np.concatenate([p[0] for p in parts])
    order = np.argsort(t, kind="stable")
    return Frames.from_columns(
        timestamp=t[order], can_id=np.concatenate([p[1] for p in parts])[order],
        data=np.concatenate([p[2] for p in parts])[order], dlc=np.full(len(t), 8),
        source=np.full(len(t), source), sources=["a.csv", "b.csv"],
    )


@pytest.fixture(scope="module")
def block():
    frames = Frames.concat([_traffic(seed=0, source=0), _traffic(seed=1, source=1)])
    starts = window_starts(frames, WindowSpec(W, W))
    return frames, starts


def _inject(block, kind: str, share: float = 1.0, seed: int = 0):
    frames, starts = block
    return inject_anomalies(frames, starts, W, InjectionSpec(share=share, kinds=[kind], seed=seed))


def _window(frames: Frames, start: int) -> Frames:
    return frames.take(slice(int(start), int(start) + W))


@pytest.mark.parametrize("kind", list(INJECTION_KINDS))
def test_every_injected_window_is_a_labelled_valid_window(block, kind):
    out = _inject(block, kind)
    assert len(out) > 0.8 * len(block[1])
    validate_starts(out.frames, out.starts, W)  # each window whole, inside one source file
    labels, types = window_labels(out.frames, out.starts, W)
    assert labels.all() and (types == attack_type_code(INJECTION_KINDS[kind])).all()
    assert np.isin(out.target_id, list(PERIODS)).all() and (out.kind == 0).all()


def test_same_seed_same_windows_other_seed_differs(block):
    a, b, c = (_inject(block, "payload", seed=s) for s in (3, 3, 4))
    assert a.frames.fingerprint() == b.frames.fingerprint()
    assert a.frames.fingerprint() != c.frames.fingerprint()


def test_payload_changes_bytes_of_the_target_only_from_the_onset(block):
    frames, _ = block
    out = _inject(block, "payload")
    for i in range(len(out)):
        new, old = _window(out.frames, out.starts[i]), _window(frames, out.origin[i])
        np.testing.assert_array_equal(new.can_id, old.can_id)  # same frames, same order, same times
        np.testing.assert_array_equal(new.timestamp, old.timestamp)
        changed = (new.data != old.data).any(axis=1)
        assert (new.can_id[changed] == out.target_id[i]).all()
        assert not changed[new.label == 0].any()  # only labelled frames are altered
        onset = int(np.argmax(new.label))
        assert (new.can_id[onset:][new.label[onset:] == 1] == out.target_id[i]).all()


def test_timing_sends_the_target_faster_with_genuine_payloads(block):
    frames, _ = block
    out = _inject(block, "timing")
    for i in range(len(out)):
        new, old = _window(out.frames, out.starts[i]), _window(frames, out.origin[i])
        target = out.target_id[i]
        assert np.all(np.diff(new.timestamp) >= 0)  # the bus order
        assert (new.can_id == target).sum() > (old.can_id == target).sum()
        extra = new.label == 1
        assert (new.can_id[extra] == target).all()
        # copies repeat payloads the owner really sent
        own = {bytes(row) for row in frames.data[frames.can_id == target]}
        assert all(bytes(row) in own for row in new.data[extra])


def test_spoof_copies_carry_a_forged_payload(block):
    out = _inject(block, "spoof")
    frames, _ = block
    forged = 0
    for i in range(len(out)):
        new = _window(out.frames, out.starts[i])
        own = {bytes(row) for row in frames.data[frames.can_id == out.target_id[i]]}
        forged += sum(bytes(row) not in own for row in new.data[new.label == 1])
    assert forged > 0.5 * (out.frames.label == 1).sum()


def test_silence_removes_the_target_after_the_onset(block):
    out = _inject(block, "silence")
    for i in range(len(out)):
        new = _window(out.frames, out.starts[i])
        onset = int(np.argmax(new.label))
        assert not (new.can_id[onset:] == out.target_id[i]).any()
        assert (new.label[onset:] == 1).all() and (new.label[:onset] == 0).all()


def test_masquerade_keeps_id_and_timing_and_takes_payloads_from_the_same_id(block):
    frames, _ = block
    out = _inject(block, "masquerade")
    moved = 0
    for i in range(len(out)):
        new, old = _window(out.frames, out.starts[i]), _window(frames, out.origin[i])
        np.testing.assert_array_equal(new.timestamp, old.timestamp)
        np.testing.assert_array_equal(new.can_id, old.can_id)
        target = out.target_id[i]
        own = {bytes(row) for row in frames.data[frames.can_id == target]}
        assert all(bytes(row) in own for row in new.data[new.label == 1])
        moved += int((new.data != old.data).any(axis=1).sum())
    assert moved > 0


@pytest.mark.parametrize("kind", ["silence", "timing", "masquerade"])
def test_nothing_outside_the_block_is_read(block, kind):
    """Rows after the block (the validation block, say) never reach an injected window."""
    frames, starts = block
    marked = frames.data.copy()
    in_block = np.zeros(len(frames), bool)
    chosen = starts[: len(starts) // 3]  # the block; what follows it is off limits
    in_block[(chosen[:, None] + np.arange(W)).ravel()] = True
    marked[~in_block] = 0xEE  # a payload no block frame carries
    frames = Frames(**{**frames._columns(), "data": marked}, sources=frames.sources)
    out = inject_anomalies(frames, chosen, W, InjectionSpec(share=1.0, kinds=[kind], seed=0),
                           in_block=in_block)
    assert len(out) > 0
    assert not (out.frames.data == 0xEE).all(axis=1).any()


def test_bad_specs_are_config_errors():
    with pytest.raises(ConfigError, match="kinds"):
        InjectionSpec(kinds=["teleport"])
    with pytest.raises(ConfigError, match="share"):
        InjectionSpec(share=-1)
