"""Sender failures injected into benign hcrl_sa traffic, scored by trained runs (a quality check).

Not a speed benchmark: docs/adaptation.md uses it to measure the per-byte
change surprise on real traffic other than the shared test sets. For each of
four hcrl_sa test captures (two of the training vehicles, two of the unseen
Spark) the attack frames are removed, then one or two IDs of the fastest
third fail in six 1-3 s intervals after the warm-up, one mode per interval,
as the simulator's malfunction does (``fusioncore.data.synthetic.attacks``):
``garbage`` (the first two bytes that move turn random), ``frozen_frame``
(the first payload repeats), ``stuck`` (those bytes hold their first value)
and ``out_of_range`` (they read 0xFF). Failing frames are labelled attack.
Every run given scores the same derived frames (the seed is the capture's
position)::

    FUSIONCORE_SHARED_DATA=../shared/data python benchmarks/derived_failures.py RUN_DIR [RUN_DIR ...]

prints per capture each detector's AUROC, the deployed method's AUROC and MCC
(the run's threshold), and their means. Nothing is written.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import attrs
import numpy as np

from fusioncore.data.frames import Frames

__all__ = ["CAPTURES", "FAILURE_MODES", "inject_failures"]

CAPTURES = (
    "test_01_known_vehicle_known_attack/DoS-sonata.csv",
    "test_01_known_vehicle_known_attack/fuzzing-kia.csv",
    "test_02_unknown_vehicle_known_attack/DoS-spark.csv",
    "test_02_unknown_vehicle_known_attack/fuzzing-Spark.csv",
)
FAILURE_MODES = ("garbage", "frozen_frame", "stuck", "out_of_range")


def inject_failures(frames: Frames, seed: int, *, warmup_s: float = 4.0, intervals: int = 6) -> Frames:
    """``frames``' benign rows with sender failures injected after ``warmup_s`` (labels set)."""
    rng = np.random.default_rng(seed)
    f = frames.take(frames.label == 0)
    t = f.timestamp
    ids, count = np.unique(f.can_id, return_counts=True)
    fast = ids[count >= np.sort(count)[-max(3, len(ids) // 3)]]
    data, label = f.data.copy(), np.zeros(len(f), np.uint8)
    begins = np.sort(rng.uniform(t[0] + warmup_s + 2, t[-1] - 3, intervals))
    for i, begin in enumerate(begins):
        mode, end = FAILURE_MODES[i % len(FAILURE_MODES)], begin + rng.uniform(1, 3)
        for can_id in rng.choice(fast, rng.integers(1, 3), replace=False):
            rows = np.flatnonzero((f.can_id == can_id) & (t >= begin) & (t < end))
            if len(rows) < 2:
                continue
            own = f.data[f.can_id == can_id].astype(np.int16)
            moving = np.flatnonzero((np.diff(own, axis=0) != 0).mean(axis=0) > 0.02)
            cols = moving[:2] if len(moving) else np.array([0])
            d = data[rows]
            if mode == "frozen_frame":
                d[:] = d[0]
            elif mode == "garbage":
                d[:, cols] = rng.integers(0, 256, (len(d), len(cols)))
            elif mode == "stuck":
                d[:, cols] = d[0, cols]
            else:
                d[:, cols] = 0xFF
            data[rows], label[rows] = d, 1
    return attrs.evolve(f, data=data, label=label)


def main(runs: list[str]) -> None:
    import torch
    from torchmetrics.functional.classification import binary_auroc, binary_matthews_corrcoef

    from fusioncore.adapt.segment import window_classes
    from fusioncore.data.loading import load_files
    from fusioncore.data.windows import window_labels, window_starts
    from fusioncore.scoring import ScoringSystem

    root = Path(os.environ.get("FUSIONCORE_SHARED_DATA", "../shared/data")) / "can-train-and-test" / "hcrl_sa"

    def auroc(y: np.ndarray, v: np.ndarray) -> float:
        return float(binary_auroc(torch.as_tensor(v, dtype=torch.float64), torch.as_tensor(y).long()))

    derived = [inject_failures(load_files([root / c]).frames, i) for i, c in enumerate(CAPTURES)]
    for run in runs:
        system = ScoringSystem.load(Path(run))
        rows = []
        for frames in derived:
            adapted = system.adapted_to(frames)
            spec = adapted.builder.spec
            starts = window_starts(frames, spec)
            reference, straddling = window_classes(frames, starts, spec.size, adapted.warmup_s)
            starts = starts[~(reference | straddling)]  # the reference segment is never scored
            verdicts = adapted.score(frames, starts)
            y, _ = window_labels(frames, starts, spec.size)
            row = {n: auroc(y, verdicts.scores[:, j]) for j, n in enumerate(verdicts.detectors)}
            row[f"{verdicts.method} auroc"] = auroc(y, verdicts.fused)
            row[f"{verdicts.method} mcc"] = float(binary_matthews_corrcoef(
                torch.as_tensor(verdicts.alert).long(), torch.as_tensor(y).long()))
            rows.append(row)
        print(run)
        for capture, row in zip(CAPTURES, rows):
            print(f"  {Path(capture).stem:14s}", "  ".join(f"{k} {v:.3f}" for k, v in row.items()))
        print(f"  {'mean':14s}", "  ".join(f"{k} {np.mean([r[k] for r in rows]):.3f}" for k in rows[0]))


if __name__ == "__main__":
    main(sys.argv[1:])
