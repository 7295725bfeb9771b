"""``raw`` and ``k-of-n`` alarm stages, vectorised over a stretch of windows."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from fusioncore import ConfigError
from fusioncore.evaluation.alarms import AlarmStage

__all__ = ["KOfNAlarms", "RawAlarms"]


class RawAlarms(AlarmStage):
    """The alarm is the decision: every window decided attack raises one."""

    name: ClassVar[str] = "raw"

    def alarms(self, decisions: np.ndarray) -> np.ndarray:
        return np.array(decisions, dtype=bool)

    def alarm_scores(self, scores: np.ndarray) -> np.ndarray:
        return np.array(scores, dtype=np.float64)


class KOfNAlarms(AlarmStage):
    """Alarm at a window when at least ``k`` of the last ``n`` windows (itself included) say attack.

    At the start of a stretch, the windows seen so far count (fewer than k of
    them never alarm). The default 3-of-5 is a common deployment choice; it
    suppresses isolated false positives and costs detection delay, which the
    report shows beside ``raw`` on the same windows.
    """

    name: ClassVar[str] = "k-of-n"

    def __init__(self, k: int = 3, n: int = 5) -> None:
        if isinstance(k, bool) or isinstance(n, bool) or int(k) != k or int(n) != n:
            raise ConfigError(f"k-of-n: k and n must be whole numbers, got k={k!r}, n={n!r}")
        k, n = int(k), int(n)
        if not 1 <= k <= n:
            raise ConfigError(f"k-of-n: need 1 <= k <= n, got k={k}, n={n}")
        self.k, self.n = k, n

    @property
    def memory(self) -> int:
        return self.n - 1

    def alarms(self, decisions: np.ndarray) -> np.ndarray:
        d = np.asarray(decisions, dtype=bool)
        seen = np.concatenate([[0], np.cumsum(d)])
        j = np.arange(len(d))
        return seen[j + 1] - seen[np.maximum(j - self.n + 1, 0)] >= self.k

    def alarm_scores(self, scores: np.ndarray) -> np.ndarray:
        """The k-th largest score of the last n windows: k decisions say attack iff it exceeds t."""
        s = np.asarray(scores, dtype=np.float64)
        if s.size == 0:
            return s.copy()
        padded = np.concatenate([np.full(self.n - 1, -np.inf), s])
        last_n = sliding_window_view(padded, self.n)
        return np.partition(last_n, self.n - self.k, axis=1)[:, self.n - self.k]

    def config(self) -> dict[str, Any]:
        return {"k": self.k, "n": self.n}
