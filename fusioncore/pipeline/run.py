"""One run, as a list of stages: components -> data -> preflight -> detectors -> store -> fusions
-> thresholds -> evaluation -> report and bundle.

``run_pipeline(cfg)`` is what ``fusioncore run`` (and ``train``, with no
fusions) executes. Everything is written into a locked staging folder that
becomes ``out_dir`` only when the run is complete
(:class:`~fusioncore.pipeline.folder.RunFolder`); each stage's wall time goes
into ``report["timings"]``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from omegaconf import DictConfig, OmegaConf

from fusioncore.data.datamodule import CANDataModule
from fusioncore.evaluation import aggregate_seeds, attack_types_present, evaluate_scenario
from fusioncore.evaluation.plots import plot_curves, plot_policy, plot_timelines
from fusioncore.evaluation.report import evaluation_report, write_report
from fusioncore.pipeline.bundle import ComponentSpec, RunBundle
from fusioncore.pipeline.components import resolve_components
from fusioncore.pipeline.concurrent import concurrent_jobs, run_lanes
from fusioncore.pipeline.distributed import is_ddp_worker
from fusioncore.pipeline.folder import RunFolder
from fusioncore.pipeline.fusion_set import assemble, prepare_fusion_set
from fusioncore.pipeline.preflight import check_splits, print_split_table
from fusioncore.pipeline.resources import memory_report
from fusioncore.pipeline.run_info import RunInfo
from fusioncore.pipeline.stages import (
    FIT_SPLIT,
    VAL_SPLIT,
    DetectorScores,
    FittedFusions,
    RunContext,
    Thresholds,
    adapt_scores,
    call_lifecycle,
    choose_thresholds,
    fit_fusions,
    load_data,
    score_splits,
    train_detectors,
)
from fusioncore.plugins import Plugins, get_plugins

__all__ = ["RunResult", "call_lifecycle", "run_pipeline"]


@attrs.frozen(eq=False)
class RunResult:
    out_dir: Path
    report: dict[str, Any]


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """``threads`` torch threads inside; None: 1 unless ``OMP_NUM_THREADS`` is set (torch follows
    it then); 0: torch's own choice."""
    import torch

    before = torch.get_num_threads()
    if threads is None and not os.environ.get("OMP_NUM_THREADS"):
        threads = 1
    if threads:
        torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_pipeline(
    cfg: DictConfig, *, out_dir: Path, plugins: Plugins | None = None, command: str = "run",
    overwrite: bool = False,
) -> RunResult:
    """Run every stage of ``cfg`` (once per seed, sharing the data); publish the run folder at ``out_dir``."""
    import pytorch_lightning as pl

    plugins = plugins or get_plugins()
    components = resolve_components(cfg, plugins.registry)  # every name and parameter, before any data
    config = OmegaConf.to_container(cfg, resolve=True)
    seeds = components.seeds
    # a DDP worker re-runs this command only to train with rank 0: it writes and announces nothing
    worker = is_ddp_worker()
    with RunFolder.open(out_dir, config, resume=bool(cfg.trainer.resume), overwrite=overwrite) as folder:
        if not worker:
            (folder.path / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
        info = RunInfo(command=command, dataset=str(cfg.dataset), out_dir=folder.out, config=config)
        ctx = RunContext(components, plugins, folder.path, info, observed=not worker)
        with _torch_threads(cfg.threads):
            pl.seed_everything(seeds[0], verbose=False)
            dm = ctx.stage("data", load_data)
            table = ctx.stage("preflight", lambda _ctx: dm.split_summary())
            if components.settings.progress and not worker:
                print_split_table(table)
            split_warnings = check_splits(table, components)
            if not worker:
                call_lifecycle(plugins, "fusioncore_run_started", run=info)
            # seed-independent work (reading, splitting, the vocabulary) is done once, above
            runs = [run_seed(ctx, dm, seed) for seed in seeds]
            first = runs[0]
            report = first.report if len(runs) == 1 else aggregate_seeds([r.report for r in runs])
            report["data"]["warnings"] = split_warnings
            with ctx.timed("plots"):
                draw_plots(folder.path, dm, first, components,
                           jobs=concurrent_jobs(int(cfg.trainer.jobs), len(components.detectors),
                                                components.settings))
            make_bundle(ctx, dm, first).save(folder.path)
            report["timings"] = {k: round(v, 3) for k, v in ctx.seconds.items()}
            if ctx.overlapping:  # e.g. train.vgae and train.gat ran side by side, inside `train`
                report["timings_overlapping"] = {k: list(v) for k, v in ctx.overlapping.items()}
            ddp = any(t.processes > 1 for r in runs for t in r.trained.values())
            # children: DDP workers, or the processes that trained / scored side by side (overlapping)
            report["memory"] = memory_report(ctx.peaks, children=ddp or bool(ctx.overlapping))
            write_report(folder.path, report)
        out = folder.commit({"command": command, "dataset": str(cfg.dataset), "seeds": list(seeds)})
    call_lifecycle(plugins, "fusioncore_run_finished", run=info, report=report)
    return RunResult(out, report)


@attrs.frozen(eq=False)
class SeedRun:
    """Everything one seed's pass over the stages produced."""

    seed: int
    trained: Mapping[str, Any]
    scores: DetectorScores
    fused: FittedFusions
    thresholds: Thresholds
    tests: Mapping[str, Any]  #: scenario -> ScenarioEvaluation
    report: dict[str, Any]


def run_seed(ctx: RunContext, dm: CANDataModule, seed: int) -> SeedRun:
    """detectors -> store -> fusions -> thresholds -> evaluation, for one seed."""
    import pytorch_lightning as pl

    pl.seed_everything(seed, verbose=False)
    trained = ctx.stage("detectors", train_detectors, dm, seed)
    # what fusions learn from: + injected windows (scored with the splits), + cross-fitted outputs
    fusion_inputs = ctx.stage("fusion_set", prepare_fusion_set, dm, seed)
    scores = ctx.stage("predict", score_splits, dm, trained)
    scores = ctx.stage("adapt", adapt_scores, dm, scores)  # per-capture standardisation (fusioncore.adapt)
    fit_set = assemble(scores.outputs, dm, FIT_SPLIT, list(trained), fusion_inputs.crossfit)
    fused = ctx.stage("fusions", fit_fusions, dm, scores, seed, fit_set, fusion_inputs.spec.calibrate_on)
    thresholds = ctx.stage("thresholds", choose_thresholds, dm, fused)
    validation, tests = ctx.stage("evaluate", evaluate, dm, fused, thresholds)
    report = {**_run_facts(ctx.cfg, dm, trained, scores, seed), **evaluation_report(
        dataset=str(ctx.cfg.dataset), settings=ctx.components.evaluation, alarm=ctx.components.alarm,
        scenarios=tests, validation=validation, thresholds=thresholds.values, threshold_rule=thresholds.rule,
        split_attack_types={s: attack_types_present(dm.splits[s].attack_types)
                            for s in (FIT_SPLIT, VAL_SPLIT)},
        protocol=scores.adaptation.protocol(),
    )}
    report["fusion_set"] = fusion_inputs.report(fit_set if fused.fusions else None)
    # each capture of a scenario on its own (scenarios may mix vehicles; fusioncore.adapt.run)
    report["captures"] = {s: scores.adaptation.captures(s, fused.methods[s], thresholds.values)
                          for s in dm.test_scenarios}
    return SeedRun(seed, trained, scores, fused, thresholds, tests, report)


# -------------------------------------------------------------- evaluation
def evaluate(ctx: RunContext, dm: CANDataModule, fused: FittedFusions, thresholds: Thresholds):
    """Every method on the validation block and on every test scenario: window metrics, events, alarms."""
    comps = ctx.components

    def on(name: str, labelled: bool | None = None):
        split = fused.splits[name]  # the scored windows: no reference window (fusioncore.adapt)
        try:
            return evaluate_scenario(split.frames, split.starts, split.labels, split.attack_types,
                                     fused.methods[name], thresholds.values, window=dm.window,
                                     alarm=comps.alarm, settings=comps.evaluation, labelled=labelled,
                                     name=name)
        finally:
            dm.release_pages()  # events read the scenario's labels and times: one scenario's pages at a time

    # the validation block is cut from training files, whose unlabelled frames are benign
    return on(VAL_SPLIT, labelled=True), {name: on(name) for name in dm.test_scenarios}


def _run_facts(cfg: DictConfig, dm: CANDataModule, trained, scores: DetectorScores,
               seed: int) -> dict[str, Any]:
    return {
        "dataset": str(cfg.dataset), "detectors": list(cfg.detectors), "fusions": list(cfg.fusions),
        "seed": seed, "fit_split": FIT_SPLIT,
        "windows": {s: int(dm.splits[s].scored.sum()) for s in dm.splits},
        "reference_windows": {s: int(dm.splits[s].reference.sum()) for s in dm.splits},
        "data": dm.data_report(),  # skipped rows per file and reason, split policy, split table
        "training": {n: {"seconds": round(t.seconds, 3), "reused": t.reused, "processes": t.processes,
                         "resumed": t.resumed} for n, t in trained.items()},
        "prediction_cache": {"hits": scores.hits, "misses": scores.misses},
        "skipped_rows": dm.skipped_rows,
    }


# ------------------------------------------------------------ artifacts
def draw_plots(folder: Path, dm: CANDataModule, run: SeedRun, components, *, jobs: int = 1) -> None:
    """Curves and timelines of every test scenario, and the fusions' policy maps (first seed).

    ``jobs`` > 1 draws them in that many processes (each figure is its own file).
    """
    detectors = list(components.detectors)
    figures: dict[str, Callable[[], None]] = {}
    for name, evaluation in run.tests.items():  # timelines first: the costliest, spread over the lanes
        figures[f"timelines {name}"] = partial(plot_timelines, folder, evaluation)
    for name in run.tests:
        scored = run.fused.splits[name]  # the windows the methods score (fusioncore.adapt)
        figures[f"curves {name}"] = partial(plot_curves, folder / f"curves_{name}.png", name, scored.labels,
                                            run.fused.methods[name])
    if run.fused.policies:
        first, last = detectors[0], detectors[-1]
        outputs = run.scores.outputs
        words = {n: getattr(run.trained[n].model, "score_label", "") or f"{n} score" for n in (first, last)}
    for i, (name, alpha) in enumerate(run.fused.policies.items()):
        target = folder / ("policy.png" if i == 0 else f"policy_{name}.png")
        shown = list(alpha)
        figures[f"policy {name}"] = partial(
            plot_policy,
            target,
            # the policies cover the scored windows only (no reference window, fusioncore.adapt)
            np.concatenate([outputs[s][first].score[dm.splits[s].scored] for s in shown]),
            np.concatenate([outputs[s][last].score[dm.splits[s].scored] for s in shown]),
            np.concatenate([alpha[s] for s in shown]),
            x_label=words[first], y_label=words[last],
            weight_label=f"weight on {last} (0: trusts {first} alone, 1: {last} alone)",
            title=f"{name}: whom it trusts, validation and test windows",
        )
    jobs = min(jobs, len(figures))
    if jobs <= 1:
        for draw in figures.values():
            draw()
        return
    run_lanes(list(figures), jobs, lambda f: figures[f](), lambda f: figures[f](), pack=lambda _r, _s: None,
              unpack=lambda _f, _d: None, what="drawing")


def make_bundle(ctx: RunContext, dm: CANDataModule, run: SeedRun) -> RunBundle:
    """What detect needs from this run (the first seed's models when several seeds ran)."""
    comps, cfg, fused, trained = ctx.components, ctx.cfg, run.fused, run.trained
    has_fusions = bool(fused.fusions)
    alarm = comps.alarm
    return RunBundle(
        builder=dm.builder, detectors={n: t.model for n, t in trained.items()},
        detector_params={n: dict(t.params) for n, t in trained.items()},
        calibrators=fused.calibrators, thresholds=dict(run.thresholds.values),
        default_method=next(iter(fused.fusions), next(iter(trained))), seed=run.seed,
        encoder=fused.encoder,
        encoder_spec=ComponentSpec(str(cfg.encoder_name), comps.encoder_params) if has_fusions else None,
        reward_spec=ComponentSpec(str(cfg.reward), comps.reward_params) if has_fusions else None,
        fusions=fused.fusions, fusion_params={n: comps.fusion_params[n] for n in fused.fusions},
        sections={"alarm": {"name": str(cfg.alarm), "params": dict(alarm.config())},
                  "threshold_rule": run.thresholds.rule,
                  "adapter": run.scores.adaptation.to_json()},  # fusioncore.adapt.capture reads it
    )
