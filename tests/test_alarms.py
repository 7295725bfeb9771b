"""Alarm stages: raw and k-of-n against loop definitions, their alarm scores, the registry kind."""

from __future__ import annotations

import numpy as np
import pytest
from fusioncore_alarms import KOfNAlarms, RawAlarms

from fusioncore import ConfigError, PluginError
from fusioncore.evaluation.alarms import AlarmStage, alarm_scores, apply_alarm_stage
from fusioncore.plugins import load_plugins
from fusioncore.registry import KINDS


def _k_of_n_loop(decisions, k, n):
    return np.array([decisions[max(0, j - n + 1) : j + 1].sum() >= k for j in range(len(decisions))], bool)


@pytest.mark.parametrize(("k", "n"), [(1, 1), (1, 4), (2, 3), (3, 5), (5, 5)])
def test_k_of_n_matches_its_definition(k, n):
    rng = np.random.default_rng(k * 10 + n)
    for size in (0, 1, 3, 50):
        d = rng.random(size) < 0.4
        np.testing.assert_array_equal(KOfNAlarms(k, n).alarms(d), _k_of_n_loop(d, k, n))


@pytest.mark.parametrize("stage", [RawAlarms(), KOfNAlarms(1, 3), KOfNAlarms(3, 5), KOfNAlarms(4, 4)],
                         ids=["raw", "1-of-3", "3-of-5", "4-of-4"])
def test_alarm_scores_reproduce_the_alarms_at_every_threshold(stage):
    rng = np.random.default_rng(0)
    scores = np.round(rng.random(80), 1)  # many ties
    q = stage.alarm_scores(scores)
    for t in [-1.0, *np.unique(scores), 2.0]:
        np.testing.assert_array_equal(stage.alarms(scores > t), q > t, err_msg=f"t={t}")


def test_k_of_n_parameters_and_memory():
    assert KOfNAlarms().config() == {"k": 3, "n": 5} and KOfNAlarms().memory == 4
    assert RawAlarms().memory == 0 and RawAlarms().config() == {}
    for k, n in [(0, 3), (4, 3), (2.5, 3), (True, 3)]:
        with pytest.raises(ConfigError, match="k-of-n"):
            KOfNAlarms(k, n)


def test_stages_run_per_stretch_and_shapes_are_checked():
    d = np.array([1, 1, 0, 1, 1, 1], bool)
    # two stretches [0, 3) and [3, 6): 2-of-2 never counts across the boundary
    got = apply_alarm_stage(KOfNAlarms(2, 2), d, np.array([0, 3]), np.array([3, 6]))
    np.testing.assert_array_equal(got, [0, 1, 0, 0, 1, 1])

    class Short(AlarmStage):
        name = "short"

        def alarms(self, decisions):
            return decisions[:-1]

    with pytest.raises(PluginError, match=r"alarm stage 'short' returned shape \(2,\) for 3 windows"):
        apply_alarm_stage(Short(), d, np.array([0, 3]), np.array([3, 6]))
    assert alarm_scores(Short(), np.zeros(6), np.array([0]), np.array([6])) is None


def test_alarm_is_a_registry_kind_filled_by_the_bundled_plugin():
    assert KINDS["alarm"] == "fusioncore_register_alarms"
    reg = load_plugins(strict=True).registry
    assert reg.names("alarm") == ["k-of-n", "raw"]
    assert reg.get("alarm", "k_of_n") is KOfNAlarms  # names normalise like every kind
    assert reg.component("alarm", "raw").plugin == "alarms"


def test_an_alarm_stage_must_be_an_alarm_stage_class():
    from fusioncore.registry import Registry

    with pytest.raises(PluginError, match="an alarm must be a fusioncore.evaluation.AlarmStage subclass"):
        Registry().register("alarm", "bad", lambda decisions: decisions, plugin="mine")
