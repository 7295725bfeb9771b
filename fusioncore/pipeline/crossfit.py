"""Cross-fitting: out-of-fold detector outputs on the training block, for fitting fusions.

The training block is cut into K folds -- by time (the k-th of K consecutive
stretches of every file) or by file (whole capture files, dealt round-robin
over the folds) -- and every detector is trained K more times, each time on
K - 1 folds, to score only the fold it did not see. A fusion fitted on
these outputs sees each detector as it behaves on windows it never trained
on, over the whole training block instead of the fusion block alone; with
folds by file it also sees each detector on a capture (vehicle, attack
kind) it never trained on. The deployed detectors are unchanged: they are
still the ones trained on the whole training block.

Each fold's detector goes through the same reuse cache and prediction store
as the deployed ones (its training split is a derived split of the data
module with its own fingerprint), so a second run trains and scores
nothing. :func:`check_out_of_fold` proves by window that no output comes
from a detector that trained on an overlapping window.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from fusioncore.contracts import DetectorOutput
from fusioncore.data.datamodule import CANDataModule, SplitWindows
from fusioncore.data.windows import source_runs
from fusioncore.errors import ConfigError, PluginError
from fusioncore.pipeline.detectors import predict_split, train_or_reuse
from fusioncore.pipeline.engine import TrainerSettings

__all__ = ["FOLD_RULES", "CrossFitOutputs", "CrossFitSpec", "check_out_of_fold", "cross_fit", "fold_splits"]

FOLD_RULES = ("time", "file")


@attrs.frozen
class CrossFitSpec:
    """``folds`` < 2 turns cross-fitting off; ``by`` is ``"time"`` or ``"file"``."""

    folds: int = attrs.field(default=0, converter=int)
    by: str = "time"

    def __attrs_post_init__(self) -> None:
        if self.folds < 0:
            raise ConfigError(f"fusion_set.crossfit.folds must be >= 0, got {self.folds}")
        if self.by not in FOLD_RULES:
            raise ConfigError(f"fusion_set.crossfit.by must be one of {FOLD_RULES}, got {self.by!r}")

    @property
    def enabled(self) -> bool:
        return self.folds >= 2

    def split_names(self, k: int) -> tuple[str, str]:
        """(training split, held-out split) of fold ``k``."""
        return f"train.fold{k}", f"train.heldout{k}"


@attrs.frozen(eq=False)
class CrossFitOutputs:
    """Out-of-fold outputs of every detector, fold after fold.

    ``window_start[i]`` is the start row (in the training block's frames) of
    output row i, ``fold[i]`` the fold whose detectors scored it;
    ``trained_on[k]`` the start rows fold k's detectors trained on.
    """

    outputs: dict[str, DetectorOutput]
    labels: np.ndarray
    attack_types: np.ndarray
    window_start: np.ndarray
    fold: np.ndarray
    trained_on: tuple[np.ndarray, ...]
    window_size: int
    trainings: dict[str, dict[str, Any]]  #: "<detector>.fold<k>" -> seconds, reused
    cache_hits: int = 0
    cache_misses: int = 0

    def __len__(self) -> int:
        return len(self.labels)


def _fold_of_windows(split: SplitWindows, spec: CrossFitSpec, window: int) -> np.ndarray:
    begin, _ = source_runs(split.frames)
    run = np.searchsorted(begin, split.starts, side="right") - 1
    if spec.by == "file":
        return _file_folds(split, begin, spec.folds)[run]
    # by time: the windows of every file, in order, cut into K equal stretches of the file's block
    lo = np.full(len(begin), np.iinfo(np.int64).max)
    hi = np.full(len(begin), -1)
    np.minimum.at(lo, run, split.starts)
    np.maximum.at(hi, run, split.starts + window)
    span = np.maximum(hi - lo, 1)[run]
    return np.minimum((spec.folds * (split.starts - lo[run])) // span, spec.folds - 1)


def _file_folds(split: SplitWindows, begin: np.ndarray, folds: int) -> np.ndarray:
    """Fold of every file: files ordered by (attack type, name), dealt in snake order.

    Snake order (0, 1, ..., K-1, K-1, ..., 0, 0, ...) spreads the benign
    captures and each attack type over the folds, so every fold's training
    part keeps benign windows and attacks.
    """
    from fusioncore.data.formats import attack_type_from_filename

    names = [split.frames.sources[int(split.frames.source[b])] for b in begin]
    if len(set(names)) < folds:
        raise ConfigError(f"cross-fitting by file needs >= {folds} training files, got {len(set(names))}")
    def key(r: int) -> tuple[int, str]:
        return attack_type_from_filename(names[r]), Path(names[r]).name

    order = sorted(range(len(names)), key=key)
    fold = np.empty(len(names), np.int64)
    for position, r in enumerate(order):
        lap, step = divmod(position, folds)
        fold[r] = step if lap % 2 == 0 else folds - 1 - step
    return fold


def fold_splits(dm: CANDataModule, spec: CrossFitSpec) -> list[tuple[SplitWindows, SplitWindows]]:
    """(training, held-out) windows of every fold, registered as derived splits of ``dm``.

    A held-out window that overlaps a training window of its fold (stride <
    window size, at a fold boundary) is dropped, so outputs stay out of fold.
    """
    train = dm.splits["train"]
    size = dm.window.size
    fold = _fold_of_windows(train, spec, size)
    out = []
    for k in range(spec.folds):
        fit_name, held_name = spec.split_names(k)
        fit_mask = fold != k
        held_mask = (fold == k) & ~_overlaps(train.starts, train.starts[fit_mask], size)
        tag = f"crossfit folds={spec.folds} by={spec.by} fold={k}"
        fit = train.subset(fit_mask, name=fit_name, tag=tag + " part=fit")
        held = train.subset(held_mask, name=held_name, tag=tag + " part=heldout")
        if len(fit) == 0 or len(held) == 0:
            raise ConfigError(f"cross-fitting fold {k} of {spec.folds} is empty; use fewer folds")
        dm.add_split(fit)
        dm.add_split(held)
        out.append((fit, held))
    return out


def _overlaps(starts: np.ndarray, others: np.ndarray, size: int) -> np.ndarray:
    """For every window at ``starts``: does it share a frame with any window at ``others``?"""
    if len(others) == 0:
        return np.zeros(len(starts), bool)
    ref = np.sort(others)
    at = np.searchsorted(ref, starts)
    after = ref[np.minimum(at, len(ref) - 1)]
    before = ref[np.maximum(at - 1, 0)]
    return (np.abs(after - starts) < size) | (np.abs(starts - before) < size)


def check_out_of_fold(result: CrossFitOutputs) -> None:
    """:class:`PluginError` if any output row comes from a detector trained on an overlapping window."""
    for k, trained in enumerate(result.trained_on):
        rows = result.window_start[result.fold == k]
        bad = _overlaps(rows, trained, result.window_size)
        if bad.any():
            raise PluginError(
                f"cross-fitting fold {k}: {int(bad.sum())} outputs come from windows its detectors "
                f"trained on (first start row {int(rows[bad][0])})"
            )


def cross_fit(
    detectors: Mapping[str, tuple[type, Mapping[str, Any]] | Any],
    dm: CANDataModule,
    spec: CrossFitSpec,
    settings: TrainerSettings,
    *,
    store,
    out_dir: Path | None,
    seed: int,
    timer: Callable[[str, float], Any] | None = None,
) -> CrossFitOutputs:
    """Train every detector on each fold's K - 1 others and score the fold it did not see.

    ``detectors`` maps a name to ``(cls, params)`` or to a run's ``DetectorSpec``
    (``cls``, ``params``, ``factory``). All fold trainings come before any
    scoring, so a DDP worker launched for one of them exits before it scores
    anything.
    """
    specs = {n: _as_spec(d) for n, d in detectors.items()}
    folds = fold_splits(dm, spec)
    for k, (fit, _) in enumerate(folds):
        if any(getattr(cls, "supervised", True) for cls, _, _ in specs.values()) and (
            fit.labels.min() == fit.labels.max()
        ):
            raise ConfigError(
                f"cross-fitting fold {k} ({spec.by}) leaves a supervised detector one class to train on; "
                "use fusion_set.crossfit.by=time or fewer folds"
            )
    trained = {}
    trainings: dict[str, dict[str, Any]] = {}
    for k, (fit, _) in enumerate(folds):
        for name, (cls, params, factory) in specs.items():
            label = f"{name}.fold{k}"
            start = time.perf_counter()
            trained[label] = train_or_reuse(
                name, cls, params, dm, settings, out_dir=out_dir, seed=seed, factory=factory,
                train_split=fit.name, label=label,
            )
            seconds = time.perf_counter() - start
            trainings[label] = {"seconds": round(seconds, 3), "reused": trained[label].reused}
            if timer is not None:
                timer(f"crossfit.{name}", seconds)
    parts: dict[str, list[DetectorOutput]] = {n: [] for n in specs}
    hits = misses = 0
    for k, (_, held) in enumerate(folds):
        for name in specs:
            start = time.perf_counter()
            res = predict_split(trained[f"{name}.fold{k}"], dm, held.name, store, settings)
            hits, misses = hits + res.cache_hit, misses + (not res.cache_hit)
            parts[name].append(res.output)
            if timer is not None:
                timer(f"crossfit.{name}", time.perf_counter() - start)
    held = [h for _, h in folds]
    result = CrossFitOutputs(
        outputs={n: _global_ids(DetectorOutput.concat(p), held) for n, p in parts.items()},
        labels=np.concatenate([h.labels for h in held]),
        attack_types=np.concatenate([h.attack_types for h in held]),
        window_start=np.concatenate([h.starts for h in held]),
        fold=np.concatenate([np.full(len(h), k) for k, h in enumerate(held)]),
        trained_on=tuple(f.starts for f, _ in folds),
        window_size=dm.window.size,
        trainings=trainings,
        cache_hits=hits,
        cache_misses=misses,
    )
    check_out_of_fold(result)
    return result


def _as_spec(detector) -> tuple[type, Mapping[str, Any], Callable | None]:
    if isinstance(detector, tuple):
        cls, params = detector
        return cls, params, None
    return detector.cls, detector.params, detector.factory


def _global_ids(output: DetectorOutput, held: list[SplitWindows]) -> DetectorOutput:
    """Window ids as start rows of the training block (unique across folds), checked in order."""
    local = np.concatenate([np.arange(len(h)) for h in held])
    if not np.array_equal(output.window_ids, local):
        raise PluginError("a detector returned cross-fitted outputs out of window order")
    starts = np.concatenate([h.starts for h in held])
    return DetectorOutput(starts, output.score, output.features, output.feature_names)
