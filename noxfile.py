"""nox sessions: ``tests``, ``lint`` (and ``bench``, see benchmarks/)."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.default_venv_backend = "venv"

# The CPU build of torch: a bare "torch" requirement pulls a multi-GB CUDA wheel.
CONSTRAINTS = ("-c", "constraints.txt")


@nox.session(python="3.11")
def tests(session: nox.Session) -> None:
    """Install with test extras and run the test suite (pass pytest args after --)."""
    session.install(*CONSTRAINTS, "-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """ruff over the whole tree."""
    session.install("ruff>=0.5")
    session.run("ruff", "check", ".")
