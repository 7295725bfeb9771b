"""Fixed fusion rules: nothing to learn, deterministic by construction."""

from __future__ import annotations

import numpy as np

from fusioncore import FusionData, FusionStrategy, UnknownComponentError

__all__ = ["MaxFusion", "MeanFusion", "SingleDetectorFusion"]


class MeanFusion(FusionStrategy):
    """The average of the detectors' calibrated scores (equal weights)."""

    name = "mean"
    trainable = False

    def fuse(self, data: FusionData) -> np.ndarray:
        return data.scores.mean(axis=1, dtype=np.float64).astype(np.float32)

    def policy(self, data: FusionData) -> np.ndarray:
        m = len(data.detectors)
        return np.full((len(data), m), 1.0 / m, dtype=np.float32)


class MaxFusion(FusionStrategy):
    """The highest calibrated score: attack if any detector says so (an OR rule)."""

    name = "max"
    trainable = False

    def fuse(self, data: FusionData) -> np.ndarray:
        return data.scores.max(axis=1)


class SingleDetectorFusion(FusionStrategy):
    """One detector's calibrated score, chosen by name (``detector``): the single-model baseline."""

    name = "single"
    trainable = False

    def __init__(self, detector: str) -> None:
        self.detector = detector

    def _column(self, data: FusionData) -> int:
        if self.detector not in data.detectors:
            raise UnknownComponentError("detector", self.detector, data.detectors)
        return data.detectors.index(self.detector)

    def fuse(self, data: FusionData) -> np.ndarray:
        return data.scores[:, self._column(data)].copy()

    def policy(self, data: FusionData) -> np.ndarray:
        weights = np.zeros((len(data), len(data.detectors)), dtype=np.float32)
        weights[:, self._column(data)] = 1.0
        return weights
