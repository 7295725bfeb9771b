"""One fixed weight vector for all windows, chosen by grid search."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from fusioncore import ConfigError, FusionData, FusionStrategy, NotFittedError
from fusioncore.evaluation.metrics import auroc_rows, best_mcc_rows
from fusioncore.simplex import simplex_grid

__all__ = ["CRITERIA", "WeightedFusion", "simplex_grid"]

CRITERIA = ("mcc", "auroc")
_CELLS_PER_CHUNK = 20_000_000  # candidates x windows scored per sort: bounds memory


class WeightedFusion(FusionStrategy):
    """One learned weight per detector (the "single alpha" baseline), fitted on the val split.

    Candidates are the regular simplex grid with ``levels`` points per axis
    (2 detectors: ``alpha in linspace(0, 1, levels)``, fused = ``(1-alpha)*s0 +
    alpha*s1``). The winner maximises ``criterion``: ``"mcc"`` (default) = the
    MCC at that candidate's own best threshold, ``"auroc"`` = ROC AUC. Ties go
    to the first candidate in grid order (the lowest alpha for 2 detectors).
    Fitted on ``fit_on="val"`` by default: detectors were trained on the train
    split, so their train scores flatter whichever detector overfits most.
    """

    name = "weighted"

    def __init__(self, levels: int = 21, criterion: str = "mcc", fit_on: str = "val") -> None:
        if levels < 2:
            raise ConfigError(f"weighted: levels must be >= 2, got {levels}")
        if criterion not in CRITERIA:
            raise ConfigError(f"weighted: criterion must be one of {CRITERIA}, got {criterion!r}")
        if fit_on not in ("val", "train"):
            raise ConfigError(f"weighted: fit_on must be 'val' or 'train', got {fit_on!r}")
        self.levels, self.criterion, self.fit_on = levels, criterion, fit_on
        self.weights: np.ndarray | None = None
        self.score: float | None = None  #: the winner's criterion value on the fitting split

    def fit(self, train: FusionData, val: FusionData) -> WeightedFusion:
        data = val if self.fit_on == "val" else train
        labels = data.labels
        if len(data) == 0 or not np.isin(labels, (0, 1)).all() or len(np.unique(labels)) < 2:
            raise ConfigError(
                f"weighted: the {self.fit_on} split needs 0/1 labels with both classes present"
            )
        grid = simplex_grid(data.scores.shape[1], self.levels)
        per_chunk = max(1, _CELLS_PER_CHUNK // max(len(data), 1))
        values = np.concatenate(
            [self._criterion(data.scores @ part.T, labels) for part in _chunks(grid, per_chunk)]
        )
        best = int(np.argmax(values))  # first maximum: ties go to the earliest candidate
        self.weights, self.score = grid[best], float(values[best])
        return self

    def _criterion(self, fused: np.ndarray, labels: np.ndarray) -> np.ndarray:
        rows = fused.T  # one row per candidate
        if self.criterion == "mcc":
            return best_mcc_rows(rows, labels).mcc
        return auroc_rows(rows, labels)

    def _fitted(self) -> np.ndarray:
        if self.weights is None:
            raise NotFittedError("weighted fusion is not fitted: call fit() or load_state_dict()")
        return self.weights

    def fuse(self, data: FusionData) -> np.ndarray:
        weights = self._fitted()
        if len(weights) != data.scores.shape[1]:
            raise ConfigError(
                f"weighted was fitted on {len(weights)} detectors, got {data.scores.shape[1]}"
            )
        return np.clip(data.scores @ weights, 0.0, 1.0).astype(np.float32)

    def policy(self, data: FusionData) -> np.ndarray:
        return np.broadcast_to(self._fitted(), (len(data), len(self._fitted()))).copy()

    def state_dict(self) -> dict[str, Any]:
        return {"weights": self._fitted().copy()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.weights = np.asarray(state["weights"], dtype=np.float32)


def _chunks(grid: np.ndarray, size: int):
    return (grid[i : i + size] for i in range(0, len(grid), size))
