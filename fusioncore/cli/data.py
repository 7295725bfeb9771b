"""Data subcommands: ``fusioncore inspect`` and ``fusioncore datasets``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from rich.markup import escape
from rich.table import Table

from fusioncore.cli import _stdout, command
from fusioncore.errors import DatasetNotFoundError, FormatError, FusionCoreError
from fusioncore.paths import data_root
from fusioncore.plugins import get_plugins

__all__ = ["capture_paths", "cmd_datasets", "cmd_inspect", "describe_dataset", "inspect_file"]

def _readers():
    registry = get_plugins().registry
    return tuple(registry.get("format", name) for name in registry.names("format"))


def inspect_file(path: Path, *, format: str | None = None, errors: str = "raise") -> dict:
    """Summary of one capture file (the JSON ``fusioncore inspect --json`` prints)."""
    from fusioncore.data.formats import detect_format, read_capture
    from fusioncore.data.frames import FLAG_FD

    readers = _readers()
    if format is not None:
        readers = (get_plugins().registry.get("format", format),)
    result = read_capture(path, format=format, errors=errors, readers=readers)
    f = result.frames
    return {
        "path": str(path),
        "format": format or detect_format(path, readers=readers).name,
        "records": result.records,
        "frames": len(f),
        "attack_frames": f.n_attack,
        "ids": int(np.unique(f.can_id).size),
        "remote_frames": int(np.count_nonzero(f.remote)),
        "fd_frames": int(np.count_nonzero(f.flags & FLAG_FD)),
        "sources": list(f.sources),
        "t_start": float(f.timestamp.min()) if len(f) else None,
        "t_end": float(f.timestamp.max()) if len(f) else None,
        "skipped": result.skipped,
        "skipped_reasons": dict(result.skipped_reasons),
        "first_lines": {k: list(v) for k, v in result.first_lines.items()},
        "notes": list(result.notes),
    }


def capture_paths(paths: list[Path]) -> list[Path]:
    """The files to inspect: files as given, folders expanded to every file below them
    (hidden files and folders left out), in sorted order."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(sorted(
                p for p in path.rglob("*")
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
            ))
        else:
            out.append(path)
    return out


def _configure_inspect(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                   help="capture file(s) (.gz ok), or folders: every file below them")
    p.add_argument("--format", help="force a format instead of sniffing the content")
    p.add_argument("--errors", choices=("raise", "skip"), default="raise",
                   help="on a bad row: stop with an error naming file and line (default), "
                   "or drop it and count it")
    p.add_argument("--json", action="store_true", help="print JSON (one object per file)")


@command("inspect", "summarise capture files (or every file in a folder): format, frames, attacks, IDs")(
    _configure_inspect
)
def cmd_inspect(args: argparse.Namespace) -> int:
    files = capture_paths(args.paths)
    if not files:
        raise FormatError(args.paths[0], "no files in this folder")
    if len(files) == 1 and not args.paths[0].is_dir():
        summaries = [inspect_file(files[0], format=args.format, errors=args.errors)]
    else:  # several files: one that cannot be read gets an error row, the others are still shown
        summaries = []
        for path in files:
            try:
                summaries.append(inspect_file(path, format=args.format, errors=args.errors))
            except FusionCoreError as exc:
                summaries.append({"path": str(path), "error": str(exc)})
    failed = [s for s in summaries if "error" in s]
    if args.json:
        out = summaries[0] if len(summaries) == 1 and not args.paths[0].is_dir() else summaries
        print(json.dumps(out, indent=2))
    else:
        _print_inspect(summaries)
    if failed:
        print(f"error: {len(failed)} of {len(summaries)} files could not be read", file=sys.stderr)
        return 2
    return 0


def _print_inspect(summaries: list[dict]) -> None:
    table = Table()
    for col in ("file", "format", "frames", "attack", "IDs", "remote", "FD", "t_start", "t_end", "skipped"):
        table.add_column(col, justify="left" if col in ("file", "format") else "right")
    for s in summaries:
        if "error" in s:
            table.add_row(Path(s["path"]).name, "[red]error[/red]", escape(s["error"].split(": ", 1)[-1]),
                          *[""] * 7)
            continue
        t0 = "-" if s["t_start"] is None else f"{s['t_start']:.6f}"
        t1 = "-" if s["t_end"] is None else f"{s['t_end']:.6f}"
        table.add_row(Path(s["path"]).name, s["format"], f"{s['frames']:,}", f"{s['attack_frames']:,}",
                      str(s["ids"]), f"{s['remote_frames']:,}", f"{s['fd_frames']:,}", t0, t1,
                      str(s["skipped"]))
    _stdout().print(table)
    for s in summaries:
        for reason, n in s.get("skipped_reasons", {}).items():
            lines = ", ".join(map(str, s["first_lines"].get(reason, [])))
            _stdout().print(f"{Path(s['path']).name}: {n:,} skipped: {reason} (first at line {lines})")
        for note in s.get("notes", []):
            _stdout().print(f"{Path(s['path']).name}: {note}")


# ---------------------------------------------------------------- datasets
def describe_dataset(name: str, root: Path, *, counts: bool = True, source=None) -> dict:
    """Whether a dataset is found, where, and its splits with frame / window counts.

    A dataset whose files cannot be read gets an ``error`` in its row; the
    other datasets are still described.
    """
    ds = source if source is not None else get_plugins().registry.get("dataset", name)
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
    row["dropped_tests"] = {k: [str(p) for p in v] for k, v in files.dropped_tests.items()}
    splits = {"train": files.train, **files.tests}
    if files.validation:
        splits["validation-files"] = files.validation
    row["splits"] = {k: {"files": [str(p) for p in v]} for k, v in splits.items()}
    if counts:
        try:
            _count(row, files)
        except FusionCoreError as exc:
            row["error"] = str(exc)
    return row


def _count(row: dict, files) -> None:
    from fusioncore.data.datamodule import CANDataModule
    from fusioncore.data.loading import load_files
    from fusioncore.data.splits import plan_splits
    from fusioncore.data.windows import WindowSpec, window_starts

    spec = WindowSpec()
    readers = _readers()
    # the split the data module makes by default (attack-aware policy, purge 1)
    dm = CANDataModule(files, window=spec, readers=readers, progress=True)
    pool = dm._load([*files.train, *files.validation])
    plan = plan_splits(pool.frames, spec, dm.split_policy, run_shares=dm._run_shares(pool.frames))
    row["splits"]["train"].update(frames=len(pool.frames), attack_frames=pool.frames.n_attack,
                                  skipped=pool.skipped)
    for split in ("train", "fusion", "val"):
        labels = plan.labels[split]
        shown = {"train": "detector-train", "fusion": "fusion", "val": "validation"}[split]
        row["splits"][shown] = {
            "frames": len(labels) * spec.size,
            "windows": len(labels),
            "attack_windows": int(np.count_nonzero(labels)),
            "note": f"{plan.policy.name} time blocks of the training files",
        }
    row["purged_windows"] = plan.purged
    for scenario, paths in files.tests.items():
        loaded = load_files(paths, readers=readers, progress=True)
        row["splits"][scenario].update(frames=len(loaded.frames), skipped=loaded.skipped,
                                       windows=len(window_starts(loaded.frames, spec)),
                                       attack_frames=loaded.frames.n_attack)


def _configure_datasets(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", help="folder holding one sub-folder per dataset "
                   "(default: $FUSIONCORE_DATA, then the user data dir)")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.add_argument("--no-counts", action="store_true", help="skip reading files for frame counts")


@command("datasets", "list datasets: found or not, where, splits and frame counts")(
    _configure_datasets
)
def cmd_datasets(args: argparse.Namespace) -> int:
    from fusioncore.data.catalog import local_datasets, resolve_dataset

    root = data_root(args.data_root)
    registry = get_plugins().registry
    names = registry.names("dataset")
    registered = {n: registry.get("dataset", n) for n in names}
    rows = [describe_dataset(n, root, counts=not args.no_counts) for n in names]
    # folders in the layout under the data root that no plugin registered: usable by name too
    for name in local_datasets(root):
        if name not in registered:
            source = resolve_dataset(name, root, registered)
            rows.append(describe_dataset(name, root, counts=not args.no_counts, source=source))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(title=f"datasets under {root}")
    for col in ("dataset", "found", "splits (windows)", "where / note"):
        table.add_column(col, overflow="fold")
    for r in rows:
        splits = "\n".join(_split_cell(k, v) for k, v in r.get("splits", {}).items())
        note = r.get("note", "").split(" (data root")[0]  # full text in --json
        where = r["path"] or note
        if "error" in r:
            where = f"{escape(where)}\n[red]error: {escape(r['error'])}[/red]"
        table.add_row(r["name"], "yes" if r["found"] else "no", splits or "-", where)
    _stdout().print(table)
    return 0


def _split_cell(name: str, split: dict) -> str:
    if not isinstance(split.get("windows"), int):
        return name
    attack = f" ({split['attack_windows']:,} attack)" if "attack_windows" in split else ""
    return f"{name}: {split['windows']:,}{attack}"
