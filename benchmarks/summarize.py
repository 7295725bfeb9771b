"""Write ``benchmarks/results/summary.md`` from the JSON of one benchmark run.

Sections: the run's stamp (commit, clean or not, machine, threads, load
before and after; warnings first), every comparison on equal work (both
variants' medians with min–max and rounds, what each does, the ratio), every
measurement's rate, single-window latency, `fusioncore run` split by stage,
detector training throughput, the side-by-side against a baseline commit
when the run had one, and the project's targets. Nothing is extrapolated:
a pair whose variants did different amounts of work is refused.

Usage::

    python -m benchmarks.summarize [RESULTS.json] [--out benchmarks/results/summary.md]

Without a file, the newest ``benchmarks/results/*.json`` is used. A full run's summary is
``summary.md`` (committed); a quick or smoke run's goes to ``summary-quick.md`` /
``summary-smoke.md`` (git-ignored), so it never replaces the stamped figures.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs

from .results_file import Measurement, Pair, Run, SummaryError, load, pairs
from .summary_sections import (
    fmt_rate,
    fmt_seconds,
    side_section,
    stage_section,
    stamp_section,
    training_section,
)

RESULTS = Path(__file__).resolve().parent / "results"

__all__ = ["TARGETS", "Target", "main", "render"]


@attrs.frozen
class Target:
    """A figure the project promises (issue 6), and how to read it from the measurements."""

    label: str
    measure: Callable[[list[Measurement]], float | None]  #: None: not measured
    limit: float
    higher_is_better: bool
    fmt: Callable[[float], str]

    def met(self, value: float) -> bool:
        return value >= self.limit if self.higher_is_better else value <= self.limit


def _best_rate(comparison: str, case: str | None = None) -> Callable[[list[Measurement]], float | None]:
    def measure(ms: list[Measurement]) -> float | None:
        found = [m.rate for m in ms if m.comparison == comparison and m.baselines
                 and (case is None or m.case == case)]
        return max(found) if found else None
    return measure


def _p99_detect_default(ms: list[Measurement]) -> float | None:
    """p99 at one torch thread, `fusioncore detect`'s default (never the best of several settings)."""
    found = [m.extra["p99_ms"] for m in ms if m.comparison == "latency" and m.extra.get("detect_default")
             and "p99_ms" in m.extra]
    return found[0] if found else None


TARGETS = (
    Target("ingest, can-train-and-test CSV -> columns",
           _best_rate("ingest", "can-train-and-test CSV -> columns"), 2e6, True,
           lambda v: fmt_rate(v, "frames")),
    Target("graph building, batched builder", _best_rate("graph building"), 1e6, True,
           lambda v: fmt_rate(v, "frames")),
    Target("end-to-end scoring, best batch size", _best_rate("end-to-end scoring"), 250e3, True,
           lambda v: fmt_rate(v, "frames")),
    Target("p99 latency per window, batch size 1, 1 torch thread", _p99_detect_default, 5.0, False,
           lambda v: f"{v:.2f} ms"),
)


def _timing(m: Measurement) -> str:
    if m.rounds == 1:
        return f"{fmt_seconds(m.median)}, 1 round"
    return f"{fmt_seconds(m.median)} ({fmt_seconds(m.min)}–{fmt_seconds(m.max)}), {m.rounds} rounds"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def comparison_section(ps: Sequence[Pair]) -> list[str]:
    """One table per comparison: the work every variant does, then each pair with what both sides do."""
    lines = ["## Comparisons on equal work", "",
             "In each table every variant does the same work, on the same input and machine, in this run; "
             "times are medians (min–max) over the rounds; ratio = slower median / faster median. "
             "Nothing is extrapolated.", ""]
    for comparison in dict.fromkeys(p.fast.comparison for p in ps):
        mine = [p for p in ps if p.fast.comparison == comparison]
        lines.append(f"### {comparison}")
        lines.append("")
        for work in dict.fromkeys((p.fast.work, p.fast.note) for p in mine):
            lines.append(f"Work: {work[0]}." + (f" *{work[1]}.*" if work[1] else ""))
        lines += ["", "| faster | what it does | time | slower | what it does | time | ratio |",
                  "|---|---|---:|---|---|---:|---:|"]
        for p in mine:
            fast, slow = p.fast, p.slow
            lines.append(f"| {fast.variant} | {_cell(fast.does)} | {_timing(fast)} | {slow.variant} | "
                         f"{_cell(slow.does)} | {_timing(slow)} | **{p.ratio:.1f}x** |")
        lines.append("")
    return lines


def rates_section(ms: Sequence[Measurement]) -> list[str]:
    lines = ["## Every measurement", "",
             "| comparison | case | variant | median | min | max | rounds | rate | windows/s |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for m in ms:
        windows = m.extra.get("windows")
        per_window = f"{windows / m.median:,.0f}" if isinstance(windows, int) and m.unit == "frames" else ""
        rate = "" if m.unit == "runs" else fmt_rate(m.rate, m.unit)
        lines.append(f"| {m.comparison} | {m.case} | {m.variant} | {fmt_seconds(m.median)} | "
                     f"{fmt_seconds(m.min)} | {fmt_seconds(m.max)} | {m.rounds} | {rate} | {per_window} |")
    latency = [m for m in ms if m.comparison == "latency" and "p50_ms" in m.extra]
    if latency:
        lines += ["", "## Latency (one window per call, frames in memory)", ""]
        for m in latency:
            lines.append(f"- {m.variant}: p50 {m.extra['p50_ms']:.2f} ms, p99 {m.extra['p99_ms']:.2f} ms "
                         f"over {m.rounds} calls")
    return [*lines, ""]


def targets_section(ms: list[Measurement]) -> list[str]:
    lines = ["## Targets", "", "| target | goal | measured | met |", "|---|---:|---:|---|"]
    for t in TARGETS:
        value = t.measure(ms)
        goal = ("≥ " if t.higher_is_better else "≤ ") + t.fmt(t.limit)
        if value is None:
            shown, met = "not measured", "-"
        else:
            shown, met = t.fmt(value), "yes" if t.met(value) else "**no**"
        lines.append(f"| {t.label} | {goal} | {shown} | {met} |")
    return [*lines, ""]


def render(run: Run) -> str:
    ms = run.measurements
    lines = [
        *stamp_section(run.stamp),
        *comparison_section(pairs(ms)),
        *stage_section(ms),
        *training_section(ms),
        *side_section(run.side_by_side),
        *rates_section(ms),
        *targets_section(ms),
    ]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="?", type=Path, help="the run's JSON (default: the newest)")
    parser.add_argument("--out", type=Path, help="default: benchmarks/results/summary.md for a full "
                        "run, summary-MODE.md otherwise")
    args = parser.parse_args(argv)
    path = args.results or max(RESULTS.glob("*.json"), key=lambda p: p.stat().st_mtime, default=None)
    try:
        if path is None:
            raise SummaryError(f"no benchmark results in {RESULTS}; run `nox -s bench` first")
        run = load(path)
        text = render(run)
    except SummaryError as exc:
        print(f"summarize: {exc}", file=sys.stderr)
        return 2
    mode = run.stamp.get("mode", "full")
    out = args.out or RESULTS / ("summary.md" if mode == "full" else f"summary-{mode}.md")
    out.write_text(text)
    print(f"summary of {path} written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
