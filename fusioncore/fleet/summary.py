"""The fleet summary: one row per capture, totals, and a console table.

Rows come from the verdict files' footers (:func:`~fusioncore.fleet.verdicts.read_summary_row`),
so the summary is written by one process after every process has written
its captures, and can be rebuilt from a verdict folder alone.

Per capture: frames, windows, alerts (windows the deciding method calls
attack), alarms (after the k-of-n rule), the alert rate, and where the
capture is labelled (can-train-and-test / HCRL CSVs): its attack windows and
a false-alarm estimate -- alerts on benign windows, as a share of the benign
windows and per hour of capture.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fusioncore.fleet.verdicts import read_summary_row

__all__ = [
    "SUMMARY_JSON", "SUMMARY_PARQUET", "collect_rows", "fleet_totals", "print_summary", "write_summary",
]

SUMMARY_PARQUET = "summary.parquet"
SUMMARY_JSON = "summary.json"
_COLUMNS = ("capture", "format", "frames", "windows", "duration_s", "alerts", "alarms", "alert_rate",
            "labelled", "attack_windows", "benign_windows", "false_alerts", "false_alert_rate",
            "false_alerts_per_hour", "skipped_rows", "reference_windows", "error", "rank", "seconds",
            "peak_rss_mb")


def _derived(row: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(row)
    windows = row.get("windows") or 0
    out["alert_rate"] = row["alerts"] / windows if windows else None
    benign = row.get("benign_windows")
    labelled = bool(row.get("labelled")) and benign is not None
    out["false_alert_rate"] = row["false_alerts"] / benign if labelled and benign else None
    hours = (row.get("duration_s") or 0.0) / 3600
    out["false_alerts_per_hour"] = row["false_alerts"] / hours if labelled and hours > 0 else None
    return out


def collect_rows(out: Path, names: Sequence[str]) -> list[dict[str, Any]]:
    """The summary row of every capture, from its verdict file under ``out``."""
    return [_derived(read_summary_row(Path(out) / name)) for name in names]


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def fleet_totals(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Totals over the fleet; false-alarm figures only over labelled captures."""
    ok = [r for r in rows if not r.get("error")]
    labelled = [r for r in ok if r.get("labelled")]
    windows = sum(r["windows"] for r in ok)
    alerts = sum(r["alerts"] for r in ok)
    benign = sum(r["benign_windows"] or 0 for r in labelled)
    false_alerts = sum(r["false_alerts"] or 0 for r in labelled)
    hours = sum(r["duration_s"] for r in labelled) / 3600
    return {
        "captures": len(rows), "failed": len(rows) - len(ok), "frames": sum(r["frames"] for r in ok),
        "windows": windows, "alerts": alerts, "alarms": sum(r["alarms"] for r in ok),
        "alert_rate": _ratio(alerts, windows), "captures_with_alerts": sum(1 for r in ok if r["alerts"]),
        "labelled_captures": len(labelled), "attack_windows": sum(r["attack_windows"] or 0 for r in labelled),
        "benign_windows": benign, "false_alerts": false_alerts,
        "false_alert_rate": _ratio(false_alerts, benign),
        "false_alerts_per_hour": _ratio(false_alerts, hours),
        "skipped_rows": sum(r["skipped_rows"] for r in ok),
    }


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_summary(out: Path, rows: Sequence[Mapping[str, Any]], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``summary.parquet`` (one row per capture) and ``summary.json`` (totals and ``extra``) in ``out``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({c: [r.get(c) for r in rows] for c in _COLUMNS})
    _atomic(Path(out) / SUMMARY_PARQUET, lambda p: pq.write_table(table, p))
    report = {"totals": fleet_totals(rows), **extra}
    _atomic(Path(out) / SUMMARY_JSON, lambda p: p.write_text(json.dumps(report, indent=2)))
    return report


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.2f} %"


def print_summary(rows: Sequence[Mapping[str, Any]], totals: Mapping[str, Any], console, *, top: int = 15
                  ) -> None:
    """The captures with the highest alert rates (at most ``top``), failures, and a totals line."""
    from rich.table import Table

    table = Table(title=f"captures by alert rate (top {min(top, len(rows))} of {len(rows)})")
    table.add_column("capture", overflow="fold")
    for col in ("frames", "windows", "alerts", "alert %", "attack win.", "false al. %"):
        table.add_column(col, justify="right", no_wrap=True)
    ranked = sorted((r for r in rows if not r.get("error")), key=lambda r: -(r["alert_rate"] or 0.0))
    for r in ranked[:top]:
        attack = "-" if r["attack_windows"] is None else f"{r['attack_windows']:,}"
        table.add_row(r["capture"], f"{r['frames']:,}", f"{r['windows']:,}", f"{r['alerts']:,}",
                      _pct(r["alert_rate"]), attack, _pct(r["false_alert_rate"]))
    console.print(table)
    for r in rows:
        if r.get("error"):
            console.print(f"[red]failed:[/red] {r['capture']}: {r['error']}", highlight=False)
    t = totals
    line = (f"{t['captures']:,} captures ({t['failed']} failed), {t['frames']:,} frames, "
            f"{t['windows']:,} windows, "
            f"{t['alerts']:,} alerts (alert rate {_pct(t['alert_rate'])}), {t['alarms']:,} alarms")
    if t["labelled_captures"]:
        per_hour = "-" if t["false_alerts_per_hour"] is None else f"{t['false_alerts_per_hour']:,.1f}"
        line += (f"; labelled: {t['labelled_captures']} captures, {t['attack_windows']:,} attack windows, "
                 f"false alerts {t['false_alerts']:,} ({_pct(t['false_alert_rate'])} of benign windows, "
                 f"{per_hour} per hour)")
    console.print(line, highlight=False)
