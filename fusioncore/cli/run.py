"""``fusioncore run`` (detectors + fusion, end to end) and ``fusioncore train`` (detectors alone)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from fusioncore.cli import _stdout, command
from fusioncore.errors import ConfigError
from fusioncore.pipeline.config import PRESETS, build_run_config
from fusioncore.pipeline.resources import format_resources
from fusioncore.plugins import get_plugins

__all__ = ["cmd_run", "cmd_train"]


def _names(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def _common(p: argparse.ArgumentParser, *, fusion: bool) -> None:
    # Options default to None: only what is given on the command line overrides a --config file.
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="re-run a saved job: a run's config.yaml (or its folder); options and KEY=VALUE win")
    p.add_argument("--detectors", help="comma-separated detector names (default: vgae,gat)")
    if fusion:
        p.add_argument("--fusion",
                       help="comma-separated fusion names, each evaluated side by side (default: dqn)")
        p.add_argument("--encoder", help="state encoder (default: detector-features)")
        p.add_argument("--reward", help="reward function for learned fusions (default: asymmetric)")
    p.add_argument("--dataset", help="dataset name, a folder name under the data root, or a path "
                   "(default: synthetic, built in)")
    p.add_argument("--data-root", help="folder with one sub-folder per dataset (default: $FUSIONCORE_DATA, "
                   "then the user data dir)")
    p.add_argument("--out", type=Path, help="output folder (default: runs/<timestamp>-<dataset>)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run already in --out (kept until the new one is complete)")
    p.add_argument("--preset", choices=sorted(PRESETS),
                   help="bundle of settings; quick = seconds-long smoke run")
    p.add_argument("--seed", type=int, help="random seed (default 0); same seed, same report on CPU")
    p.add_argument("--seeds", help="several seeds, e.g. 0,1,2: the whole run per seed (data read once), "
                   "metrics reported as mean ± std")
    p.add_argument("--adapt", metavar="NAME",
                   help="capture adapter: how each capture is related to its own vehicle "
                   "(default: profile; none = zero-shot; see docs/adaptation.md)")
    p.add_argument("--warmup", type=float, metavar="SECONDS",
                   help="reference segment of every capture: its first SECONDS, never scored "
                   "(adapt.warmup_s, default 4)")
    p.add_argument("--alarm", help="alarm stage: raw (default) or k-of-n (alarm_params.k_of_n.k=3 ...)")
    p.add_argument("--store", help="prediction store (default: diskcache)")
    p.add_argument("--errors", choices=("skip", "raise"),
                   help="malformed capture rows: skip and count them (default) or stop naming the line")
    p.add_argument("--threads", type=int,
                   help="torch CPU threads (default 1, or $OMP_NUM_THREADS where set: batches are small "
                   "and extra threads stall on a busy machine; 0: torch's own choice)")
    p.add_argument("--accelerator", help="cpu, gpu, auto, ... (default: auto)")
    p.add_argument("--strategy", help="Lightning strategy for detector training, e.g. ddp")
    p.add_argument("--devices", help="number of devices / processes (default 1)")
    p.add_argument("--num-nodes", type=int, help="machines taking part in detector training (default 1)")
    p.add_argument("--max-epochs", type=int, help="detector training epochs (trainer.max_epochs)")
    p.add_argument("--jobs", type=int, metavar="N",
                   help="detectors trained (and scored) at once, one process each (trainer.jobs; default 0: "
                   "as many as the cores allow at --threads per process; 1: one after another)")
    p.add_argument("--resume", action="store_true",
                   help="continue the interrupted run of --out (same config and seed) from its checkpoints")
    p.add_argument("-m", "--multirun", action="store_true",
                   help="sweep: run every combination of comma-separated override values (Hydra's multirun "
                   "syntax, e.g. -m seed=0,1 fusion.dqn.lr=0.001,0.002) into --out/<job>/, with a summary")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="config overrides, e.g. fusion.dqn.lr=0.002 detector.gat.preset=large")


def _base(args: argparse.Namespace, *, fusion: bool) -> dict:
    """The run options given on the command line (a config layer above --config and the preset)."""
    base: dict = {}
    if args.detectors is not None:
        base["detectors"] = _names(args.detectors)
        if not base["detectors"]:
            raise ConfigError("--detectors is empty")
    if not fusion:
        base["fusions"] = []
    elif args.fusion is not None:
        base["fusions"] = _names(args.fusion)
        if not base["fusions"]:
            raise ConfigError("--fusion is empty")
    trainer: dict = {}
    for opt in ("accelerator", "strategy", "max_epochs", "num_nodes", "jobs"):
        if getattr(args, opt) is not None:
            trainer[opt] = getattr(args, opt)
    if args.devices is not None:
        trainer["devices"] = int(args.devices) if str(args.devices).isdigit() else args.devices
    if args.resume:
        if args.out is None:
            raise ConfigError("--resume needs --out: the run folder whose interrupted run to continue")
        trainer["resume"] = True
    if trainer:
        base["trainer"] = trainer
    for opt, key in (("dataset", "dataset"), ("data_root", "data_root"), ("seed", "seed"), ("store", "store"),
                     ("threads", "threads")):
        if getattr(args, opt) is not None:
            base[key] = getattr(args, opt)
    if args.errors is not None:
        base["data"] = {"errors": args.errors}
    if args.seeds is not None:
        try:
            base["seeds"] = [int(x) for x in _names(args.seeds)]
        except ValueError:
            raise ConfigError(f"--seeds wants comma-separated integers (0,1,2), got {args.seeds!r}") from None
    if args.alarm is not None:
        base["alarm"] = args.alarm
    adapt: dict = {}
    if args.adapt is not None:
        adapt["name"] = args.adapt
    if args.warmup is not None:
        adapt["warmup_s"] = args.warmup
    if adapt:
        base["adapt"] = adapt
    if fusion and args.encoder:
        base["encoder_name"] = args.encoder
    if fusion and args.reward:
        base["reward"] = args.reward
    return base


def _config(args: argparse.Namespace, *, fusion: bool):
    plugins = get_plugins()
    cfg = build_run_config(plugins.registry, args.overrides, preset=args.preset,
                           base=_base(args, fusion=fusion), config_file=args.config)
    name = Path(str(cfg.dataset)).name or "run"
    out = args.out or Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{name}"
    return plugins, cfg, out


def _sweep(args: argparse.Namespace, *, fusion: bool, command: str) -> int:
    from fusioncore.pipeline.sweep import run_sweep

    if args.resume or args.overwrite:
        raise ConfigError("--resume and --overwrite apply to one run, not to a sweep (-m)")
    out = args.out or Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-sweep"
    jobs = run_sweep(get_plugins(), args.overrides, out=out, command=command, preset=args.preset,
                     base=_base(args, fusion=fusion), config_file=args.config)
    console = _stdout()
    console.print((out / "summary.md").read_text(), markup=False, highlight=False)
    failed = [j for j in jobs if j.status != "ok"]
    console.print(f"{len(jobs)} jobs, {len(failed)} failed; runs and sweep.json in {out}")
    return 2 if failed else 0


def _print_summary(report: dict, out_dir: Path) -> None:
    from fusioncore.evaluation.tables import summary_table

    console = _stdout()
    protocol = report.get("protocol")
    if protocol:
        console.print(f"protocol: adapter {protocol['adapter']}; the first {protocol['warmup_s']:g} s of "
                      "every capture are its reference segment, not scored", highlight=False)
    console.print(summary_table(report))
    cache = report["prediction_cache"]
    console.print(f"prediction store: {cache['hits']} hits, {cache['misses']} misses; artifacts in {out_dir}")
    console.print(format_resources(report["timings"], report["memory"],
                                   overlapping=report.get("timings_overlapping")), highlight=False)
    _print_data_notes(report.get("data", {}))


def _print_data_notes(data: dict) -> None:
    """Rows skipped while reading (per reason, with the first line numbers) and split warnings."""
    console = _stdout()
    if data.get("skipped_rows"):
        reasons = "; ".join(f"{why}: {n:,}" for why, n in data.get("skipped_reasons", {}).items())
        console.print(f"input: {data['skipped_rows']:,} malformed rows skipped ({reasons}); per file and "
                      "first line numbers in report.json data.files (--errors raise stops at the first)",
                      highlight=False)
        for f in data.get("files", [])[:3]:
            lines = ", ".join(f"{why} at line {', '.join(map(str, at))}" for why, at in
                              f.get("first_lines", {}).items())
            console.print(f"  {f.get('path')}: {lines}", highlight=False)
    for note in data.get("warnings", []):
        console.print(f"[yellow]warning:[/yellow] {note}", highlight=False)


@command("run", "train detectors, fit fusions and evaluate every method on every test scenario")(
    lambda p: _common(p, fusion=True)
)
def cmd_run(args: argparse.Namespace) -> int:
    from fusioncore.pipeline import run_pipeline

    if args.multirun:
        return _sweep(args, fusion=True, command="run")
    plugins, cfg, out = _config(args, fusion=True)
    result = run_pipeline(cfg, out_dir=out, plugins=plugins, command="run", overwrite=args.overwrite)
    _print_summary(result.report, result.out_dir)
    return 0


@command("train", "train and evaluate detectors alone (no fusion); prints per-scenario AUROC / MCC")(
    lambda p: _common(p, fusion=False)
)
def cmd_train(args: argparse.Namespace) -> int:
    from fusioncore.pipeline import run_pipeline

    if args.multirun:
        return _sweep(args, fusion=False, command="train")
    plugins, cfg, out = _config(args, fusion=False)
    result = run_pipeline(cfg, out_dir=out, plugins=plugins, command="train", overwrite=args.overwrite)
    _print_summary(result.report, result.out_dir)
    return 0
