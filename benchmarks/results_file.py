"""Reading one benchmark run's JSON: its stamp, every measurement, the pairs compared.

One file holds one run: pytest-benchmark's measurements (``benchmarks``,
each with the tags of :func:`benchmarks.common.describe` in ``extra_info``)
and, under ``fusioncore``, the run's stamp, the rows the subprocess
benchmarks timed themselves and the side-by-side figures.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

__all__ = ["Measurement", "Pair", "Run", "SummaryError", "load", "pairs"]


class SummaryError(Exception):
    """The results file is missing, is not one stamped run of these benchmarks, or pairs unequal work."""


@attrs.frozen
class Measurement:
    """One variant's timings (seconds per call) and its tags."""

    comparison: str
    case: str
    variant: str
    does: str
    work: str
    note: str
    baselines: tuple[str, ...]
    median: float
    min: float
    max: float
    rounds: int
    items: float  #: work per call, in ``unit``
    unit: str
    extra: dict[str, Any] = attrs.field(factory=dict, eq=False)

    @property
    def rate(self) -> float:
        return self.items / self.median if self.median > 0 else float("nan")


@attrs.frozen
class Pair:
    """A faster variant and the variant it is compared with, on the same work."""

    fast: Measurement
    slow: Measurement

    @property
    def ratio(self) -> float:
        """How many times faster ``fast`` is: slower median / faster median."""
        return self.slow.median / self.fast.median if self.fast.median > 0 else float("nan")


@attrs.frozen
class Run:
    doc: dict[str, Any]
    stamp: dict[str, Any]
    measurements: list[Measurement]
    side_by_side: dict[str, Any] | None


def _measurement(info: dict[str, Any], median: float, low: float, high: float, rounds: int) -> Measurement:
    try:
        return Measurement(
            comparison=info["comparison"], case=info["case"], variant=info["variant"], does=info["does"],
            work=info["work"], note=info.get("note", ""), baselines=tuple(info.get("baselines", ())),
            median=median, min=low, max=high, rounds=rounds, items=float(info["items"]), unit=info["unit"],
            extra=info,
        )
    except KeyError as exc:
        raise SummaryError(f"measurement {info.get('variant', '?')!r} lacks the tag {exc}") from None


def load(path: Path) -> Run:
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SummaryError(f"cannot read benchmark results {path}: {exc}") from None
    ours = doc.get("fusioncore") or {}
    if "stamp" not in ours:
        raise SummaryError(f"{path} has no fusioncore stamp: not written by `nox -s bench` of this version")
    found = []
    for bench in doc.get("benchmarks", []):
        info, stats = bench.get("extra_info", {}), bench.get("stats")
        if "comparison" in info and stats:
            found.append(_measurement(info, float(stats["median"]), float(stats["min"]),
                                      float(stats["max"]), int(stats["rounds"])))
    for row in ours.get("rows", []):
        times = [float(t) for t in row["times"]]
        found.append(_measurement(row, statistics.median(times), min(times), max(times), len(times)))
    if not found:
        raise SummaryError(f"{path} holds no fusioncore benchmarks (was it run with --benchmark-disable?)")
    return Run(doc=doc, stamp=ours["stamp"], measurements=found, side_by_side=ours.get("side_by_side"))


def pairs(measurements: Sequence[Measurement]) -> list[Pair]:
    """Each measurement against every baseline it names, in run order; unequal work is an error."""
    out = []
    for fast in measurements:
        for name in fast.baselines:
            slow = [m for m in measurements if m.comparison == fast.comparison and m.variant == name]
            if not slow:
                continue  # that variant was not selected in this run (-k)
            if len(slow) > 1:
                raise SummaryError(f"{fast.comparison}: more than one variant named {name!r}")
            if (slow[0].items, slow[0].unit) != (fast.items, fast.unit):
                raise SummaryError(
                    f"{fast.comparison}: {fast.variant!r} does {fast.items:g} {fast.unit}, {name!r} "
                    f"{slow[0].items:g} {slow[0].unit}: a ratio needs equal work"
                )
            out.append(Pair(fast, slow[0]))
    return out
