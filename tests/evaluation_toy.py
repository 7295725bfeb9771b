"""The hand-built toy capture of ``docs/evaluation.md`` (the worked example), for evaluation tests.

``drive.csv``: 62 frames, one every 100 ms (frame i at t = 0.1 * i s), windows of
4 frames at stride 4, so windows w0..w14 cover rows 0..59 and rows 60-61 are
too few for a window. Three attack events (event gap 0.5 s):

==== ========================= =========== ======================
 e    attack rows               type        windows overlapping
==== ========================= =========== ======================
 e1   9, 11, 13 (interleaved)   flooding    w2 (rows 8-11), w3
 e2   28..35                    fuzzing     w7, w8
 e3   57..61 (end of capture)   spoofing    w14 only
==== ========================= =========== ======================

``DECISIONS`` (one per window; scores are these 0/1 values, threshold 0.5):
w1 alarms *before* e1, w3 detects e1, w7 detects e2, w10-w11 are one false
alarm episode, w14 detects e3 in the capture's last window.

``flood.csv`` is a second capture of 8 frames that are all attack: a capture
with no benign time.
"""

from __future__ import annotations

import numpy as np

from fusioncore.data.frames import Frames
from fusioncore.data.windows import WindowSpec, window_labels, window_starts

WINDOW = WindowSpec(4, 4)
GAP_S = 0.5
DECISIONS = np.array([0, 1, 0, 1, 0, 0, 0, 1, 1, 0, 1, 1, 0, 0, 1], dtype=np.float64)


def drive(n: int = 62, events: bool = True) -> Frames:
    label = np.zeros(n, np.uint8)
    kind = np.zeros(n, np.uint8)
    if events:
        for rows, code in (([9, 11, 13], 1), (range(28, 36), 2), (range(57, 62), 3)):
            label[list(rows)] = 1
            kind[list(rows)] = code
    return Frames.from_columns(
        timestamp=np.arange(n) * 0.1, can_id=np.full(n, 0x100), data=np.zeros((n, 8)),
        label=label, attack_type=kind, sources=["drive.csv"],
    )


def flood(n: int = 8) -> Frames:
    """A capture that is attack from its first frame to its last (no benign time)."""
    return Frames.from_columns(
        timestamp=100.0 + np.arange(n) * 0.1, can_id=np.zeros(n), data=np.zeros((n, 8)),
        label=np.ones(n), attack_type=np.ones(n), sources=["flood.csv"],
    )


def windows(frames: Frames):
    """``(starts, labels, attack_types)`` as the data module would give them."""
    starts = window_starts(frames, WINDOW)
    labels, kinds = window_labels(frames, starts, WINDOW.size)
    return starts, labels, kinds


def toy_report(seed: int = 0) -> dict:
    """A complete report.json of two methods on two toy scenarios, as a run would write it.

    ``a`` is the toy's decisions plus seed-dependent noise; ``b`` scores every
    window 0.7 (alerts on all windows, constant score). ``test_suppress`` is
    the toy capture with its labels removed.
    """
    from fusioncore_alarms import KOfNAlarms

    from fusioncore.evaluation import EvaluationSettings, attack_types_present, evaluate_scenario
    from fusioncore.evaluation.report import evaluation_report

    rng = np.random.default_rng(seed)
    settings = EvaluationSettings(event_gap_s=GAP_S)
    alarm = KOfNAlarms(2, 3)
    thresholds = {"a": 0.5, "b": 0.5}

    def evaluate(frames, name, labelled=None):
        starts, labels, kinds = windows(frames)
        scores = {"a": DECISIONS * 0.8 + rng.random(len(starts)) * 0.15, "b": np.full(len(starts), 0.7)}
        return evaluate_scenario(frames, starts, labels, kinds, scores, thresholds, window=WINDOW,
                                 alarm=alarm, settings=settings, name=name, labelled=labelled)

    scenarios = {"test_known": evaluate(drive(), "test_known"),
                 "test_suppress": evaluate(drive(events=False), "test_suppress")}
    validation = evaluate(drive(), "val", labelled=True)
    kinds = windows(drive())[2]
    return {
        "dataset": "synthetic", "detectors": ["a", "b"], "fusions": [], "seed": seed,
        **evaluation_report(dataset="synthetic", settings=settings, alarm=alarm, scenarios=scenarios,
                            validation=validation, thresholds=thresholds,
                            split_attack_types={"fusion": attack_types_present(kinds),
                                                "val": attack_types_present(kinds)},
                            protocol={"adapter": None, "warmup_s": 0.0}),
        "timings": {"evaluate": 0.01},
    }
