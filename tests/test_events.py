"""Attack events, time to detect and false alarms per hour on the hand-built toy of docs/evaluation.md."""

from __future__ import annotations

import numpy as np
import pytest
from evaluation_toy import DECISIONS, GAP_S, WINDOW, drive, flood, windows
from fusioncore_alarms import KOfNAlarms, RawAlarms

from fusioncore import ConfigError, PluginError
from fusioncore.data.frames import Frames
from fusioncore.evaluation import (
    EvaluationSettings,
    ScenarioLayout,
    budget_thresholds,
    evaluate_scenario,
    find_events,
    mean_over_scenarios,
)
from fusioncore.evaluation.alarms import AlarmStage

SETTINGS = EvaluationSettings(event_gap_s=GAP_S)
HOUR = 3600.0


def _evaluate(frames, decisions=DECISIONS, alarm=None, exclude=None, settings=SETTINGS):
    starts, labels, kinds = windows(frames)
    return evaluate_scenario(
        frames, starts, labels, kinds, {"m": decisions}, {"m": 0.5}, window=WINDOW,
        alarm=alarm or RawAlarms(), settings=settings, exclude=exclude, name="toy",
    )


# ------------------------------------------------------------------- events
def test_the_toy_has_three_events_with_their_rows_times_and_types():
    ev = find_events(drive(), GAP_S)
    assert ev.first_row.tolist() == [9, 28, 57] and ev.last_row.tolist() == [13, 35, 61]
    np.testing.assert_allclose(ev.start_time, [0.9, 2.8, 5.7])
    np.testing.assert_allclose(ev.end_time, [1.3, 3.5, 6.1])
    assert ev.attack_type.tolist() == [1, 2, 3] and ev.n_frames.tolist() == [3, 8, 5]


def test_runs_closer_than_the_gap_merge_and_a_zero_gap_keeps_every_run():
    assert len(find_events(drive(), 0.0)) == 5  # rows 9, 11, 13 are runs of their own
    assert len(find_events(drive(), 0.15)) == 5  # 200 ms apart: not fewer than the gap
    assert len(find_events(drive(), 0.25)) == 3
    assert len(find_events(drive(), 10.0)) == 1  # everything within 10 s of the last attack frame
    with pytest.raises(ConfigError, match="event gap must be >= 0"):
        find_events(drive(), -1.0)


def test_events_never_span_two_captures():
    ev = find_events(Frames.concat([drive(), flood()]), 1e9)  # e3 and the flood touch in row order
    assert ev.capture.tolist() == [0, 1] and ev.first_row.tolist() == [9, 62]


# ------------------------------------------------------- the worked example
def test_raw_alarms_on_the_toy_give_the_documented_numbers():
    result = _evaluate(drive())
    m = result.methods["m"]
    ev, al = m["events"], m["alarms"]
    assert (ev["n"], ev["detected"], ev["recall"], ev["unobserved"]) == (3, 3, 1.0, 0)
    # e1: w3 ends at row 15 (1.5 s), onset row 9 (0.9 s); e2: w7, row 31 vs 28; e3: w14, row 59 vs 57
    det = ev["per_attack_type"]
    assert det["flooding"]["ttd_ms"]["median"] == pytest.approx(600.0)
    assert det["flooding"]["ttd_frames"]["median"] == 7
    assert det["fuzzing"]["ttd_ms"]["median"] == pytest.approx(300.0)
    assert det["spoofing"]["ttd_frames"]["median"] == 3
    assert ev["ttd_ms"]["median"] == pytest.approx(300.0)
    assert ev["ttd_ms"]["p95"] == pytest.approx(570.0)  # 300 + 0.9 * (600 - 300), linear
    assert ev["ttd_frames"] == pytest.approx({"median": 4.0, "p95": 6.7})
    # false alarm episodes: w1 (before e1) and w10-w11 (one episode); w8 overlaps e2
    assert (al["episodes"], al["false_alarm_episodes"]) == (5, 2)
    info = result.info
    # observed 0.0 .. 5.9 s; events inside it: 0.4 + 0.7 + 0.2 (e3 clipped at 5.9 s) = 1.3 s
    assert info["observed_hours"] * HOUR == pytest.approx(5.9)
    assert info["benign_hours"] * HOUR == pytest.approx(4.6)
    assert al["false_alarms_per_hour"] == pytest.approx(2 / (4.6 / HOUR))
    assert al["alarm_episodes_per_hour"] == pytest.approx(5 / (5.9 / HOUR))
    assert info["n_events"] == 3 and info["attack_types"] == ["flooding", "fuzzing", "spoofing"]


def test_an_alarm_before_an_event_does_not_detect_it():
    only_before = np.zeros(15)
    only_before[1] = 1  # w1 ends at row 7, e1 starts at row 9
    m = _evaluate(drive(), only_before).methods["m"]
    assert m["events"]["detected"] == 0 and m["alarms"]["false_alarm_episodes"] == 1


def test_k_of_n_on_the_toy_costs_delay_and_the_event_at_the_end_of_the_capture():
    m = _evaluate(drive(), alarm=KOfNAlarms(k=2, n=3)).methods["m"]
    ev, al, cost = m["events"], m["alarms"], m["alarm_cost"]
    # 2-of-3 alarms at w3, w8..w12: e1 at w3 (as raw), e2 at w8 (one window later), e3 missed
    assert (ev["detected"], ev["recall"]) == (2, pytest.approx(2 / 3))
    assert ev["per_attack_type"]["fuzzing"]["ttd_ms"]["median"] == pytest.approx(700.0)
    assert ev["per_attack_type"]["spoofing"]["detected"] == 0
    # w9, w10 look back at w8 (inside e2): the debouncer's tail, not a false alarm; w11-w12 are one
    assert (al["episodes"], al["false_alarm_episodes"]) == (2, 1)
    assert al["false_alarms_per_hour"] == pytest.approx(1 / (4.6 / HOUR))
    assert cost["n_events"] == 2
    assert cost["delay_ms"] == pytest.approx({"median": 200.0, "p95": 380.0})
    assert cost["delay_frames"] == pytest.approx({"median": 2.0, "p95": 3.8})
    assert cost["raw_event_recall"] == 1.0
    assert cost["raw_false_alarms_per_hour"] == pytest.approx(2 / (4.6 / HOUR))


def test_an_event_wholly_in_the_frames_after_the_last_window_is_unobserved():
    frames = drive(66)  # 16 windows cover rows 0..63; rows 64, 65 fill none
    label = frames.label.copy()
    label[64:] = 1  # 300 ms after e3 ends: its own event at a 250 ms gap
    frames = Frames.from_columns(timestamp=frames.timestamp, can_id=frames.can_id, data=frames.data,
                                 label=label, attack_type=label, sources=["drive.csv"])
    starts, labels, kinds = windows(frames)
    result = evaluate_scenario(frames, starts, labels, kinds, {"m": np.ones(len(starts))}, {"m": 0.5},
                               window=WINDOW, alarm=RawAlarms(),
                               settings=EvaluationSettings(event_gap_s=0.25))
    assert result.info["n_events"] == 3 and result.info["n_events_unobserved"] == 1
    events = result.methods["m"]["events"]
    assert events["recall"] == 1.0 and events["unobserved"] == 1  # unobservable is not a miss


def test_a_capture_with_no_benign_time():
    alone = _evaluate(flood(), np.ones(2))
    m = alone.methods["m"]
    assert alone.info["benign_hours"] == 0.0 and alone.info["observed_hours"] * HOUR == pytest.approx(0.7)
    assert m["alarms"]["false_alarms_per_hour"] is None  # no benign time: undefined, not 0
    assert m["alarms"]["false_alarm_episodes"] == 0
    assert m["events"]["detected"] == 1 and m["events"]["ttd_frames"]["median"] == 4
    assert m["mcc"] is None and m["auroc"] is None  # one class
    both = _evaluate(Frames.concat([drive(), flood()]), np.concatenate([DECISIONS, [1, 1]]))
    b = both.methods["m"]
    assert both.info["benign_hours"] * HOUR == pytest.approx(4.6)  # the flood capture adds none
    assert both.info["captures"] == ["drive.csv", "flood.csv"]
    assert (b["events"]["n"], b["events"]["detected"]) == (4, 4)
    assert b["alarms"]["false_alarms_per_hour"] == pytest.approx(2 / (4.6 / HOUR))
    assert b["alarms"]["episodes"] == 6  # w14 and the flood capture's first window never join


def test_excluded_windows_leave_every_metric_and_shift_the_onset():
    exclude = np.zeros(15, bool)
    exclude[:3] = True  # w0..w2: a reference segment; e1 is then seen from w3 (row 12) on
    result = _evaluate(drive(), exclude=exclude)
    m = result.methods["m"]
    assert result.info["n_windows"] == 12 and result.info["n_windows_excluded"] == 3
    assert m["n_windows"] == 12
    assert m["events"]["per_attack_type"]["flooding"]["ttd_ms"]["median"] == pytest.approx(300.0)
    assert m["events"]["per_attack_type"]["flooding"]["ttd_frames"]["median"] == 4
    assert m["alarms"]["false_alarm_episodes"] == 1  # w1 is excluded
    # observed 1.2 .. 5.9 s, events inside 0.1 (e1 from 1.2 s) + 0.7 + 0.2
    assert result.info["benign_hours"] * HOUR == pytest.approx(3.7)


def test_excluding_windows_splits_stretches_for_the_alarm_stage():
    exclude = np.zeros(15, bool)
    exclude[9] = True  # w8 | w10: a 2-of-3 count may not reach across the gap
    decisions = np.zeros(15)
    decisions[[8, 10]] = 1
    m = _evaluate(drive(), decisions, alarm=KOfNAlarms(2, 3), exclude=exclude).methods["m"]
    assert m["alarms"]["alarm_windows"] == 0
    m = _evaluate(drive(), decisions, alarm=KOfNAlarms(2, 3)).methods["m"]
    assert m["alarms"]["alarm_windows"] == 1  # w10: w8 and w10 among w8..w10


# ---------------------------------------------------------- undefined is not zero
def test_an_unlabelled_scenario_reports_alert_rate_and_alarm_episodes_only():
    frames = drive(events=False)  # a suppress capture: the attack is there, no frame says so
    result = _evaluate(frames)
    m = result.methods["m"]
    assert result.info["labelled"] is False and result.info["n_events"] == 0
    for key in ("mcc", "auroc", "ap", "f1", "recall"):
        assert m[key] is None, key
    assert m["events"]["recall"] is None and m["events"]["ttd_ms"]["median"] is None
    assert m["alarms"]["false_alarms_per_hour"] is None and m["alarms"]["false_alarm_episodes"] is None
    assert m["alarms"]["alarm_episodes_per_hour"] == pytest.approx(5 / (5.9 / HOUR))
    assert m["alert_rate"] == pytest.approx(7 / 15) and m["alarms"]["alarm_rate"] == pytest.approx(7 / 15)
    # and it stays out of the means instead of adding MCC 0 for every method
    labelled = _evaluate(drive()).methods["m"]
    means = mean_over_scenarios({"test_01": {"m": labelled}, "test_05_suppress": {"m": m}})["m"]
    assert means["mcc"] == pytest.approx(labelled["mcc"]) and means["n_scenarios"]["mcc"] == 1
    assert means["false_alarms_per_hour"] == pytest.approx(labelled["alarms"]["false_alarms_per_hour"])


def test_flags_mark_alerting_on_everything_and_constant_scores():
    m = _evaluate(drive(), np.full(15, 0.7)).methods["m"]
    assert m["flags"] == {"alerts_on_all_windows": True, "constant_score": True}
    assert m["auroc"] == 0.5 and m["mcc"] == 0.0  # both classes, one verdict: no skill, defined
    m = _evaluate(drive()).methods["m"]
    assert m["flags"] == {"alerts_on_all_windows": False, "constant_score": False}


def test_bad_inputs_fail_with_one_line_errors():
    frames = drive()
    starts, labels, kinds = windows(frames)
    kw = {"window": WINDOW, "alarm": RawAlarms()}
    with pytest.raises(PluginError, match=r"method 'm': 3 scores for 15 windows"):
        evaluate_scenario(frames, starts, labels, kinds, {"m": np.zeros(3)}, {"m": 0.5}, **kw)
    with pytest.raises(PluginError, match="not finite"):
        evaluate_scenario(frames, starts, labels, kinds, {"m": np.full(15, np.nan)}, {"m": 0.5}, **kw)
    with pytest.raises(ConfigError, match="no threshold for m"):
        evaluate_scenario(frames, starts, labels, kinds, {"m": DECISIONS}, {}, **kw)
    with pytest.raises(ConfigError, match="exclude has shape"):
        ScenarioLayout.build(frames, starts, window=WINDOW, gap_s=1.0, exclude=np.zeros(2, bool))
    with pytest.raises(ConfigError, match="eval.event_gap_s must be >= 0"):
        EvaluationSettings(event_gap_s=-1)
    with pytest.raises(ConfigError, match="fpr_levels"):
        EvaluationSettings(fpr_levels=(0.0,))


# ------------------------------------------------------------- false-alarm budget
def test_budget_threshold_on_the_toy():
    starts, _, _ = windows(drive())
    # 800 / h over 4.6 benign seconds allows 1.02 episodes
    raw = budget_thresholds(drive(), starts, {"m": DECISIONS}, window=WINDOW, alarm=RawAlarms(),
                            budget_per_hour=800, settings=SETTINGS)["m"]
    assert raw.threshold == 1.0 and raw.false_alarms_per_hour == 0.0  # raw has 2: only "never" fits
    kofn = budget_thresholds(drive(), starts, {"m": DECISIONS}, window=WINDOW, alarm=KOfNAlarms(2, 3),
                             budget_per_hour=800, settings=SETTINGS)["m"]
    assert kofn.threshold == 0.0 and kofn.false_alarms_per_hour == pytest.approx(1 / (4.6 / HOUR))
    assert kofn.benign_hours * HOUR == pytest.approx(4.6)
    generous = budget_thresholds(drive(), starts, {"m": DECISIONS}, window=WINDOW, alarm=RawAlarms(),
                                 budget_per_hour=1e9, settings=SETTINGS)["m"]
    assert generous.threshold < 0.0  # within budget even alerting on every window


class _Opaque(AlarmStage):
    """k-of-n without alarm_scores: the budget search must try thresholds instead."""

    name = "opaque"

    def __init__(self, stage):
        self.stage = stage

    @property
    def memory(self):
        return self.stage.memory

    def alarms(self, decisions):
        return self.stage.alarms(decisions)


@pytest.mark.parametrize("stage", [RawAlarms(), KOfNAlarms(3, 5)], ids=["raw", "3-of-5"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_budget_threshold_is_the_lowest_that_keeps_the_budget(stage, seed):
    rng = np.random.default_rng(seed)
    n_windows = 300
    frames = drive(n_windows * 4, events=False)
    label = (rng.random(len(frames)) < 0.002).astype(np.uint8)
    frames = Frames.from_columns(timestamp=frames.timestamp, can_id=frames.can_id, data=frames.data,
                                 label=label, sources=["drive.csv"])
    starts, labels, kinds = windows(frames)
    scores = np.round(rng.random(n_windows) + 0.3 * labels, 2)  # ties on purpose
    budget = 3000.0
    choice = budget_thresholds(frames, starts, {"m": scores}, window=WINDOW, alarm=stage,
                               budget_per_hour=budget, settings=SETTINGS)["m"]

    def fa(threshold):
        r = evaluate_scenario(frames, starts, labels, kinds, {"m": scores}, {"m": threshold}, window=WINDOW,
                              alarm=stage, settings=SETTINGS, labelled=True)
        return r.methods["m"]["alarms"]["false_alarms_per_hour"]

    assert fa(choice.threshold) == pytest.approx(choice.false_alarms_per_hour)
    assert choice.false_alarms_per_hour <= budget
    higher = np.unique(scores[scores > choice.threshold])
    assert all(fa(t) <= budget for t in higher)  # the budget holds at every stricter threshold
    lower = np.unique(scores[scores <= choice.threshold])
    if lower.size > 1:
        assert fa(lower[-2]) > budget  # one cut lower breaks it
    tried = budget_thresholds(frames, starts, {"m": scores}, window=WINDOW, alarm=_Opaque(stage),
                              budget_per_hour=budget, settings=SETTINGS)["m"]
    assert fa(tried.threshold) == pytest.approx(choice.false_alarms_per_hour)


def test_budget_needs_benign_time():
    starts, _, _ = windows(flood())
    with pytest.raises(ConfigError, match="no benign capture time"):
        budget_thresholds(flood(), starts, {"m": np.ones(2)}, window=WINDOW, alarm=RawAlarms(),
                          budget_per_hour=5, settings=SETTINGS)
