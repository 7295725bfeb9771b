"""Weight vectors on a regular grid of the probability simplex (fusion candidates and actions).

With m detectors and ``levels`` points per axis, the grid holds every weight
vector whose entries are multiples of ``1 / (levels - 1)`` and sum to 1. For
two detectors row i is ``(1 - alpha, alpha)`` with ``alpha = i / (levels - 1)``
(the predecessor's ``linspace(0, 1, 21)``); for m > 2 it has the same
resolution along every edge of the simplex, so no detector is privileged.
The count is ``C(levels + m - 2, m - 1)`` (231 for m = 3, levels = 21).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from fusioncore.errors import ConfigError

__all__ = ["MAX_GRID_POINTS", "simplex_grid"]

#: Above this a grid search or a Q-network's output layer stops making sense.
MAX_GRID_POINTS = 5000


def simplex_grid(m: int, levels: int, *, option: str = "levels") -> np.ndarray:
    """``float32[G, m]`` weight vectors (rows sum to 1), ordered as described above.

    ``option`` names the caller's parameter for ``levels`` in error messages.
    """
    if m < 1:
        raise ConfigError(f"need at least one detector to fuse, got {m}")
    if levels < 2:
        raise ConfigError(f"{option} (weight levels per detector) must be >= 2, got {levels}")
    steps = levels - 1
    count = math.comb(steps + m - 1, m - 1)
    if count > MAX_GRID_POINTS:
        raise ConfigError(
            f"{m} detectors with {option}={levels} give {count} candidates "
            f"(limit {MAX_GRID_POINTS}); lower {option}"
        )
    if m == 1:
        return np.ones((1, 1), np.float32)
    # Stars and bars: m - 1 bar positions among steps + m - 1 slots; the gaps are the counts.
    bars = np.array(list(itertools.combinations(range(steps + m - 1), m - 1)), dtype=np.int64)
    bars = bars.reshape(count, m - 1)
    edges = np.concatenate([np.full((count, 1), -1), bars, np.full((count, 1), steps + m - 1)], axis=1)
    # Lexicographic order of the bars puts all weight on the last detector first; flip so that
    # for m = 2 row i is alpha = i / (levels - 1) on detector 1.
    return np.ascontiguousarray((np.diff(edges, axis=1) - 1)[::-1], dtype=np.float32) / steps
