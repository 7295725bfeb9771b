"""The ``fusioncore`` command line.

Subcommands are small functions registered in ``COMMANDS``; each gets the
parsed arguments and returns an exit code. Expected failures (any
:class:`~fusioncore.errors.FusionCoreError`) print one line on stderr and exit
with status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console

from fusioncore import __version__
from fusioncore.allocator import keep_freed_memory
from fusioncore.errors import FusionCoreError
from fusioncore.plugins import PluginLoadWarning, load_plugins, reset_plugins

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


#: Table width when the output is a file or a pipe (a CI log, ``| tee``): rich would use 80
#: columns and elide the cells of wide tables (the split table's attack types) as "…".
FILE_WIDTH = 160


def _width(stream) -> int | None:
    if os.environ.get("COLUMNS"):
        return None  # rich reads it itself
    try:
        return None if stream.isatty() else FILE_WIDTH
    except (AttributeError, ValueError):  # a replaced or closed stream
        return FILE_WIDTH


def _stdout() -> Console:
    return Console(soft_wrap=True, emoji=False, width=_width(sys.stdout))


def _stderr() -> Console:
    # emoji off: ":x:" in a file name or message must print as written
    return Console(stderr=True, soft_wrap=True, emoji=False, width=_width(sys.stderr))


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
    # KEY=VALUE overrides may sit anywhere among the options (``-m seed=0,1 --out X a.b=2``):
    # argparse stops a positional list at the first option, so the rest are gathered here.
    args, extra = parser.parse_known_args(argv)
    if extra:
        if not hasattr(args, "overrides") or any(a.startswith("-") or "=" not in a for a in extra):
            parser.parse_args(argv)  # argparse's own message for what really is unknown (exit 2)
        args.overrides = [*args.overrides, *extra]
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    keep_freed_memory()  # every command trains or scores tensors: page faults cost more than the memory
    previous = warnings.showwarning
    warnings.showwarning = _show_warning
    sigint = _SigintWatch()
    try:
        with sigint:
            if args.strict_plugins:
                reset_plugins(load_plugins(strict=True))
            return args._run(args)
    except FusionCoreError as exc:
        _stderr().print(f"[red]error:[/red] {exc}", highlight=False)
        return 2
    except KeyboardInterrupt:
        _stderr().print("interrupted")
        return 130
    except SystemExit:
        if not sigint.seen:
            raise
        # Lightning turns Ctrl-C inside Trainer.fit into sys.exit(1) (a plugin's own
        # trainer, e.g. a learned fusion's); it was an interrupt all the same
        _stderr().print("interrupted")
        return 130
    finally:
        warnings.showwarning = previous


class _SigintWatch:
    """Notes whether SIGINT arrived while a command ran; Ctrl-C still raises KeyboardInterrupt."""

    def __init__(self) -> None:
        self.seen = False
        self._previous: Any = None

    def _handle(self, signum: int, frame: Any) -> None:
        self.seen = True
        previous = self._previous
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            raise KeyboardInterrupt

    def __enter__(self) -> _SigintWatch:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if threading.current_thread() is threading.main_thread() and self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _register_optional_commands() -> None:
    """Import the modules that add subcommands (kept out of import time for ``--help`` speed)."""
    import importlib

    for module in (
        "fusioncore.cli.plugins", "fusioncore.cli.data", "fusioncore.cli.run", "fusioncore.cli.detect",
        "fusioncore.cli.score", "fusioncore.cli.compare", "fusioncore.cli.doctor", "fusioncore.cli.profile",
        "fusioncore.cli.scaffold",
    ):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
