"""Where a report's numbers come from: software version, commit, threads, dataset citation."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["CITATIONS", "dataset_citation", "provenance"]

_CTT = "can-train-and-test v1.5 (Lampe & Meng, Computers & Security, 2024)"

#: Citation of each bundled dataset, by registered name.
CITATIONS: dict[str, str] = {
    "hcrl_sa": "HCRL Survival Analysis dataset (Han, Kwak & Kim, \"Anomaly intrusion detection method "
    "for vehicular networks based on survival analysis\", Vehicular Communications, 2018), "
    f"in the {_CTT} layout",
    "hcrl_ch": f"HCRL Car-Hacking dataset (Hacking and Countermeasure Research Lab), in the {_CTT} layout",
    **{f"set_0{i}": _CTT for i in range(1, 5)},
    "synthetic": "synthetic traffic from fusioncore's vehicle simulator (fusioncore.data.synthetic)",
}


def dataset_citation(name: str) -> str | None:
    """The citation of a bundled dataset (``hcrl_sa`` or ``hcrl-sa``), ``None`` for others."""
    return CITATIONS.get(name.strip().lower().replace("-", "_"))


def _git(*args: str) -> str | None:
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists() or not (root / "fusioncore").is_dir():
        return None  # an installed package: any repository around it is not fusioncore's
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=5,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def provenance() -> dict[str, Any]:
    """fusioncore version, git commit (``None`` outside a checkout), torch version, threads, allocator."""
    import torch

    from fusioncore import __version__
    from fusioncore.allocator import allocator_setting

    commit = _git("rev-parse", "HEAD")
    dirty = None if commit is None else bool(_git("status", "--porcelain", "--untracked-files=no"))
    return {
        "fusioncore_version": __version__,
        "git_commit": commit,
        "git_dirty": dirty,
        "torch_version": torch.__version__,
        "torch_threads": int(torch.get_num_threads()),
        "allocator": allocator_setting().reason,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }
