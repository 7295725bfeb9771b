"""Evaluate every method on one scenario: window metrics, attack events, alarms, false alarms per hour.

The pipeline calls :func:`evaluate_scenario` once per scenario (every test
folder, and the validation block) and :func:`budget_thresholds` once on the
validation block when a false-alarm budget is set. Both take the scenario as
the pipeline holds it (a :class:`~fusioncore.data.datamodule.SplitWindows`:
frames, window start rows, labels, attack types) plus one score array per
method, aligned with ``starts``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np

from fusioncore.data.frames import Frames, attack_type_name
from fusioncore.data.windows import WindowSpec
from fusioncore.errors import ConfigError, PluginError
from fusioncore.evaluation.alarms import AlarmStage, alarm_scores, apply_alarm_stage
from fusioncore.evaluation.events import ScenarioLayout
from fusioncore.evaluation.metrics import recall_at_fpr, scenario_metrics
from fusioncore.evaluation.outcomes import AlarmOutcome, alarm_outcome, event_summary, false_alarm_summary

__all__ = [
    "BudgetThreshold",
    "EvaluationSettings",
    "ScenarioEvaluation",
    "attack_types_present",
    "budget_thresholds",
    "evaluate_scenario",
]


def _non_negative(instance, attribute, value) -> None:
    if value is not None and not value >= 0:
        raise ConfigError(f"eval.{attribute.name} must be >= 0, got {value}")


def _levels(value) -> tuple[float, ...]:
    levels = tuple(float(v) for v in value)
    if any(not 0 < v < 1 for v in levels):
        raise ConfigError(f"eval.fpr_levels must lie strictly between 0 and 1, got {list(levels)}")
    return levels


@attrs.frozen
class EvaluationSettings:
    """How events and alarms are counted (the ``eval`` config group).

    ``event_gap_s`` (default 1 s): attack runs closer than this merge into one
    event. Injection attacks put single forged frames between benign ones,
    so without merging every forged frame would be an "event"; in the
    can-train-and-test hcrl_sa captures the forged frames of one attack are
    at most 14 ms apart and attacks at least 5 s apart, so any gap from
    0.1 s to 5 s gives the same events, and 1 s is far above a 100-frame
    window (about 40 ms at 2,500 frames/s) yet below typical attack spacing.
    ``fpr_levels``: window false-positive rates at which recall is reported.
    ``max_false_alarms_per_hour``: when set, the pipeline takes each method's
    threshold from :func:`budget_thresholds` on validation instead of best MCC.
    """

    event_gap_s: float = attrs.field(default=1.0, converter=float, validator=_non_negative)
    fpr_levels: tuple[float, ...] = attrs.field(default=(1e-3, 1e-2), converter=_levels)
    max_false_alarms_per_hour: float | None = attrs.field(
        default=None, converter=attrs.converters.optional(float), validator=_non_negative
    )


def attack_types_present(attack_types: np.ndarray) -> list[str]:
    """Names of the attack types among ``attack_types`` (window or frame codes), benign left out."""
    return [attack_type_name(int(c)) for c in np.unique(np.asarray(attack_types)) if c != 0]


@attrs.frozen(eq=False)
class ScenarioEvaluation:
    """One scenario evaluated: JSON-ready ``info`` and ``methods``, plus the arrays plots need.

    ``methods[name]`` is report.json's ``scenarios[scenario][name]``;
    ``info`` is ``scenario_info[scenario]``. ``scores``, ``alarms`` and
    ``layout`` are per evaluated window (row order), for
    :func:`fusioncore.evaluation.plots.plot_timelines`.
    """

    name: str
    info: dict[str, Any]
    methods: dict[str, dict[str, Any]]
    layout: ScenarioLayout
    scores: dict[str, np.ndarray]
    thresholds: dict[str, float]
    alarms: dict[str, np.ndarray]


def _check_scores(scores: Mapping[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    out = {}
    for method, s in scores.items():
        s = np.asarray(s, dtype=np.float64)
        if s.shape != (n,):
            raise PluginError(f"method {method!r}: {s.shape[0] if s.ndim else 0} scores for {n} windows")
        if not np.isfinite(s).all():
            raise PluginError(f"method {method!r}: {int((~np.isfinite(s)).sum())} scores are not finite")
        out[method] = s
    return out


def _delay_cost(layout: ScenarioLayout, stage: AlarmOutcome, decisions: np.ndarray) -> dict[str, Any]:
    """What the alarm stage costs against raw alarms on the same windows.

    The delay is paired: the stage's time to detect minus raw's, on the events
    both detect. It can be negative: a k-of-n alarm may count decisions taken
    just before an event that raw alarms do not attribute to it.
    """
    raw = alarm_outcome(layout, decisions, 0)
    both = stage.detected & raw.detected

    def stats(a: np.ndarray, b: np.ndarray) -> dict[str, float | None]:
        d = (a[both] - b[both]).astype(np.float64)
        if d.size == 0:
            return {"median": None, "p95": None}
        return {"median": float(np.median(d)), "p95": float(np.percentile(d, 95))}

    return {
        "vs": "raw",
        "n_events": int(both.sum()),
        "delay_ms": stats(stage.ttd_ms, raw.ttd_ms),
        "delay_frames": stats(stage.ttd_frames, raw.ttd_frames),
        "raw_event_recall": event_summary(layout, raw)["recall"],
        "raw_false_alarms_per_hour": false_alarm_summary(layout, raw)["false_alarms_per_hour"],
    }


def evaluate_scenario(
    frames: Frames,
    starts: np.ndarray,
    labels: np.ndarray,
    attack_types: np.ndarray,
    scores: Mapping[str, np.ndarray],
    thresholds: Mapping[str, float],
    *,
    window: WindowSpec,
    alarm: AlarmStage,
    settings: EvaluationSettings | None = None,
    exclude: np.ndarray | None = None,
    labelled: bool | None = None,
    name: str = "",
) -> ScenarioEvaluation:
    """Every method on one scenario; ``scores[m]`` and ``labels`` are aligned with ``starts``.

    A method alarms where its alarm stage, fed ``score > thresholds[m]``
    stretch by stretch, says so. ``exclude`` (bool, aligned with ``starts``)
    leaves windows out of every metric: window metrics, events, alarms and
    observed time (the adaptation stage excludes its reference segments).
    ``labelled=None`` treats a scenario without a single attack label as
    unlabelled (false alarms undefined, a suppress folder); pass ``True`` for
    blocks of training files, whose unlabelled frames are benign.
    """
    settings = settings or EvaluationSettings()
    starts = np.asarray(starts)
    labels, attack_types = np.asarray(labels), np.asarray(attack_types)
    if labels.shape != starts.shape or attack_types.shape != starts.shape:
        raise ConfigError(f"{len(starts)} windows but {len(labels)} labels / {len(attack_types)} types")
    missing = [m for m in scores if m not in thresholds]
    if missing:
        raise ConfigError(f"no threshold for {', '.join(missing)}")
    layout = ScenarioLayout.build(frames, starts, window=window, gap_s=settings.event_gap_s, exclude=exclude,
                                  labelled=labelled)
    all_scores = _check_scores(scores, len(starts))
    idx = layout.index
    y, kinds = labels[idx], attack_types[idx]
    memory = int(alarm.memory)
    if memory < 0:
        raise PluginError(f"alarm stage {alarm.name!r}: memory must be >= 0, got {memory}")
    methods: dict[str, dict[str, Any]] = {}
    kept_scores, kept_alarms = {}, {}
    for method, s_all in all_scores.items():
        s = s_all[idx]
        t = float(thresholds[method])
        decisions = s > t
        alarms = apply_alarm_stage(alarm, decisions, layout.stretch_begin, layout.stretch_end)
        outcome = alarm_outcome(layout, alarms, memory)
        record = scenario_metrics(y, s, kinds, t)
        record["recall_at_fpr"] = recall_at_fpr(y, s, settings.fpr_levels)
        record["flags"] = {
            "alerts_on_all_windows": bool(len(s) and decisions.all()),
            "constant_score": bool(len(s) and np.ptp(s) == 0),
        }
        record["events"] = event_summary(layout, outcome)
        record["alarms"] = false_alarm_summary(layout, outcome)
        if alarm.name != "raw":
            record["alarm_cost"] = _delay_cost(layout, outcome, decisions)
        methods[method] = record
        kept_scores[method], kept_alarms[method] = s, alarms
    ev = layout.events
    info = {
        "n_windows": len(layout),
        "n_windows_excluded": layout.n_excluded,
        "captures": list(layout.capture_names),
        "labelled": layout.labelled,
        "attack_types": attack_types_present(ev.attack_type),
        "observed_hours": layout.observed_seconds / 3600.0,
        "benign_hours": layout.benign_seconds / 3600.0,
        "n_events": int(layout.observed.sum()),
        "n_events_unobserved": int((~layout.observed).sum()),
        "event_gap_s": settings.event_gap_s,
        "alarm": {"name": alarm.name, "params": dict(alarm.config()), "memory": memory},
    }
    return ScenarioEvaluation(
        name=name, info=info, methods=methods, layout=layout, scores=kept_scores,
        thresholds={m: float(thresholds[m]) for m in all_scores}, alarms=kept_alarms,
    )


@attrs.frozen
class BudgetThreshold:
    """A threshold chosen on validation for a false-alarm budget, and what it achieved there."""

    threshold: float
    false_alarms_per_hour: float  #: on the validation block, at ``threshold``
    budget: float
    benign_hours: float


def _false_alarms_by_threshold(
    layout: ScenarioLayout, q: np.ndarray, memory: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact false alarm episodes for every threshold: ``(cut values, episodes)``, cuts descending.

    Window j alarms at threshold t iff ``q[j] > t``; episodes among windows
    attributed to no event = alarmed such windows - alarmed adjacent pairs.
    """
    from fusioncore.evaluation.outcomes import attributed

    free = ~attributed(layout, memory)
    single = np.sort(q[free])
    pair = free[1:] & free[:-1] & (layout.stretch[1:] == layout.stretch[:-1])
    joined = np.sort(np.minimum(q[1:], q[:-1])[pair])
    cuts = np.unique(single)[::-1]
    # at a threshold just below cut c, every q >= c alarms
    count = (len(single) - np.searchsorted(single, cuts, side="left")) - (
        len(joined) - np.searchsorted(joined, cuts, side="left")
    )
    return cuts, count


def budget_thresholds(
    frames: Frames,
    starts: np.ndarray,
    scores: Mapping[str, np.ndarray],
    *,
    window: WindowSpec,
    alarm: AlarmStage,
    budget_per_hour: float,
    settings: EvaluationSettings | None = None,
    exclude: np.ndarray | None = None,
    max_candidates: int = 2048,
) -> dict[str, BudgetThreshold]:
    """Per method, the lowest threshold whose false alarms per hour stay within the budget (validation).

    "Stay within": the budget holds at the chosen threshold and at every
    higher one, so the choice is not an accident of two episodes merging.
    Exact for stages with :meth:`~fusioncore.evaluation.alarms.AlarmStage.alarm_scores`
    (both bundled ones); other stages are tried at up to ``max_candidates``
    thresholds, highest first. Call it on the validation block only; frames
    without an attack label count as benign there.
    """
    settings = settings or EvaluationSettings()
    if not budget_per_hour >= 0:
        raise ConfigError(f"eval.max_false_alarms_per_hour must be >= 0, got {budget_per_hour}")
    layout = ScenarioLayout.build(frames, starts, window=window, gap_s=settings.event_gap_s, exclude=exclude)
    if layout.benign_seconds <= 0:
        raise ConfigError("the validation block has no benign capture time: a false-alarm budget "
                          "cannot choose thresholds there")
    hours = layout.benign_seconds / 3600.0
    allowed = budget_per_hour * hours
    memory = int(alarm.memory)
    out = {}
    for method, s_all in _check_scores(scores, len(np.asarray(starts))).items():
        s = s_all[layout.index]
        q = alarm_scores(alarm, s, layout.stretch_begin, layout.stretch_end)
        if q is not None:
            cuts, count = _false_alarms_by_threshold(layout, q, memory)
        else:
            cuts, count = _tried(layout, s, alarm, memory, allowed, max_candidates)
        k = int((np.cumsum(count > allowed + 1e-9) == 0).sum())  # cuts[:k]: budget holds down to them
        achieved = int(count[k - 1]) if k else 0
        if k == len(cuts):  # within budget even when every window says attack
            lowest = float(s.min())
            threshold = lowest - max(1e-6, 1e-9 * abs(lowest))
        elif k == 0:  # the first false alarm already breaks it
            threshold = float(cuts[0])
        elif q is not None:
            threshold = float(cuts[k])  # q > cuts[k] <=> q >= cuts[k - 1] on the windows that count
        else:
            below = np.unique(s)
            threshold = float(below[np.searchsorted(below, cuts[k - 1]) - 1])  # s > it <=> s >= cut
        out[method] = BudgetThreshold(threshold, achieved / hours, float(budget_per_hour), hours)
    return out


def _tried(layout, s, alarm, memory, allowed, max_candidates) -> tuple[np.ndarray, np.ndarray]:
    """Candidate cuts (descending) and false alarm episodes for a stage without alarm scores."""
    values = np.unique(s)[::-1]
    if len(values) > max_candidates:
        values = values[np.unique(np.linspace(0, len(values) - 1, max_candidates).astype(np.int64))]
    counts = []
    for c in values:  # one vectorised pass per candidate, highest first; stop once over budget
        alarms = apply_alarm_stage(alarm, s >= c, layout.stretch_begin, layout.stretch_end)
        counts.append(alarm_outcome(layout, alarms, memory).n_false_episodes)
        if counts[-1] > allowed + 1e-9:
            break
    return values[: len(counts)], np.asarray(counts, dtype=np.int64)
