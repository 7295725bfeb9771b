"""What a benchmark run's figures are stamped with: commit, machine, load, threads.

A figure is quotable only from a run whose stamp says: a clean tree at a
commit of ``main``, the machine it ran on (CPU model, cores, memory), the
load average before and after (other work on the machine inflates every
median), the torch version and thread settings.
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["dirty_refusal", "git_state", "load_average", "machine", "threads"]

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)


def git_state(repo: Path, main: str = "main") -> dict[str, Any]:
    """``commit``, ``short``, ``branch``, ``dirty``, ``changes`` (porcelain lines), ``on_main``.

    Untracked files count as changes: a new benchmark file changes what runs.
    """
    head = _git(repo, "rev-parse", "HEAD")
    if head.returncode:
        return dict(commit=None, short=None, branch=None, dirty=True, changes=["not a git checkout"],
                    on_main=False)
    commit = head.stdout.strip()
    changes = [line for line in _git(repo, "status", "--porcelain").stdout.splitlines() if line.strip()]
    branch = _git(repo, "rev-parse", "--abbrev-ref", "HEAD").stdout.strip()
    on_main = _git(repo, "merge-base", "--is-ancestor", commit, main).returncode == 0
    return dict(commit=commit, short=commit[:10], branch=branch, dirty=bool(changes), changes=changes,
                on_main=on_main)


def dirty_refusal(git: dict[str, Any], mode: str, allow_dirty: bool) -> str | None:
    """Why a run must not start (a full-size run on uncommitted changes), or None."""
    if not git["dirty"] or mode != "full" or allow_dirty:
        return None
    changed = ", ".join(line[3:] for line in git["changes"][:5])
    return (f"the tree has uncommitted changes ({changed}): full-size figures must come from a commit. "
            "Commit first, or pass --allow-dirty (the summary then marks the run dirty)")


def load_average() -> list[float]:
    """1 / 5 / 15-minute load averages (empty where the OS has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except (OSError, ValueError):
        pass
    return None


def threads() -> dict[str, Any]:
    """torch's intra-/inter-op threads in this process and the variables that set them for children."""
    import torch

    return {
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        **{name: os.environ.get(name) for name in THREAD_VARIABLES},
    }


def machine() -> dict[str, Any]:
    """CPU model, cores (all and usable by this process), memory, python and library versions."""
    import numpy
    import torch
    import torch_geometric

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "memory_gib": _memory_gib(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "torch": torch.__version__,
        "torch_geometric": torch_geometric.__version__,
        "numpy": numpy.__version__,
        "accelerator": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (CPU)",
        **threads(),
    }
