"""This tree against a baseline commit, measured side by side in one run (``--baseline COMMIT``).

The baseline is checked out into a temporary folder (``git worktree add
--detach``) and installed into its own virtual environment with its own
``constraints.txt`` (``--baseline-env venv``, the default), or run from
this environment's packages with its sources first on ``PYTHONPATH``
(``--baseline-env shared``: no install, identical dependency versions; its
plugin entry points must match this tree's). Both sides are driven the same
way, through what every version has: the ``fusioncore`` CLI
(``python -m fusioncore``) and :mod:`benchmarks.probe`, never by importing
this tree's modules into the baseline.

Each round, for each side (the order alternates round by round, so load
drift hits both alike), in a fresh cache folder:

1. ``fusioncore run`` (the run options of the mode) on the dataset: the
   whole command's wall time, and its report's stage timings;
2. ``fusioncore train`` with fixed full batches: training windows per
   second per detector (:func:`benchmarks.cli_runs.train_throughput`);
3. the probe on run 1's folder: end-to-end scoring at each batch size, and
   p50 / p99 latency of single-window calls with one torch thread.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import tomllib

from .cli_runs import CommandFailed, Side, dataset_options, fusioncore_run, train_throughput
from .stamp import load_average

__all__ = ["BaselineError", "baseline_side", "side_by_side"]

PROBE = Path(__file__).with_name("probe.py")


class BaselineError(RuntimeError):
    """The baseline commit cannot be checked out, installed or run."""


def _git(repo: Path, *args: str) -> str:
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if proc.returncode:
        raise BaselineError(f"git {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout.strip()


def _entry_points(tree: Path) -> dict[str, str]:
    meta = tomllib.loads((tree / "pyproject.toml").read_text())
    return dict(meta.get("project", {}).get("entry-points", {}).get("fusioncore", {}))


def _install(tree: Path, venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        constraints = tree / "constraints.txt"
        pin = ["-c", str(constraints)] if constraints.exists() else []
        proc = subprocess.run([str(python), "-m", "pip", "install", "-q", *pin, "-e", str(tree)],
                              capture_output=True, text=True)
        if proc.returncode:
            shutil.rmtree(venv, ignore_errors=True)
            raise BaselineError(f"installing the baseline failed:\n{proc.stderr[-3000:]}")
    return python


def _check_imports(side: Side) -> None:
    """The side's interpreter must import fusioncore and its plugins from the side's own tree."""
    code = ("import fusioncore, fusioncore_vgae, fusioncore_dqn; "
            "print(fusioncore.__file__); print(fusioncore_vgae.__file__); print(fusioncore_dqn.__file__)")
    with tempfile.TemporaryDirectory() as cwd:
        proc = subprocess.run([str(side.python), "-c", code], cwd=cwd, capture_output=True, text=True,
                              env=side.env(Path(cwd) / "cache", Path(cwd) / "data"))
    found = proc.stdout.split()
    tree = str(side.tree.resolve())
    if proc.returncode or not found or not all(p.startswith(tree) for p in found):
        raise BaselineError(f"{side.label}: fusioncore is not imported from {tree}: {found or proc.stderr}")


@contextlib.contextmanager
def baseline_side(repo: Path, commit: str, *, env_mode: str = "venv",
                  keep: Path | None = None) -> Iterator[Side]:
    """A :class:`Side` for ``commit``, checked out (and installed) for the duration of the block.

    ``keep``: a folder to keep the checkout and its environment in between runs (reused when it
    holds the same commit); by default both live in a temporary folder, removed afterwards.
    """
    full = _git(repo, "rev-parse", "--verify", f"{commit}^{{commit}}")
    folder = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="fusioncore-baseline-"))
    tree = folder / "tree"
    try:
        if tree.exists() and _git(tree, "rev-parse", "HEAD") != full:
            raise BaselineError(f"{tree} holds another commit; remove it or choose another --baseline-dir")
        if not tree.exists():
            folder.mkdir(parents=True, exist_ok=True)
            _git(repo, "worktree", "add", "--detach", str(tree), full)
        if env_mode == "shared":
            if _entry_points(tree) != _entry_points(repo):
                raise BaselineError("--baseline-env shared needs the same plugin entry points in both trees; "
                                    "use --baseline-env venv")
            side = Side(f"baseline {full[:7]}", Path(sys.executable), full, tree,
                        {"PYTHONPATH": f"{tree}:{tree / 'plugins'}"})
        else:
            side = Side(f"baseline {full[:7]}", _install(tree, folder / "venv"), full, tree)
        _check_imports(side)
        yield side
    finally:
        if not keep:
            subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(tree)],
                           capture_output=True)
            shutil.rmtree(folder, ignore_errors=True)


def _probe(side: Side, run_dir: Path, capture: Path, *, workdir: Path, cache: Path, data: Path,
           batch_sizes: Sequence[int], latency_calls: int) -> dict[str, Any]:
    import json

    script = workdir / "probe.py"  # a copy outside both trees: nothing beside it to import
    shutil.copy(PROBE, script)
    out = workdir / "probe.json"
    args = [str(script), str(run_dir), str(capture), "--batch-sizes", ",".join(map(str, batch_sizes)),
            "--latency-calls", str(latency_calls), "--out", str(out)]
    side.python_run(args, cwd=workdir, cache=cache, data=data)
    return json.loads(out.read_text())


def side_by_side(sides: Sequence[Side], source, *, run_options: Sequence[str], train_options: Sequence[str],
                 capture: Path, batch_sizes: Sequence[int], latency_calls: int, rounds: int,
                 workdir: Path, data: Path) -> dict[str, Any]:
    """Every side measured ``rounds`` times, interleaved; the raw per-round figures."""
    result: dict[str, Any] = {
        "sides": {s.label: {"commit": s.commit, "python": str(s.python), "rounds": []} for s in sides},
        "order": [], "run_options": list(run_options), "train_options": list(train_options),
        "batch_sizes": list(batch_sizes), "latency_calls": latency_calls, "dataset": source.name,
    }
    for r in range(rounds):
        order = list(sides) if r % 2 == 0 else list(reversed(sides))
        for i, side in enumerate(order):
            where = workdir / f"round{r}-{i}"
            cache = where / "cache"
            load_before = load_average()
            start = time.perf_counter()
            try:
                run = fusioncore_run(side, "run", [*dataset_options(source), *run_options], workdir=where,
                                     cache=cache, data=data, name="run")
                train = train_throughput(side, [*dataset_options(source), *train_options], workdir=where,
                                         cache=cache, data=data, name="train")
                probe = _probe(side, run.out, capture, workdir=where, cache=cache, data=data,
                               batch_sizes=batch_sizes, latency_calls=latency_calls)
            except CommandFailed as exc:
                raise BaselineError(str(exc)) from None
            result["order"].append(side.label)
            result["sides"][side.label]["rounds"].append({
                "run_wall": run.wall, "run_timings": run.timings, "outside_stages": run.outside_stages,
                "train": {d: {"windows": w, "seconds": s} for d, (w, s) in train.items()},
                "scoring": probe["scoring"], "latency": probe["latency"], "torch": probe["torch"],
                "torch_threads": probe["torch_threads"], "load_before": load_before,
                "load_after": load_average(), "seconds": time.perf_counter() - start,
            })
            shutil.rmtree(cache, ignore_errors=True)  # keep the disk use of a long run bounded
    return result
