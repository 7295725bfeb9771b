"""Timing whole ``fusioncore`` commands in subprocesses, for this tree or another commit's.

A :class:`Side` is an installed fusioncore: the interpreter that runs
``python -m fusioncore`` (and the version-agnostic :mod:`benchmarks.probe`)
and the environment it gets. Every command runs in its own working folder
(never the repository root, so ``-m`` cannot pick up a package from the
current directory) with ``FUSIONCORE_CACHE_DIR`` pointing where the caller
says: a fresh folder for a cold run, a used one for a warm run. Only the
CLI, ``report.json`` and the Lightning CSV logs are read back, all of which
exist in old and new releases alike.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from .system import REAL_DATA, DataSource

__all__ = [
    "ALL_DETECTORS", "CommandFailed", "RunTiming", "Side", "dataset_options", "fusioncore_run",
    "train_throughput",
]

#: Cache sub-folders, as ``fusioncore.paths.cache_dir`` names them (the same at efc4daf and since)
PREDICTIONS, DETECTORS = "predictions", "detectors"


class CommandFailed(RuntimeError):
    """A timed command exited non-zero (its output tail is in the message)."""


@attrs.frozen
class Side:
    """One installed fusioncore to time."""

    label: str  #: how the summary names it ("this tree", "baseline efc4daf")
    python: Path  #: its interpreter
    commit: str | None
    tree: Path  #: its source checkout
    extra_env: Mapping[str, str] = attrs.field(factory=dict)  #: e.g. PYTHONPATH for a shared environment

    @classmethod
    def here(cls, tree: Path, commit: str | None) -> Side:
        return cls("this tree", Path(sys.executable), commit, tree)

    def env(self, cache: Path, data: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.update(FUSIONCORE_CACHE_DIR=str(cache), FUSIONCORE_DATA=str(data), **self.extra_env)
        return env

    def run(self, args: Sequence[str], *, cwd: Path, cache: Path, data: Path,
            timeout: float = 3600) -> float:
        """Run ``python -m fusioncore ARGS``; its wall time in seconds (interpreter start included)."""
        return self.python_run(["-m", "fusioncore", *args], cwd=cwd, cache=cache, data=data, timeout=timeout)

    def python_run(self, args: Sequence[str], *, cwd: Path, cache: Path, data: Path,
                   timeout: float = 3600) -> float:
        cwd.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        proc = subprocess.run([str(self.python), *args], cwd=cwd, env=self.env(cache, data),
                              capture_output=True, text=True, timeout=timeout)
        wall = time.perf_counter() - start
        if proc.returncode:
            tail = (proc.stdout[-2000:] + "\n" + proc.stderr[-4000:]).strip()
            raise CommandFailed(f"{self.label}: {' '.join(args)} exited {proc.returncode}:\n{tail}")
        return wall


def dataset_options(source: DataSource) -> list[str]:
    """CLI options naming the benchmark's dataset (hcrl_sa read in place, or the built-in synthetic)."""
    if source.name == "hcrl_sa":
        return ["--dataset", "hcrl_sa", "--data-root", str(REAL_DATA / "can-train-and-test")]
    return ["--dataset", source.name]


@attrs.frozen
class RunTiming:
    """One ``fusioncore run`` / ``train``: its wall time and what its report says."""

    wall: float  #: seconds, the whole command
    timings: dict[str, float]  #: report.json ``timings``: stage -> seconds
    report: dict[str, Any]
    out: Path

    @property
    def inner_timings(self) -> set[str]:
        """Timings that ran side by side inside another (report.json ``timings_overlapping``)."""
        return {t for names in self.report.get("timings_overlapping", {}).values() for t in names}

    @property
    def outside_stages(self) -> float:
        """Interpreter start, imports, config, bundle and report writing: wall minus the stages
        (each stretch of wall time counted once: stages that ran side by side count as their span)."""
        inner = self.inner_timings
        return self.wall - sum(v for k, v in self.timings.items() if k not in inner)


def fusioncore_run(side: Side, command: str, options: Sequence[str], *, workdir: Path, cache: Path,
                   data: Path, name: str) -> RunTiming:
    """``fusioncore COMMAND OPTIONS --out workdir/name``, timed, with its report read back."""
    out = workdir / name
    wall = side.run([command, *options, "--out", str(out)], cwd=workdir, cache=cache, data=data)
    report = json.loads((out / "report.json").read_text())
    return RunTiming(wall=wall, timings={k: float(v) for k, v in report.get("timings", {}).items()},
                     report=report, out=out)


def drop_cache(cache: Path, *parts: str) -> None:
    """Remove cache sub-folders (``predictions``, ``detectors``), keep the rest (parsed columns)."""
    for part in parts:
        shutil.rmtree(cache / part, ignore_errors=True)


def _trained_steps(logs: Path) -> tuple[int, int]:
    """(epochs, optimiser steps) from Lightning's CSV log: one ``train_loss_epoch`` row per epoch.

    The log is ``logs/<detector>/metrics.csv`` in older releases and
    ``logs/<detector>/<version>/metrics.csv`` since; a fresh run has exactly one.
    """
    found = sorted(logs.rglob("metrics.csv"))
    if len(found) != 1:
        raise CommandFailed(f"expected one training log under {logs}, found {len(found)}")
    with found[0].open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("train_loss_epoch")]
    return len(rows), (max(int(r["step"]) for r in rows) + 1 if rows else 0)


def _option(options: Sequence[str], key: str, default: str) -> str:
    found = [o.split("=", 1)[1] for o in options if o.startswith(f"{key}=")]
    return found[-1] if found else default


def train_throughput(side: Side, options: Sequence[str], *, workdir: Path, cache: Path, data: Path,
                     name: str, detectors: Sequence[str] = ("vgae", "gat"),
                     default_batch_size: int = 256) -> dict[str, tuple[int, float]]:
    """``fusioncore train`` with a fixed number of full batches: detector -> (windows, seconds).

    ``options`` fix ``trainer.max_epochs`` E and ``trainer.limit_train_batches`` L (and
    ``trainer.patience=0``: no early stopping), so each detector trains on E x L batches of
    ``batch_size`` windows. The seconds are report.json's ``train.<name>`` stage: training with
    its per-epoch validation pass and the calibration pass after it. The CSV log must show
    E x L steps, else the split held fewer batches than asked and the count would be wrong.
    """
    drop_cache(cache, DETECTORS)  # never reuse a trained detector: this times training
    run = fusioncore_run(side, "train", [*options, "--detectors", ",".join(detectors)], workdir=workdir,
                         cache=cache, data=data, name=name)
    epochs = int(_option(options, "trainer.max_epochs", "0"))
    batches = int(_option(options, "trainer.limit_train_batches", "0"))
    batch_size = int(_option(options, "batch_size", str(default_batch_size)))
    out = {}
    for det in detectors:
        seen = _trained_steps(run.out / "logs" / det)
        if seen != (epochs, epochs * batches):
            raise CommandFailed(f"{side.label}: {det} trained (epochs, steps) = {seen}, not "
                                f"({epochs}, {epochs * batches}): the training split has fewer than "
                                f"{batches} batches of {batch_size}; lower trainer.limit_train_batches")
        out[det] = (epochs * batches * batch_size, run.timings[f"train.{det}"])
    # what a user waits for: every detector's windows over the wall time of the whole training
    # (the span of the side-by-side training where the report has one, else the stages in turn)
    together = run.timings.get("train") if "train" in run.report.get("timings_overlapping", {}) else None
    out[ALL_DETECTORS] = (sum(w for w, _ in out.values()),
                          together if together is not None else sum(s for _, s in out.values()))
    return out


#: train_throughput's entry for all detectors together
ALL_DETECTORS = "all detectors together"
