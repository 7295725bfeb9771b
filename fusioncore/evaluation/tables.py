"""Formatting report numbers for people: undefined shown as such, seeds as mean ± std.

Every cell comes from one path into report.json; when the report aggregates
several seeds (``report["spread"]``, see :func:`~fusioncore.evaluation.aggregate.aggregate_seeds`)
the same path into the spread tree gives the standard deviation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich import box
from rich.table import Table

__all__ = [
    "DECISION_HEADER",
    "UNDEFINED",
    "UNLABELLED_NOTE",
    "ReportView",
    "decision_rows",
    "event_recall",
    "false_alarms",
    "fmt",
    "markdown_table",
    "note",
    "summary_table",
    "unlabelled",
]

#: What an undefined metric (one class present, nothing to time, no benign time) reads as.
UNDEFINED = "undefined"


def _get(tree: Any, path: Sequence[str]) -> Any:
    for key in path:
        if not isinstance(tree, Mapping) or key not in tree:
            return None
        tree = tree[key]
    return tree


def _decimals(value: float, kind: str) -> int:
    if kind == "int":
        return 0 if float(value).is_integer() else 1
    if kind == "share":
        return 2
    if kind in ("rate", "ms", "frames"):
        v = abs(value)
        return 0 if v >= 100 else 1 if v >= 1 or v == 0 else 2
    return 4


def fmt(value: Any, kind: str = "score", decimals: int | None = None) -> str:
    """One number: ``score`` (4 decimals), ``share`` (2), ``rate`` / ``ms`` / ``frames`` (by size),
    ``int``, ``threshold`` (4 significant digits); ``None`` reads :data:`UNDEFINED`."""
    if value is None:
        return UNDEFINED
    if isinstance(value, bool):
        return "yes" if value else "no"
    if kind == "threshold":
        return f"{value:.4g}"
    return f"{value:,.{_decimals(value, kind) if decimals is None else decimals}f}"


class ReportView:
    """Cells of one report, optionally scoped to a subtree (``view.at("scenarios", s, m)``).

    ``view.cell("mcc")`` -> ``"0.9731 ± 0.0040"`` over seeds, ``"0.9731"`` for one
    seed, ``"undefined"`` for ``None``.
    """

    def __init__(
        self, report: Mapping[str, Any], base: tuple[str, ...] = (), score_decimals: int = 4
    ) -> None:
        self.report, self.base, self.score_decimals = report, base, score_decimals
        self.spread = report.get("spread") or {}
        self.seeds = [s for s in (report.get("seeds") or []) if s is not None]

    def at(self, *keys: str) -> ReportView:
        return ReportView(self.report, (*self.base, *keys), self.score_decimals)

    def value(self, *keys: str) -> Any:
        return _get(self.report, (*self.base, *keys))

    def cell(self, *keys: str, kind: str = "score") -> str:
        value = self.value(*keys)
        text = fmt(value, kind, self.score_decimals if kind == "score" else None)
        spread = _get(self.spread, (*self.base, *keys))
        if value is None or not isinstance(spread, Mapping) or spread.get("std") is None:
            return text
        if kind == "int" and spread["std"] == 0:
            return text  # a count every seed agrees on
        # the spread at the mean's precision: "650 ± 12", "0.9731 ± 0.0040"
        digits = self.score_decimals if kind == "score" else _decimals(value, kind)
        std = fmt(spread["std"], kind, None if kind == "threshold" else digits)
        n, total = spread.get("n", 0), len(spread.get("values") or [])
        return f"{text} ± {std}" + (f" ({n} of {total} seeds)" if n < total else "")

    def count_of(self, *keys: str) -> str:
        """``"detected of n"`` of an events block."""
        return f"{self.cell(*keys, 'detected', kind='int')} of {self.cell(*keys, 'n', kind='int')}"


_MARKS = (("alerts_on_all_windows", "alerts on all windows"), ("constant_score", "constant score"))


def note(view: ReportView) -> str:
    """What a reader must know before trusting one method record (a view of it).

    Over several seeds, a mark that held in some seeds only says in how many.
    """
    marks = []
    for flag, text in _MARKS:
        if not view.value("flags", flag):
            continue
        spread = _get(view.spread, (*view.base, "flags", flag))
        values = spread.get("values") if isinstance(spread, Mapping) else None
        held = sum(1 for v in values or [] if v)
        marks.append(text + (f" ({held} of {len(values)} seeds)" if values and held < len(values) else ""))
    return ", ".join(marks)


def event_recall(view: ReportView) -> str:
    """Event recall of a method record, with ``(detected/n)`` for a single seed."""
    text = view.cell("events", "recall", kind="share")
    n, hit = view.value("events", "n"), view.value("events", "detected")
    if n and not view.spread:
        text += f" ({hit}/{n})"
    return text


#: Marks a false-alarm cell of an unlabelled scenario, which shows all alarm episodes per hour.
UNLABELLED_MARK = "†"
UNLABELLED_NOTE = (f"{UNLABELLED_MARK} unlabelled scenario (no frame carries an attack label): every alarm "
                   "episode per hour, since none can be called false.")


def unlabelled(report: Mapping[str, Any]) -> bool:
    return any(i.get("labelled") is False for i in (report.get("scenario_info") or {}).values())


def false_alarms(view: ReportView, scenario: str) -> str:
    """False alarms per hour of a method record; alarm episodes per hour (marked) when unlabelled."""
    if view.report.get("scenario_info", {}).get(scenario, {}).get("labelled") is False:
        # nothing says which traffic is benign: report every alarm episode, and mark it
        return view.cell("alarms", "alarm_episodes_per_hour", kind="rate") + f" {UNLABELLED_MARK}"
    return view.cell("alarms", "false_alarms_per_hour", kind="rate")


def _headline(view: ReportView, scenario: str, method: str) -> list[str]:
    m = view.at("scenarios", scenario, method)
    return [m.cell("mcc"), m.cell("auroc"), event_recall(m), false_alarms(m, scenario),
            m.cell("events", "ttd_ms", "median", kind="ms")]


DECISION_HEADER = ("scenario", "method", "MCC", "AUROC", "event recall", "false alarms / h",
                   "median time to detect (ms)", "note")


def decision_rows(report: Mapping[str, Any]) -> list[list[str]]:
    """The opening table: per scenario x method, the five numbers a reader decides from."""
    view = ReportView(report)
    return [
        [scenario, method, *_headline(view, scenario, method), note(view.at("scenarios", scenario, method))]
        for scenario, methods in (report.get("scenarios") or {}).items() for method in methods
    ]


def markdown_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], numeric_from: int = 2, left: Sequence[str] = ()
) -> list[str]:
    """Lines of a GitHub markdown table; columns from ``numeric_from`` on, except ``left``, right-aligned."""
    align = ["---" if i < numeric_from or h in left else "---:" for i, h in enumerate(header)]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def summary_table(report: Mapping[str, Any]) -> Table:
    """The console summary: one block per scenario, titled with its full name (never cut at 80 columns).

    A grid of per-scenario tables (method | MCC | AUROC | event recall | false
    alarms / h | median time to detect), MCC and AUROC to 3 decimals; methods
    that alert on every window or score every window alike are marked ``*``
    and named under their table. Print it with a rich Console.
    """
    view = ReportView(report, score_decimals=3)
    spread = " (mean ± std over seeds)" if view.spread else ""
    outer = Table.grid(padding=(0, 0))
    outer.add_column()
    title = f"{report.get('dataset', '')}: test scenarios, thresholds from validation{spread}"
    outer.add_row(f"[bold]{title}[/bold]")
    for scenario, methods in (report.get("scenarios") or {}).items():
        notes = {m: text for m in methods if (text := note(view.at("scenarios", scenario, m)))}
        caption = "; ".join(f"* {m}: {text}" for m, text in notes.items()) or None
        inner = Table(title=scenario, title_justify="left", title_style="bold", caption=caption,
                      caption_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
        rows = [[method + (" *" if method in notes else ""), *_headline(view, scenario, method)]
                for method in methods]
        inner.add_column("method", overflow="fold")
        # two-line headers and columns exactly as wide as their numbers: "0.973 ± 0.003" fits in 80
        for i, col in enumerate(("MCC", "AUROC", "event\nrecall", "false\nalarms / h", "median\nTTD ms"), 1):
            width = max([len(r[i]) for r in rows] + [len(part) for part in col.split("\n")])
            inner.add_column(col, justify="right", overflow="fold", min_width=width)
        for row in rows:
            inner.add_row(*row)
        outer.add_row(inner)
        outer.add_row("")
    if unlabelled(report):
        outer.add_row(UNLABELLED_NOTE)
    return outer
