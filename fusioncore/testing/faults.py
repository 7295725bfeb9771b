"""Fault injection for tests: damaged files and read-only directories, as a disk or a cluster makes them.

Used by the store conformance suite (:mod:`fusioncore.testing.store`) and by
fusioncore's own fault tests; plugin authors can use them the same way::

    from fusioncore.testing.faults import damage_files, read_only_directory

    damage_files(store_dir, "truncate")          # every file cut to half its size
    with read_only_directory(store_dir):         # nothing under it can be written
        ...
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

__all__ = ["DAMAGE_KINDS", "damage_files", "read_only_directory"]

#: How :func:`damage_files` damages a file: cut to half its size, or a stretch overwritten in place
#: (random bytes in its middle third, or zeroed pages from its second page on, as a torn write leaves).
DAMAGE_KINDS = ("truncate", "scramble", "zero-pages")

_PAGE = 4096


def damage_files(directory: str | os.PathLike[str], how: str, *, seed: int = 0) -> list[Path]:
    """Damage every regular file under ``directory`` (see :data:`DAMAGE_KINDS`); returns the files hit.

    Empty files are left alone. The damage is deterministic for a given ``seed``.
    """
    if how not in DAMAGE_KINDS:
        raise ValueError(f"unknown damage {how!r}; choose one of {', '.join(DAMAGE_KINDS)}")
    rng = np.random.default_rng(seed)
    hit = []
    for path in sorted(p for p in Path(directory).rglob("*") if p.is_file() and not p.is_symlink()):
        size = path.stat().st_size
        if not size:
            continue
        with open(path, "r+b") as fh:
            if how == "truncate":
                fh.truncate(size // 2)
            elif how == "scramble":
                fh.seek(size // 3)
                fh.write(rng.integers(0, 256, max(size // 3, 1), dtype=np.uint8).tobytes())
            else:
                start = _PAGE if size > 2 * _PAGE else size // 2
                fh.seek(start)
                fh.write(bytes(min(3 * _PAGE, size - start)))
        hit.append(path)
    return hit


def _try(*command: str) -> bool:
    return subprocess.run(command, capture_output=True).returncode == 0


@contextlib.contextmanager
def read_only_directory(directory: str | os.PathLike[str]) -> Iterator[Path]:
    """Make ``directory`` (and everything under it) unwritable for the duration of the block.

    A normal user gets ``chmod -R a-w`` (restored afterwards). Root ignores
    permissions, so for root the directory becomes a read-only bind mount of
    itself (needs ``CAP_SYS_ADMIN``, as in most containers run as root); where
    neither works the calling test is skipped.
    """
    path = Path(directory).absolute()
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        modes = {p: stat.S_IMODE(p.lstat().st_mode) for p in [path, *path.rglob("*")] if not p.is_symlink()}
        for p, mode in modes.items():
            p.chmod(mode & ~0o222)
        try:
            yield path
        finally:
            for p, mode in sorted(modes.items(), key=lambda item: len(item[0].parts)):
                with contextlib.suppress(FileNotFoundError):
                    p.chmod(mode)
        return
    if not shutil.which("mount") or not _try("mount", "--bind", str(path), str(path)):
        pytest.skip("running as root without the right to mount: cannot make a directory read-only")
    try:
        if not _try("mount", "-o", "remount,ro,bind", str(path)):
            pytest.skip("running as root and cannot remount read-only")
        yield path
    finally:
        # lazily if still busy (a file the test left open): the path is writable again at once
        _try("umount", str(path)) or _try("umount", "-l", str(path))
