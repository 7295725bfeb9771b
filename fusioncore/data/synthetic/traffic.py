"""Benign traffic: send times per message, payload encoding, and the shared bus.

Everything here is vectorised over the frames of one message; the only
Python loops run over messages or payload fields.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from fusioncore.data.frames import Frames
from fusioncore.data.synthetic.drive import SIGNALS, Drive
from fusioncore.data.synthetic.vehicles import FieldKind, MessageSpec, PayloadField, VehicleSpec

__all__ = [
    "apply_checksum",
    "bus_times",
    "encode_payload",
    "frame_bits",
    "read_counter",
    "sample_signals",
    "send_times",
    "simulate_benign",
    "write_signal",
]


def send_times(
    message: MessageSpec,
    rng: np.random.Generator,
    start: float,
    end: float,
    *,
    first: float | None = None,
    drift_ppm: float | None = None,
    jitter_s: float | None = None,
) -> np.ndarray:
    """Times in ``[start, end)`` at which the sender of ``message`` queues it.

    The nominal grid starts at ``first`` (a random phase by default) and runs
    at the period stretched by the sender's clock drift; each send is
    jittered. A masquerading attacker passes its own drift and jitter.
    """
    drift = message.drift_ppm if drift_ppm is None else drift_ppm
    jitter = message.jitter_s if jitter_s is None else jitter_s
    period = message.period_s * (1.0 + drift * 1e-6)
    origin = start + rng.uniform(0, message.period_s) if first is None else first
    n = max(0, int(np.ceil((end - origin) / period)))
    t = origin + np.arange(n) * period + rng.normal(0.0, jitter, n)
    return t[(t >= start) & (t < end)]


def sample_signals(message: MessageSpec, drive: Drive, t: np.ndarray) -> dict[str, np.ndarray]:
    """Physical values of the message's signals at times ``t``."""
    return {name: drive.sample(name, t) for name in message.signals}


def write_signal(data: np.ndarray, field: PayloadField, values: np.ndarray) -> None:
    """Encode physical ``values`` into ``field``'s bytes (big-endian) in place."""
    raw = SIGNALS[field.signal].encode(values, field.coarsen)
    if field.width == 2:
        data[:, field.byte] = raw >> 8
        data[:, field.byte + 1] = raw & 0xFF
    else:
        data[:, field.byte] = raw


def apply_checksum(data: np.ndarray, message: MessageSpec, algorithm: str) -> None:
    """Recompute the checksum byte (if the message has one) over its other payload bytes."""
    for field in message.fields:
        if field.kind is not FieldKind.CHECKSUM:
            continue
        others = np.delete(data[:, : message.dlc], field.byte, axis=1).astype(np.int64)
        if algorithm == "sum":
            data[:, field.byte] = others.sum(axis=1) & 0xFF
        else:
            data[:, field.byte] = np.bitwise_xor.reduce(others, axis=1)


def _write_counter(data: np.ndarray, field: PayloadField, counter: np.ndarray) -> None:
    if field.bits == 4:
        data[:, field.byte] = (field.value << 4) | (counter & 0xF)
    else:
        data[:, field.byte] = counter & 0xFF


def read_counter(data: np.ndarray, message: MessageSpec) -> np.ndarray | None:
    """The rolling-counter values carried in payloads of ``message`` (None without a counter)."""
    field = message.counter
    if field is None:
        return None
    mask = 0xF if field.bits == 4 else 0xFF
    return data[:, field.byte].astype(np.int64) & mask


def encode_payload(
    message: MessageSpec,
    signals: Mapping[str, np.ndarray],
    counter: np.ndarray,
    checksum: str,
) -> np.ndarray:
    """Payloads (``uint8[n, 8]``, zero past the DLC) for ``n`` frames of ``message``."""
    data = np.zeros((len(counter), 8), np.uint8)
    for field in message.fields:
        if field.kind is FieldKind.SIGNAL:
            write_signal(data, field, signals[field.signal])
        elif field.kind is FieldKind.CONST:
            data[:, field.byte] = field.value
        elif field.kind is FieldKind.COUNTER:
            _write_counter(data, field, counter)
    apply_checksum(data, message, checksum)
    return data


def simulate_benign(
    vehicle: VehicleSpec, drive: Drive, rng: np.random.Generator, duration: float
) -> Frames:
    """Every message of ``vehicle`` over ``[0, duration)``, in time order, not yet on the bus."""
    times, ids, dlcs, payloads = [], [], [], []
    for message in vehicle.messages:
        t = send_times(message, rng, 0.0, duration)
        counter = int(rng.integers(0, 256)) + np.arange(len(t))
        times.append(t)
        ids.append(np.full(len(t), message.can_id, np.uint32))
        dlcs.append(np.full(len(t), message.dlc, np.uint8))
        payloads.append(
            encode_payload(message, sample_signals(message, drive, t), counter, vehicle.checksum)
        )
    frames = Frames.from_columns(
        timestamp=np.concatenate(times),
        can_id=np.concatenate(ids),
        dlc=np.concatenate(dlcs),
        data=np.concatenate(payloads),
    )
    return frames.take(np.lexsort((frames.can_id, frames.timestamp)))


def frame_bits(dlc: np.ndarray) -> np.ndarray:
    """Bits a classic 11-bit data frame holds on the wire, with typical bit stuffing.

    47 fixed bits (SOF ... interframe space) plus the payload; stuffing adds
    about one bit per eight stuffable bits (34 + 8 * DLC of them).
    """
    payload = 8 * dlc.astype(np.float64)
    return 47 + payload + np.floor((34 + payload) / 8)


def bus_times(queued: np.ndarray, dlc: np.ndarray, bitrate: int) -> np.ndarray:
    """When frames queued at sorted times ``queued`` actually get the bus.

    One frame occupies the bus at a time, so frame ``i`` starts at
    ``max(queued[i], start[i-1] + length[i-1])``. With ``C`` the cumulative
    lengths that recurrence is ``C + running_max(queued - C)``: one pass, no
    loop. Frames wait in queue order (not ID priority), which is close
    enough for loads under saturation and still makes a flood delay the
    genuine traffic as it does on a real bus.
    """
    length = frame_bits(dlc) / bitrate
    before = np.concatenate(([0.0], np.cumsum(length[:-1])))
    return before + np.maximum.accumulate(queued - before)
