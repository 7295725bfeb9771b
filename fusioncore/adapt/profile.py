"""``VehicleProfile``: what one vehicle's bus does in a benign reference segment.

Learned from a short stretch of the vehicle's own traffic (by default the
first ``adapt.warmup_s`` seconds of a capture, see :mod:`.segment`, or a whole
separate benign capture of the same vehicle), a profile holds, per
identifier (frame format + CAN ID):

* how often it was sent (``count``) and its median inter-arrival time
  (``period``) and jitter (1.4826 x the median absolute deviation of the
  inter-arrival times: a robust standard deviation, so a few delayed frames
  do not inflate it);
* its mean DLC, per-byte payload mean and standard deviation, per byte the
  share of consecutive frames in which that byte changed (``byte_change``:
  how a signal moves from one frame to the next, which a stuck, frozen or
  garbled sender changes), and the share of consecutive frames whose
  payload changed at all (``change_rate``);

and for the bus as a whole the transitions ``ID(t) -> ID(t+1)`` seen (with
counts) and the median gap between consecutive frames. Medians keep period,
jitter and gap robust to a minority of injected frames; a reference segment
that holds an attack still yields a profile (the run's report says so).

Profiles are plain JSON (:meth:`VehicleProfile.to_json`): IDs as hex strings,
NaN as ``null``, floats exactly as computed, so a profile round-trips
bit-for-bit and can be read, diffed and edited by hand.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np

from fusioncore.data.frames import Frames
from fusioncore.data.vocab import id_keys
from fusioncore.data.windows import source_runs
from fusioncore.errors import ConfigError

__all__ = ["PROFILE_FORMAT", "VehicleProfile"]

PROFILE_FORMAT = "fusioncore.vehicle-profile"
_VERSION = 1
_MAD_TO_STD = 1.4826  # MAD of a normal distribution times this is its std


def _arr(dtype, ndim: int = 1):
    def convert(value):
        arr = np.ascontiguousarray(value, dtype=dtype)
        if arr.ndim != ndim:
            raise ConfigError(f"profile column must be {ndim}-D, got shape {arr.shape}")
        return arr

    return attrs.field(converter=convert)


def _group_median(group: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    """Median of ``values`` per group (NaN for empty groups), from one sort."""
    out = np.full(n_groups, np.nan)
    if values.size == 0:
        return out
    order = np.lexsort((values, group))
    g, v = group[order], values[order]
    n = np.bincount(g, minlength=n_groups)
    first = np.cumsum(n) - n
    has = n > 0
    lo = first[has] + (n[has] - 1) // 2
    hi = first[has] + n[has] // 2
    out[has] = 0.5 * (v[lo] + v[hi])
    return out


@attrs.frozen(eq=False)
class VehicleProfile:
    """One vehicle's benign reference: per-ID timing and payload statistics, transitions.

    Per-ID arrays have one row per identifier, sorted by (format, ID).
    ``transitions`` holds rows ``(from row, to row, count)`` sorted by
    ``(from, to)``. ``attack_frames`` counts frames of the segment that the
    capture labels as attacks; it is informational (reports flag such
    references) and never used to build the profile.
    """

    can_id: np.ndarray = _arr(np.uint32)
    extended: np.ndarray = _arr(np.bool_)
    count: np.ndarray = _arr(np.int64)
    period: np.ndarray = _arr(np.float64)
    jitter: np.ndarray = _arr(np.float64)
    dlc: np.ndarray = _arr(np.float64)
    change_rate: np.ndarray = _arr(np.float64)
    byte_mean: np.ndarray = _arr(np.float64, 2)
    byte_std: np.ndarray = _arr(np.float64, 2)
    byte_change: np.ndarray = _arr(np.float64, 2)
    transitions: np.ndarray = _arr(np.int64, 2)
    frames: int = attrs.field(converter=int)
    duration_s: float = attrs.field(converter=float)
    median_gap_s: float = attrs.field(converter=float)
    source: str = ""
    warmup_s: float | None = None
    attack_frames: int = attrs.field(default=0, converter=int)

    def __attrs_post_init__(self) -> None:
        n = len(self.can_id)
        for name in ("extended", "count", "period", "jitter", "dlc", "change_rate"):
            if len(getattr(self, name)) != n:
                got = len(getattr(self, name))
                raise ConfigError(f"profile column {name!r} has {got} rows, expected {n}")
        for name in ("byte_mean", "byte_std", "byte_change"):
            if getattr(self, name).shape != (n, 8):
                raise ConfigError(f"profile column {name!r} must have shape ({n}, 8)")
        t = self.transitions
        if t.shape[1:] != (3,) or (t.size and (t[:, :2].min() < 0 or t[:, :2].max() >= n)):
            raise ConfigError("profile transitions must be (from row, to row, count) rows of known IDs")
        if n > 1 and np.any(np.diff(self.keys) <= 0):
            raise ConfigError("profile IDs must be unique and sorted by (format, ID)")

    # ------------------------------------------------------------- fitting
    @classmethod
    def fit(cls, frames: Frames, *, source: str = "", warmup_s: float | None = None) -> VehicleProfile:
        """The profile of every row of ``frames`` (the caller picks the segment).

        Rows stay in stored order; pairs of consecutive frames (inter-arrival
        times, transitions, gaps) are only taken inside one file run.
        Negative time steps are clipped to 0, as in the graph features.
        """
        n = len(frames)
        if n == 0:
            raise ConfigError(f"cannot build a vehicle profile of {source or 'a capture'}: no frames")
        begin, end = source_runs(frames)
        same_run = np.ones(max(n - 1, 0), bool)
        same_run[begin[1:] - 1] = False  # pair (r, r + 1) crossing into the next run
        keys = id_keys(frames.can_id, frames.extended)
        uniq, row_of, count = np.unique(keys, return_inverse=True, return_counts=True)
        row_of = row_of.ravel()
        k = len(uniq)

        # per-ID pairs in time order: one stable sort by (run, ID)
        run = np.repeat(np.arange(len(begin)), end - begin)
        order = np.lexsort((row_of, run))
        srow = row_of[order]
        pair = (srow[1:] == srow[:-1]) & (run[order][1:] == run[order][:-1])
        pair_row = srow[1:][pair]
        t = frames.timestamp[order]
        iat = np.maximum(np.diff(t), 0.0)[pair]
        period = _group_median(pair_row, iat, k)
        mad = _group_median(pair_row, np.abs(iat - period[pair_row]), k)
        payload = frames.data[order].view(np.uint64).ravel()
        changed = (payload[1:] != payload[:-1])[pair]
        n_pairs = np.bincount(pair_row, minlength=k)
        moved = (np.diff(frames.data[order].astype(np.int16), axis=0) != 0)[pair]
        byte_change = np.stack([np.bincount(pair_row, weights=moved[:, b], minlength=k) for b in range(8)], 1)
        byte_change = np.where(n_pairs[:, None] > 0, byte_change / np.maximum(n_pairs, 1)[:, None], np.nan)
        change_rate = np.where(
            n_pairs > 0, np.bincount(pair_row, weights=changed, minlength=k) / np.maximum(n_pairs, 1), np.nan
        )

        data = frames.data.astype(np.float64)
        byte_sum = np.stack([np.bincount(row_of, weights=data[:, b], minlength=k) for b in range(8)], 1)
        byte_mean = byte_sum / count[:, None]
        dev = data - byte_mean[row_of]
        byte_var = np.stack([np.bincount(row_of, weights=dev[:, b] ** 2, minlength=k) for b in range(8)], 1)
        dlc = np.bincount(row_of, weights=frames.dlc.astype(np.float64), minlength=k) / count

        src, dst = row_of[:-1][same_run], row_of[1:][same_run]
        tkey, tcount = np.unique(src.astype(np.int64) * k + dst, return_counts=True)
        transitions = np.stack([tkey // k, tkey % k, tcount], 1) if len(tkey) else np.zeros((0, 3), np.int64)
        gaps = np.maximum(np.diff(frames.timestamp), 0.0)[same_run]
        median_gap = float(np.median(gaps)) if gaps.size else math.nan
        if not median_gap > 0 and gaps.size:  # mostly repeated timestamps: fall back to the mean gap
            median_gap = float(gaps.mean()) if gaps.mean() > 0 else math.nan
        duration = float(sum(
            frames.timestamp[b:e].max() - frames.timestamp[b] for b, e in zip(begin.tolist(), end.tolist())
        ))
        return cls(
            can_id=(uniq & 0xFFFFFFFF).astype(np.uint32),
            extended=(uniq >> 32).astype(bool),
            count=count,
            period=period,
            jitter=_MAD_TO_STD * mad,
            dlc=dlc,
            change_rate=change_rate,
            byte_mean=byte_mean,
            byte_std=np.sqrt(byte_var / count[:, None]),
            byte_change=byte_change,
            transitions=transitions,
            frames=n,
            duration_s=duration,
            median_gap_s=median_gap,
            source=source,
            warmup_s=warmup_s,
            attack_frames=int(np.count_nonzero(frames.label)),
        )

    # ----------------------------------------------------------- views
    def __len__(self) -> int:
        return len(self.can_id)

    @property
    def keys(self) -> np.ndarray:
        return id_keys(self.can_id, self.extended)

    @property
    def share(self) -> np.ndarray:
        """Each ID's share of the segment's frames."""
        return self.count / max(self.frames, 1)

    def summary(self) -> str:
        """A few lines for people: size, timing, what is unusual about this reference."""
        p = self.period[np.isfinite(self.period)] * 1e3
        n29 = int(self.extended.sum())
        once = int(np.count_nonzero(self.count == 1))
        where = f" (first {self.warmup_s:g} s)" if self.warmup_s else ""
        lines = [
            f"vehicle profile of {self.source or '<capture>'}{where}: {self.frames:,} frames over "
            f"{self.duration_s:.2f} s, median gap {self.median_gap_s * 1e3:.3f} ms",
            f"{len(self)} IDs ({n29} 29-bit), {len(self.transitions)} distinct transitions",
        ]
        if p.size:
            lines.append(f"periods: fastest {p.min():.2f} ms, median {np.median(p):.2f} ms, "
                         f"slowest {p.max():.2f} ms")
        if once:
            lines.append(f"{once} ID(s) seen only once: no period (a longer reference would give one)")
        if self.attack_frames:
            lines.append(f"warning: {self.attack_frames:,} frame(s) of this reference are labelled attack")
        return "\n".join(lines)

    # ------------------------------------------------------- persistence
    def to_dict(self) -> dict[str, Any]:
        def num(x: float) -> float | None:
            return None if not math.isfinite(x) else float(x)

        ids = [
            {
                "id": f"{int(c):08X}" if e else f"{int(c):03X}",
                "extended": bool(e),
                "count": int(n),
                "period_s": num(p),
                "jitter_s": num(j),
                "dlc": float(d),
                "change_rate": num(r),
                "byte_mean": [float(v) for v in bm],
                "byte_std": [float(v) for v in bs],
                "byte_change": [num(v) for v in st],
            }
            for c, e, n, p, j, d, r, bm, bs, st in zip(
                self.can_id.tolist(), self.extended.tolist(), self.count.tolist(), self.period.tolist(),
                self.jitter.tolist(), self.dlc.tolist(), self.change_rate.tolist(), self.byte_mean,
                self.byte_std, self.byte_change.tolist(),
            )
        ]
        return {
            "format": PROFILE_FORMAT,
            "version": _VERSION,
            "source": self.source,
            "warmup_s": self.warmup_s,
            "frames": self.frames,
            "duration_s": self.duration_s,
            "median_gap_s": num(self.median_gap_s),
            "attack_frames": self.attack_frames,
            "ids": ids,
            # rows of "ids": [from, to, count]
            "transitions": self.transitions.tolist(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> VehicleProfile:
        if raw.get("format") != PROFILE_FORMAT:
            raise ConfigError(f"not a fusioncore vehicle profile (format {raw.get('format')!r})")
        if raw.get("version") != _VERSION:
            raise ConfigError(
                f"vehicle profile version {raw.get('version')!r}; this fusioncore reads {_VERSION}")

        def num(v) -> float:
            return math.nan if v is None else float(v)

        try:
            ids = list(raw["ids"])
            transitions = np.asarray(raw["transitions"], np.int64).reshape(-1, 3)
            return cls(
                can_id=[int(r["id"], 16) for r in ids],
                extended=[bool(r["extended"]) for r in ids],
                count=[int(r["count"]) for r in ids],
                period=[num(r["period_s"]) for r in ids],
                jitter=[num(r["jitter_s"]) for r in ids],
                dlc=[float(r["dlc"]) for r in ids],
                change_rate=[num(r["change_rate"]) for r in ids],
                byte_mean=np.asarray([r["byte_mean"] for r in ids], np.float64).reshape(-1, 8),
                byte_std=np.asarray([r["byte_std"] for r in ids], np.float64).reshape(-1, 8),
                byte_change=np.asarray(
                    [[num(v) for v in r["byte_change"]] for r in ids], np.float64).reshape(-1, 8),
                transitions=transitions,
                frames=raw["frames"],
                duration_s=raw["duration_s"],
                median_gap_s=num(raw["median_gap_s"]),
                source=str(raw.get("source", "")),
                warmup_s=raw.get("warmup_s"),
                attack_frames=raw.get("attack_frames", 0),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"malformed vehicle profile: {type(exc).__name__}: {exc}") from None

    @classmethod
    def from_json(cls, text: str) -> VehicleProfile:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"vehicle profile is not JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise ConfigError("vehicle profile must be a JSON object")
        return cls.from_dict(raw)

    def fingerprint(self) -> str:
        import hashlib

        return hashlib.sha256(self.to_json().encode()).hexdigest()
