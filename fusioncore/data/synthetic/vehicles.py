"""The simulated fleet: which messages each vehicle sends and how payloads are laid out.

Two "platforms" (think: two manufacturers) each define a message catalogue.
``sedan`` and ``suv`` are built on platform A and share its core powertrain /
chassis messages plus a random part of its other messages; ``van`` is built on
platform B, which reuses a few of A's ID numbers for unrelated messages and
uses an XOR checksum instead of a byte sum. So known vehicles overlap
strongly, and the unknown vehicle looks familiar only in places.
"""

from __future__ import annotations

import enum
import zlib
from collections.abc import Sequence

import attrs
import numpy as np

from fusioncore.data.synthetic.drive import SIGNALS

__all__ = [
    "FieldKind",
    "MessageSpec",
    "PayloadField",
    "VehicleSpec",
    "build_fleet",
]

KNOWN_VEHICLES: tuple[str, ...] = ("sedan", "suv")
UNKNOWN_VEHICLES: tuple[str, ...] = ("van",)


class FieldKind(enum.Enum):
    CONST = "const"
    COUNTER = "counter"
    SIGNAL = "signal"
    CHECKSUM = "checksum"


@attrs.frozen
class PayloadField:
    """One field of a payload starting at byte ``byte``.

    ``SIGNAL``: ``signal`` encoded with :data:`SIGNALS` at ``coarsen`` times
    its base resolution. ``COUNTER``: a rolling counter of ``bits`` (4 or 8)
    bits; a 4-bit counter sits in the low nibble, ``value`` in the high one.
    ``CONST``: the byte ``value``. ``CHECKSUM``: over every other payload byte.
    """

    kind: FieldKind
    byte: int
    signal: str = ""
    coarsen: int = 1
    bits: int = 8
    value: int = 0

    @property
    def width(self) -> int:
        return SIGNALS[self.signal].width if self.kind is FieldKind.SIGNAL else 1


@attrs.frozen
class MessageSpec:
    """A periodic message: its ID, timing (period, jitter, clock drift) and layout."""

    can_id: int
    period_s: float
    dlc: int
    fields: tuple[PayloadField, ...]
    jitter_s: float = 2e-4  # std of the send time (the sender's task scheduling)
    drift_ppm: float = 0.0  # the sending ECU's clock error

    @property
    def signals(self) -> tuple[str, ...]:
        return tuple(f.signal for f in self.fields if f.kind is FieldKind.SIGNAL)

    @property
    def counter(self) -> PayloadField | None:
        return next((f for f in self.fields if f.kind is FieldKind.COUNTER), None)


@attrs.frozen
class VehicleSpec:
    """A vehicle: its messages (sorted by ID), checksum algorithm and bus bit rate."""

    name: str
    messages: tuple[MessageSpec, ...]
    checksum: str = attrs.field(validator=attrs.validators.in_(("sum", "xor")))
    bitrate: int = 500_000

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(m.can_id for m in self.messages)

    @property
    def nominal_rate(self) -> float:
        """Benign frames per second."""
        return float(sum(1.0 / m.period_s for m in self.messages))

    def message(self, can_id: int) -> MessageSpec:
        for m in self.messages:
            if m.can_id == can_id:
                return m
        raise KeyError(f"vehicle {self.name!r} sends no ID 0x{can_id:03X}")


# Core messages every vehicle of a platform sends: (signals, period in s, has counter).
_CORE: tuple[tuple[tuple[str, ...], float, bool], ...] = (
    (("rpm", "torque", "throttle"), 0.010, True),
    (("speed", "accel", "gear"), 0.020, True),
    (("wheel_fl", "wheel_fr", "wheel_rl", "wheel_rr"), 0.020, False),
    (("steering", "yaw_rate", "lat_accel"), 0.020, True),
    (("brake", "lights"), 0.050, True),
    ((), 0.100, False),  # network-management heartbeat, DLC 0
)
_EXTRA_PERIODS = np.array([0.05, 0.1, 0.2, 0.5, 1.0])
_EXTRA_PERIOD_WEIGHTS = np.array([0.10, 0.30, 0.25, 0.20, 0.15])
# IDs 0x000 (flooding) and the diagnostic range stay free of benign traffic.
_ID_RANGE = (0x040, 0x7D0)


def _name_key(name: str) -> int:
    return zlib.crc32(name.encode())


def _layout(
    rng: np.random.Generator,
    dlc: int,
    signals: Sequence[str],
    *,
    counter: bool,
    checksum: bool,
    const_bias: float = 0.0,
) -> tuple[PayloadField, ...]:
    """Place signals from byte 0, then a counter and a checksum at the end, constants between."""
    fields: list[PayloadField] = []
    end = dlc
    if checksum and dlc >= 3:
        end -= 1
        fields.append(PayloadField(FieldKind.CHECKSUM, end))
    if counter and dlc >= 2:
        end -= 1
        bits = 4 if rng.random() < 0.6 else 8
        high = int(rng.integers(0, 16)) if bits == 4 and rng.random() < 0.5 else 0
        fields.append(PayloadField(FieldKind.COUNTER, end, bits=bits, value=high))
    byte = 0
    for name in signals:
        width = SIGNALS[name].width
        if byte + width > end:
            break
        coarsen = int(rng.choice([1, 1, 2, 4])) if width == 2 else 1
        fields.append(PayloadField(FieldKind.SIGNAL, byte, signal=name, coarsen=coarsen))
        byte += width
    for b in range(byte, end):
        r = rng.random()
        if r < 0.5 + const_bias:
            value = 0
        elif r < 0.65 + const_bias:
            value = 0xFF
        else:
            value = int(rng.integers(0, 256))
        fields.append(PayloadField(FieldKind.CONST, b, value=value))
    return tuple(sorted(fields, key=lambda f: f.byte))


def _timing(rng: np.random.Generator) -> dict[str, float]:
    return {"jitter_s": float(rng.uniform(5e-5, 6e-4)), "drift_ppm": float(rng.normal(0, 60))}


def _extra_message(rng: np.random.Generator, can_id: int, period: float) -> MessageSpec:
    dlc = 8 if rng.random() < 0.65 else int(rng.integers(1, 8))
    pool = list(SIGNALS)
    n_signals = int(rng.integers(0, 4))
    signals = [str(s) for s in rng.choice(pool, size=n_signals, replace=False)]
    slow = period >= 0.5
    return MessageSpec(
        can_id,
        period,
        dlc,
        _layout(
            rng,
            dlc,
            signals,
            counter=rng.random() < (0.2 if slow else 0.6),
            checksum=rng.random() < 0.5,
            const_bias=0.2 if slow else 0.0,
        ),
        **_timing(rng),
    )


def _platform(
    rng: np.random.Generator, n_extra: int
) -> tuple[list[MessageSpec], list[MessageSpec]]:
    """Core and extra messages of one platform; lower IDs get the shorter periods."""
    ids = np.sort(rng.choice(np.arange(*_ID_RANGE), size=len(_CORE) + n_extra, replace=False))
    core_slots = np.sort(rng.choice(12, size=len(_CORE), replace=False))
    core_ids = ids[core_slots]
    extra_ids = np.delete(ids, core_slots)
    core = []
    for can_id, (signals, period, counter) in zip(core_ids, _CORE):
        dlc = 8 if signals else 0
        core.append(
            MessageSpec(
                int(can_id),
                period,
                dlc,
                _layout(rng, dlc, signals, counter=counter, checksum=counter),
                **_timing(rng),
            )
        )
    # Sorting periods against noisy ID ranks: mostly "lower ID, faster", not strictly.
    periods = np.sort(rng.choice(_EXTRA_PERIODS, size=n_extra, p=_EXTRA_PERIOD_WEIGHTS))
    ranks = np.argsort(np.argsort(np.arange(n_extra) + rng.normal(0, n_extra / 6, n_extra)))
    extra = [_extra_message(rng, int(i), float(periods[r])) for i, r in zip(extra_ids, ranks)]
    return core, extra


def _vehicle(
    name: str, core: list[MessageSpec], extra: Sequence[MessageSpec], checksum: str
) -> VehicleSpec:
    messages = tuple(sorted([*core, *extra], key=lambda m: m.can_id))
    return VehicleSpec(name, messages, checksum)


def build_fleet(seed: int = 0) -> tuple[VehicleSpec, ...]:
    """The three vehicles (sedan, suv: known; van: unknown), deterministic in ``seed``."""
    rng_a = np.random.default_rng([seed, _name_key("platform-a")])
    core_a, extra_a = _platform(rng_a, n_extra=55)
    pick = rng_a.permutation(len(extra_a))
    sedan = [extra_a[i] for i in np.sort(pick[:38])]
    # suv shares part of sedan's extras: take from the middle of the same permutation.
    suv = [extra_a[i] for i in np.sort(pick[17:47])]

    rng_b = np.random.default_rng([seed, _name_key("platform-b")])
    core_b, extra_b = _platform(rng_b, n_extra=26)
    # Platform B reuses a few of A's ID numbers for its own, unrelated messages.
    taken = {m.can_id for m in (*core_b, *extra_b)}
    reusable = [m.can_id for m in extra_a if m.can_id not in taken]
    reused = rng_b.choice(reusable, size=6, replace=False)
    for slot, can_id in zip(rng_b.choice(len(extra_b), size=6, replace=False), reused):
        extra_b[slot] = attrs.evolve(extra_b[slot], can_id=int(can_id))

    return (
        _vehicle("sedan", core_a, sedan, "sum"),
        _vehicle("suv", core_a, suv, "sum"),
        _vehicle("van", core_b, extra_b, "xor"),
    )
