"""Sections of ``summary.md`` beyond the comparisons: stamp, run stages, training, side by side."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from typing import Any

import attrs

from .results_file import Measurement

__all__ = [
    "SIDE_TARGETS", "Figure", "fmt_rate", "fmt_seconds", "side_figures", "side_section", "stage_section",
    "stamp_section", "training_section",
]


def fmt_seconds(s: float) -> str:
    if s == 0:
        return "0 s"
    if s >= 1:
        return f"{s:.2f} s"
    return f"{s * 1e3:.2f} ms" if s >= 1e-3 else f"{s * 1e6:.1f} µs"


def fmt_rate(r: float, unit: str) -> str:
    for scale, suffix in ((1e6, " M"), (1e3, " k")):
        if r >= scale:
            return f"{r / scale:.2f}{suffix} {unit}/s"
    return f"{r:.1f} {unit}/s"


def _utc(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t)) if t else "?"


def _load(values: Sequence[float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values) if values else "?"


def stamp_section(stamp: dict[str, Any]) -> list[str]:
    """Warnings first (dirty tree, not on main, not full mode), then what the run is stamped with."""
    git, m = stamp.get("git", {}), stamp.get("machine", {})
    lines = ["# Benchmark summary", ""]
    if git.get("dirty"):
        shown = ", ".join(c[3:] for c in git.get("changes", [])[:8])
        lines.append(f"> **NOT QUOTABLE: the tree had uncommitted changes ({shown}).** These figures do not "
                     "belong to any commit.")
    if not git.get("on_main"):
        lines.append(f"> **Commit `{git.get('short')}` is not on `main`.**")
    if stamp.get("mode") != "full":
        lines.append(f"> **{stamp.get('mode')} mode: small inputs and single rounds, to check the harness "
                     "runs; not figures to quote.**")
    load_before, load_after = stamp.get("load_before", []), stamp.get("load_after", [])
    cores = m.get("usable_cores") or m.get("cores") or 1
    # Only the load before says anything about other work: the load after a run counts the benchmarks'
    # own processes (a side-by-side `fusioncore run` keeps every core busy), so it is printed, not judged.
    if max(load_before[:1], default=0) > 0.5 * cores:
        lines.append(f"> **Other work shared the machine** (1-minute load {_load(load_before[:1])} before, "
                     f"{_load(load_after[:1])} after, on {cores} cores): medians are inflated.")
    if lines[-1] != "":
        lines.append("")
    started, finished = stamp.get("started"), stamp.get("finished")
    took = f" ({(finished - started) / 60:.1f} min)" if started and finished else ""
    threads = ", ".join(f"{k}={m.get(k)}" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"))
    lines += [
        "Written by `benchmarks/summarize.py` from the JSON of one `nox -s bench` run; "
        "docs/benchmarks.md explains every row.", "",
        "| stamp | |", "|---|---|",
        f"| commit | `{git.get('commit')}` (branch `{git.get('branch')}`; on main: "
        f"{'yes' if git.get('on_main') else 'no'}; clean tree: {'no' if git.get('dirty') else 'yes'}) |",
        f"| mode, data | {stamp.get('mode')}; {stamp.get('data_source')} |",
        f"| ran | {_utc(started)} to {_utc(finished)}{took} |",
        f"| command | `pytest {' '.join(stamp.get('argv', []))}` |",
        f"| machine | {m.get('cpu_model')}, {m.get('cores')} cores ({m.get('usable_cores')} usable), "
        f"{m.get('memory_gib')} GiB; accelerator: {m.get('accelerator')} |",
        f"| software | {m.get('python')}, torch {m.get('torch')}, "
        f"torch-geometric {m.get('torch_geometric')}, numpy {m.get('numpy')} |",
        f"| threads | torch intra-op {m.get('torch_threads')}, inter-op {m.get('torch_interop_threads')}; "
        f"{threads} (subprocesses inherit them) |",
        f"| load average (1 / 5 / 15 min) | before {_load(load_before)}; after {_load(load_after)} |",
        "",
    ]
    return lines


def _spread(values: Sequence[float], fmt) -> str:
    med = statistics.median(values)
    return fmt(med) if len(values) == 1 else f"{fmt(med)} ({fmt(min(values))}–{fmt(max(values))})"


def stage_section(ms: Sequence[Measurement]) -> list[str]:
    """`fusioncore run` split by report.json's stage timings, median per stage over the rounds."""
    runs = [m for m in ms if "stages" in m.extra]
    if not runs:
        return []
    stages = sorted({s for m in runs for s in m.extra["stages"]}, key=_stage_order)
    lines = ["## `fusioncore run`, by stage", "",
             f"{runs[0].work}. Median seconds over {runs[0].rounds} round(s), from each run's "
             "report.json `timings`; *outside stages* is interpreter start, imports, config, bundle and "
             "report writing (wall minus the stages).", "",
             "| stage | " + " | ".join(m.variant for m in runs) + " |",
             "|---|" + "---:|" * len(runs)]
    for stage in stages:
        cells = [fmt_seconds(statistics.median(m.extra["stages"][stage]))
                 if stage in m.extra["stages"] else "" for m in runs]
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    lines.append("| *outside stages* | " + " | ".join(
        fmt_seconds(statistics.median(m.extra["outside_stages"])) for m in runs) + " |")
    lines.append("| **whole command** | " + " | ".join(f"**{fmt_seconds(m.median)}**" for m in runs) + " |")
    lines.append("| prediction store hits / misses | " + " | ".join(
        f"{m.extra['store']['hits'][0]} / {m.extra['store']['misses'][0]}" for m in runs) + " |")
    return [*lines, ""]


def _stage_order(stage: str) -> tuple[int, str]:
    order = ("data", "preflight", "train", "predict", "encode", "fit", "fuse", "thresholds", "evaluate",
             "plots")
    head = stage.split(".")[0]
    return (order.index(head) if head in order else len(order), stage)


def training_section(ms: Sequence[Measurement]) -> list[str]:
    rows = [m for m in ms if m.comparison == "detector training"]
    if not rows:
        return []
    lines = ["## Detector training throughput", "", f"{rows[0].work}.", "",
             "| detector | what is timed | windows | median (min–max), rounds | windows/s |",
             "|---|---|---:|---:|---:|"]
    for m in rows:
        lines.append(f"| {m.variant} | {m.does} | {m.items:,.0f} | {fmt_seconds(m.median)} "
                     f"({fmt_seconds(m.min)}–{fmt_seconds(m.max)}), {m.rounds} | {m.rate:,.0f} |")
    return [*lines, ""]


# ---------------------------------------------------------------- side by side
@attrs.frozen
class Figure:
    """One quantity of one side, per round."""

    values: tuple[float, ...]
    unit: str
    higher_is_better: bool
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.values)


def side_figures(rounds: Sequence[dict[str, Any]]) -> dict[str, Figure]:
    """The compared quantities of one side, from its per-round records."""
    figs: dict[str, Figure] = {
        "full `fusioncore run`, wall time": Figure(tuple(r["run_wall"] for r in rounds), "s", False),
    }
    rates = {b: tuple(r["scoring"][b]["frames"] / r["scoring"][b]["seconds"] for r in rounds)
             for b in rounds[0]["scoring"]}
    best = max(rates, key=lambda b: statistics.median(rates[b]))
    figs["end-to-end scoring, best batch size"] = Figure(rates[best], "frames/s", True, f"B = {best}")
    for b, values in rates.items():
        figs[f"end-to-end scoring, batch size {b}"] = Figure(values, "frames/s", True)
    threads = rounds[0]["latency"]["threads"]
    for q in ("p99", "p50"):
        figs[f"{q} latency, batch size 1, {threads} thread(s)"] = Figure(
            tuple(r["latency"][f"{q}_ms"] for r in rounds), "ms", False)
    for det in rounds[0]["train"]:
        figs[f"{det} training throughput"] = Figure(
            tuple(r["train"][det]["windows"] / r["train"][det]["seconds"] for r in rounds), "windows/s", True)
    figs["outside the stages (start-up, imports, config, bundle, report)"] = Figure(
        tuple(r["outside_stages"] for r in rounds), "s", False)
    for group in dict.fromkeys(_stage_group(s) for s in rounds[0]["run_timings"]):
        per_round = [sum(v for s, v in r["run_timings"].items() if _stage_group(s) == group) for r in rounds]
        figs[f"run stage {group}"] = Figure(tuple(per_round), "s", False)
    return figs


def _stage_group(stage: str) -> str:
    """Detector stages one by one; the fusions' small stages (encode, fit.*, fuse.*, ...) together."""
    head = stage.split(".")[0]
    if head in ("data", "train", "predict", "plots"):
        return f"`{stage}`"
    return "fusions and evaluation (`encode`, `fit.*`, `fuse.*`, ...)"


#: issue 17's Done-when, as speed-ups of this tree over the baseline (2x = half the time / twice the rate)
SIDE_TARGETS = {
    "full `fusioncore run`, wall time": 2.0,
    "end-to-end scoring, best batch size": 2.0,
    "p99 latency, batch size 1": 2.0,
    "training throughput": 2.0,
}


def _target(name: str) -> float | None:
    return next((t for key, t in SIDE_TARGETS.items() if name.startswith(key) or name.endswith(key)), None)


def _fig(f: Figure) -> str:
    def one(v: float) -> str:
        return f"{v:,.0f}" if f.unit in ("frames/s", "windows/s") else f"{v:.2f}"
    text = one(f.median)
    if len(f.values) > 1:
        text += f" ({one(min(f.values))}–{one(max(f.values))})"
    return f"{text} {f.unit}" + (f", {f.note}" if f.note else "")


def side_section(sbs: dict[str, Any] | None) -> list[str]:
    if not sbs:
        return []
    labels = list(sbs["sides"])
    here, base = labels[0], labels[1]
    figs = {label: side_figures(sbs["sides"][label]["rounds"]) for label in labels}
    n = len(sbs["sides"][here]["rounds"])
    lines = [
        f"## Side by side: this tree vs {base} (`{sbs['baseline']['commit']}`)", "",
        f"Both measured in this run, {n} round(s) each, interleaved (order: {', '.join(sbs['order'])}); the "
        f"baseline checked out with `git worktree` into {sbs['baseline'].get('dir', 'a temporary folder')}, "
        f"environment: {sbs['baseline']['env']}. Each round and "
        f"side, in a fresh cache folder: `fusioncore run {' '.join(sbs['run_options'])}` on {sbs['dataset']} "
        f"(wall time of the whole command); `fusioncore train {' '.join(sbs['train_options'])}` (windows per "
        "second of each detector's train stage); benchmarks/probe.py on the run's folder: read, window and "
        f"score the first {sbs.get('capture_windows', '?')} windows of the largest test capture at "
        f"B = {', '.join(map(str, sbs['batch_sizes']))}; then {sbs['latency_calls']} single-window calls. "
        "Median (min–max) over the rounds; speed-up > 1 means "
        "this tree is faster (baseline time / this time, or this rate / baseline rate).", "",
        f"| measurement | this tree | {base} | speed-up | issue 17 target |", "|---|---:|---:|---:|---|",
    ]
    for name, mine in figs[here].items():
        theirs = figs[base].get(name)
        if theirs is None:
            continue
        if min(mine.median, theirs.median) <= 0:  # a stage too short for the report's 1 ms resolution
            lines.append(f"| {name} | {_fig(mine)} | {_fig(theirs)} | – | |")
            continue
        ratio = (mine.median / theirs.median) if mine.higher_is_better else (theirs.median / mine.median)
        target = _target(name)
        goal = "" if target is None else f"≥ {target:.1f}x: {'met' if ratio >= target else '**not met**'}"
        lines.append(f"| {name} | {_fig(mine)} | {_fig(theirs)} | **{ratio:.2f}x** | {goal} |")
    lines += ["", "| side | torch | torch threads (probe) | load before → after, per round |",
              "|---|---|---:|---|"]
    for label in labels:
        rounds = sbs["sides"][label]["rounds"]
        loads = "; ".join(f"{_load(r['load_before'][:1])} → {_load(r['load_after'][:1])}" for r in rounds)
        lines.append(f"| {label} | {rounds[0]['torch']} | {rounds[0]['torch_threads']} | {loads} |")
    return [*lines, ""]
