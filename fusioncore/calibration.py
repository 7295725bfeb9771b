"""Mapping each detector's score to [0, 1] before fusion, without ties.

Convex combinations only mean something when the scores share a scale: a
VGAE z-score of 4 and a GAT log-odds of 9 do not. Each detector's score is
Platt-scaled, ``p = unit_score(a * x + b)``, fitted by Newton's method on the
fusion-fit split with a small L2 penalty (so perfectly separable scores give
a steep but finite slope). The map is strictly increasing (``a`` is kept
> 0), so every detector's ranking, and its AUROC, is unchanged.

``x`` is the score after a signed log, ``sign(s) * log1p(|s|)``. Anomaly
scores are heavy-tailed: floods score thousands of benign standard
deviations, subtler attacks tens. Fitted on raw scores, the slope is set by
the floods and an attack at 30 sigma maps to a probability barely above
benign; on the log scale the fit places its step between benign traffic and
the attacks, wherever their tail ends.

:func:`unit_score` is the logistic function where it is a calibrated
probability (``|z| <= 4``, p in [0.018, 0.982]) and a power-law tail beyond.
A float32 logistic is exactly 1.0 for every ``z`` above about 17, so the
windows a detector is surest about would all tie and their ranking (AUROC,
AP, the fused score's order) would be lost; the tail keeps them apart for
any ``|z|`` a fit produces (1 - p decays like 1 / z, not like exp(-z)).
Fusions that produce a logit (stacking, mixture of experts) report
``unit_score(logit)`` for the same reason.
"""

from __future__ import annotations

import attrs
import numpy as np

__all__ = ["TAIL_START", "PlattScaler", "unit_score"]

#: |z| beyond which unit_score leaves the logistic curve for its power-law tail.
TAIL_START = 4.0
_EDGE = 1.0 / (1.0 + np.exp(TAIL_START))  # 1 - sigmoid(TAIL_START): the tail's height at its start
_SLOPE = 1.0 - _EDGE  # the tail's decay rate, chosen so the slope is continuous at TAIL_START


def _signed_log(s: np.ndarray) -> np.ndarray:
    return np.sign(s) * np.log1p(np.abs(s))


def unit_score(z: np.ndarray) -> np.ndarray:
    """``float64`` in (0, 1), strictly increasing in ``z``; the logistic function for |z| <= 4.

    Beyond, ``1 - p = e / (1 + (|z| - 4) * (1 - e))`` with ``e = 1 - sigmoid(4)``
    (mirrored below -4): continuous with a continuous slope, symmetric
    (``p(-z) = 1 - p(z)``), and far from 1.0 in float32 for any realistic ``z``
    (``z = 1000`` gives ``1 - p = 1.8e-5``). NaN maps to 0.5.
    """
    z = np.nan_to_num(np.asarray(z, dtype=np.float64), nan=0.0, posinf=1e12, neginf=-1e12)
    inner = np.abs(z) <= TAIL_START
    with np.errstate(over="ignore"):
        logistic = 1.0 / (1.0 + np.exp(-np.clip(z, -TAIL_START, TAIL_START)))
    tail = _EDGE / (1.0 + (np.abs(z) - TAIL_START) * _SLOPE)
    return np.where(inner, logistic, np.where(z > 0, 1.0 - tail, tail))


@attrs.frozen
class PlattScaler:
    a: float = 1.0
    b: float = 0.0
    center: float = 0.0
    scale: float = 1.0

    @classmethod
    def fit(cls, scores: np.ndarray, labels: np.ndarray, l2: float = 1e-3, iters: int = 50) -> PlattScaler:
        s = _signed_log(np.asarray(scores, dtype=np.float64))
        y = np.asarray(labels, dtype=np.float64)
        finite = np.isfinite(s)
        s, y = s[finite], y[finite]
        if len(s) == 0:
            return cls()
        center = float(np.median(s))
        scale = float(np.std(s)) or 1.0
        x = (s - center) / scale
        if y.min() == y.max():  # one class: keep a fixed, monotone squashing
            return cls(1.0, 0.0, center, scale)
        w = np.zeros(2)
        design = np.stack([x, np.ones_like(x)], axis=1)
        for _ in range(iters):
            p = 1.0 / (1.0 + np.exp(-(design @ w)))
            grad = design.T @ (p - y) / len(x) + l2 * np.array([w[0], 0.0])
            hess = (design * (p * (1 - p))[:, None]).T @ design / len(x) + l2 * np.eye(2)
            step = np.linalg.solve(hess, grad)
            w -= step
            if np.abs(step).max() < 1e-8:
                break
        a = max(float(w[0]), 1e-3)  # keep the map increasing: never flip a detector
        return cls(a, float(w[1]), center, scale)

    def logit(self, scores: np.ndarray) -> np.ndarray:
        """``a * x + b`` (float64): the fitted log-odds of an attack, before :func:`unit_score`."""
        x = (_signed_log(np.asarray(scores, dtype=np.float64)) - self.center) / self.scale
        return self.a * np.nan_to_num(x, nan=0.0) + self.b

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return unit_score(self.logit(scores)).astype(np.float32)
