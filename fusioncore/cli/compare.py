"""``fusioncore compare RUN_OR_SWEEP...``: runs side by side, printed and written as markdown and JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.table import Table

from fusioncore.cli import _stdout, command

__all__ = ["cmd_compare"]


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN_OR_SWEEP",
                   help="run folders (report.json) or sweep folders (sweep.json)")
    p.add_argument("--metrics", default="mcc,auroc",
                   help="comma-separated report metrics to show (default: mcc,auroc; e.g. f1,ap,recall)")
    p.add_argument("--out", type=Path, default=Path("compare"),
                   help="write OUT.md and OUT.json (default: ./compare.md, ./compare.json)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


@command("compare", "compare runs or sweeps side by side (per scenario and method), as markdown and JSON")(
    _configure
)
def cmd_compare(args: argparse.Namespace) -> int:
    from fusioncore.evaluation.compare import compare_runs, load_reports

    metrics = tuple(m.strip() for m in args.metrics.split(",") if m.strip())
    comparison = compare_runs(load_reports(args.runs), metrics)
    md, js = args.out.with_suffix(".md"), args.out.with_suffix(".json")
    md.write_text(comparison.to_markdown())
    js.write_text(json.dumps(comparison.to_json(), indent=2))
    if args.json:
        print(json.dumps(comparison.to_json(), indent=2))
        return 0
    table = Table(title=f"{len(comparison.runs)} runs: {', '.join(metrics)} (written to {md} and {js})")
    table.add_column("scenario", no_wrap=True)
    table.add_column("method", no_wrap=True)
    for run in comparison.runs:
        for metric in metrics:
            table.add_column(f"{run}\n{metric}", justify="right")
    for (scenario, method), values in comparison.rows.items():
        cells = []
        for run in comparison.runs:
            for metric in metrics:
                v = values.get(run, {}).get(metric)
                cells.append("–" if v is None else f"{v:.4f}")
        table.add_row(scenario, method, *cells)
    _stdout().print(table)
    return 0
