"""Data subcommands: ``fusioncore inspect`` and ``fusioncore datasets``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from rich.table import Table

from fusioncore.cli import _stdout, command
from fusioncore.errors import DatasetNotFoundError, FormatError
from fusioncore.paths import data_root
from fusioncore.plugins import get_plugins

__all__ = ["cmd_datasets", "cmd_inspect", "inspect_file"]

#: default (detector, fusion, validation) shares of every training file, in time order
SHARES = (0.7, 0.15, 0.15)


def _readers():
    registry = get_plugins().registry
    return tuple(registry.get("format", name) for name in registry.names("format"))


def inspect_file(path: Path, *, format: str | None = None, errors: str = "raise") -> dict:
    """Summary of one capture file (the JSON ``fusioncore inspect --json`` prints)."""
    from fusioncore.data.formats import read_capture

    if not path.exists():
        raise FormatError(path, "no such file")
    readers = _readers()
    if format is not None:
        readers = (get_plugins().registry.get("format", format),)
    result = read_capture(path, format=format, errors=errors, readers=readers)
    f = result.frames
    return {
        "path": str(path),
        "format": result_format(path, readers, format),
        "frames": len(f),
        "attack_frames": f.n_attack,
        "ids": int(np.unique(f.can_id).size),
        "remote_frames": int(np.count_nonzero(f.remote)),
        "t_start": float(f.timestamp.min()) if len(f) else None,
        "t_end": float(f.timestamp.max()) if len(f) else None,
        "skipped": result.skipped,
        "skipped_reasons": dict(result.skipped_reasons),
    }


def result_format(path: Path, readers, format: str | None) -> str:
    from fusioncore.data.formats import detect_format

    return format or detect_format(path, readers=readers).name


def _configure_inspect(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="capture file(s), .gz ok")
    p.add_argument("--format", help="force a format instead of sniffing the content")
    p.add_argument("--errors", choices=("raise", "skip"), default="raise",
                   help="on a bad row: stop with an error naming file and line (default), "
                   "or drop it and count it")
    p.add_argument("--json", action="store_true", help="print JSON (one object per file)")


@command("inspect", "summarise capture files: format, frames, attacks, IDs, time span")(
    _configure_inspect
)
def cmd_inspect(args: argparse.Namespace) -> int:
    summaries = [inspect_file(p, format=args.format, errors=args.errors) for p in args.paths]
    if args.json:
        out = summaries[0] if len(summaries) == 1 else summaries
        print(json.dumps(out, indent=2))
        return 0
    table = Table()
    for col in ("file", "format", "frames", "attack", "IDs", "remote", "t_start", "t_end", "skipped"):
        table.add_column(col, justify="left" if col in ("file", "format") else "right")
    for s in summaries:
        t0 = "-" if s["t_start"] is None else f"{s['t_start']:.6f}"
        t1 = "-" if s["t_end"] is None else f"{s['t_end']:.6f}"
        table.add_row(Path(s["path"]).name, s["format"], f"{s['frames']:,}", f"{s['attack_frames']:,}",
                      str(s["ids"]), f"{s['remote_frames']:,}", t0, t1, str(s["skipped"]))
    _stdout().print(table)
    return 0


# ---------------------------------------------------------------- datasets
def describe_dataset(name: str, root: Path, *, counts: bool = True) -> dict:
    """Whether a dataset is found, where, and its splits with frame / window counts."""
    from fusioncore.data.datamodule import split_time_blocks
    from fusioncore.data.loading import load_files
    from fusioncore.data.windows import WindowSpec, window_starts

    ds = get_plugins().registry.get("dataset", name)
    row: dict = {"name": name, "description": ds.description, "found": False, "path": None}
    if hasattr(ds, "is_generated") and not ds.is_generated(root):
        row["note"] = f"generated under {ds.location(root)} on first use"
        return row
    try:
        files = ds.resolve(root)
    except DatasetNotFoundError as exc:
        row["note"] = str(exc)
        return row
    row.update(found=True, path=str(files.root))
    row["duplicates"] = {str(k): str(v) for k, v in files.duplicates.items()}
    splits = {"train": files.train, **files.tests}
    row["splits"] = {k: {"files": [str(p) for p in v]} for k, v in splits.items()}
    if counts:
        spec = WindowSpec()
        readers = _readers()
        train = load_files(files.train, readers=readers, progress=True).frames
        blocks = split_time_blocks(train, spec, SHARES)
        row["splits"]["train"].update(frames=len(train), attack_frames=train.n_attack)
        for split, starts in zip(("detector-train", "fusion", "validation"), blocks):
            row["splits"][split] = {
                "frames": len(starts) * spec.size,
                "windows": len(starts),
                "note": "time block of each training file",
            }
        for scenario, paths in files.tests.items():
            frames = load_files(paths, readers=readers, progress=True).frames
            row["splits"][scenario].update(frames=len(frames),
                                           windows=len(window_starts(frames, spec)),
                                           attack_frames=frames.n_attack)
    return row


def _configure_datasets(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", help="folder holding one sub-folder per dataset "
                   "(default: $FUSIONCORE_DATA, then the user data dir)")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.add_argument("--no-counts", action="store_true", help="skip reading files for frame counts")


@command("datasets", "list datasets: found or not, where, splits and frame counts")(
    _configure_datasets
)
def cmd_datasets(args: argparse.Namespace) -> int:
    root = data_root(args.data_root)
    names = get_plugins().registry.names("dataset")
    rows = [describe_dataset(n, root, counts=not args.no_counts) for n in names]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(title=f"datasets under {root}")
    for col in ("dataset", "found", "splits (windows)", "where / note"):
        table.add_column(col, overflow="fold")
    for r in rows:
        splits = "\n".join(
            f"{k}: {v.get('windows', '?'):,}" if isinstance(v.get("windows"), int) else k
            for k, v in r.get("splits", {}).items()
        )
        note = r.get("note", "").split(" (data root")[0]  # full text in --json
        table.add_row(r["name"], "yes" if r["found"] else "no", splits or "-", r["path"] or note)
    _stdout().print(table)
    return 0
