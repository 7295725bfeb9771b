"""The seven simulated attacks, each a function ``(AttackContext) -> (Frames, AttackEvent)``.

An attack gets the benign traffic of a capture (time-sorted, before bus
serialisation, times in seconds from the capture start) and returns it with
frames injected, replaced or removed, plus an :class:`AttackEvent` saying
when and against which IDs it acted. Attack frames carry ``label = 1`` and
their attack-type code. Two attacks finish after bus serialisation, because
they are defined by what is *absent* from the bus (see
``fusioncore.data.synthetic.capture``): the silenced sender of
suppress / masquerade, and suppress's window labelling.

How long an attack runs is derived from a target share of attack frames
(a few percent to ~15 %), so every attack file has enough attack windows to
learn from without drowning the benign traffic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import attrs
import numpy as np

from fusioncore.data.frames import Frames, attack_type_code
from fusioncore.data.synthetic.drive import SIGNALS, Drive
from fusioncore.data.synthetic.traffic import (
    apply_checksum,
    encode_payload,
    read_counter,
    sample_signals,
    send_times,
)
from fusioncore.data.synthetic.vehicles import FieldKind, MessageSpec, VehicleSpec

__all__ = ["ATTACKS", "AttackContext", "AttackEvent", "inside_intervals"]

FLOOD_PERIOD_S = 0.0004  # ~2.5 k frames/s of ID 0x000: most of a 500 kbit/s bus
FUZZ_PERIOD_S = 0.001
SPOOF_PERIOD_S = 0.001
_FAILURES = ("stuck", "out_of_range", "garbage", "frozen_frame")


@attrs.frozen(eq=False)
class AttackContext:
    vehicle: VehicleSpec
    drive: Drive
    benign: Frames
    duration: float
    rng: np.random.Generator


@attrs.frozen
class AttackEvent:
    """What an attack did: ``intervals`` are ``[start, end)`` pairs in seconds.

    ``target_ids``: the genuine IDs attacked (spoofed, replayed, corrupted,
    suppressed, impersonated). ``silenced_ids``: IDs whose genuine sender is
    off the bus during the intervals. ``label_window``: every frame inside
    the intervals is an attack frame (suppress).
    """

    attack: str
    intervals: tuple[tuple[float, float], ...] = ()
    target_ids: tuple[int, ...] = ()
    silenced_ids: tuple[int, ...] = ()
    label_window: bool = False
    detail: str = ""


def inside_intervals(t: np.ndarray, intervals) -> np.ndarray:
    """Mask of times inside any of the sorted, disjoint ``[start, end)`` intervals."""
    if len(intervals) == 0:
        return np.zeros(len(t), bool)
    starts, ends = np.asarray(intervals, dtype=np.asarray(t).dtype).T
    slot = np.searchsorted(starts, t, side="right") - 1
    return (slot >= 0) & (t < ends[np.maximum(slot, 0)])


def _place_intervals(
    rng: np.random.Generator, duration: float, coverage: float, *, first: float = 0.1
) -> tuple[tuple[float, float], ...]:
    """3-5 disjoint intervals covering ``coverage`` of the capture, none before ``first``."""
    count = int(rng.integers(3, 6))
    lo, hi = first * duration, 0.97 * duration
    total = min(coverage * duration, 0.9 * (hi - lo))
    lengths = rng.dirichlet(np.full(count, 4.0)) * total
    gaps = rng.dirichlet(np.ones(count + 1)) * (hi - lo - total)
    starts = lo + np.cumsum(gaps[:-1]) + np.concatenate(([0.0], np.cumsum(lengths[:-1])))
    return tuple((float(s), float(s + n)) for s, n in zip(starts, lengths))


def _coverage(
    rng: np.random.Generator, attack_rate: float, benign_rate: float, share=(0.05, 0.15)
) -> float:
    """Share of the capture's time an attack must run for its frames to be ``share`` of all."""
    target = rng.uniform(*share)
    return target * benign_rate / (attack_rate * (1 - target))


def _injected(attack: str, t, can_id, data, dlc=8) -> Frames:
    n = len(t)
    return Frames.from_columns(
        timestamp=t,
        can_id=np.broadcast_to(np.asarray(can_id, np.uint32), (n,)),
        dlc=np.broadcast_to(np.asarray(dlc, np.uint8), (n,)),
        data=np.broadcast_to(np.asarray(data, np.uint8), (n, 8)),
        label=np.ones(n, np.uint8),
        attack_type=np.full(n, attack_type_code(attack), np.uint8),
    )


def _periodic(rng, intervals, period: float) -> np.ndarray:
    """An injection tool's send times: a fixed period with slight jitter, per interval."""
    parts = [np.arange(s, e, period) for s, e in intervals]
    t = np.concatenate(parts) if parts else np.zeros(0)
    return t + rng.uniform(0, 0.1 * period, len(t))


def _fast_signal_messages(vehicle: VehicleSpec, max_period: float) -> list[MessageSpec]:
    return [m for m in vehicle.messages if m.period_s <= max_period and m.signals]


def _merge(benign: Frames, *extra: Frames) -> Frames:
    merged = Frames.concat([benign, *extra])
    return merged.take(np.lexsort((merged.can_id, merged.timestamp)))


def _signal_range(message: MessageSpec, name: str) -> tuple[float, float]:
    """Physical values the field can encode: ``[lowest, highest]``."""
    field = next(f for f in message.fields if f.signal == name)
    coding = SIGNALS[name]
    top = ((1 << (8 * coding.width)) - 1) * coding.resolution * field.coarsen
    return coding.offset, coding.offset + top


# ----------------------------------------------------------------- attacks
def flooding(ctx: AttackContext) -> tuple[Frames, AttackEvent]:
    """ID 0x000 with an all-zero payload, as fast as the tool can send."""
    rate = 1 / FLOOD_PERIOD_S
    intervals = _place_intervals(
        ctx.rng, ctx.duration, _coverage(ctx.rng, rate, ctx.vehicle.nominal_rate)
    )
    t = _periodic(ctx.rng, intervals, FLOOD_PERIOD_S)
    attack = _injected("flooding", t, 0x000, np.zeros(8, np.uint8))
    return _merge(ctx.benign, attack), AttackEvent("flooding", intervals, (0x000,))


def fuzzing(ctx: AttackContext) -> tuple[Frames, AttackEvent]:
    """Uniformly random 11-bit IDs with random 8-byte payloads."""
    rate = 1 / FUZZ_PERIOD_S
    intervals = _place_intervals(
        ctx.rng, ctx.duration, _coverage(ctx.rng, rate, ctx.vehicle.nominal_rate)
    )
    t = _periodic(ctx.rng, intervals, FUZZ_PERIOD_S)
    ids = ctx.rng.integers(0, 0x800, len(t))
    data = ctx.rng.integers(0, 256, (len(t), 8)).astype(np.uint8)
    return _merge(ctx.benign, _injected("fuzzing", t, ids, data)), AttackEvent("fuzzing", intervals)


def spoofing(ctx: AttackContext) -> tuple[Frames, AttackEvent]:
    """A genuine ID, one forged frame repeated fast: its first signal pinned to a chosen value.

    The attacker knows the checksum but not the counter (it is frozen), and
    sends far faster than the owner so receivers mostly see the forgery.
    """
    rng = ctx.rng
    candidates = _fast_signal_messages(ctx.vehicle, 0.02)
    message = candidates[int(rng.integers(len(candidates)))]
    signal = message.signals[0]
    lo, hi = _signal_range(message, signal)
    rate = 1 / SPOOF_PERIOD_S
    intervals = _place_intervals(rng, ctx.duration, _coverage(rng, rate, ctx.vehicle.nominal_rate))
    parts = []
    for s, e in intervals:
        t = _periodic(rng, [(s, e)], SPOOF_PERIOD_S)
        values = sample_signals(message, ctx.drive, np.array([s]))
        values[signal] = np.array([rng.uniform(lo, lo + 0.6 * (hi - lo))])
        counter = rng.integers(0, 256, 1)
        payload = encode_payload(message, values, counter, ctx.vehicle.checksum)[0]
        parts.append(_injected("spoofing", t, message.can_id, payload, message.dlc))
    event = AttackEvent("spoofing", intervals, (message.can_id,), detail=f"{signal} forged")
    return _merge(ctx.benign, *parts), event


def replay(ctx: AttackContext) -> tuple[Frames, AttackEvent]:
    """Frames of a few fast IDs recorded earlier in the same drive, sent again.

    Payloads are genuine, so only context gives them away: the IDs run at
    twice their rate, counters jump back, signals disagree with other IDs.
    """
    rng, benign = ctx.rng, ctx.benign
    pool = [m for m in ctx.vehicle.messages if m.period_s <= 0.05 and m.dlc > 0]
    chosen = [pool[i] for i in np.sort(rng.choice(len(pool), int(rng.integers(3, 6)), False))]
    ids = np.array([m.can_id for m in chosen], np.uint32)
    rate = sum(1 / m.period_s for m in chosen)
    coverage = min(_coverage(rng, rate, ctx.vehicle.nominal_rate), 0.45)
    # Recordings end before their replay starts: no interval longer than the time before it.
    placed = _place_intervals(rng, ctx.duration, coverage, first=0.35)
    intervals = tuple((s, min(e, 2 * s)) for s, e in placed)
    is_target = np.isin(benign.can_id, ids)
    parts = []
    for s, e in intervals:
        source = rng.uniform(0.0, s - (e - s))
        mask = is_target & (benign.timestamp >= source) & (benign.timestamp < source + (e - s))
        recorded = benign.take(mask)
        parts.append(
            attrs.evolve(
                recorded,
                timestamp=recorded.timestamp + (s - source),
                label=np.ones(len(recorded), np.uint8),
                attack_type=np.full(len(recorded), attack_type_code("replay"), np.uint8),
            )
        )
    return _merge(benign, *parts), AttackEvent("replay", intervals, tuple(int(i) for i in ids))


def malfunction(ctx: AttackContext) -> tuple[Frames, AttackEvent]:
    """One or two fast IDs go wrong at their normal period; their frames are replaced.

    Per interval one failure mode: ``stuck`` (a signal freezes),
    ``out_of_range`` (a signal saturates at its top value), ``garbage`` (signal
    bytes turn random) or ``frozen_frame`` (the interval's first payload
    repeats, counter included).
    """
    rng, benign = ctx.rng, ctx.benign
    candidates = _fast_signal_messages(ctx.vehicle, 0.02)
    count = 1 if rng.random() < 0.5 else 2
    targets = [candidates[i] for i in np.sort(rng.choice(len(candidates), count, False))]
    rate = sum(1 / m.period_s for m in targets)
    coverage = min(_coverage(rng, rate, ctx.vehicle.nominal_rate, (0.03, 0.10)), 0.6)
    intervals = _place_intervals(rng, ctx.duration, coverage)
    data, label = benign.data.copy(), benign.label.copy()
    attack_type = benign.attack_type.copy()
    modes = []
    for (s, e), mode in zip(intervals, rng.choice(_FAILURES, len(intervals))):
        modes.append(str(mode))
        window = (benign.timestamp >= s) & (benign.timestamp < e)
        for message in targets:
            rows = np.flatnonzero(window & (benign.can_id == message.can_id))
            if len(rows):
                data[rows] = _corrupt(str(mode), message, data[rows], ctx.vehicle.checksum, rng)
                label[rows], attack_type[rows] = 1, attack_type_code("malfunction")
    frames = attrs.evolve(benign, data=data, label=label, attack_type=attack_type)
    ids = tuple(m.can_id for m in targets)
    return frames, AttackEvent("malfunction", intervals, ids, detail=",".join(modes))


def _corrupt(mode: str, message: MessageSpec, data: np.ndarray, checksum: str, rng) -> np.ndarray:
    """The payloads a failing sender emits instead of ``data`` (rows of one interval)."""
    if mode == "frozen_frame":
        return np.broadcast_to(data[0], data.shape).copy()
    field = next(f for f in message.fields if f.kind is FieldKind.SIGNAL)
    cols = slice(field.byte, field.byte + field.width)
    out = data.copy()
    if mode == "stuck":
        out[:, cols] = data[0, cols]
    elif mode == "garbage":
        out[:, cols] = rng.integers(0, 256, (len(out), field.width))
    else:  # out_of_range: the raw value saturates
        out[:, cols] = 0xFF
    apply_checksum(out, message, checksum)
    return out


def _impersonate(
    ctx: AttackContext, intervals, message: MessageSpec, attack: str
) -> list[Frames]:
    """Frames an attacker sends in place of a silenced ``message``: right ID, period, counter.

    Its first signal is forged with the real drive's value from another
    moment, so each frame is plausible on its own and wrong only against the
    rest of the bus.
    """
    rng, benign = ctx.rng, ctx.benign
    own = benign.take(benign.can_id == message.can_id)
    signal = message.signals[0]
    parts = []
    for s, e in intervals:
        nxt = np.searchsorted(own.timestamp, s)
        first = own.timestamp[nxt] if nxt < len(own) else s
        drift, jitter = float(rng.normal(0, 400)), 2.5 * message.jitter_s
        t = send_times(message, rng, s, e, first=first, drift_ppm=drift, jitter_s=jitter)
        last = read_counter(own.data[max(nxt - 1, 0) : nxt], message)
        start = int(last[0]) + 1 if last is not None and len(last) else int(rng.integers(256))
        values = sample_signals(message, ctx.drive, t)
        shift = rng.uniform(10.0, 30.0) * rng.choice([-1, 1])
        values[signal] = ctx.drive.sample(signal, np.abs(t + shift) % ctx.duration)
        counter = start + np.arange(len(t))
        payload = encode_payload(message, values, counter, ctx.vehicle.checksum)
        parts.append(_injected(attack, t, message.can_id, payload, message.dlc))
    return parts


def masquerade(ctx: AttackContext) -> tuple[Frames, AttackEvent]:
    """The owner of a fast ID is silenced and an attacker sends it in its place."""
    rng = ctx.rng
    candidates = _fast_signal_messages(ctx.vehicle, 0.02)
    message = candidates[int(rng.integers(len(candidates)))]
    rate = 1 / message.period_s
    coverage = min(_coverage(rng, rate, ctx.vehicle.nominal_rate, (0.03, 0.08)), 0.6)
    intervals = _place_intervals(rng, ctx.duration, coverage)
    parts = _impersonate(ctx, intervals, message, "masquerade")
    ids = (message.can_id,)
    return _merge(ctx.benign, *parts), AttackEvent(
        "masquerade", intervals, ids, silenced_ids=ids, detail=f"{message.signals[0]} forged"
    )


def suppress(ctx: AttackContext) -> tuple[Frames, AttackEvent]:
    """A fast ID's sender goes silent; nothing is injected (labelling: see the package docs)."""
    rng = ctx.rng
    candidates = [m for m in ctx.vehicle.messages if m.period_s <= 0.05]
    message = candidates[int(rng.integers(len(candidates)))]
    intervals = _place_intervals(rng, ctx.duration, rng.uniform(0.06, 0.15))
    ids = (message.can_id,)
    event = AttackEvent("suppress", intervals, ids, silenced_ids=ids, label_window=True)
    return ctx.benign, event


ATTACKS: Mapping[str, Callable[[AttackContext], tuple[Frames, AttackEvent]]] = {
    "flooding": flooding,
    "fuzzing": fuzzing,
    "spoofing": spoofing,
    "replay": replay,
    "malfunction": malfunction,
    "suppress": suppress,
    "masquerade": masquerade,
}
