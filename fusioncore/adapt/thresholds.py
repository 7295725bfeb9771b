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
tied range above its benign end instead (``share = 0.5`` is the midpoint,
i.e. the core's rule). Validation MCC is the same for every share; only the
margin towards benign traffic changes. Adapters that standardise scores use
``threshold_share`` (default 0.25, measured in docs/adaptation.md).
"""

from __future__ import annotations

import numpy as np

from fusioncore.evaluation import best_mcc_threshold

__all__ = ["benign_side_threshold"]


def benign_side_threshold(labels: np.ndarray, scores: np.ndarray, share: float = 0.5) -> float:
    """The best-MCC threshold moved to ``share`` of its tied range above the range's low end."""
    t = best_mcc_threshold(labels, scores)
    s = np.asarray(scores, np.float64)
    below, above = s[s < t], s[s > t]
    if not below.size or not above.size:
        return t
    lo, hi = float(below.max()), float(above.min())
    return lo + share * (hi - lo)
