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
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from omegaconf import DictConfig, OmegaConf

from fusioncore.data.datamodule import CANDataModule
from fusioncore.evaluation import scenario_metrics
from fusioncore.evaluation.report import plot_curves, plot_policy, write_report
from fusioncore.pipeline.bundle import ComponentSpec, RunBundle
from fusioncore.pipeline.components import resolve_components
from fusioncore.pipeline.folder import RunFolder
from fusioncore.pipeline.preflight import check_splits, print_split_table
from fusioncore.pipeline.run_info import RunInfo
from fusioncore.pipeline.stages import (
    VAL_SPLIT,
    DetectorScores,
    FittedFusions,
    RunContext,
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
    import torch

    before = torch.get_num_threads()
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
    """Run every stage of ``cfg`` and publish the run folder at ``out_dir``."""
    import pytorch_lightning as pl

    plugins = plugins or get_plugins()
    components = resolve_components(cfg, plugins.registry)  # every name and parameter, before any data
    config = OmegaConf.to_container(cfg, resolve=True)
    seed = int(cfg.seed)
    with RunFolder.open(out_dir, config, resume=bool(cfg.trainer.resume), overwrite=overwrite) as folder:
        (folder.path / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
        info = RunInfo(command=command, dataset=str(cfg.dataset), out_dir=folder.out, config=config)
        ctx = RunContext(components, plugins, folder.path, info)
        with _torch_threads(cfg.threads):
            pl.seed_everything(seed, verbose=False)
            dm = ctx.stage("data", load_data)
            table = ctx.stage("preflight", lambda _ctx: dm.split_summary())
            if components.settings.progress:
                print_split_table(table)
            split_warnings = check_splits(table, components)
            call_lifecycle(plugins, "fusioncore_run_started", run=info)
            trained = ctx.stage("detectors", train_detectors, dm, seed)
            scores = ctx.stage("predict", score_splits, dm, trained)
            fused = ctx.stage("fusions", fit_fusions, dm, scores, seed)
            thresholds = ctx.stage("thresholds", choose_thresholds, dm, fused)
            report = ctx.stage("evaluate", evaluate, dm, fused, thresholds)
            report.update(_run_facts(cfg, dm, trained, scores, seed))
            report["data"]["warnings"] = split_warnings
            with ctx.timed("plots"):
                draw_plots(folder.path, dm, fused, components)
            bundle = make_bundle(ctx, dm, trained, fused, thresholds, seed)
            bundle.save(folder.path)
            report["timings"] = {k: round(v, 3) for k, v in ctx.seconds.items()}
            write_report(folder.path, report)
        out = folder.commit({"command": command, "dataset": str(cfg.dataset), "seed": seed})
    call_lifecycle(plugins, "fusioncore_run_finished", run=info, report=report)
    return RunResult(out, report)


# -------------------------------------------------------------- evaluation
def evaluate(ctx: RunContext, dm: CANDataModule, fused: FittedFusions,
             thresholds: Mapping[str, float]) -> dict[str, Any]:
    """Every method on every test scenario (and on the validation block), at its threshold."""
    val = dm.splits[VAL_SPLIT]
    report: dict[str, Any] = {
        "thresholds": dict(thresholds),
        "validation": {m: scenario_metrics(val.labels, s, val.attack_types, thresholds[m])
                       for m, s in fused.methods[VAL_SPLIT].items()},
        "scenarios": {},
    }
    for name in dm.test_scenarios:
        split = dm.splits[name]
        report["scenarios"][name] = {m: scenario_metrics(split.labels, s, split.attack_types, thresholds[m])
                                     for m, s in fused.methods[name].items()}
    report["mean_over_scenarios"] = {
        m: {k: _mean([report["scenarios"][s][m][k] for s in dm.test_scenarios])
            for k in ("mcc", "auroc", "f1", "ap")}
        for m in fused.methods[VAL_SPLIT]
    } if dm.test_scenarios else {}
    return report


def _mean(values: list) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def _run_facts(cfg: DictConfig, dm: CANDataModule, trained, scores: DetectorScores,
               seed: int) -> dict[str, Any]:
    return {
        "dataset": str(cfg.dataset), "detectors": list(cfg.detectors), "fusions": list(cfg.fusions),
        "seed": seed, "fit_split": "fusion",
        "windows": {s: len(dm.splits[s]) for s in dm.splits},
        "data": dm.data_report(),  # skipped rows per file and reason, split policy, split table
        "training": {n: {"seconds": round(t.seconds, 3), "reused": t.reused, "processes": t.processes,
                         "resumed": t.resumed} for n, t in trained.items()},
        "prediction_cache": {"hits": scores.hits, "misses": scores.misses},
        "skipped_rows": dm.skipped_rows,
    }


# ------------------------------------------------------------ artifacts
def draw_plots(folder: Path, dm: CANDataModule, fused: FittedFusions, components) -> None:
    detectors = list(components.detectors)
    for s in dm.test_scenarios:
        plot_curves(folder / f"curves_{s}.png", s, dm.splits[s].labels, fused.methods[s])
    for i, (name, alpha) in enumerate(fused.policies.items()):
        target = folder / ("policy.png" if i == 0 else f"policy_{name}.png")
        plot_policy(target, fused.val_data.states, fused.val_data.state_names, alpha,
                    f"{name}: weight on {detectors[-1]} (validation windows)")


def make_bundle(ctx: RunContext, dm: CANDataModule, trained, fused: FittedFusions,
                thresholds: Mapping[str, float], seed: int) -> RunBundle:
    comps = ctx.components
    cfg = ctx.cfg
    has_fusions = bool(fused.fusions)
    return RunBundle(
        builder=dm.builder, detectors={n: t.model for n, t in trained.items()},
        detector_params={n: dict(t.params) for n, t in trained.items()},
        calibrators=fused.calibrators, thresholds=thresholds,
        default_method=next(iter(fused.fusions), next(iter(trained))), seed=seed,
        encoder=fused.encoder,
        encoder_spec=ComponentSpec(str(cfg.encoder_name), comps.encoder_params) if has_fusions else None,
        reward_spec=ComponentSpec(str(cfg.reward), comps.reward_params) if has_fusions else None,
        fusions=fused.fusions, fusion_params={n: comps.fusion_params[n] for n in fused.fusions},
    )
