"""The DQN's action set: weight vectors on a regular grid of the probability simplex.

With m detectors and ``k`` levels per axis the actions are
:func:`fusioncore.simplex.simplex_grid` ``(m, k)``: for two detectors exactly
the predecessor's ``alpha in linspace(0, 1, k)`` with weights
``(1 - alpha, alpha)`` (action ``i`` puts weight ``i / (k - 1)`` on detector
1); for m > 2 the same resolution along every edge of the simplex, so every
convex combination is within ``1 / (k - 1)`` of an action and no detector is
privileged (231 actions for m = 3, k = 21).
"""

from __future__ import annotations

import torch

from fusioncore.simplex import MAX_GRID_POINTS
from fusioncore.simplex import simplex_grid as _grid

__all__ = ["MAX_ACTIONS", "simplex_grid"]

#: Above this the Q-network's output layer and exploration stop making sense.
MAX_ACTIONS = MAX_GRID_POINTS


def simplex_grid(m: int, k: int) -> torch.Tensor:
    """``float32[n_actions, m]`` action weight vectors (rows sum to 1), as a tensor."""
    return torch.from_numpy(_grid(m, k, option="k"))
