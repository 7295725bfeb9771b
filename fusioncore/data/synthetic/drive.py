"""One simulated drive per capture: the physical signals behind the payloads.

Every payload signal of a capture (speed, RPM, wheel speeds, steering, ...) is
read from one drive, so signals stay physically coupled across CAN IDs:
wheel speeds follow vehicle speed, RPM follows speed through the gear, the
brake-light bit follows brake pressure. A model of benign traffic can learn
that cross-ID consistency, which is exactly what masquerade and malfunction
attacks break while keeping IDs and periods intact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import attrs
import numpy as np

__all__ = ["SIGNALS", "Drive", "SignalCoding", "simulate_drive"]

#: Sampling step of the drive grid; payloads interpolate between grid points.
GRID_STEP_S = 0.01


@attrs.frozen
class SignalCoding:
    """How a physical signal becomes raw bytes: ``raw = (value - offset) / resolution``.

    ``width`` is 1 or 2 bytes (2-byte signals are big-endian). A message may
    use a coarser resolution than the base one (vehicles differ in that).
    """

    name: str
    width: int = attrs.field(validator=attrs.validators.in_((1, 2)))
    resolution: float
    offset: float = 0.0

    def encode(self, values: np.ndarray, coarsen: int = 1) -> np.ndarray:
        """Raw unsigned integers, saturated to the field's range (never wrapped)."""
        raw = np.rint((values - self.offset) / (self.resolution * coarsen))
        return np.clip(raw, 0, (1 << (8 * self.width)) - 1).astype(np.int64)


SIGNALS: Mapping[str, SignalCoding] = {
    s.name: s
    for s in (
        SignalCoding("speed", 2, 0.01),
        SignalCoding("rpm", 2, 0.25),
        SignalCoding("steering", 2, 0.1, -3276.8),
        SignalCoding("yaw_rate", 2, 0.01, -327.68),
        SignalCoding("lat_accel", 2, 0.001, -32.768),
        SignalCoding("wheel_fl", 2, 0.01),
        SignalCoding("wheel_fr", 2, 0.01),
        SignalCoding("wheel_rl", 2, 0.01),
        SignalCoding("wheel_rr", 2, 0.01),
        SignalCoding("torque", 2, 0.5, -1000.0),
        SignalCoding("brake", 2, 0.1),
        SignalCoding("throttle", 1, 0.4),
        SignalCoding("accel", 1, 0.1, -12.8),
        SignalCoding("gear", 1, 1.0),
        SignalCoding("coolant", 1, 1.0, -40.0),
        SignalCoding("fuel", 1, 0.4),
        SignalCoding("battery", 1, 0.1),
        SignalCoding("ambient", 1, 0.5, -40.0),
        SignalCoding("lights", 1, 1.0),
    )
}


@attrs.frozen(eq=False)
class Drive:
    """Signals sampled every ``step`` seconds from t = 0.

    Signals named in ``discrete`` (gear, bit fields) are held, not
    interpolated: halfway between gear 2 and 3 is no gear, and halfway between
    two bit patterns is a third pattern.
    """

    step: float
    values: Mapping[str, np.ndarray]
    discrete: frozenset[str] = frozenset()

    @property
    def duration(self) -> float:
        return (len(next(iter(self.values.values()))) - 1) * self.step

    def sample(self, name: str, t: np.ndarray) -> np.ndarray:
        """Signal ``name`` at times ``t`` (seconds from the start), linearly interpolated."""
        series = self.values[name]
        position = np.clip(np.asarray(t, np.float64) / self.step, 0, len(series) - 1)
        if name in self.discrete:
            return series[position.astype(np.int64)]
        return np.interp(position, np.arange(len(series)), series)


def _smooth(x: np.ndarray, sigma_samples: float) -> np.ndarray:
    """Gaussian low-pass with edge padding, so the ends keep their level."""
    radius = max(1, int(3 * sigma_samples))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma_samples) ** 2)
    kernel /= kernel.sum()
    return np.convolve(np.pad(x, radius, mode="edge"), kernel, mode="valid")


def _noise(rng: np.random.Generator, n: int, sigma_s: float, amplitude: float) -> np.ndarray:
    """Smooth noise: white noise low-passed, rescaled to roughly ``amplitude`` std."""
    smooth = _smooth(rng.normal(size=n), sigma_s / GRID_STEP_S)
    return smooth / (smooth.std() + 1e-12) * amplitude


def simulate_drive(rng: np.random.Generator, duration: float) -> Drive:
    """A plausible urban / suburban drive of ``duration`` seconds.

    Speed follows piecewise targets (stops, town, road) through a smooth
    low-pass; everything else is derived from speed, steering and time.
    """
    n = math.ceil(duration / GRID_STEP_S) + 2
    t = np.arange(n) * GRID_STEP_S

    segments = rng.uniform(4.0, 14.0, size=int(duration / 4.0) + 2)
    targets = np.where(rng.random(len(segments)) < 0.15, 0.0, rng.uniform(15, 125, len(segments)))
    piecewise = targets[np.minimum(np.searchsorted(np.cumsum(segments), t), len(targets) - 1)]
    speed = np.clip(_smooth(piecewise, 2.5 / GRID_STEP_S) + _noise(rng, n, 0.6, 0.8), 0, None)
    speed[speed < 0.3] = 0.0
    accel = np.gradient(speed, GRID_STEP_S) / 3.6  # m/s^2

    gear = np.digitize(speed, [0.5, 18, 32, 50, 68, 88]).astype(np.float64)
    ratio = np.array([0.0, 110, 65, 45, 35, 28, 23])[gear.astype(int)]
    rpm = np.clip(760 + speed * ratio + _noise(rng, n, 0.3, 15), 650, 6500)

    throttle = np.clip(14 * accel + 0.25 * speed + _noise(rng, n, 0.4, 2), 0, 100)
    throttle[accel < -0.3] = 0.0
    brake = np.clip(-25 * (accel + 0.3), 0, 150)
    torque = 2.6 * throttle - 30 * (brake > 0) + _noise(rng, n, 0.5, 3)

    # Big steering angles happen at low speed (turns), small ones on the road.
    steer_range = 25 + 380 * np.exp(-speed / 20)
    steering = np.tanh(_noise(rng, n, 1.5, 1.0)) * steer_range
    v = speed / 3.6
    yaw_rate = np.degrees(v / 2.7 * np.tan(np.radians(steering / 15)))
    lat_accel = v * np.radians(yaw_rate)

    wheel_bias = rng.normal(0, 0.004, 4)
    turn = np.radians(steering / 15) * 0.4
    wheels = {
        name: speed * (1 + bias + side * turn) + _noise(rng, n, 0.05, 0.05)
        for name, bias, side in zip(
            ("wheel_fl", "wheel_fr", "wheel_rl", "wheel_rr"), wheel_bias, (-1, 1, -0.6, 0.6)
        )
    }

    t0 = rng.uniform(15, 85)
    coolant = 90 - (90 - t0) * np.exp(-t / 240)
    fuel = rng.uniform(20, 95) - 0.002 * t
    battery = 13.9 + _noise(rng, n, 1.0, 0.08) - 0.4 * (rpm < 800)
    ambient = np.full(n, rng.uniform(-5, 30))

    # Light bits: indicators blink at 1.5 Hz in turns, brake light follows brake
    # pressure, low beam is on for the whole capture or not at all.
    blink = (np.floor(t * 3.0) % 2 == 0).astype(np.int64)
    left = (steering > 60) * blink
    right = (steering < -60) * blink
    lights = left | (right << 1) | ((brake > 0.5) << 2) | (int(rng.random() < 0.5) << 3) | (1 << 5)

    values = {
        "speed": speed,
        "rpm": rpm,
        "steering": steering,
        "yaw_rate": yaw_rate,
        "lat_accel": lat_accel,
        "torque": torque,
        "brake": brake,
        "throttle": throttle,
        "accel": accel,
        "gear": gear,
        "coolant": coolant,
        "fuel": fuel,
        "battery": battery,
        "ambient": ambient,
        "lights": lights.astype(np.float64),
        **wheels,
    }
    return Drive(step=GRID_STEP_S, values=values, discrete=frozenset({"gear", "lights"}))
