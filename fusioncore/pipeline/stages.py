"""The stages of a run, each a function with typed inputs and outputs.

``data -> detectors -> store -> states -> fusions -> thresholds -> evaluation``;
:mod:`fusioncore.pipeline.run` calls them in order through
:meth:`RunContext.stage`, which times each one and fires the
``fusioncore_stage_finished`` lifecycle hook. A new stage (adaptation, alarms,
cross-fitting) is a new function here and one line in the run, not a thread
pulled through one long function.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from fusioncore.adapt.run import RunAdaptation, subset_fusion_data, subset_output
from fusioncore.calibration import PlattScaler
from fusioncore.contracts import DetectorOutput, FusionData, FusionStrategy, StateEncoder
from fusioncore.data.catalog import resolve_dataset
from fusioncore.data.datamodule import CANDataModule, SplitWindows
from fusioncore.data.windows import WindowSpec
from fusioncore.errors import PluginError
from fusioncore.evaluation import best_mcc_threshold
from fusioncore.paths import data_root
from fusioncore.pipeline.components import Components
from fusioncore.pipeline.concurrent import concurrent_jobs, run_lanes
from fusioncore.pipeline.detectors import TrainedDetector, find_reusable, predict_split, train_or_reuse
from fusioncore.pipeline.engine import TrainerSettings
from fusioncore.pipeline.fusion_set import INJECTED_SPLIT, FusionSet
from fusioncore.pipeline.resources import peak_rss_bytes
from fusioncore.pipeline.run_info import RunInfo
from fusioncore.plugins import Plugins
from fusioncore.scoring import checked_fuse, fusion_data

__all__ = [
    "DetectorScores",
    "FittedFusions",
    "RunContext",
    "Thresholds",
    "adapt_scores",
    "call_lifecycle",
    "choose_thresholds",
    "fit_fusions",
    "load_data",
    "score_splits",
    "train_detectors",
]

log = logging.getLogger(__name__)

#: The splits every detector scores besides the test scenarios.
FIT_SPLIT, VAL_SPLIT = "fusion", "val"


def call_lifecycle(plugins: Plugins, hook: str, **kwargs: Any) -> None:
    """Call a lifecycle hook plugin by plugin; one failing observer never stops the run."""
    for impl in getattr(plugins.hook, hook).get_hookimpls():
        try:
            impl.function(*[kwargs[a] for a in impl.argnames])
        except Exception as exc:
            log.warning("plugin %s: %s raised %s: %s", impl.plugin_name, hook, type(exc).__name__, exc)


@attrs.define
class RunContext:
    """What every stage of one run shares: config, plugins, components, the folder it writes."""

    components: Components
    plugins: Plugins
    folder: Path  #: the run's staging folder (see fusioncore.pipeline.folder)
    info: RunInfo
    observed: bool = True  #: False in a DDP worker: no lifecycle hooks fire there
    seconds: dict[str, float] = attrs.field(factory=dict)
    #: peak RSS (bytes) of the process as it stood when each timed block / stage ended
    peaks: dict[str, int] = attrs.field(factory=dict)
    #: timings that ran side by side inside another (in child processes): enclosing timing -> those
    #: inside it
    overlapping: dict[str, list[str]] = attrs.field(factory=dict)

    @property
    def cfg(self):
        return self.components.cfg

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        """Add the wall time of the block to ``seconds[name]`` (report.json ``timings``)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
            self.peaks[name] = peak_rss_bytes()

    def stage(self, name: str, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one stage, time it, and tell observers (``fusioncore_stage_finished``)."""
        start = time.perf_counter()
        result = func(self, *args, **kwargs)
        seconds = time.perf_counter() - start
        self.peaks.setdefault(name, peak_rss_bytes())
        summary = result.summary() if hasattr(result, "summary") else {}
        if self.observed:
            call_lifecycle(self.plugins, "fusioncore_stage_finished", run=self.info, stage=name,
                           seconds=seconds, summary=summary)
        return result


# ------------------------------------------------------------------- data
def load_data(ctx: RunContext) -> CANDataModule:
    """Resolve the dataset, read its files (cached columns) and cut the splits."""
    cfg, reg = ctx.cfg, ctx.components.registry
    with ctx.timed("data"):
        root = data_root(cfg.data_root)
        # a registered name, or a can-train-and-test layout folder by name or path
        datasets = {n: reg.get("dataset", n) for n in reg.names("dataset")}
        files = resolve_dataset(str(cfg.dataset), root, datasets).resolve(root)
        readers = tuple(reg.get("format", n) for n in reg.names("format"))
        dm = CANDataModule(
            files, window=WindowSpec(cfg.window.size, cfg.window.stride),
            shares=(cfg.split.detector, cfg.split.fusion, cfg.split.val),
            fusion_attacks=list(cfg.split.fusion_attacks), policy=str(cfg.split.policy),
            purge=int(cfg.split.purge), blocks=int(cfg.split.blocks), batch_size=int(cfg.batch_size),
            readers=readers, errors=str(cfg.data.errors), progress=ctx.components.settings.progress,
            adapter=ctx.components.adapter,
        )
        dm.setup()
    return dm


# -------------------------------------------------------------- detectors
def train_detectors(ctx: RunContext, dm: CANDataModule, seed: int) -> dict[str, TrainedDetector]:
    """Train (or reuse from the cache) every detector on the detector block.

    Detectors still to train train side by side, one process each, where the
    machine has the cores (``trainer.jobs``, :mod:`fusioncore.pipeline.concurrent`).
    """
    comps = ctx.components
    settings, resume = comps.settings, bool(ctx.cfg.trainer.resume)

    def train(name: str, with_settings: TrainerSettings = settings, *, reuse: bool = True) -> TrainedDetector:
        spec = comps.detectors[name]
        return train_or_reuse(name, spec.cls, spec.params, dm, with_settings, out_dir=ctx.folder, seed=seed,
                              resume=resume, factory=spec.factory, reuse=reuse)

    trained: dict[str, TrainedDetector] = {}
    pending = []
    # torch's thread setting is the run's here (fusioncore.pipeline.run): that many cores per process
    jobs = 1 if resume else concurrent_jobs(int(ctx.cfg.trainer.jobs), len(comps.detectors), settings)
    if jobs > 1:  # what the cache holds is loaded here; only the rest is worth a process
        for name, spec in comps.detectors.items():
            with ctx.timed(f"train.{name}"):
                found = find_reusable(name, spec.cls, spec.params, dm, settings, seed=seed)
            if found is not None:
                trained[name] = found
            else:
                pending.append(name)
        jobs = concurrent_jobs(int(ctx.cfg.trainer.jobs), len(pending), settings)
    if jobs > 1:
        trained.update(_train_concurrently(ctx, dm, pending, jobs, train))
        return {name: trained[name] for name in comps.detectors}
    for name in comps.detectors:
        if name in trained:
            continue
        with ctx.timed(f"train.{name}"):
            trained[name] = train(name)
        dm.release_pages()  # training touched much of the pool; the next stage reads other splits
    return trained


def _train_concurrently(ctx: RunContext, dm: CANDataModule, pending: list[str], jobs: int,
                        train: Callable[..., TrainedDetector]) -> dict[str, TrainedDetector]:
    """``pending`` in ``jobs`` processes; timings: ``train`` (the wall time of it all) and each
    detector's own ``train.<name>``, listed in ``ctx.overlapping["train"]``."""
    comps = ctx.components
    quiet = attrs.evolve(comps.settings, progress=False)  # one progress bar on the console: this process's

    def announce(lanes: list[list[str]]) -> None:
        if comps.settings.progress and ctx.observed:
            from fusioncore.cli import _stderr

            others = ", ".join(" then ".join(lane) for lane in lanes[1:])
            _stderr().print(f"training {' then '.join(lanes[0])} here and {others} in "
                            f"{len(lanes) - 1} more process{'es' if len(lanes) > 2 else ''} "
                            "(trainer.jobs=1: one after another)")

    def here(name: str) -> TrainedDetector:
        with ctx.timed(f"train.{name}"):
            return train(name, reuse=False)

    with ctx.timed("train"):
        mine, theirs = run_lanes(pending, jobs, here, lambda name: train(name, quiet, reuse=False),
                                 on_start=announce)
    out: dict[str, TrainedDetector] = dict(mine)
    for name, res in theirs.items():
        spec = comps.detectors[name]
        model = spec.factory(dm.schema)
        model.load_state_dict(res.state)
        model.eval()
        out[name] = TrainedDetector(name, model, dict(spec.params), res.seconds, False,
                                    Path(res.checkpoint) if res.checkpoint else None, res.processes,
                                    resumed=res.resumed)
        ctx.seconds[f"train.{name}"] = res.stage_seconds
        ctx.peaks[f"train.{name}"] = peak_rss_bytes()  # this process's, as for every stage
    ctx.overlapping["train"] = [f"train.{name}" for name in pending]
    dm.release_pages()
    return out


@attrs.frozen(eq=False)
class DetectorScores:
    """Every detector's output on every split it scores, rows aligned by window id."""

    outputs: Mapping[str, Mapping[str, DetectorOutput]]  #: split -> detector -> output
    hits: int = 0
    misses: int = 0
    adaptation: RunAdaptation | None = None  #: set by adapt_scores (fusioncore.adapt)

    def summary(self) -> dict[str, Any]:
        return {"prediction_cache": {"hits": self.hits, "misses": self.misses}}


def scored_splits(dm: CANDataModule) -> list[str]:
    injected = [INJECTED_SPLIT] if INJECTED_SPLIT in dm.splits else []  # see the fusion_set stage
    return [FIT_SPLIT, *injected, VAL_SPLIT, *dm.test_scenarios]


def score_splits(
    ctx: RunContext, dm: CANDataModule, trained: Mapping[str, TrainedDetector]
) -> DetectorScores:
    """Each detector's output per split, from the prediction store when it is there.

    Detectors score side by side, one process each, where training would
    (``trainer.jobs``); timings: ``predict.<name>`` each, inside ``predict``.
    """
    from fusioncore.pipeline.progress import progress_bar

    splits = scored_splits(dm)
    settings = ctx.components.settings

    def score(name: str, progress: bool) -> tuple[dict[str, DetectorOutput], int, int]:
        got: dict[str, DetectorOutput] = {}
        hits = 0
        store = ctx.components.store()  # one per process: a store connection never crosses a fork
        try:
            with progress_bar(progress) as bar:
                task = bar.add_task(f"scoring splits with {name}", total=len(splits))
                for split in splits:
                    res = predict_split(trained[name], dm, split, store, settings)
                    got[split], hits = res.output, hits + res.cache_hit
                    dm.release_pages()  # memory follows one split at a time, not all of them
                    bar.advance(task)
        finally:
            store.close()
        return got, hits, len(splits) - hits

    def here(name: str):
        with ctx.timed(f"predict.{name}"):
            return score(name, settings.progress)

    names = list(trained)
    jobs = concurrent_jobs(int(ctx.cfg.trainer.jobs), len(names), settings)
    try:
        if jobs > 1:
            with ctx.timed("predict"):
                mine, theirs = run_lanes(names, jobs, here, lambda name: score(name, False),
                                         pack=_pack_scores, unpack=_unpack_scores, what="scoring")
            for name, (_, _, _, seconds) in theirs.items():
                ctx.seconds[f"predict.{name}"] = seconds
                ctx.peaks[f"predict.{name}"] = peak_rss_bytes()  # this process's, as for every stage
            ctx.overlapping["predict"] = [f"predict.{name}" for name in names]
            done = {**mine, **{name: r[:3] for name, r in theirs.items()}}
        else:
            done = {name: here(name) for name in names}
    finally:
        dm.release_graphs()  # training and scoring are done with the graphs kept for them
    outputs = {s: {name: done[name][0][s] for name in names} for s in splits}
    hits = sum(done[name][1] for name in names)
    misses = sum(done[name][2] for name in names)
    for split, by_detector in outputs.items():
        ids = [o.window_ids for o in by_detector.values()]
        if any(not np.array_equal(ids[0], other) for other in ids[1:]):
            raise PluginError(f"detector outputs on split {split!r} are not aligned by window id")
    return DetectorScores(outputs, hits, misses)


def _pack_scores(result: tuple[dict[str, DetectorOutput], int, int], seconds: float) -> dict[str, Any]:
    got, hits, misses = result
    return {"outputs": {s: o.to_arrays() for s, o in got.items()}, "hits": hits, "misses": misses,
            "seconds": seconds}


def _unpack_scores(name: str, data: Mapping[str, Any]) -> tuple[dict[str, DetectorOutput], int, int, float]:
    outputs = {s: DetectorOutput.from_arrays(a) for s, a in data["outputs"].items()}
    return outputs, int(data["hits"]), int(data["misses"]), float(data["seconds"])


# ------------------------------------------------------------- adaptation
def adapt_scores(ctx: RunContext, dm: CANDataModule, scores: DetectorScores) -> DetectorScores:
    """Standardise every detector's scores per capture by its reference windows (fusioncore.adapt).

    Scalers are fitted on the fusion block's captures; with the ``none`` adapter
    the outputs pass unchanged. Reference windows take part in no fit,
    threshold or metric from here on (:attr:`SplitWindows.scored`).
    """
    adaptation = RunAdaptation(ctx.components.adapter, dm)
    outputs = adaptation.standardise(scores.outputs, FIT_SPLIT)
    return attrs.evolve(scores, outputs=outputs, adaptation=adaptation)


# ---------------------------------------------------------------- fusions
@attrs.frozen(eq=False)
class FittedFusions:
    """Scores of every method (each detector alone, each fusion) per split, and what produced them."""

    methods: Mapping[str, Mapping[str, np.ndarray]]  #: split -> method -> score per window
    calibrators: Mapping[str, PlattScaler]
    encoder: StateEncoder | None = None
    fusions: Mapping[str, FusionStrategy] = attrs.field(factory=dict)
    #: fusion -> split -> weight on the last detector, for validation and test windows
    policies: Mapping[str, Mapping[str, np.ndarray]] = attrs.field(factory=dict)
    val_data: FusionData | None = None
    #: split -> the windows ``methods`` score: every window but reference ones (fusioncore.adapt)
    splits: Mapping[str, SplitWindows] = attrs.field(factory=dict)

    def summary(self) -> dict[str, Any]:
        return {"methods": sorted(self.methods.get(VAL_SPLIT, {}))}


def fit_fusions(ctx: RunContext, dm: CANDataModule, scores: DetectorScores, seed: int,
                fit_set: FusionSet | None = None, calibrate_on: str = "block") -> FittedFusions:
    """Calibrate each detector's score, encode states, fit every fusion on the fusion set.

    ``fit_set`` (:mod:`fusioncore.pipeline.fusion_set`) holds the windows fusions
    learn from; without one, the fusion block. Calibrators are fitted on its
    natural block windows, or on all of it with ``calibrate_on="all"``.
    """
    comps = ctx.components
    detectors = list(comps.detectors)
    outputs = scores.outputs
    adaptation = scores.adaptation or RunAdaptation(comps.adapter, dm)
    labels = {s: dm.splits[s].labels for s in outputs}
    # reference windows (fusioncore.adapt) are scored, for their capture's statistics, but never fitted on
    scored = {s: dm.splits[s].scored for s in outputs}
    if fit_set is None:
        keep = scored[FIT_SPLIT]
        fit_set = FusionSet({n: subset_output(outputs[FIT_SPLIT][n], keep) for n in detectors},
                            labels[FIT_SPLIT][keep], dm.splits[FIT_SPLIT].attack_types[keep],
                            np.zeros(int(keep.sum()), np.int64))
    calibrate = fit_set.select(["block"]) if calibrate_on == "block" else fit_set
    calibrators = {n: PlattScaler.fit(calibrate.outputs[n].score, calibrate.labels) for n in detectors}
    # single detectors are judged on their raw scores: calibration is monotone, but a
    # saturated sigmoid would turn very large scores into ties and understate AUROC
    methods = {s: {n: outputs[s][n].score.astype(np.float64) for n in detectors} for s in outputs}
    views = {s: dm.splits[s].subset(scored[s]) for s in outputs}
    if not comps.fusion_names:
        return FittedFusions(_scored(methods, scored), calibrators, splits=views)
    with ctx.timed("encode"):
        encoder = comps.encoder()
        encoder.fit(fit_set.outputs)
        # the same calibrate -> encode step `fusioncore detect` runs (fusioncore.scoring)
        data = {s: fusion_data(outputs[s], detectors, calibrators, encoder, labels[s]) for s in outputs}
        fit_data = fusion_data(fit_set.outputs, detectors, calibrators, encoder, fit_set.labels)
        scored_data = {s: subset_fusion_data(data[s], scored[s]) for s in outputs}
    reward = comps.reward()
    fitted: dict[str, FusionStrategy] = {}
    policies: dict[str, dict[str, np.ndarray]] = {}
    shown = [VAL_SPLIT, *dm.test_scenarios]  # where the detectors disagree, if anywhere: the tests
    for name in comps.fusion_names:
        with ctx.timed(f"fit.{name}"):
            fusion = comps.fusion(name, seed, reward)
            fusion.fit(fit_data, scored_data[VAL_SPLIT])
        with ctx.timed(f"fuse.{name}"):
            for s in sorted(outputs, key=lambda x: x != FIT_SPLIT):  # the fit split first: it fits scalers
                fused = checked_fuse(fusion, name, data[s]).astype(np.float64)
                methods[s][name] = adaptation.fused(name, fused, s, fit=s == FIT_SPLIT)
            weights = {s: fusion.policy(scored_data[s]) for s in shown}
            # the weight on the last detector; beyond the first fusion, a policy plot only
            # says something when the weights vary per window
            if len(detectors) >= 2 and all(w is not None for w in weights.values()):
                alpha = {s: np.asarray(w)[:, -1] for s, w in weights.items()}
                if not policies or np.ptp(np.concatenate(list(alpha.values()))) > 0:
                    policies[name] = alpha
        fitted[name] = fusion
    return FittedFusions(_scored(methods, scored), calibrators, encoder, fitted, policies,
                         scored_data[VAL_SPLIT], splits=views)


def _scored(methods, scored) -> dict[str, dict[str, np.ndarray]]:
    return {s: {m: np.asarray(v)[scored[s]] for m, v in by_method.items()}
            for s, by_method in methods.items()}


def decision_rule(adapter) -> Callable[[np.ndarray, np.ndarray], float]:
    """``(validation labels, scores) -> threshold``: the rule :func:`choose_thresholds` applies
    without a false-alarm budget (the adapter's when it standardises scores, else best MCC)."""
    if adapter is not None and adapter.normalizes_scores:
        return adapter.threshold
    return best_mcc_threshold


@attrs.frozen
class Thresholds:
    """Each method's decision threshold, all chosen on the validation block, and by which rule."""

    values: Mapping[str, float]
    rule: str

    def summary(self) -> dict[str, Any]:
        return {"thresholds": dict(self.values), "rule": self.rule}


def choose_thresholds(ctx: RunContext, dm: CANDataModule, fused: FittedFusions) -> Thresholds:
    """Best MCC on the validation block (maximum margin), or the loosest threshold that keeps the
    validation block within ``eval.max_false_alarms_per_hour`` (through the run's alarm stage)."""
    from fusioncore.evaluation import budget_thresholds

    val = fused.splits.get(VAL_SPLIT, dm.splits[VAL_SPLIT])
    scores = fused.methods[VAL_SPLIT]
    settings = ctx.components.evaluation
    budget = settings.max_false_alarms_per_hour
    adapter = ctx.components.adapter
    if budget is None:
        rule = decision_rule(adapter)
        values = {m: rule(val.labels, s) for m, s in scores.items()}
        if adapter is not None and adapter.normalizes_scores:  # threshold adaptation (fusioncore.adapt)
            share = getattr(adapter, "threshold_share", 0.5)
            q = getattr(adapter, "benign_quantile", 1.0)
            start = "the best-MCC range's benign end" if q >= 1 else f"the benign {q:g} quantile"
            return Thresholds(values, f"validation: {share:g} of the way from {start} to the attacks")
        return Thresholds(values, "best MCC")
    chosen = budget_thresholds(val.frames, val.starts, scores, window=dm.window, alarm=ctx.components.alarm,
                               budget_per_hour=budget, settings=settings)
    return Thresholds({m: b.threshold for m, b in chosen.items()}, f"false-alarm budget {budget:g}/h")
