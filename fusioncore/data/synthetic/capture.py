"""One simulated capture: drive -> benign traffic -> attack -> shared bus -> labels."""

from __future__ import annotations

import attrs
import numpy as np

from fusioncore.data.frames import Frames, attack_type_code
from fusioncore.data.synthetic.attacks import ATTACKS, AttackContext, AttackEvent, inside_intervals
from fusioncore.data.synthetic.drive import simulate_drive
from fusioncore.data.synthetic.traffic import bus_times, simulate_benign
from fusioncore.data.synthetic.vehicles import VehicleSpec

__all__ = ["Capture", "simulate_capture"]


@attrs.frozen(eq=False)
class Capture:
    """A simulated capture: its frames (absolute timestamps, whole microseconds) and attack.

    ``event.intervals`` are absolute timestamps too, on the same microsecond
    grid as the frames, so ``start <= t < end`` means the same on the frames
    and on the written CSV.
    """

    vehicle: str
    frames: Frames
    event: AttackEvent


def simulate_capture(
    vehicle: VehicleSpec,
    attack: str,
    *,
    rng: np.random.Generator,
    duration: float,
    start_us: int,
    source: str = "<synthetic>",
) -> Capture:
    """Simulate ``duration`` seconds of ``vehicle`` under ``attack`` (``"benign"`` for none)."""
    if attack != "benign" and attack not in ATTACKS:
        raise KeyError(f"unknown synthetic attack {attack!r}; known: benign, {', '.join(ATTACKS)}")
    drive = simulate_drive(rng, duration)
    frames = simulate_benign(vehicle, drive, rng, duration)
    event = AttackEvent("benign")
    if attack != "benign":
        frames, event = ATTACKS[attack](AttackContext(vehicle, drive, frames, duration, rng))

    # Everything below runs on integer microseconds: the grid the CSV is written on.
    on_bus = bus_times(frames.timestamp, frames.dlc, vehicle.bitrate)
    t_us = start_us + np.rint(on_bus * 1e6).astype(np.int64)
    intervals = np.rint(np.asarray(event.intervals).reshape(-1, 2) * 1e6).astype(np.int64)
    intervals += start_us
    inside = inside_intervals(t_us, intervals)
    label, attack_type = frames.label.copy(), frames.attack_type.copy()
    if event.label_window:
        label[inside] = 1
        attack_type[inside] = attack_type_code(event.attack)
    # A silenced sender's frames are dropped only now, after the bus delays, so
    # none of them can drift into an interval where its ID must be absent.
    silenced = inside & np.isin(frames.can_id, event.silenced_ids) & (frames.label == 0)
    keep = ~silenced
    frames = Frames.from_columns(
        timestamp=t_us[keep] / 1e6,
        can_id=frames.can_id[keep],
        dlc=frames.dlc[keep],
        data=frames.data[keep],
        label=label[keep],
        attack_type=attack_type[keep],
        sources=(source,),
    )
    absolute = tuple((s / 1e6, e / 1e6) for s, e in intervals.tolist())
    return Capture(vehicle.name, frames, attrs.evolve(event, intervals=absolute))
