"""The DQN's action set: weight vectors on a regular grid of the probability simplex.

With m detectors and ``k`` levels per axis, the actions are every weight vector
whose entries are multiples of ``1 / (k - 1)`` and sum to 1. For two detectors
this is exactly the predecessor's ``alpha in linspace(0, 1, k)`` with weights
``(1 - alpha, alpha)``: action ``i`` puts weight ``i / (k - 1)`` on detector 1.
For m > 2 it is the same resolution along every edge of the simplex, so every
convex combination is within ``1 / (k - 1)`` of an action and no detector is
privileged; the count is ``C(k + m - 2, m - 1)`` (231 for m = 3, k = 21).
"""

from __future__ import annotations

import itertools
import math

import torch

from fusioncore import ConfigError

__all__ = ["MAX_ACTIONS", "simplex_grid"]

#: Above this the Q-network's output layer and exploration stop making sense.
MAX_ACTIONS = 5000


def simplex_grid(m: int, k: int) -> torch.Tensor:
    """``float32[n_actions, m]`` weight vectors (rows sum to 1), ordered as described above."""
    if m < 1:
        raise ConfigError(f"need at least one detector to fuse, got {m}")
    if k < 2:
        raise ConfigError(f"k (weight levels per detector) must be >= 2, got {k}")
    steps = k - 1
    count = math.comb(steps + m - 1, m - 1)
    if count > MAX_ACTIONS:
        raise ConfigError(
            f"{m} detectors with k={k} give {count} actions (limit {MAX_ACTIONS}); lower k"
        )
    if m == 1:
        return torch.ones(1, 1)
    # Stars and bars: m - 1 bar positions among steps + m - 1 slots; the gaps are the counts.
    # Enumerated once per fit, not per window.
    bars = torch.tensor(
        list(itertools.combinations(range(steps + m - 1), m - 1)), dtype=torch.long
    ).reshape(-1, m - 1)
    edges = torch.cat(
        [torch.full((len(bars), 1), -1), bars, torch.full((len(bars), 1), steps + m - 1)], dim=1
    )
    counts = edges.diff(dim=1) - 1
    # Lexicographic order of the bars puts all weight on the last detector first; flip so that
    # for m = 2 action i is alpha = i / (k - 1) on detector 1.
    return counts.flip(0).to(torch.float32) / steps
