"""Reading capture files into ``Frames``, with an on-disk column cache.

Parsing is fast, but a dataset of 60 M frames still costs seconds per run;
the parsed columns of each file are cached under ``<cache dir>/frames/`` so
a second run skips parsing. The key holds the file's content hash, the
reader, the reader's error mode (a file read with ``errors="skip"`` must not
be served to ``errors="raise"``) and the code version of the readers (an
edit of a reader re-parses), so an edited file is re-parsed and a renamed or
copied one is not.

Cached columns are one ``.npy`` per column (no pickle), opened memory-mapped
(:mod:`fusioncore.data.column_cache`): the frames of several files are
joined once into one more cache entry (keyed by the files' entries) and
mapped, so reading a 60 M-frame dataset allocates no memory for its columns;
pages are read as windows touch them.

Bad rows are skipped and counted by default (``errors="skip"``): one dirty
row in sixty files must not take a run down. What was skipped, per file and
per reason with the first line numbers, travels up in :class:`LoadedFiles`
so reports and consoles can show it; ``errors="raise"`` makes the first bad
row fatal.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import shutil
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import attrs
import numpy as np

from fusioncore.contracts import FormatReader, ReadResult
from fusioncore.data.catalog import file_sha256
from fusioncore.data.column_cache import join_entries, join_key, open_entry, write_entry
from fusioncore.data.frames import Frames
from fusioncore.paths import cache_dir

__all__ = ["FileRead", "LoadedFiles", "load_files", "reader_version"]

log = logging.getLogger(__name__)
_CACHE_VERSION = "4"  # 4: entries bound to their key and CRC-32 (3: .npy columns, 2: one .npz)


@attrs.frozen
class FileRead:
    """What reading one file gave: its records, frames, and every skipped record by reason."""

    path: str
    format: str
    records: int
    frames: int
    skipped_reasons: Mapping[str, int] = attrs.field(factory=dict)
    first_lines: Mapping[str, tuple[int, ...]] = attrs.field(factory=dict)
    notes: tuple[str, ...] = attrs.field(default=(), converter=tuple)

    @property
    def skipped(self) -> int:
        return sum(self.skipped_reasons.values())

    def to_json(self) -> dict:
        return {
            "path": self.path, "format": self.format, "records": self.records, "frames": self.frames,
            "skipped": self.skipped, "skipped_reasons": dict(self.skipped_reasons),
            "first_lines": {k: list(v) for k, v in self.first_lines.items()}, "notes": list(self.notes),
        }


@attrs.frozen(eq=False)
class LoadedFiles:
    """Frames of several files (grouped by file, in the given order) and what was skipped."""

    frames: Frames
    hashes: tuple[str, ...]
    reads: tuple[FileRead, ...] = ()

    @property
    def fingerprint(self) -> tuple[str, ...]:
        return self.hashes

    @property
    def skipped(self) -> int:
        return sum(r.skipped for r in self.reads)

    @property
    def skipped_reasons(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for r in self.reads:
            total.update(r.skipped_reasons)
        return dict(total)


@functools.cache
def _source_digest(*modules: str) -> str:
    h = hashlib.sha256()
    for name in modules:
        try:
            module = __import__(name, fromlist=["_"])
            h.update(Path(inspect.getfile(module)).read_bytes())
        except (ImportError, TypeError, OSError):
            h.update(name.encode())
    return h.hexdigest()[:16]


def reader_version(reader: FormatReader) -> str:
    """A digest of the code that parses for ``reader``: its own module, fusioncore's format
    machinery, ``Frames`` and the versions of fusioncore and python-can."""
    import can

    import fusioncore
    from fusioncore.data import formats

    shared = sorted(f"fusioncore.data.formats.{p.stem}" for p in Path(formats.__file__).parent.glob("*.py"))
    digest = _source_digest(type(reader).__module__, "fusioncore.data.frames", *shared)
    return hashlib.sha256(f"{digest}{fusioncore.__version__}{can.__version__}".encode()).hexdigest()[:12]


def _cache_path(digest: str, reader: FormatReader, errors: str) -> Path:
    name = f"{digest}-{reader.name}-{errors}-{reader_version(reader)}-v{_CACHE_VERSION}"
    return cache_dir("frames") / name


def _load_cached(entry: Path, path: Path) -> ReadResult | None:
    opened = open_entry(entry)
    if opened is None:
        return None
    columns, meta = opened
    account = meta["account"]
    # Sources are stored as suffixes of the file name ("" or "#can0"): the same bytes
    # under another path are named by that path.
    frames = Frames(**columns, sources=[f"{path}{s}" for s in meta["sources"]])
    return ReadResult(
        frames=frames, skipped=sum(account["skipped_reasons"].values()),
        skipped_reasons=account["skipped_reasons"],
        first_lines={k: tuple(v) for k, v in account["first_lines"].items()},
        records=account["records"], notes=tuple(account["notes"]),
    )


def _store(entry: Path, path: Path, result: ReadResult) -> None:
    prefix = str(path)
    sources = [s[len(prefix):] if s.startswith(prefix) else s for s in result.frames.sources]
    account = {
        "skipped_reasons": dict(result.skipped_reasons), "records": result.records,
        "first_lines": {k: list(v) for k, v in result.first_lines.items()}, "notes": list(result.notes),
    }
    write_entry(entry, result.frames._columns(), {"sources": sources, "account": account})


def _read_one(
    path: Path, readers: Sequence[FormatReader] | None, errors: str, use_cache: bool
) -> tuple[ReadResult, str, str, Path | None]:
    """One file's frames (memory-mapped when cached), content hash, format and cache entry."""
    from fusioncore.data.formats import BUILTIN_FORMATS, detect_format

    # None means "the built-in readers"; an empty registry (every format plugin
    # disabled) is an error raised by detect_format, never a silent fallback.
    readers = BUILTIN_FORMATS if readers is None else tuple(readers)
    reader = detect_format(path, readers=readers)
    digest = file_sha256(path)
    entry: Path | None = None
    if use_cache:
        try:
            entry = _cache_path(digest, reader, errors)
        except OSError as exc:  # the cache folder cannot be created (read-only file system)
            _cache_unwritable(exc)
    if entry is not None:
        try:
            cached = _load_cached(entry, path)
            if cached is not None:
                return cached, digest, reader.name, entry
        except Exception as exc:  # a truncated / foreign cache entry: re-parse, never trust it
            log.warning("ignoring unreadable frame cache %s: %s", entry, exc)
            shutil.rmtree(entry, ignore_errors=True)
    result = reader.read(path, errors=errors)
    if entry is None:
        return result, digest, reader.name, None
    try:
        _store(entry, path, result)
    except OSError as exc:  # read-only or full: this run has the frames, later runs re-parse
        _cache_unwritable(exc)
        return result, digest, reader.name, None
    return result, digest, reader.name, entry


def _joined(parts: Sequence[tuple[tuple[str, ...], np.ndarray]], entries: Sequence[Path]) -> Frames | None:
    """The concatenation of cached files as one memory-mapped entry (None: it cannot be made).

    ``parts`` holds each file's ``(sources, source column)``; sources are numbered
    as :meth:`Frames.concat` numbers them. None when the files' columns do not
    line up (CAN FD and classic) or the cache cannot be written.
    """
    sources: list[str] = []
    lookups = []
    for names, _ in parts:
        lookup = []
        for name in names:
            if name not in sources:
                sources.append(name)
            lookup.append(sources.index(name))
        lookups.append(lookup)
    # The source numbers depend on which parts share a file name, so they are part of the key.
    folder = cache_dir("frames") / f"joined-{join_key(entries, lookups)}-v{_CACHE_VERSION}"
    if _open_trusted(folder) is None:
        remapped = [np.asarray(lookup or [0], np.uint16)[source]
                    for (_, source), lookup in zip(parts, lookups)]
        try:
            if not join_entries(folder, entries, replace={"source": remapped}):
                return None
        except OSError as exc:  # read-only or full: join in memory instead
            _cache_unwritable(exc)
            return None
    opened = _open_trusted(folder)
    return None if opened is None else Frames(**opened[0], sources=sources)


def _open_trusted(folder: Path):
    """``open_entry(folder)``; an entry that fails its key or checksum check is removed and None returned."""
    try:
        return open_entry(folder)
    except (OSError, ValueError, KeyError, TypeError) as exc:  # damaged, truncated or not this key's
        log.warning("ignoring damaged frame cache %s: %s", folder, exc)
        shutil.rmtree(folder, ignore_errors=True)
        return None


_unwritable_warned = False


def _cache_unwritable(exc: OSError) -> None:
    global _unwritable_warned
    if not _unwritable_warned:  # once per process: every file would say the same
        _unwritable_warned = True
        log.warning("the frame cache cannot be written (%s); parsed files are not cached",
                    exc.strerror or exc)


def load_files(
    paths: Iterable[Path],
    *,
    readers: Sequence[FormatReader] | None = None,
    errors: str = "skip",
    use_cache: bool = True,
    progress: bool = False,
) -> LoadedFiles:
    """Read files into one :class:`Frames` (each file keeps its ``source`` index).

    ``errors="skip"`` (default) drops bad rows and accounts for them in
    ``LoadedFiles.reads``; ``errors="raise"`` stops at the first one. With the
    cache, files are read one at a time into their cache entries and the
    result is one memory-mapped join of them, so memory never holds more than
    one file's parsed columns.
    """
    paths = [Path(p) for p in paths]
    kept: list[Frames | None] = []  # a file's frames, or None where they stay in its cache entry
    parts: list[tuple[tuple[str, ...], np.ndarray]] = []
    entries: list[Path | None] = []
    hashes: list[str] = []
    reads: list[FileRead] = []
    iterator: Iterable[Path] = paths
    if progress and len(paths) > 1:
        from rich.progress import track

        iterator = track(paths, description="reading captures", transient=True)
    for path in iterator:
        result, digest, fmt, entry = _read_one(path, readers, errors, use_cache)
        if result.skipped:
            firsts = "; ".join(f"{k}: line {', '.join(map(str, v))}" for k, v in result.first_lines.items())
            log.warning("%s: skipped %d of %d records %s (first at %s)", path, result.skipped,
                        result.records, dict(result.skipped_reasons), firsts)
        for note in result.notes:
            log.warning("%s: %s", path, note)
        entries.append(entry)
        if entry is None or len(paths) == 1:
            kept.append(result.frames)
        else:  # what the join needs; the file's columns stay on disk
            kept.append(None)
            parts.append((result.frames.sources, np.array(result.frames.source)))
        hashes.append(digest)
        reads.append(FileRead(path=str(path), format=fmt, records=result.records, frames=len(result.frames),
                              skipped_reasons=dict(result.skipped_reasons),
                              first_lines=dict(result.first_lines), notes=result.notes))
    frames = None
    if len(paths) == 1:
        frames = kept[0]
    elif all(f is None for f in kept):
        frames = _joined(parts, entries)
    if frames is None:  # no cache (or not for every file), or columns that do not line up (CAN FD)
        frames = Frames.concat([f if f is not None else _load_cached(e, p).frames
                                for f, e, p in zip(kept, entries, paths)])
    return LoadedFiles(frames=frames, hashes=tuple(hashes), reads=tuple(reads))
