"""``fusioncore plugins``: what is installed, each plugin's components and load errors."""

from __future__ import annotations

import argparse
import json

from rich.table import Table

from fusioncore import __version__
from fusioncore.cli import _stdout, command
from fusioncore.plugins import get_plugins

__all__ = ["cmd_plugins"]


def _configure_plugins(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")


@command("plugins", "list loaded plugins, their components and load errors")(_configure_plugins)
def cmd_plugins(args: argparse.Namespace) -> int:
    infos = sorted(get_plugins().infos.values(), key=lambda i: i.name)
    if args.json:
        print(json.dumps([i.to_json() for i in infos], indent=2))
        return 0
    table = Table(title=f"fusioncore {__version__} plugins")
    for col in ("plugin", "distribution", "version", "components", "hooks", "error"):
        table.add_column(col, overflow="fold")
    for info in infos:
        comps = "\n".join(f"{k}: {', '.join(v)}" for k, v in sorted(info.components.items()))
        table.add_row(
            info.name,
            info.distribution or "-",
            info.version or "-",
            comps or "-",
            "\n".join(h.removeprefix("fusioncore_") for h in info.hooks) or "-",
            f"[red]{info.error}[/red]" if info.error else "",
        )
    _stdout().print(table)
    return 0
