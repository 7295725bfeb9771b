"""``fusioncore doctor``: is this installation ready to run? One row per check, non-zero exit on a failure.

Checks: Python and the key packages' versions; CPU / GPU and what
``--accelerator auto`` would pick; every plugin loaded (each lazily registered
component imported) or its error; the data root and the datasets it holds;
the cache and output folders writable, with their free space. A missing data
root is only a warning (the built-in synthetic dataset needs none); an
unreadable one, an unwritable cache or output folder, a broken plugin or too
old a Python fail.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import attrs

from fusioncore.cli import _stdout, command

__all__ = ["Check", "cmd_doctor", "run_checks"]

PACKAGES = ("torch", "torch-geometric", "pytorch-lightning", "hydra-zen", "omegaconf", "numpy", "pyarrow",
            "python-can", "pluggy", "diskcache", "torchmetrics", "rich")
#: Below this much free space a 60 M-frame dataset's column cache no longer fits.
_LOW_SPACE_BYTES = 2 << 30


@attrs.frozen
class Check:
    name: str
    status: str  #: "ok", "warn" or "fail"
    detail: str


def _versions() -> list[Check]:
    rows = [Check("python", "ok" if sys.version_info >= (3, 10) else "fail",
                  f"{sys.version.split()[0]} ({sys.executable})")]
    for pkg in PACKAGES:
        try:
            rows.append(Check(pkg, "ok", md.version(pkg)))
        except md.PackageNotFoundError:
            rows.append(Check(pkg, "fail", "not installed"))
    return rows


def _accelerator() -> list[Check]:
    try:
        import pytorch_lightning as pl
        import torch

        from fusioncore.pipeline.engine import quiet_lightning

        quiet_lightning()
        cuda = torch.cuda.is_available()
        gpus = torch.cuda.device_count() if cuda else 0
        trainer = pl.Trainer(accelerator="auto", devices=1, logger=False, enable_checkpointing=False,
                             enable_progress_bar=False, enable_model_summary=False)
        picked = type(trainer.accelerator).__name__.removesuffix("Accelerator").lower()
        build = "CUDA " + str(torch.version.cuda) if torch.version.cuda else "CPU-only build"
        return [Check("accelerator", "ok", f"--accelerator auto picks {picked}; {gpus} CUDA GPU(s); torch "
                      f"{build}; {torch.get_num_threads()} CPU threads of {os.cpu_count()} cores")]
    except Exception as exc:  # a broken torch install is exactly what doctor is for
        return [Check("accelerator", "fail", f"{type(exc).__name__}: {exc}")]


def _plugins() -> list[Check]:
    from fusioncore.plugins import get_plugins

    try:
        plugins = get_plugins()
    except Exception as exc:  # e.g. two plugins shadowing one entry point
        return [Check("plugins", "fail", f"{type(exc).__name__}: {exc}")]
    rows = []
    for info in sorted(plugins.infos.values(), key=lambda i: i.name):
        if info.error:
            rows.append(Check(f"plugin {info.name}", "fail", info.error))
            continue
        problems = []
        for kind, names in info.components.items():
            for name in names:
                try:
                    plugins.registry.get(kind, name)  # imports a lazily registered component
                except Exception as exc:
                    problems.append(f"{kind} {name}: {exc}")
        what = ", ".join(f"{k}: {', '.join(v)}" for k, v in sorted(info.components.items()))
        source = f"{info.distribution} {info.version}" if info.distribution else info.module
        rows.append(Check(f"plugin {info.name}", "fail" if problems else "ok",
                          "; ".join(problems) if problems else f"{source}: {what or 'no components'}"))
    return rows


def _data_root(explicit: str | None) -> list[Check]:
    from fusioncore.paths import data_root

    root = data_root(explicit)
    if not root.exists():
        return [Check("data root", "warn", f"{root} does not exist (the built-in synthetic dataset needs "
                      "none; set --data-root or FUSIONCORE_DATA for real captures)")]
    if not root.is_dir():
        return [Check("data root", "fail", f"{root} is not a folder")]
    try:
        entries = sorted(p for p in root.iterdir() if p.is_dir())
    except OSError as exc:
        return [Check("data root", "fail", f"{root} is unreadable: {exc.strerror or exc}")]
    datasets = [p.name for p in entries if any(p.glob("train_*")) and any(p.glob("test_*"))]
    found = ", ".join(datasets) if datasets else "no dataset in the can-train-and-test layout"
    detail = f"{root}: {found}"
    return [Check("data root", "ok" if datasets else "warn", detail)]


def _writable(name: str, folder: Path) -> Check:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".doctor-"):
            pass
    except OSError as exc:
        return Check(name, "fail", f"{folder} is not writable: {exc.strerror or exc}")
    free = shutil.disk_usage(folder).free
    status = "warn" if free < _LOW_SPACE_BYTES else "ok"
    return Check(name, status, f"{folder}: writable, {free / 2**30:.1f} GiB free")


def run_checks(data_root: str | None = None, out_dir: Path = Path("runs")) -> list[Check]:
    from fusioncore.paths import cache_dir

    return [*_versions(), *_accelerator(), *_plugins(), *_data_root(data_root),
            _writable("cache folder", cache_dir(create=False)), _writable("output folder", out_dir)]


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root",
                   help="data root to check (default: $FUSIONCORE_DATA, then the user data dir)")
    p.add_argument("--out", type=Path, default=Path("runs"), help="output folder to check (default: ./runs)")
    p.add_argument("--json", action="store_true", help="print the checks as JSON")


@command("doctor", "check the installation: versions, accelerator, plugins, data root, writable folders")(
    _configure
)
def cmd_doctor(args: argparse.Namespace) -> int:
    checks = run_checks(args.data_root, args.out)
    failed = [c for c in checks if c.status == "fail"]
    if args.json:
        print(json.dumps([attrs.asdict(c) for c in checks], indent=2))
    else:
        from rich.table import Table

        colour = {"ok": "green", "warn": "yellow", "fail": "red"}
        table = Table(title="fusioncore doctor")
        for col in ("check", "status", "detail"):
            table.add_column(col, overflow="fold")
        for c in checks:
            table.add_row(c.name, f"[{colour[c.status]}]{c.status}[/]", c.detail)
        _stdout().print(table)
        _stdout().print(f"{len(failed)} check(s) failed" if failed else "all checks passed")
    return 1 if failed else 0
