"""``fusioncore score``: score a fleet of captures with a trained run, one verdict file per capture.

Runs on Lightning's ``Trainer.predict``: ``--strategy ddp --devices N
--num-nodes M`` shards the captures over processes and machines (every
process writes its own captures' files; global rank 0 writes the summary).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fusioncore.cli import _stdout, command
from fusioncore.errors import ConfigError

__all__ = ["cmd_score"]


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", type=Path, required=True, help="folder written by `fusioncore run`")
    p.add_argument("--input", action="append", required=True, metavar="PATTERN",
                   help="capture files: a file, a folder (read recursively) or a quoted glob such as "
                   "'logs/**/*.log'; repeatable")
    p.add_argument("--out", type=Path, required=True,
                   help="folder for the verdict files (<capture>.parquet) and summary.parquet / summary.json")
    p.add_argument("--method", help="fusion or detector that decides (default: the run's first fusion)")
    p.add_argument("--stride", type=int, help="score every S frames (default: the run's window stride)")
    p.add_argument("--alarm", metavar="STAGE",
                   help="alarm stage after the decisions: a registered one (raw, k-of-n, ...) or K/N for "
                   "k-of-n (default: the stage the run was evaluated with)")
    p.add_argument("--warmup", type=float, metavar="SECONDS",
                   help="adapting runs: seconds at the start of every capture that form its reference "
                   "segment (not scored; default: the run's adapt.warmup_s)")
    p.add_argument("--format", help="force the input format instead of sniffing each file")
    p.add_argument("--errors", choices=("raise", "skip"), default="skip",
                   help="bad rows: skip and count them (default) or fail that capture")
    p.add_argument("--accelerator", default="auto", help="cpu, gpu, auto, ... (default: auto)")
    p.add_argument("--strategy", default="auto", help="Lightning strategy, e.g. ddp (default: auto)")
    p.add_argument("--devices", default="1", help="devices (processes) per node (default 1)")
    p.add_argument("--num-nodes", type=int, default=1, help="machines taking part (default 1)")
    p.add_argument("--batch-size", type=int, default=256, help="windows per forward pass (default 256)")
    p.add_argument("--threads", type=int, help="torch CPU threads per process (default: torch's own choice)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _warmup(report: dict) -> str:
    warmup = report.get("warmup_s") or 0.0
    return f" (each capture's first {warmup:g} s: its reference, not scored)" if warmup else ""


@command("score", "score many captures with a trained run (Lightning strategies for DDP / multi-node); "
         "one Parquet verdict file per capture and a summary")(_configure)
def cmd_score(args: argparse.Namespace) -> int:
    import torch

    from fusioncore.fleet import score_fleet
    from fusioncore.fleet.summary import print_summary
    from fusioncore.pipeline.resources import format_resources

    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {args.threads}")
    devices = int(args.devices) if str(args.devices).isdigit() else args.devices
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads or threads)
    try:
        result = score_fleet(
            args.run, args.input, args.out, method=args.method, stride=args.stride,
            alarm=args.alarm, format=args.format, errors=args.errors,
            accelerator=args.accelerator, strategy=args.strategy, devices=devices, num_nodes=args.num_nodes,
            batch_size=args.batch_size, progress=not args.no_progress, warmup_s=args.warmup,
        )
    finally:
        torch.set_num_threads(threads)
    if not result.is_global_zero:
        return 0  # a DDP worker: global rank 0 reports for everyone
    report = result.report
    console = _stdout()
    print_summary(result.rows, report["totals"], console)
    rate = report["frames_per_s"]
    console.print(f"{report['processes']} process(es), method {report['method']} (threshold "
                  f"{report['threshold']:.4f}), alarm {report['alarm']}, adapter {report['adapter']}"
                  f"{_warmup(report)}; "
                  f"{'-' if rate is None else f'{rate:,.0f}'} frames/s; verdicts and summary in {result.out}",
                  highlight=False)
    console.print(format_resources(report["timings"], report["memory"]), highlight=False)
    failed = report["totals"]["failed"]
    if failed:
        raise ConfigError(f"{failed} of {report['totals']['captures']} captures could not be scored "
                          f"(see {result.out / 'summary.parquet'})")
    return 0
