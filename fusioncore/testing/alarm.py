"""The alarm-stage contract: one bool per window, causal within ``memory``, scores that agree.

Alarm stages are registered as classes and built as ``cls(**params)``::

    from fusioncore.testing import AlarmContract

    class TestMyDebouncer(AlarmContract):
        alarm_cls = MyDebouncer
        params = {"hold": 4}

or call :func:`check_alarm_stage`. The core calls :meth:`AlarmStage.alarms`
once per stretch of consecutive windows (:mod:`fusioncore.evaluation.alarms`),
and the evaluation attributes an alarm to an attack event through the
stage's ``memory``; so the checks are what those two uses rely on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pytest

from fusioncore.evaluation.alarms import AlarmStage
from fusioncore.testing.checks import ContractViolation, configured, describe, require

__all__ = [
    "AlarmContract",
    "build_alarm_stage",
    "check_alarm_memory",
    "check_alarm_output",
    "check_alarm_scores",
    "check_alarm_stage",
    "decision_patterns",
]


def decision_patterns(n: int = 64, seed: int = 0) -> list[np.ndarray]:
    """Decision stretches a stage must handle: empty, one window, all off, all on, bursts, noise."""
    rng = np.random.default_rng(seed)
    bursts = np.zeros(n, bool)
    bursts[10:14] = bursts[30:31] = bursts[50:60] = True
    return [np.zeros(0, bool), np.ones(1, bool), np.zeros(n, bool), np.ones(n, bool), bursts,
            rng.random(n) < 0.3]


def build_alarm_stage(cls: type, params: Mapping[str, Any] | None = None) -> AlarmStage:
    """``cls(**params)``, checked to be an :class:`AlarmStage` with a JSON-able ``config()``."""
    require(isinstance(cls, type) and issubclass(cls, AlarmStage),
            f"an alarm stage must subclass fusioncore.evaluation.AlarmStage, got {describe(cls)}")
    try:
        stage = cls(**dict(params or {}))
    except Exception as exc:
        what = f"{cls.__name__}(**{dict(params or {})})"
        raise ContractViolation(f"{what} raised {type(exc).__name__}: {exc}") from exc
    config = stage.config()
    try:
        json.dumps(config)
    except TypeError as exc:
        raise ContractViolation(f"config() must be JSON-serialisable (report.json holds it): {exc}") from exc
    require(isinstance(stage.memory, int) and stage.memory >= 0,
            f"memory must be an int >= 0 (windows before the current one an alarm may depend on), "
            f"got {stage.memory!r}")
    return stage


def check_alarm_output(stage: AlarmStage) -> None:
    """One bool per window of every stretch, inputs untouched, the same answer twice."""
    for decisions in decision_patterns():
        copy = decisions.copy()
        got = np.asarray(stage.alarms(decisions))
        require(got.shape == decisions.shape,
                f"alarms() returned shape {got.shape} for {len(decisions)} windows: one alarm per window")
        require(got.dtype == bool, f"alarms() must return bools, got dtype {got.dtype}")
        require(np.array_equal(decisions, copy), "alarms() modified the decisions it was given")
        require(np.array_equal(got, np.asarray(stage.alarms(decisions))),
                "alarms() gave two answers for the same decisions")
    require(not np.asarray(stage.alarms(np.zeros(64, bool))).any(), "alarms without a single attack decision")


def check_alarm_memory(stage: AlarmStage) -> None:
    """The alarm at window i depends only on decisions i - memory .. i (causal and bounded)."""
    rng = np.random.default_rng(1)
    base = rng.random(96) < 0.4
    alarms = np.asarray(stage.alarms(base))
    for i in range(0, 96, 7):
        lo = i - stage.memory
        for changed in (slice(i + 1, None), slice(0, max(lo, 0))):
            other = base.copy()
            other[changed] = ~other[changed]
            require(np.asarray(stage.alarms(other))[i] == alarms[i],
                    f"the alarm at window {i} changed when decisions outside windows {max(lo, 0)}..{i} "
                    f"changed: memory={stage.memory} must cover every window an alarm depends on, and "
                    "an alarm may not depend on later windows")


def check_alarm_scores(stage: AlarmStage) -> None:
    """If ``alarm_scores`` is given: ``alarms(s > t) == (alarm_scores(s) > t)`` for every threshold."""
    scores = np.random.default_rng(2).random(80)
    q = stage.alarm_scores(scores)
    if q is None:
        return
    q = np.asarray(q)
    require(q.shape == scores.shape, f"alarm_scores() returned shape {q.shape} for {len(scores)} scores")
    for t in np.concatenate([np.quantile(scores, np.linspace(0, 1, 11)), [-1.0, 2.0]]):
        require(np.array_equal(np.asarray(stage.alarms(scores > t)), q > t),
                f"alarm_scores() disagrees with alarms() at threshold {t:.3f}: the false-alarm budget "
                "would pick a wrong threshold")


def check_alarm_stage(cls: type, params: Mapping[str, Any] | None = None) -> AlarmStage:
    """Every check above; returns the built stage."""
    stage = build_alarm_stage(cls, params)
    check_alarm_output(stage)
    check_alarm_memory(stage)
    check_alarm_scores(stage)
    return stage


class AlarmContract:
    """pytest base class: set ``alarm_cls`` (and ``params``); every test below runs against it."""

    alarm_cls: ClassVar[type]
    params: ClassVar[Mapping[str, Any]] = {}

    @pytest.fixture
    def stage(self) -> AlarmStage:
        return build_alarm_stage(configured(self, "alarm_cls", "your AlarmStage subclass"), self.params)

    def test_one_bool_per_window(self, stage: AlarmStage) -> None:
        check_alarm_output(stage)

    def test_alarm_depends_only_on_its_memory(self, stage: AlarmStage) -> None:
        check_alarm_memory(stage)

    def test_alarm_scores_agree_with_alarms(self, stage: AlarmStage) -> None:
        check_alarm_scores(stage)
