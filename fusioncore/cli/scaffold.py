"""``fusioncore new-plugin``: scaffold a third-party plugin package (see :mod:`fusioncore.scaffold`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from fusioncore.cli import _stdout, command
from fusioncore.scaffold import KINDS, plugin_names, scaffold_plugin

__all__ = ["cmd_new_plugin"]


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "name",
        metavar="NAME",
        help="component name, e.g. burst-rate (the package is fusioncore-NAME, the module fusioncore_NAME)",
    )
    p.add_argument("--kind", required=True, choices=sorted(KINDS), help="what the plugin provides")
    p.add_argument(
        "--dir",
        type=Path,
        default=Path("."),
        metavar="DIR",
        help="folder to create the package in (default: the current folder)",
    )


@command("new-plugin", "scaffold a plugin package: pyproject with entry point, skeleton, tests, README")(
    _configure
)
def cmd_new_plugin(args: argparse.Namespace) -> int:
    target = scaffold_plugin(args.name, args.kind, args.dir)
    names = plugin_names(args.name, args.kind)
    console = _stdout()
    console.print(f"created {names.dist} ({KINDS[args.kind].title} [bold]{names.name}[/bold]) in {target}")
    for path in sorted(p for p in target.rglob("*") if p.is_file()):
        console.print(f"  {path.relative_to(target)}", highlight=False)
    console.print(f"next:\n  cd {target}\n  pip install -e '.[test]'\n  pytest", highlight=False)
    return 0
