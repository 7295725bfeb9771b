"""Score adaptation: every score standardised by its own capture's reference windows.

A detector's scores on a vehicle it never saw sit on another scale: a
threshold chosen on the training vehicles' validation block then flags
every window (or none). :class:`CaptureScaler` standardises each score
column *per capture* with robust statistics of that capture's reference
windows, in three steps:

1. a column whose training values all lie in [0, 1] (a probability, a fused
   score) is read on the logit scale, where "0.001 vs 0.01" and "0.99 vs
   0.999" are as far apart as they are in evidence; other columns as they are;
2. ``z = (x - median) / max(1.4826 * MAD, floor)`` over the capture's
   reference windows;
3. ``sign(z) * log1p(|z|)``: anomaly scores are heavy-tailed (a flood sits
   thousands of spreads above benign, a forged payload tens), and a
   threshold placed midway between benign and attack windows on validation
   should not be dragged up by the floods.

A capture's benign traffic then scores around 0 whatever the vehicle, and
the threshold picked on validation (standardised the same way, per training
capture) carries over. Every step is monotone, so the ranking of windows
inside a capture (its AUROC) is unchanged.

``floor`` keeps a reference whose scores barely vary (a classifier that
is certain on every benign window) from turning noise into large values:
it is a share (``floor_share``) of the median per-capture spread of the
training captures, learned by :meth:`CaptureScaler.fit`. A capture without
any reference window (shorter than the warm-up) falls back to the pooled
statistics of the training references, and the run's report names it.

Everything is vectorised over windows: one sort per column gives every
capture's median and MAD.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs
import numpy as np

from fusioncore.adapt.profile import _group_median
from fusioncore.contracts import DetectorOutput
from fusioncore.errors import ConfigError

__all__ = ["CaptureScaler", "capture_statistics", "output_columns", "with_standardised_columns"]

_MAD_TO_STD = 1.4826
_TINY = 1e-9
_P_CLIP = 1e-6


def _as2d(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, np.float64)
    return v[:, None] if v.ndim == 1 else v


def _prepare(values: np.ndarray, logit: np.ndarray) -> np.ndarray:
    """Step 1: the columns flagged ``logit`` on the logit scale."""
    v = _as2d(values).copy()
    if logit.any():
        p = np.clip(v[:, logit], _P_CLIP, 1 - _P_CLIP)
        v[:, logit] = np.log(p) - np.log1p(-p)
    return v


def capture_statistics(
    values: np.ndarray, capture: np.ndarray, reference: np.ndarray, n_captures: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per capture and column: ``(median, robust std, has_reference)`` of the reference rows.

    ``values`` is ``[n]`` or ``[n, k]``; ``capture`` the capture index of every
    row; only rows with ``reference`` count. Non-finite values are ignored.
    """
    v = _as2d(values)
    k = v.shape[1]
    capture = np.asarray(capture, np.int64)
    ref = np.asarray(reference, bool)
    center = np.full((n_captures, k), np.nan)
    scale = np.full((n_captures, k), np.nan)
    for j in range(k):  # a handful of columns; every capture at once
        rows = ref & np.isfinite(v[:, j])
        g, x = capture[rows], v[rows, j]
        med = _group_median(g, x, n_captures)
        mad = _group_median(g, np.abs(x - med[g]), n_captures)
        center[:, j], scale[:, j] = med, _MAD_TO_STD * mad
    has = np.bincount(capture[ref], minlength=n_captures) > 0
    return center, scale, has


@attrs.frozen(eq=False)
class CaptureScaler:
    """Per-capture robust standardisation of ``k`` score columns (see the module docs)."""

    floor: np.ndarray = attrs.field(converter=lambda v: np.atleast_1d(np.asarray(v, np.float64)))
    fallback_center: np.ndarray = attrs.field(converter=lambda v: np.atleast_1d(np.asarray(v, np.float64)))
    fallback_scale: np.ndarray = attrs.field(converter=lambda v: np.atleast_1d(np.asarray(v, np.float64)))
    logit: np.ndarray = attrs.field(default=None)

    def __attrs_post_init__(self) -> None:
        k = len(self.floor)
        logit = np.zeros(k, bool) if self.logit is None else np.atleast_1d(np.asarray(self.logit, bool))
        object.__setattr__(self, "logit", logit)
        if any(a.shape != (k,) for a in (self.fallback_center, self.fallback_scale, self.logit)):
            raise ConfigError("CaptureScaler arrays must all have one value per column")

    @property
    def columns(self) -> int:
        return len(self.floor)

    @classmethod
    def fit(cls, values: np.ndarray, capture: np.ndarray, reference: np.ndarray, *,
            floor_share: float = 0.5) -> CaptureScaler:
        """Learn the scale of each column, its floor and the fallback from training captures."""
        raw = _as2d(values)
        finite = np.where(np.isfinite(raw), raw, 0.5)
        logit = (finite.min(axis=0) >= 0) & (finite.max(axis=0) <= 1) & (np.ptp(finite, axis=0) > 0)
        v = _prepare(raw, logit)
        capture = np.asarray(capture, np.int64)
        n_cap = int(capture.max()) + 1 if capture.size else 0
        _, scale, has = capture_statistics(v, capture, reference, n_cap)
        k = v.shape[1]
        if not has.any():
            raise ConfigError("score adaptation needs reference windows in the training captures; "
                              "none found (is adapt.warmup_s shorter than one window?)")
        spread = np.nanmedian(scale[has], axis=0) if has.any() else np.ones(k)
        floor = np.maximum(floor_share * np.nan_to_num(spread, nan=0.0), _TINY)
        pooled = np.asarray(reference, bool)
        f_center = np.nanmedian(np.where(np.isfinite(v[pooled]), v[pooled], np.nan), axis=0)
        f_scale = _MAD_TO_STD * np.nanmedian(np.abs(v[pooled] - f_center), axis=0)
        return cls(floor=floor, fallback_center=np.nan_to_num(f_center),
                   fallback_scale=np.maximum(np.nan_to_num(f_scale), floor), logit=logit)

    def statistics(self, values: np.ndarray, capture: np.ndarray, reference: np.ndarray,
                   n_captures: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(center, scale, has_reference)`` per capture (steps 1-2), floor and fallback applied."""
        capture = np.asarray(capture, np.int64)
        n = n_captures if n_captures is not None else (int(capture.max()) + 1 if capture.size else 0)
        center, scale, has = capture_statistics(_prepare(values, self.logit), capture, reference, n)
        center = np.where(has[:, None] & np.isfinite(center), center, self.fallback_center)
        known = has[:, None] & np.isfinite(scale)
        scale = np.where(known, np.maximum(scale, self.floor), self.fallback_scale)
        return center, scale, has

    def transform(self, values: np.ndarray, capture: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """``values`` standardised per capture by that capture's reference rows (same shape)."""
        v = np.asarray(values, np.float64)
        if len(v) == 0:
            return v.astype(np.float32)
        center, scale, _ = self.statistics(v, capture, reference)
        capture = np.asarray(capture, np.int64)
        return self.apply(v, center[capture], scale[capture])

    def apply(self, values: np.ndarray, center: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """Steps 1-3 with given statistics (rows of ``center`` / ``scale`` broadcast to ``values``).

        A stream fixes its capture's statistics after the warm-up and applies them to every
        later batch with this.
        """
        v = np.asarray(values, np.float64)
        z = (_prepare(v, self.logit) - np.asarray(center)) / np.asarray(scale)
        out = np.sign(z) * np.log1p(np.abs(z))
        return (out[:, 0] if v.ndim == 1 else out).astype(np.float32)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"floor": self.floor, "fallback_center": self.fallback_center,
                "fallback_scale": self.fallback_scale, "logit": self.logit}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> CaptureScaler:
        return cls(arrays["floor"], arrays["fallback_center"], arrays["fallback_scale"],
                   logit=arrays.get("logit"))


def output_columns(output: DetectorOutput, *, features: bool) -> np.ndarray:
    """The columns an adapter standardises: ``[score]``, or ``[score, *features]`` with ``features``."""
    if features:
        return np.concatenate([output.score[:, None], output.features], axis=1)
    return output.score[:, None]


def with_standardised_columns(output: DetectorOutput, z: np.ndarray) -> DetectorOutput:
    """``output`` with its score (and features, when ``z`` holds them) replaced by the columns ``z``."""
    features = z[:, 1:] if z.shape[1] > 1 else output.features
    return DetectorOutput(window_ids=output.window_ids, score=z[:, 0], features=features,
                          feature_names=output.feature_names)
