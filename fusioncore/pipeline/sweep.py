"""Sweeps: ``fusioncore run -m seed=0,1 fusion.dqn.lr=0.001,0.002`` runs every combination.

Sweep expansion and job bookkeeping are Hydra's own multirun, launched
through :func:`hydra_zen.launch` (so ``a=1,2``, ``range(0,3)``, ``choice(...)``
and the rest of Hydra's override grammar mean what they mean there). Each job
is an ordinary run, built by :func:`~fusioncore.pipeline.config.build_run_config`
from the same layers as a single run plus the job's overrides, written to
``<sweep>/<job number>/``. Every combination is validated before the first
job starts; a job that fails is recorded and the others still run. The sweep
folder gets ``sweep.json`` (jobs, overrides, status, mean metrics) and
``summary.md``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from fusioncore.errors import ConfigError, FusionCoreError
from fusioncore.pipeline.components import resolve_components
from fusioncore.pipeline.config import build_run_config
from fusioncore.plugins import Plugins

__all__ = ["SweepJob", "expand_sweep", "run_sweep"]

SWEEP_FILE = "sweep.json"


@attrs.frozen
class SweepJob:
    number: int
    overrides: tuple[str, ...]
    out: str
    status: str  #: "ok" or "failed"
    error: str | None = None
    mean: Mapping[str, Mapping[str, float | None]] = attrs.field(factory=dict)  #: method -> metric -> mean


def expand_sweep(overrides: Sequence[str]) -> list[list[str]]:
    """Every combination of the sweep overrides, in Hydra's BasicSweeper order."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except HydraException as exc:
        raise ConfigError(f"bad sweep override: {str(exc).splitlines()[0]}") from None
    batches = BasicSweeper.split_arguments(parsed, None)
    return [list(job) for batch in batches for job in batch]


def run_sweep(
    plugins: Plugins, overrides: Sequence[str], *, out: Path, command: str,
    preset: str | None = None, base: Mapping[str, Any] | None = None, config_file: Path | None = None,
) -> list[SweepJob]:
    from hydra_zen import launch

    from fusioncore.pipeline.run import run_pipeline

    registry = plugins.registry
    combinations = expand_sweep(overrides)
    for combo in combinations:  # fail on a bad combination before the first job trains anything
        resolve_components(build_run_config(registry, combo, preset=preset, base=base,
                                            config_file=config_file), registry)
    out = Path(out).absolute()
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"sweep folder {out} is not empty; choose another --out")
    jobs: list[SweepJob] = []

    def task(job_cfg: Any) -> None:
        from hydra.core.hydra_config import HydraConfig

        hc = HydraConfig.get()
        job_overrides = tuple(hc.overrides.task)
        job_out = Path(hc.runtime.output_dir)
        try:
            cfg = build_run_config(registry, list(job_overrides), preset=preset, base=base,
                                   config_file=config_file)
            result = run_pipeline(cfg, out_dir=job_out, plugins=plugins, command=command)
            jobs.append(SweepJob(int(hc.job.num), job_overrides, str(result.out_dir), "ok",
                                 mean=result.report.get("mean_over_scenarios", {})))
        except FusionCoreError as exc:
            jobs.append(SweepJob(int(hc.job.num), job_overrides, str(job_out), "failed", str(exc)))

    base_cfg = build_run_config(registry, [], preset=preset, base=base, config_file=config_file)
    hydra_options = [f"hydra.sweep.dir={out}", "hydra.sweep.subdir=${hydra.job.num}",
                     "hydra/job_logging=disabled", "hydra/hydra_logging=disabled", "hydra.output_subdir=null"]
    launch(base_cfg, task, overrides=[*overrides, *hydra_options], multirun=True, version_base="1.3")
    write_sweep_summary(out, jobs)
    return jobs


def write_sweep_summary(out: Path, jobs: Sequence[SweepJob]) -> None:
    (out / SWEEP_FILE).write_text(json.dumps({"jobs": [attrs.asdict(j) for j in jobs]}, indent=2))
    methods = sorted({m for j in jobs for m in j.mean})
    lines = ["# fusioncore sweep", "",
             "Mean MCC over test scenarios per job (`fusioncore compare` for detail).",
             "", "| job | overrides | status | " + " | ".join(methods) + " |",
             "|---|---|---|" + "---:|" * len(methods)]
    for j in jobs:
        cells = [_fmt(j.mean.get(m, {}).get("mcc")) for m in methods]
        status = j.status if j.error is None else f"failed: {j.error}"
        lines.append(f"| {j.number} | {' '.join(j.overrides)} | {status} | " + " | ".join(cells) + " |")
    (out / "summary.md").write_text("\n".join(lines) + "\n")


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"
