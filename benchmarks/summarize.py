"""Write ``benchmarks/results/summary.md`` from a pytest-benchmark JSON file.

One row per comparison: the fast variant's and the baseline's median times,
their ratio and both rates, then the project's targets (met or missed, with
the measured figure), single-window latency, and the machine the numbers
come from. A baseline timed on a smaller sample is scaled to the fast
variant's work (``extra_info["scale"]``) and marked as extrapolated.

Usage::

    python -m benchmarks.summarize [RESULTS.json] [--out benchmarks/results/summary.md]

Without a file, the newest ``benchmarks/results/*.json`` is used.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

RESULTS = Path(__file__).resolve().parent / "results"

__all__ = ["Measurement", "Pair", "Target", "load", "main", "pairs", "render"]


@attrs.frozen
class Measurement:
    """One benchmark's median and the tags it recorded (see benchmarks/common.py)."""

    comparison: str
    case: str
    variant: str
    role: str
    median: float  #: seconds per call
    rounds: int
    items: float  #: work per call, in ``unit``
    unit: str
    scale: float  #: factor to the fast variant's work (baselines on a smaller sample)
    pairs_with: tuple[str, ...]
    extra: dict[str, Any] = attrs.field(factory=dict, eq=False)

    @property
    def rate(self) -> float:
        return self.items / self.median if self.median > 0 else float("nan")

    @property
    def scaled_median(self) -> float:
        return self.median * self.scale


@attrs.frozen
class Pair:
    comparison: str
    case: str
    fast: Measurement
    baseline: Measurement

    @property
    def ratio(self) -> float:
        """How many times faster the fast variant is, on equal work."""
        return self.baseline.scaled_median / self.fast.median if self.fast.median > 0 else float("nan")


@attrs.frozen
class Target:
    """A figure the project promises, and how to read it from the measurements."""

    label: str
    measure: Callable[[list[Measurement], list[Pair]], float | None]  #: None: not measured
    limit: float
    higher_is_better: bool
    fmt: Callable[[float], str]

    def met(self, value: float) -> bool:
        return value >= self.limit if self.higher_is_better else value <= self.limit


class SummaryError(Exception):
    """The results file is missing or is not a fusioncore benchmark run."""


def load(path: Path) -> tuple[dict[str, Any], list[Measurement]]:
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SummaryError(f"cannot read benchmark results {path}: {exc}") from None
    found = []
    for bench in doc.get("benchmarks", []):
        info, stats = bench.get("extra_info", {}), bench.get("stats")
        if "comparison" not in info or not stats:
            continue
        found.append(
            Measurement(
                comparison=info["comparison"], case=info["case"], variant=info["variant"],
                role=info["role"], median=float(stats["median"]), rounds=int(stats["rounds"]),
                items=float(info["items"]), unit=info["unit"], scale=float(info.get("scale", 1.0)),
                pairs_with=tuple(info.get("pairs_with") or (info["case"],)), extra=info,
            )
        )
    if not found:
        raise SummaryError(f"{path} holds no fusioncore benchmarks (was it run with --benchmark-disable?)")
    return doc, found


def pairs(measurements: Sequence[Measurement]) -> list[Pair]:
    """Every baseline against the fast variant of each case it pairs with, in run order."""
    out = []
    for fast in (m for m in measurements if m.role == "fast"):
        for base in measurements:
            same = base.comparison == fast.comparison and fast.case in base.pairs_with
            if base.role == "baseline" and same:
                out.append(Pair(fast.comparison, fast.case, fast, base))
    return out


def _seconds(s: float) -> str:
    if s >= 1:
        return f"{s:.2f} s"
    return f"{s * 1e3:.2f} ms" if s >= 1e-3 else f"{s * 1e6:.1f} µs"


def _rate(r: float, unit: str) -> str:
    for scale, suffix in ((1e6, " M"), (1e3, " k")):
        if r >= scale:
            return f"{r / scale:.2f}{suffix} {unit}/s"
    return f"{r:.1f} {unit}/s"


def _find(ms: Sequence[Measurement], comparison: str, variant: str | None = None) -> list[Measurement]:
    return [m for m in ms if m.comparison == comparison and m.role == "fast"
            and (variant is None or m.variant == variant)]


Measure = Callable[[list[Measurement], list[Pair]], "float | None"]


def _ratio_of(comparison: str, case: str) -> Measure:
    def measure(_ms, ps):
        found = [p.ratio for p in ps if p.comparison == comparison and p.case == case]
        return min(found) if found else None
    return measure


def _best_rate(comparison: str, case: str | None = None) -> Measure:
    def measure(ms, _ps):
        found = [m.rate for m in _find(ms, comparison) if case is None or m.case == case]
        return max(found) if found else None
    return measure


def _p99(ms, _ps) -> float | None:
    """The best configuration's p99 (the latency rows list every configuration)."""
    found = [m.extra["p99_ms"] for m in _find(ms, "latency") if "p99_ms" in m.extra]
    return min(found) if found else None


TARGETS = (
    Target("prediction cache speed-up at E = 50", _ratio_of("prediction cache", "E=50"), 20, True,
           lambda v: f"{v:.1f}x"),
    Target("ingest, can-train-and-test CSV -> Frames",
           _best_rate("ingest", "can-train-and-test CSV -> columns"), 2e6, True,
           lambda v: _rate(v, "frames")),
    Target("graph building, 1024-window batches", _best_rate("graph building"), 1e6, True,
           lambda v: _rate(v, "frames")),
    Target("end-to-end scoring, best batch size", _best_rate("end-to-end scoring"), 250e3, True,
           lambda v: _rate(v, "frames")),
    Target("p99 latency per window, batch size 1 (best thread setting)", _p99, 5.0, False,
           lambda v: f"{v:.2f} ms"),
)


def render(doc: dict[str, Any], ms: list[Measurement]) -> str:
    machine = doc.get("machine_info", {})
    ours = machine.get("fusioncore", {})
    commit = doc.get("commit_info", {})
    ps = pairs(ms)
    lines = [
        "# Benchmark summary",
        "",
        f"Run {doc.get('datetime', '?')}, commit `{str(commit.get('id', '?'))[:10]}`"
        + (" (uncommitted changes)" if commit.get("dirty") else "")
        + f", mode **{ours.get('mode', '?')}**, data: **{ours.get('data_source', '?')}**.",
        "Written by `benchmarks/summarize.py` from the pytest-benchmark JSON of that run; "
        "see docs/benchmarks.md for how to read it.",
        "",
        "## Comparisons (median times on equal work; ratio = baseline / fast)",
        "",
        "| comparison | case | fast variant | median | baseline | median | ratio | fast rate "
        "| baseline rate |",
        "|---|---|---|---:|---|---:|---:|---:|---:|",
    ]
    for p in ps:
        base_median = _seconds(p.baseline.scaled_median)
        if p.baseline.scale != 1:
            b = p.baseline
            base_median += f" (extrapolated x{b.scale:g} from {b.items:g} {b.unit})"
        lines.append(
            f"| {p.comparison} | {p.case} | {p.fast.variant} | {_seconds(p.fast.median)} | "
            f"{p.baseline.variant} | {base_median} | **{p.ratio:.1f}x** | "
            f"{_rate(p.fast.rate, p.fast.unit)} | {_rate(p.baseline.rate, p.baseline.unit)} |"
        )
    lines += ["", "## Throughput of each variant", "",
              "| comparison | case | variant | median | rounds | rate | windows/s |",
              "|---|---|---|---:|---:|---:|---:|"]
    for m in ms:
        windows = m.extra.get("windows")
        per_window = f"{windows / m.median:,.0f}" if windows and m.unit == "frames" else ""
        lines.append(f"| {m.comparison} | {m.case} | {m.variant} | {_seconds(m.median)} | {m.rounds} | "
                     f"{_rate(m.rate, m.unit)} | {per_window} |")
    lines += ["", "## Latency (one window per call, frames in memory)", ""]
    for m in _find(ms, "latency"):
        if "p50_ms" in m.extra:
            lines.append(f"- {m.variant}: p50 {m.extra['p50_ms']:.2f} ms, p99 {m.extra['p99_ms']:.2f} ms "
                         f"over {m.rounds} calls")
    lines += ["", "## Targets", "", "| target | goal | measured | met |", "|---|---:|---:|---|"]
    for t in TARGETS:
        value = t.measure(ms, ps)
        goal = ("≥ " if t.higher_is_better else "≤ ") + t.fmt(t.limit)
        if value is None:
            shown, met = "not measured", "-"
        else:
            shown, met = t.fmt(value), "yes" if t.met(value) else "**no**"
        lines.append(f"| {t.label} | {goal} | {shown} | {met} |")
    lines += [
        "", "## Machine", "",
        "| | |", "|---|---|",
        f"| CPU | {ours.get('cpu_model', machine.get('cpu', {}).get('brand_raw', '?'))} |",
        f"| cores | {ours.get('cores', '?')} (torch threads: {ours.get('torch_threads', '?')}) |",
        f"| accelerator | {ours.get('accelerator', '?')} |",
        f"| python | {machine.get('python_implementation', '')} {machine.get('python_version', '?')} |",
        f"| torch / torch-geometric / numpy | {ours.get('torch', '?')} / {ours.get('torch_geometric', '?')}"
        f" / {ours.get('numpy', '?')} |",
        f"| load average at the end (1 / 5 / 15 min) | {ours.get('load_average', '?')} |",
        f"| data source | {ours.get('data_source', '?')} |",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="?", type=Path, help="pytest-benchmark JSON (default: newest)")
    parser.add_argument("--out", type=Path, default=RESULTS / "summary.md")
    args = parser.parse_args(argv)
    path = args.results or max(RESULTS.glob("*.json"), key=lambda p: p.stat().st_mtime, default=None)
    try:
        if path is None:
            raise SummaryError(f"no benchmark results in {RESULTS}; run `nox -s bench` first")
        doc, ms = load(path)
    except SummaryError as exc:
        print(f"summarize: {exc}", file=sys.stderr)
        return 2
    args.out.write_text(render(doc, ms))
    print(f"summary of {path} written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
