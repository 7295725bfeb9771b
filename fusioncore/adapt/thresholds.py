"""Threshold adaptation: where inside validation's best range the decision threshold sits.

The core picks each method's threshold on the validation block as the
best-MCC cut, midway across the range of thresholds that tie for it
(:func:`~fusioncore.evaluation.best_mcc_threshold`). When scores are
standardised per capture, the two ends of that range do not carry equal
weight: validation's benign windows stand for benign traffic on any vehicle
(standardisation makes them comparable), but its attack windows are only the
attacks the training data happens to hold -- floods and fuzzing, far above
anything subtle. The midpoint is then pulled up by the easy attacks and an
unknown, quieter attack on a new vehicle falls below it.

:func:`benign_side_threshold` places the threshold at a given share of the
range above its benign end instead (``share = 0.5`` is the midpoint, i.e.
the core's rule). The benign end is a *quantile* of validation's benign
scores (``benign_quantile``), not their maximum: the maximum is one window,
often a drifting one, and on hcrl_sa it sat at 19 benign standard deviations
on the VGAE -- above the Spark malfunction's attack windows -- so every
threshold derived from it missed that attack. With ``benign_quantile = q``
the threshold may alert on up to ``1 - q`` of validation's benign windows:
a false-alarm budget stated on the benign reference distribution, which is
what transfers between vehicles. ``benign_quantile = 1`` keeps the best-MCC
range (the rule before, measured in docs/adaptation.md).
"""

from __future__ import annotations

import numpy as np

from fusioncore.errors import ConfigError
from fusioncore.evaluation import best_mcc_threshold

__all__ = ["benign_side_threshold"]


def benign_side_threshold(labels: np.ndarray, scores: np.ndarray, share: float = 0.5,
                          benign_quantile: float = 1.0) -> float:
    """A threshold ``share`` of the way from validation's benign end to its attacks.

    With ``benign_quantile = 1`` the range is the best-MCC tied range; below 1
    it runs from that quantile of the benign scores to the lowest attack score
    above it (attack windows inside the benign tail cannot be told from it).
    """
    if not 0 < benign_quantile <= 1:
        raise ConfigError(f"benign_quantile must be in (0, 1], got {benign_quantile}")
    s = np.asarray(scores, np.float64)
    y = np.asarray(labels).astype(bool)
    if benign_quantile < 1 and y.any() and (~y).any():
        lo = float(np.quantile(s[~y], benign_quantile, method="higher"))
        above = s[y & (s > lo)]
        if not above.size:
            return lo
        return lo + share * (float(above.min()) - lo)
    t = best_mcc_threshold(labels, scores)
    below, above = s[s < t], s[s > t]
    if not below.size or not above.size:
        return t
    lo, hi = float(below.max()), float(above.min())
    return lo + share * (hi - lo)
