"""Reading capture files into ``Frames``, with an on-disk column cache.

Parsing is fast, but a dataset of 60 M frames still costs seconds per run;
the parsed columns of each file are cached as an ``.npz`` (no pickle) under
``<cache dir>/frames/<sha256 of file>-<reader>.npz`` so a second run skips
parsing. The key is the file's content hash, so an edited file is re-parsed
and a renamed or copied one is not.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs
import numpy as np

from fusioncore.contracts import FormatReader, ReadResult
from fusioncore.data.catalog import file_sha256
from fusioncore.data.frames import Frames
from fusioncore.paths import cache_dir

__all__ = ["LoadedFiles", "load_files"]

log = logging.getLogger(__name__)
_CACHE_VERSION = "1"


@attrs.frozen(eq=False)
class LoadedFiles:
    """Frames of several files (grouped by file, in the given order) and what was skipped."""

    frames: Frames
    hashes: tuple[str, ...]
    skipped: int = 0

    @property
    def fingerprint(self) -> tuple[str, ...]:
        return self.hashes


def _cache_path(digest: str, reader: str) -> Path:
    return cache_dir("frames") / f"{digest}-{reader}-v{_CACHE_VERSION}.npz"


def _read_one(
    path: Path, readers: Sequence[FormatReader] | None, errors: str, use_cache: bool
) -> tuple[ReadResult, str]:
    from fusioncore.data.formats import BUILTIN_FORMATS, detect_format

    readers = tuple(readers) if readers else BUILTIN_FORMATS
    reader = detect_format(path, readers=readers)
    digest = file_sha256(path)
    cached = _cache_path(digest, reader.name)
    if use_cache and cached.exists():
        try:
            with np.load(cached, allow_pickle=False) as z:
                frames = Frames.from_arrays({k: z[k] for k in z.files if k != "_skipped"})
                skipped = int(z["_skipped"])
            frames = Frames(**{**frames._columns(), "sources": (str(path),)})
            return ReadResult(frames=frames, skipped=skipped), digest
        except Exception as exc:  # a truncated / foreign cache file: re-parse, never trust it
            log.warning("ignoring unreadable frame cache %s: %s", cached, exc)
    result = reader.read(path, errors=errors)
    if use_cache:
        arrays = result.frames.to_arrays()
        fd, tmp = tempfile.mkstemp(dir=cached.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays, _skipped=np.int64(result.skipped), allow_pickle=False)
        os.replace(tmp, cached)  # atomic: concurrent runs never see half a file
    return result, digest


def load_files(
    paths: Iterable[Path],
    *,
    readers: Sequence[FormatReader] | None = None,
    errors: str = "raise",
    use_cache: bool = True,
    progress: bool = False,
) -> LoadedFiles:
    """Read files into one :class:`Frames` (each file keeps its ``source`` index)."""
    paths = [Path(p) for p in paths]
    parts: list[Frames] = []
    hashes: list[str] = []
    skipped = 0
    iterator: Iterable[Path] = paths
    if progress and len(paths) > 1:
        from rich.progress import track

        iterator = track(paths, description="reading captures", transient=True)
    for path in iterator:
        result, digest = _read_one(path, readers, errors, use_cache)
        if result.skipped:
            log.warning("%s: skipped %d bad rows %s", path, result.skipped, dict(result.skipped_reasons))
        parts.append(result.frames)
        hashes.append(digest)
        skipped += result.skipped
    frames = Frames.concat(parts) if parts else Frames.empty()
    return LoadedFiles(frames=frames, hashes=tuple(hashes), skipped=skipped)
