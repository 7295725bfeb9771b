"""``fusioncore detect``: score a capture file, a growing log or a live CAN bus with a trained run.

Alerts go to stdout as windows complete (at most ``--alert-rate`` lines a
second; the rest are counted), one JSON line per window to ``--jsonl``, and a
summary at the end -- also after Ctrl-C (exit status 130), a bus that
closes under us or a ``--jsonl`` file that cannot be written (a one-line
error, exit status 2). An input from which not one frame could be read is an
error too (exit status 2, after the summary says what was skipped). The
inputs themselves (a python-can bus, a growing log, a real-time replay) live
in :mod:`fusioncore.streaming.sources`.

A run trained with a capture adapter (``--adapt`` of ``fusioncore run``)
warms up on the input: its first ``--warmup`` seconds (default: the run's)
are the vehicle's reference segment, never scored. ``--profile vehicle.json``
(from ``fusioncore profile``) supplies the vehicle profile instead; the
warm-up then only takes the score statistics.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import time
from pathlib import Path
from typing import IO

import attrs

from fusioncore.cli import command
from fusioncore.errors import ConfigError, FormatError, FusionCoreError
from fusioncore.plugins import get_plugins

__all__ = ["AlertPrinter", "OutputError", "cmd_detect", "parse_bus"]


class OutputError(FusionCoreError):
    """An output (``--jsonl``) that cannot be opened or written."""


def _open_jsonl(path: Path | None) -> IO[str] | None:
    if path is None:
        return None
    if str(path) == "-":
        return sys.stdout
    try:
        return open(path, "w")
    except OSError as exc:
        raise OutputError(f"--jsonl {path}: cannot write there ({exc.strerror or exc})") from None


def parse_bus(spec: str) -> tuple[str, str]:
    """``INTERFACE:CHANNEL`` (``virtual:demo``, ``socketcan:can0``) -> (interface, channel)."""
    interface, sep, channel = spec.partition(":")
    if not sep or not interface or not channel:
        raise ConfigError(f"--bus wants INTERFACE:CHANNEL (e.g. socketcan:can0, virtual:demo), got {spec!r}")
    return interface, channel


def _bus_options(items: list[str]) -> dict:
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--bus-option wants KEY=VALUE (e.g. bitrate=500000), got {item!r}")
        try:
            options[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            options[key] = value  # a plain string such as a device name
    return options


class AlertPrinter:
    """Prints alert lines, at most ``per_second`` in any one second; counts the ones it holds back."""

    def __init__(self, per_second: float, out: IO[str] | None = None) -> None:
        self.per_second = per_second
        self.out = out or sys.stdout
        self.suppressed = 0
        self._held = 0  # suppressed since the last line printed
        self._second = -1
        self._printed = 0

    def __call__(self, row: dict) -> None:
        now = int(time.monotonic())
        if now != self._second:
            self._second, self._printed = now, 0
        if self._printed >= self.per_second:
            self.suppressed += 1
            self._held += 1
            return
        self._printed += 1
        note = f" (+{self._held} alerts not shown: rate limit)" if self._held else ""
        self._held = 0
        scores = " ".join(f"{k} {v:.3f}" for k, v in row["calibrated"].items())
        ids = ", ".join(
            i["id"] + (" unknown" if i.get("unknown") else f" off-period {i['iat_vs_period']:+.2f}")
            for i in row["top_ids"]
        ) or "-"
        print(f"ALERT window@{row['window']} t={row['start']:.6f}..{row['end']:.6f} "
              f"{row['method']} {row['fused']:.3f} > {row['threshold']:.3f} [{scores}] ids: {ids}{note}",
              file=self.out, flush=True)


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", type=Path, required=True, help="folder written by `fusioncore run`")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", type=Path, help="one capture file, any supported format (.gz ok)")
    src.add_argument("--bus", help="live bus as INTERFACE:CHANNEL via python-can, e.g. socketcan:can0")
    p.add_argument("--bus-option", action="append", default=[], metavar="KEY=VALUE",
                   help="extra python-can bus argument, e.g. bitrate=500000 (repeatable)")
    p.add_argument("--format", help="force the input format instead of sniffing it")
    p.add_argument("--errors", choices=("raise", "skip"), default="skip",
                   help="bad input rows: skip and count them (default) or stop with an error")
    p.add_argument("--follow", action="store_true",
                   help="keep reading a growing candump / CSV log (like tail -f) until Ctrl-C")
    p.add_argument("--realtime", action="store_true", help="replay --input at its recorded pace")
    p.add_argument("--speed", type=float, default=1.0, help="pace factor for --realtime (default 1)")
    p.add_argument("--stride", type=int, help="score every S frames (default: the run's window stride)")
    p.add_argument("--method", help="fusion or detector that decides (default: the run's first fusion)")
    p.add_argument("--adapt", metavar="NAME",
                   help="capture adapter; must be the run's own (default: the run's)")
    p.add_argument("--warmup", type=float, metavar="SECONDS",
                   help="adapting runs: seconds at the start of the input that form its reference segment "
                   "(never scored; default: the run's adapt.warmup_s)")
    p.add_argument("--profile", type=Path, metavar="JSON",
                   help="vehicle profile (`fusioncore profile`) to compare the input with, instead of "
                   "learning one from the warm-up")
    p.add_argument("--jsonl", type=Path, help="write one JSON line per window here ('-' for stdout)")
    p.add_argument("--alert-rate", type=float, default=5.0,
                   help="print at most this many alert lines per second (default 5; 0: none)")
    p.add_argument("--idle-exit", type=float, metavar="SECONDS",
                   help="with --bus or --follow: stop after this long without new frames")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads for scoring (default 1: window batches are small, and "
                   "spinning threads only steal cores from the traffic source)")
    p.add_argument("--workers", type=int, default=0,
                   help="detectors scoring a batch at the same time, one thread each (default 0: one "
                   "per detector, as many as the CPU cores allow at --threads each; 1: one after the "
                   "other). Batches under 16 windows always run one after the other; scores are the "
                   "same either way")
    p.add_argument("--max-backlog", type=int, default=1_000_000, metavar="FRAMES",
                   help="live sources: frames that may wait for the scorer before new ones are "
                   "dropped (and counted); default 1,000,000")


@command("detect", "score a capture, a growing log or a live CAN bus with a trained run; alert per window")(
    _configure
)
def cmd_detect(args: argparse.Namespace) -> int:
    import torch

    from fusioncore import streaming as st
    from fusioncore.scoring import ScoringSystem
    from fusioncore.streaming import BusError

    if (args.follow or args.realtime) and args.bus:
        raise ConfigError("--follow and --realtime apply to --input, not --bus")
    if args.follow and args.realtime:
        raise ConfigError("--follow reads a log as it grows; --realtime replays a finished one: pick one")
    if args.stride is not None and args.stride < 1:
        raise ConfigError(f"--stride must be >= 1, got {args.stride}")
    if args.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {args.threads}")
    if args.workers < 0:
        raise ConfigError(f"--workers must be >= 0 (0: one per detector), got {args.workers}")
    if args.input is not None and args.input.is_dir():
        raise ConfigError(f"--input {args.input} is a folder; detect reads one capture file "
                          f"(list a folder's captures with: fusioncore inspect {args.input})")
    system = attrs.evolve(
        ScoringSystem.load(args.run, method=args.method, adapt=args.adapt, warmup_s=args.warmup),
        workers=args.workers,
    )
    profile = _read_profile(args.profile, system)
    jsonl = _open_jsonl(args.jsonl)
    print(f"detect: {args.run} ({system.method}, threshold {system.threshold:.4f}), window "
          f"{system.window_size} frames, stride {args.stride or system.stride}", file=sys.stderr)
    if system.needs_reference:
        what = f"profile {args.profile}" if profile is not None else "a profile and score statistics"
        print(f"adapter {system.adaptation.adapter.name}: the first {system.warmup_s:g} s of the input "
              f"are its reference segment ({what}); they are not scored", file=sys.stderr)
    text = sys.stderr if jsonl is sys.stdout else sys.stdout  # keep stdout pure JSON lines for `--jsonl -`
    alerts = AlertPrinter(args.alert_rate, text)

    def on_verdicts(verdicts) -> None:
        rows = verdicts.json_rows()
        if jsonl is not None:
            try:
                jsonl.write("".join(json.dumps(r) + "\n" for r in rows))
                jsonl.flush()
            except OSError as exc:  # disk full, a pipe closed: stop, say so, keep the summary
                raise OutputError(f"--jsonl {args.jsonl}: write failed ({exc.strerror or exc})") from None
        if args.alert_rate > 0:
            for row in rows:
                if row["alert"]:
                    alerts(row)

    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    cleanups: list = []
    summary = st.DetectionSummary(interrupted=True)  # what a Ctrl-C before the first frame leaves
    try:
        chunks = _open_source(args, st, cleanups)
        summary = st.run_detection(system, chunks, on_verdicts, stride=args.stride, profile=profile)
    except KeyboardInterrupt:  # between opening the source and its first chunk
        pass
    finally:
        torch.set_num_threads(threads)
        for cleanup in reversed(cleanups):
            cleanup()
        if jsonl is not None and jsonl is not sys.stdout:
            try:
                jsonl.close()
            except OSError:  # its last write failed already, and said so
                pass
    _print_summary(summary, alerts.suppressed, text)
    if summary.error:
        raise BusError(summary.error)
    if summary.interrupted:
        return 130
    if args.input is not None and not summary.frames:
        skipped = sum(summary.skipped.values())
        why = (f"all {skipped:,} records were skipped ({_reasons(summary.skipped)})" if skipped
               else "it holds no CAN frames")
        raise FormatError(args.input, f"nothing could be read: {why}")
    return 0


def _reasons(skipped) -> str:
    return ", ".join(f"{n:,} {why}" for why, n in skipped.most_common())


def _read_profile(path: Path | None, system):
    if path is None:
        return None
    from fusioncore.adapt.profile import VehicleProfile

    if not system.needs_reference or not system.adaptation.adapter.representation.relative:
        raise ConfigError(f"--profile: this run's adapter ({system.adaptation.adapter.name}) "
                          "compares no features with a vehicle profile")
    try:
        return VehicleProfile.from_json(path.read_text())
    except OSError as exc:
        raise ConfigError(f"--profile {path}: {exc.strerror or exc}") from None


def _open_source(args: argparse.Namespace, st, cleanups: list):
    """The chunk iterable for the chosen input; what must be closed afterwards goes into ``cleanups``."""
    from fusioncore.data.formats import detect_format, read_capture

    registry = get_plugins().registry
    readers = tuple(registry.get("format", n) for n in registry.names("format"))
    if args.bus:
        interface, channel = parse_bus(args.bus)
        bus = st.open_bus(interface, channel, **_bus_options(args.bus_option))
        cleanups.append(bus.shutdown)
        source = st.LiveSource(st.bus_producer(bus, idle_exit=args.idle_exit), max_frames=args.max_backlog)
        cleanups.append(source.close)
        print(f"listening on {interface}:{channel}", file=sys.stderr, flush=True)
        return source
    path = args.input
    if not path.is_file():
        raise ConfigError(f"--input {path}: no such file")
    if args.follow:
        reader = registry.get("format", args.format) if args.format else detect_format(path, readers)
        return st.follow_file(path, reader, idle_exit=args.idle_exit)
    result = read_capture(path, format=args.format, errors=args.errors, readers=readers)
    if args.realtime:
        source = st.LiveSource(st.realtime_producer(result.frames, speed=args.speed,
                                                    skipped=result.skipped_reasons),
                               max_frames=args.max_backlog)
        cleanups.append(source.close)
        return source
    return st.file_chunks(result.frames, skipped=result.skipped_reasons)


def _print_summary(summary, suppressed: int, out: IO[str]) -> None:
    s = summary.to_json()

    def ms(v):
        return "-" if v is None else f"{v:.2f} ms"

    def rate(v):
        return "-" if v is None else f"{v:,.1f}"

    state = " (interrupted)" if s["interrupted"] else ""
    print(f"summary{state}: {s['frames']:,} frames, {s['windows']:,} windows, {s['alerts']:,} alerts"
          + (f" ({suppressed:,} not printed: rate limit)" if suppressed else ""), file=out)
    print(f"throughput: {rate(s['frames_per_s'])} frames/s, {rate(s['windows_per_s'])} windows/s "
          f"over {s['seconds']:.2f} s; latency per window p50 {ms(s['latency_p50_ms'])}, "
          f"p99 {ms(s['latency_p99_ms'])}", file=out)
    if s["warmup_incomplete"]:
        print("notes: the input ended during the warm-up (its reference segment): nothing was scored",
              file=out)
    elif s["warmup_frames"]:
        print(f"warm-up: {s['warmup_frames']:,} frames ({s['warmup_windows']:,} windows) formed the "
              "reference segment and were not scored", file=out)
    notes = [f"{s['dropped_frames']:,} frames dropped (backlog full)" if s["dropped_frames"] else "",
             f"{s['trailing_frames']:,} trailing frames in no full window" if s["trailing_frames"] else "",
             f"{s['backward_steps']:,} timestamps stepped back" if s["backward_steps"] else "",
             f"{s['duplicate_timestamps']:,} repeated timestamps" if s["duplicate_timestamps"] else "",
             *(f"{n:,} skipped: {why}" for why, n in s["skipped"].items())]
    if any(notes):
        print("notes: " + "; ".join(n for n in notes if n), file=out)
