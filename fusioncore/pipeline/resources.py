"""Where a command's time and memory went: stage timings and peak resident memory.

``fusioncore run`` and ``fusioncore score`` print this at the end and write it
into their reports (``timings`` and ``memory``). Peak memory is the kernel's
high-water mark of the resident set (``getrusage(...).ru_maxrss``): of this
process, and, for DDP runs, of its finished child processes (the workers),
whose largest peak the kernel reports.
"""

from __future__ import annotations

import resource
import sys
from collections.abc import Mapping
from typing import Any

__all__ = ["format_resources", "memory_report", "peak_rss_bytes"]

_MB = 1024 * 1024


def peak_rss_bytes(*, children: bool = False) -> int:
    """Peak resident set size in bytes of this process (``children``: of its largest waited-for child)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF)
    # Linux reports KiB, macOS bytes
    return int(usage.ru_maxrss) * (1 if sys.platform == "darwin" else 1024)


def memory_report(by_stage: Mapping[str, int] | None = None, *, children: bool = False) -> dict[str, Any]:
    """``memory`` section of a report: peak RSS (MiB) of this process, per stage, and of its children.

    ``by_stage[name]`` is the process's peak as it stood when stage ``name``
    ended, so the first stage whose value jumps is the one that raised it.
    ``children``: also the largest finished child's peak -- only meaningful
    when the children are workers (DDP): a short forked helper (``git``)
    reports the parent's memory at the fork.
    """
    out: dict[str, Any] = {"peak_rss_mb": round(peak_rss_bytes() / _MB, 1)}
    if children:
        out["children_peak_rss_mb"] = round(peak_rss_bytes(children=True) / _MB, 1)
    if by_stage:
        out["peak_rss_mb_after_stage"] = {k: round(v / _MB, 1) for k, v in by_stage.items()}
    return out


def format_resources(timings: Mapping[str, float], memory: Mapping[str, Any], *, top: int = 6,
                     overlapping: Mapping[str, Any] | None = None) -> str:
    """Two lines for a console: the stages that took longest, and peak memory.

    ``overlapping`` (report.json ``timings_overlapping``): enclosing timing -> the timings that
    ran side by side inside it, left out of the total.
    """
    inner = {name for names in (overlapping or {}).values() for name in names}
    total = sum(v for k, v in timings.items() if k not in inner)
    ranked = sorted(timings.items(), key=lambda kv: -kv[1])[:top]
    parts = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in ranked)
    rest = len(timings) - len(ranked)
    time_line = f"time: {total:.1f} s in all; {parts}" + (f" (+{rest} more in report.json)" if rest else "")
    mem_line = f"peak memory: {memory['peak_rss_mb']:,.0f} MiB RSS"
    processes = memory.get("process_peak_rss_mb") or []
    if len(processes) > 1:
        mem_line += " (per process: " + ", ".join(f"{v:,.0f}" for v in processes) + " MiB)"
    elif memory.get("children_peak_rss_mb"):
        mem_line += f" (largest child process {memory['children_peak_rss_mb']:,.0f} MiB)"
    return f"{time_line}\n{mem_line}"
