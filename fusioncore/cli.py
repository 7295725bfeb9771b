"""The ``fusioncore`` command line.

Subcommands are small functions registered in ``COMMANDS``; each gets the
parsed arguments and returns an exit code. Expected failures (any
:class:`~fusioncore.errors.FusionCoreError`) print one line on stderr and exit
with status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Callable, Sequence

from rich.console import Console
from rich.table import Table

from fusioncore import __version__
from fusioncore.errors import FusionCoreError
from fusioncore.plugins import PluginLoadWarning, get_plugins, load_plugins, reset_plugins

__all__ = ["build_parser", "main"]

Command = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, tuple[Command, Callable[[argparse.ArgumentParser], None], str]] = {}


def command(name: str, help: str):
    """Register a subcommand: the decorated function runs it, ``configure`` adds its options."""

    def wrap(configure: Callable[[argparse.ArgumentParser], None]):
        def bind(run: Command) -> Command:
            COMMANDS[name] = (run, configure, help)
            return run

        return bind

    return wrap


def _stdout() -> Console:
    return Console(soft_wrap=True, emoji=False)


def _stderr() -> Console:
    # emoji off: ":x:" in a file name or message must print as written
    return Console(stderr=True, soft_wrap=True, emoji=False)


# ----------------------------------------------------------------- plugins
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


# -------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fusioncore",
        description="CAN-bus intrusion detection with graph neural networks and learned fusion.",
    )
    parser.add_argument("--version", action="version", version=f"fusioncore {__version__}")
    parser.add_argument(
        "--strict-plugins",
        action="store_true",
        help="fail on any plugin that cannot load (default: skip it with a warning); "
        "same as FUSIONCORE_STRICT_PLUGINS=1",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (run, configure, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        configure(p)
        p.set_defaults(_run=run)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    if issubclass(category, PluginLoadWarning):
        _stderr().print(f"[yellow]warning:[/yellow] {message}", highlight=False)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fusioncore`` script; returns the exit code."""
    _register_optional_commands()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    previous = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        if args.strict_plugins:
            reset_plugins(load_plugins(strict=True))
        return args._run(args)
    except FusionCoreError as exc:
        _stderr().print(f"[red]error:[/red] {exc}", highlight=False)
        return 2
    except KeyboardInterrupt:
        _stderr().print("interrupted")
        return 130
    finally:
        warnings.showwarning = previous


def _register_optional_commands() -> None:
    """Import the modules that add subcommands (kept out of import time for ``--help`` speed)."""
    import importlib

    for module in (
        "fusioncore.cli_data", "fusioncore.cli_run", "fusioncore.cli_detect", "fusioncore.cli_scaffold",
    ):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
