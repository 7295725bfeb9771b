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


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Benchmarks (docs/benchmarks.md): one JSON per run and its summary in benchmarks/results/.

    ``nox -s bench`` runs full sizes (refused on a tree with uncommitted changes);
    ``-- --quick`` a few-minute version; ``-- --baseline efc4daf`` adds the side-by-side
    against that commit (checked out into a temporary folder, installed into its own
    virtualenv). Other arguments go to pytest, e.g. ``-- -k graph`` or
    ``-- --benchmark-compare`` to compare with the previous saved run.
    """
    from datetime import datetime, timezone

    session.install(*CONSTRAINTS, "-e", ".[bench]")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    results = f"benchmarks/results/{stamp}.json"
    session.run(
        "pytest", "benchmarks", f"--benchmark-json={results}",
        # every run is also saved as NNNN_<stamp>.json here, which --benchmark-compare reads
        "--benchmark-storage=file://benchmarks/results/history", f"--benchmark-save={stamp}",
        *session.posargs,
    )
    # summary.md for a full run, summary-quick.md (not committed) for a quick one
    session.run("python", "-m", "benchmarks.summarize", results)
