"""``score_fleet``: score many captures with a trained run on Lightning's ``Trainer.predict``.

Distribution is Lightning's: ``strategy`` / ``devices`` / ``num_nodes`` go to
the Trainer unchanged (``ddp`` on CPUs uses gloo, on GPUs NCCL; multi-node
runs are launched as Lightning documents, e.g. with ``torchrun`` or SLURM),
and its distributed sampler shards the capture list. Nothing here knows
how many processes there are except to report it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
from torch.utils.data import DataLoader

from fusioncore.errors import ConfigError
from fusioncore.fleet.captures import CaptureList, find_captures, first_item, verdict_names
from fusioncore.fleet.scorer import FleetProgress, FleetScorer, describe_alarm
from fusioncore.fleet.summary import collect_rows, write_summary
from fusioncore.pipeline.engine import interruptible
from fusioncore.pipeline.resources import memory_report

__all__ = ["FleetResult", "alarm_stage", "score_fleet"]


@attrs.frozen(eq=False)
class FleetResult:
    """What a process of a fleet run leaves: global rank 0 has the summary rows and report."""

    out: Path
    is_global_zero: bool
    rows: list[dict[str, Any]] = attrs.field(factory=list)
    report: dict[str, Any] = attrs.field(factory=dict)


def _trainer(accelerator: str, devices: int | str, num_nodes: int, strategy: str, callbacks: list):
    from fusioncore.pipeline.engine import lightning_trainer

    return lightning_trainer(
        f"accelerator={accelerator!r} devices={devices!r} num_nodes={num_nodes} strategy={strategy!r}",
        accelerator=accelerator, devices=devices, num_nodes=num_nodes, strategy=strategy, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=callbacks)


def alarm_stage(bundle: Any, spec: str | None, registry: Any) -> Any:
    """The alarm stage to use: ``spec`` (a registered name, or ``K/N`` for ``k-of-n``), else the run's own.

    A run saves the stage it was evaluated with (name and parameters) in its
    bundle; runs from before alarm stages existed get ``raw``.
    """
    from fusioncore.pipeline.config import build_component

    if spec is None:
        saved = dict(bundle.sections.get("alarm") or {"name": "raw", "params": {}})
        name, params = saved["name"], dict(saved.get("params") or {})
    elif "/" in spec:
        k, _, n = spec.partition("/")
        if not (k.strip().isdigit() and n.strip().isdigit()):
            raise ConfigError(f"--alarm wants a registered alarm stage or K/N (e.g. 3/5), got {spec!r}")
        name, params = "k-of-n", {"k": int(k), "n": int(n)}
    else:
        name, params = spec, {}
    return build_component(registry.get("alarm", name), params)


def score_fleet(
    run_dir: Path,
    inputs: Sequence[str],
    out: Path,
    *,
    method: str | None = None,
    stride: int | None = None,
    alarm: str | None = None,
    format: str | None = None,
    errors: str = "skip",
    accelerator: str = "auto",
    strategy: str = "auto",
    devices: int | str = 1,
    num_nodes: int = 1,
    batch_size: int = 256,
    progress: bool = True,
    warmup_s: float | None = None,
) -> FleetResult:
    """Score every capture matching ``inputs`` into ``out`` (one verdict file each, plus the summary).

    ``alarm``: see :func:`alarm_stage` (default: the stage the run was evaluated with).
    ``warmup_s``: an adapting run's reference segment at the start of every
    capture (default: the run's ``adapt.warmup_s``); its windows are not scored.
    """
    from fusioncore.pipeline.bundle import RunBundle
    from fusioncore.plugins import get_plugins

    timings: dict[str, float] = {}
    start = time.perf_counter()
    if stride is not None and stride < 1:
        raise ConfigError(f"--stride must be >= 1, got {stride}")
    if batch_size < 1 or num_nodes < 1:
        raise ConfigError(f"--batch-size and --num-nodes must be >= 1, got {batch_size} / {num_nodes}")
    captures = find_captures(inputs, exclude=Path(out))
    names = verdict_names(captures)
    plugins = get_plugins()
    registry = plugins.registry
    readers = tuple(registry.get("format", n) for n in registry.names("format"))
    if format is not None:
        registry.get("format", format)  # an unknown name fails here, listing the known ones
    bundle = RunBundle.load(run_dir, plugins=plugins)
    stage = alarm_stage(bundle, alarm, registry)
    method = method or bundle.default_method
    if method not in bundle.thresholds:
        raise ConfigError(f"--method {method!r} is not in this run; available: "
                          f"{', '.join(bundle.thresholds)}")
    if warmup_s is not None and warmup_s < 0:
        raise ConfigError(f"--warmup must be >= 0 seconds, got {warmup_s}")
    adaptation = bundle.scoring_system(method, warmup_s=warmup_s, plugins=plugins).adaptation
    trainer = _trainer(accelerator, devices, num_nodes, strategy, [FleetProgress(len(captures), progress)])
    if trainer.world_size > len(captures):
        raise ConfigError(f"{len(captures)} capture(s) for {trainer.world_size} processes: every process "
                          "needs at least one; use fewer --devices / --num-nodes")
    scorer = FleetScorer(bundle, captures, names, out, method=method, stride=stride, alarm=stage,
                         readers=readers, format=format, errors=errors, batch_size=batch_size,
                         run_dir=run_dir, adaptation=adaptation)
    timings["load"] = time.perf_counter() - start
    start = time.perf_counter()
    loader = DataLoader(CaptureList(len(captures)), batch_size=1, collate_fn=first_item)
    # Ctrl-C stays a KeyboardInterrupt (exit 130) and SIGINT is not left ignored by Lightning
    interruptible(trainer.predict, trainer, scorer, dataloaders=loader, return_predictions=False)
    timings["score"] = time.perf_counter() - start
    if not trainer.is_global_zero:
        return FleetResult(Path(out), False)
    start = time.perf_counter()
    rows = collect_rows(out, names)
    timings["summary"] = time.perf_counter() - start
    memory = memory_report()
    peaks: dict[int, float] = {}
    for r in rows:
        peaks[r["rank"]] = max(peaks.get(r["rank"], 0.0), r["peak_rss_mb"])
    memory["process_peak_rss_mb"] = [peaks[k] for k in sorted(peaks)]
    memory["peak_rss_mb"] = max([memory["peak_rss_mb"], *peaks.values()])
    frames = sum(r["frames"] for r in rows)
    report = write_summary(out, rows, {
        "run": str(run_dir), "method": method, "threshold": float(bundle.thresholds[method]),
        "alarm": describe_alarm(stage), "processes": trainer.world_size,
        "adapter": adaptation.adapter.name,
        "warmup_s": adaptation.adapter.warmup_s if adaptation.uses_reference else 0.0,
        "timings": {k: round(v, 3) for k, v in timings.items()}, "memory": memory,
        "frames_per_s": round(frames / timings["score"], 1) if timings["score"] > 0 else None,
    })
    return FleetResult(Path(out), True, rows, report)
