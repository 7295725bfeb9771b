"""Which captures a fleet scoring run reads, and where each one's verdict file goes.

Every process of a distributed run expands the same ``--input`` patterns
itself and sorts the result, so all of them agree on capture ``i`` without
exchanging a list; the captures must therefore be visible at the same paths
on every node (a shared or replicated file system), and so must ``--out``.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from pathlib import Path

from torch.utils.data import Dataset

from fusioncore.errors import ConfigError

__all__ = ["CaptureList", "find_captures", "verdict_names"]


def _expand(pattern: str) -> list[Path]:
    path = Path(pattern).expanduser()
    if path.is_dir():
        return [p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")]
    if path.is_file():
        return [path]
    return [Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file()]


def find_captures(patterns: Sequence[str], *, exclude: Path | None = None) -> tuple[Path, ...]:
    """Files matching ``patterns`` (files, folders read recursively, globs with ``**``), sorted, unique.

    A pattern that matches nothing is an error naming it: a typo in one of
    several patterns must not silently shrink the fleet. Files under
    ``exclude`` (the output folder, when it sits among the inputs) are left out.
    """
    found: dict[str, Path] = {}
    skip = os.path.realpath(exclude) + os.sep if exclude is not None else None
    for pattern in patterns:
        matched = _expand(pattern)
        if not matched:
            raise ConfigError(f"--input {pattern!r} matches no capture file")
        for p in matched:
            real = os.path.realpath(p)
            if skip is None or not real.startswith(skip):
                found.setdefault(real, p.absolute())
    if not found:
        raise ConfigError("--input matches only files inside --out")
    return tuple(sorted(found.values()))


def verdict_names(captures: Sequence[Path]) -> tuple[str, ...]:
    """Each capture's verdict file name relative to ``--out``: its path under the captures' common
    folder, plus ``.parquet`` (``logs/car7/drive.log`` -> ``car7/drive.log.parquet``)."""
    if not captures:
        return ()
    root = Path(os.path.commonpath([str(p.parent) for p in captures]))
    return tuple(f"{p.relative_to(root).as_posix()}.parquet" for p in captures)


class CaptureList(Dataset):
    """A map-style dataset of capture indices: item ``i`` is ``i``.

    The scorer reads the capture itself; Lightning's distributed sampler
    hands each process its own indices, so captures are sharded with no
    code of ours.
    """

    def __init__(self, count: int) -> None:
        self.count = int(count)

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> int:
        if not 0 <= index < self.count:
            raise IndexError(index)
        return int(index)


def first_item(batch: list[int]) -> int:
    """``collate_fn`` for batches of one capture (module level: picklable for worker processes)."""
    return batch[0]
