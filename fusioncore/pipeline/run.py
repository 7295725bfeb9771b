"""One run: data -> detectors -> prediction store -> states -> fusions -> evaluation.

``run_pipeline(cfg)`` is what ``fusioncore run`` (and ``train``, with no
fusions) executes. Each stage's wall time goes into ``report["timings"]``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from fusioncore.calibration import PlattScaler
from fusioncore.contracts import DetectorOutput
from fusioncore.data.datamodule import CANDataModule
from fusioncore.data.windows import WindowSpec
from fusioncore.errors import ConfigError, PluginError
from fusioncore.evaluation import best_mcc_threshold, scenario_metrics
from fusioncore.evaluation.report import plot_curves, plot_policy, write_report
from fusioncore.paths import data_root
from fusioncore.pipeline.config import component_params
from fusioncore.pipeline.detectors import TrainedDetector, predict_split, train_or_reuse
from fusioncore.pipeline.engine import TrainerSettings
from fusioncore.pipeline.run_info import RunInfo
from fusioncore.plugins import Plugins, get_plugins
from fusioncore.scoring import MODEL_FORMAT, build_component, checked_fuse, fusion_data

__all__ = ["RunResult", "call_lifecycle", "run_pipeline"]

log = logging.getLogger(__name__)


@attrs.frozen(eq=False)
class RunResult:
    out_dir: Path
    report: dict[str, Any]


def call_lifecycle(plugins: Plugins, hook: str, **kwargs: Any) -> None:
    """Call a lifecycle hook plugin by plugin; one failing observer never stops the run."""
    for impl in getattr(plugins.hook, hook).get_hookimpls():
        try:
            impl.function(*[kwargs[a] for a in impl.argnames])
        except Exception as exc:
            log.warning("plugin %s: %s raised %s: %s", impl.plugin_name, hook, type(exc).__name__, exc)


class _Timer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start


def _settings(cfg: DictConfig) -> TrainerSettings:
    t = cfg.trainer
    return TrainerSettings(
        max_epochs=int(t.max_epochs), patience=int(t.patience), accelerator=str(t.accelerator),
        devices=t.devices, strategy=str(t.strategy), progress=bool(t.progress),
        limit_train_batches=t.limit_train_batches,
    )


def _align(outputs: Mapping[str, DetectorOutput]) -> None:
    ids = [o.window_ids for o in outputs.values()]
    if any(not np.array_equal(ids[0], other) for other in ids[1:]):
        raise PluginError("detector outputs are not aligned by window id")


def run_pipeline(
    cfg: DictConfig, *, out_dir: Path, plugins: Plugins | None = None, command: str = "run"
) -> RunResult:
    plugins = plugins or get_plugins()
    reg = plugins.registry
    timer = _Timer()
    seed = int(cfg.seed)
    detectors = list(cfg.detectors)
    fusions = list(cfg.fusions)
    if not detectors:
        raise ConfigError("no detectors chosen; available: " + ", ".join(reg.names("detector")))
    if len(set(detectors)) != len(detectors) or len(set(fusions)) != len(fusions):
        raise ConfigError("a detector or fusion is named twice")
    # resolve every name before any work, so a typo fails in a second, not after training
    det_classes = {n: reg.get("detector", n) for n in detectors}
    fusion_classes = {n: reg.get("fusion", n) for n in fusions}
    dataset = reg.get("dataset", cfg.dataset)
    encoder_cls = reg.get("state_encoder", cfg.encoder_name) if fusions else None
    reward_factory = reg.get("reward", cfg.reward) if fusions else None
    store_factory = reg.get("store", cfg.store)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    torch.manual_seed(seed)
    pl.seed_everything(seed, verbose=False)
    settings = _settings(cfg)

    with timer("data"):
        files = dataset.resolve(data_root(cfg.data_root))
        readers = tuple(reg.get("format", n) for n in reg.names("format"))
        dm = CANDataModule(
            files, window=WindowSpec(cfg.window.size, cfg.window.stride),
            shares=(cfg.split.detector, cfg.split.fusion, cfg.split.val),
            fusion_attacks=list(cfg.split.fusion_attacks),
            batch_size=int(cfg.batch_size), readers=readers, progress=settings.progress,
        )
        dm.setup()
    run = RunInfo(command=command, dataset=str(cfg.dataset), out_dir=out_dir,
                  config=OmegaConf.to_container(cfg, resolve=True))
    call_lifecycle(plugins, "fusioncore_run_started", run=run)

    store_params = component_params(cfg, "store", cfg.store)
    store = store_factory(Path(cfg.store_dir) if cfg.store_dir else None, **store_params)
    fit_split = "fusion" if len(dm.splits["fusion"]) else "train"
    splits = [fit_split, "val", *dm.test_scenarios]
    outputs: dict[str, dict[str, DetectorOutput]] = {s: {} for s in splits}
    trained: dict[str, TrainedDetector] = {}
    hits = misses = 0
    try:
        for name in detectors:
            with timer(f"train.{name}"):
                trained[name] = train_or_reuse(
                    name, det_classes[name], component_params(cfg, "detector", name), dm, settings,
                    out_dir=out_dir, seed=seed, resume=bool(cfg.trainer.resume),
                )
            with timer(f"predict.{name}"), _progress(settings.progress) as bar:
                task = bar.add_task(f"scoring splits with {name}", total=len(splits))
                for split in splits:
                    res = predict_split(trained[name], dm, split, store, settings)
                    outputs[split][name] = res.output
                    hits, misses = hits + res.cache_hit, misses + (not res.cache_hit)
                    bar.advance(task)
    finally:
        store.close()
    for split in splits:
        _align(outputs[split])

    labels = {s: dm.splits[s].labels for s in splits}
    attack_types = {s: dm.splits[s].attack_types for s in splits}
    calibrators = {n: PlattScaler.fit(outputs[fit_split][n].score, labels[fit_split]) for n in detectors}

    # single detectors are judged on their raw scores: calibration is monotone, but a
    # saturated sigmoid would turn very large scores into ties and understate AUROC
    methods: dict[str, dict[str, np.ndarray]] = {
        s: {name: outputs[s][name].score.astype(np.float64) for name in detectors} for s in splits
    }
    policies: dict[str, np.ndarray] = {}
    fusion_states: dict[str, Any] = {}
    if fusions:
        with timer("encode"):
            encoder = build_component(encoder_cls, component_params(cfg, "state_encoder", cfg.encoder_name))
            encoder.fit(outputs[fit_split])
            # the same calibrate -> encode step `fusioncore detect` runs (fusioncore.scoring)
            data = {s: fusion_data(outputs[s], detectors, calibrators, encoder, labels[s]) for s in splits}
        reward = build_component(reward_factory, component_params(cfg, "reward", cfg.reward))
        for name in fusions:
            params = component_params(cfg, "fusion", name)
            with timer(f"fit.{name}"):
                fusion = build_component(fusion_classes[name], params, reward=reward, seed=seed)
                fusion.fit(data[fit_split], data["val"])
            with timer(f"fuse.{name}"):
                for s in splits:
                    methods[s][name] = checked_fuse(fusion, name, data[s])
                policy = fusion.policy(data["val"])
                # beyond the first, a heatmap only says something when weights vary per window
                alpha = None if policy is None else np.asarray(policy)[:, -1]
                if alpha is not None and len(detectors) >= 2 and (not policies or np.ptp(alpha) > 0):
                    policies[name] = alpha
            fusion_states[name] = fusion.state_dict()

    thresholds = {m: best_mcc_threshold(labels["val"], sc) for m, sc in methods["val"].items()}
    report: dict[str, Any] = {
        "dataset": str(cfg.dataset), "detectors": detectors, "fusions": fusions, "seed": seed,
        "fit_split": fit_split,
        "windows": {s: len(dm.splits[s]) for s in dm.splits},
        "thresholds": thresholds,
        "scenarios": {},
        "validation": {m: scenario_metrics(labels["val"], sc, attack_types["val"], thresholds[m])
                       for m, sc in methods["val"].items()},
        "training": {n: {"seconds": round(t.seconds, 3), "reused": t.reused, "processes": t.processes}
                     for n, t in trained.items()},
        "prediction_cache": {"hits": hits, "misses": misses},
        "skipped_rows": dm.skipped_rows,
    }
    with timer("evaluate"):
        for s in dm.test_scenarios:
            report["scenarios"][s] = {
                m: scenario_metrics(labels[s], sc, attack_types[s], thresholds[m])
                for m, sc in methods[s].items()
            }
        names = list(methods["val"])
        report["mean_over_scenarios"] = {
            m: {k: _mean([report["scenarios"][s][m][k] for s in dm.test_scenarios])
                for k in ("mcc", "auroc", "f1", "ap")}
            for m in names
        } if dm.test_scenarios else {}
    with timer("plots"):
        for s in dm.test_scenarios:
            plot_curves(out_dir / f"curves_{s}.png", s, labels[s], methods[s])
        for i, (name, alpha) in enumerate(policies.items()):
            target = out_dir / ("policy.png" if i == 0 else f"policy_{name}.png")
            plot_policy(target, data["val"].states, data["val"].state_names, alpha,
                        f"{name}: weight on {detectors[-1]} (validation windows)")
    _save_model(out_dir, cfg, dm, calibrators, thresholds, fusion_states,
                encoder if fusions else None, trained)
    report["timings"] = {k: round(v, 3) for k, v in timer.seconds.items()}
    write_report(out_dir, report)
    call_lifecycle(plugins, "fusioncore_run_finished", run=run, report=report)
    return RunResult(out_dir, report)


def _progress(enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), disable=not enabled, transient=False)


def _mean(values: list) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def _save_model(out_dir: Path, cfg, dm: CANDataModule, calibrators, thresholds, fusion_states,
                encoder, trained) -> None:
    """Everything ``fusioncore detect`` needs to score new traffic, in safe formats."""
    model_dir = out_dir / "model"
    model_dir.mkdir(exist_ok=True)
    np.savez(model_dir / "graph_builder.npz", **dm.builder.to_arrays(), allow_pickle=False)
    if encoder is not None:
        np.savez(model_dir / "encoder.npz", **encoder.state_dict(), allow_pickle=False)
    torch.save({n: _loadable_state(s) for n, s in fusion_states.items()}, model_dir / "fusions.pt")
    meta = {
        "format": MODEL_FORMAT,
        "detectors": {n: str(t.checkpoint) for n, t in trained.items()},
        "calibrators": {n: attrs.asdict(c) for n, c in calibrators.items()},
        "thresholds": thresholds,
        "window": {"size": int(cfg.window.size), "stride": int(cfg.window.stride)},
        # how to rebuild each component (fusioncore.scoring.ScoringSystem.load)
        "detector_order": list(trained),
        "default_method": next(iter(fusion_states), next(iter(trained))),
        "seed": int(cfg.seed),
        "fusions": {n: component_params(cfg, "fusion", n) for n in fusion_states},
    }
    if encoder is not None:
        meta["encoder"] = {"name": str(cfg.encoder_name),
                           "params": component_params(cfg, "state_encoder", cfg.encoder_name)}
        meta["reward"] = {"name": str(cfg.reward), "params": component_params(cfg, "reward", cfg.reward)}
    (model_dir / "model.json").write_text(json.dumps(meta, indent=2))


def _loadable_state(state: Mapping[str, Any]) -> dict[str, Any]:
    """A fusion state with numpy values as tensors / lists, so ``torch.load(weights_only=True)`` reads it."""
    out: dict[str, Any] = {}
    for key, value in state.items():
        if isinstance(value, np.ndarray):
            value = value.tolist() if value.dtype.kind in "USO" else torch.from_numpy(np.array(value))
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out
