"""Alarm stages: per-window decisions -> alarms, the debouncing a deployment puts after a detector.

An alarm stage is a component kind of its own (registry kind ``alarm``, hook
``fusioncore_register_alarms``), so what a deployment does between "this
window looks like an attack" and "raise an alarm" is evaluated, not guessed.
The bundled stages are ``raw`` (the alarm is the decision) and ``k-of-n``
(alarm when k of the last n windows were decided attack), in the
``fusioncore_alarms`` plugin.

The core calls :meth:`AlarmStage.alarms` once per *stretch*: consecutive
windows of one capture, in time order (see :mod:`fusioncore.evaluation.events`),
so a stage never carries state across two files or across excluded windows.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from fusioncore.errors import PluginError

__all__ = ["AlarmStage", "alarm_scores", "apply_alarm_stage"]


class AlarmStage:
    """Base class of alarm stages (registered as classes, built as ``cls(**params)``).

    Subclasses implement :meth:`alarms` vectorised over the stretch (no Python
    loop per window) and set :attr:`memory`: how many windows *before* the
    current one its alarm may depend on (``raw``: 0, ``k-of-n``: n - 1). The
    evaluation uses it to attribute alarms: an alarm whose last ``memory + 1``
    windows overlap an attack event belongs to that event (it detects it and
    is no false alarm), so a debouncer's tail after an attack is not billed as
    a false alarm.

    Stages that are monotone (more attack decisions never remove an alarm) and
    built from order statistics may also implement :meth:`alarm_scores`; the
    false-alarm budget then picks its threshold exactly and fast.
    """

    name: ClassVar[str] = "alarm"

    @property
    def memory(self) -> int:
        return 0

    def alarms(self, decisions: np.ndarray) -> np.ndarray:
        """``bool[n]`` alarms from the ``bool[n]`` decisions of one stretch, in time order."""
        raise NotImplementedError

    def alarm_scores(self, scores: np.ndarray) -> np.ndarray | None:
        """``q[n]`` with ``alarms(scores > t) == (q > t)`` for every threshold t, or ``None``."""
        return None

    def config(self) -> dict[str, Any]:
        """The parameters that define the stage (shown in the report)."""
        return {}


def _stretches(stretch_begin: np.ndarray, stretch_end: np.ndarray):
    return zip(stretch_begin.tolist(), stretch_end.tolist())


def apply_alarm_stage(
    stage: AlarmStage, decisions: np.ndarray, stretch_begin: np.ndarray, stretch_end: np.ndarray
) -> np.ndarray:
    """The stage's alarms over every stretch (one call per stretch), checked for shape."""
    decisions = np.asarray(decisions, dtype=bool)
    out = np.zeros(len(decisions), bool)
    for a, b in _stretches(stretch_begin, stretch_end):
        got = np.asarray(stage.alarms(decisions[a:b]))
        if got.shape != (b - a,):
            raise PluginError(
                f"alarm stage {stage.name!r} returned shape {got.shape} for {b - a} windows"
            )
        out[a:b] = got.astype(bool)
    return out


def alarm_scores(
    stage: AlarmStage, scores: np.ndarray, stretch_begin: np.ndarray, stretch_end: np.ndarray
) -> np.ndarray | None:
    """:meth:`AlarmStage.alarm_scores` over every stretch, or ``None`` if the stage has none."""
    scores = np.asarray(scores, dtype=np.float64)
    out = np.empty(len(scores))
    for a, b in _stretches(stretch_begin, stretch_end):
        got = stage.alarm_scores(scores[a:b])
        if got is None:
            return None
        got = np.asarray(got, dtype=np.float64)
        if got.shape != (b - a,):
            raise PluginError(
                f"alarm stage {stage.name!r}: alarm_scores returned shape {got.shape} for {b - a} windows"
            )
        out[a:b] = got
    return out
