"""Mapping each detector's score to [0, 1] before fusion.

Convex combinations only mean something when the scores share a scale: a
VGAE z-score of 4 and a GAT probability of 0.9 do not. Each detector's score
is Platt-scaled, ``p = sigmoid(a * x + b)``, fitted by Newton's method on the
fusion-fit split with a small L2 penalty (so perfectly separable scores give
a steep but finite slope). The map is monotone (``a`` is kept > 0), so every
detector's ranking, and its AUROC, is unchanged.

``x`` is the score after a signed log, ``sign(s) * log1p(|s|)``. Anomaly
scores are heavy-tailed: floods score thousands of benign standard
deviations, subtler attacks tens. Fitted on raw scores, the slope is set by
the floods and an attack at 30 sigma maps to a probability barely above
benign; on the log scale the fit places its step between benign traffic and
the attacks, wherever their tail ends.
"""

from __future__ import annotations

import attrs
import numpy as np

__all__ = ["PlattScaler"]


def _signed_log(s: np.ndarray) -> np.ndarray:
    return np.sign(s) * np.log1p(np.abs(s))


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

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        x = (_signed_log(np.asarray(scores, dtype=np.float64)) - self.center) / self.scale
        z = np.clip(self.a * np.nan_to_num(x, nan=0.0) + self.b, -50, 50)
        return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)
