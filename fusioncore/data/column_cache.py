"""An on-disk cache of columns: one ``.npy`` file per column, opened memory-mapped.

An entry is a folder holding ``<column>.npy`` for every column and
``meta.json`` (written last: an entry without it is incomplete). Entries are
written into a temporary folder and renamed into place, so concurrent
writers never expose half an entry and the first rename wins.

An entry is bound to its key and its bytes: ``meta.json`` holds the folder
name it was written as (its key) and a CRC-32 of every column's data, and
:func:`open_entry` refuses (``ValueError``) an entry found under another
name, a column file of the wrong size, or one whose bytes changed -- so a
damaged or misplaced cache entry is re-parsed, never served. The check
reads each column once, a chunk at a time, dropping each chunk's pages as it
goes (CRC-32 runs at several GB/s; a 60 M-frame table is about 1.7 GB).

Opening an entry maps its files read-only instead of reading them: opening
costs no memory, and a page of a column is read from the page cache only
when it is touched. Those touched pages count in the process's resident set
(RSS) for as long as they stay mapped, so code that is done with a large
split for a while calls :func:`release_pages`, which drops the mapping of
its pages (``madvise(MADV_DONTNEED)``; the data stays in the page cache and
the next touch maps it back in, so nothing is re-read from disk).

:func:`join_entries` concatenates entries into a new one by copying file
bytes, never holding a column in memory, so many files read as one
memory-mapped table.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import shutil
import tempfile
import zlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["META", "join_entries", "open_entry", "release_pages", "write_entry"]

META = "meta.json"
_COPY_CHUNK = 1 << 24  # bytes per read while joining (and per CRC step: a multiple of the page size)


def _publish(tmp: Path, folder: Path) -> None:
    """Rename a finished temporary entry to ``folder``; if another writer was first, keep theirs."""
    try:
        os.rename(tmp, folder)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (folder / META).is_file():
            raise


def _temporary(folder: Path) -> Path:
    folder.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))


def write_entry(folder: Path, columns: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
    """Write ``columns`` (one ``.npy`` each) and ``meta`` (JSON) as the entry ``folder``."""
    folder = Path(folder)
    tmp = _temporary(folder)
    try:
        crc = {}
        for name, values in columns.items():
            values = np.ascontiguousarray(values)
            np.save(tmp / f"{name}.npy", values, allow_pickle=False)
            crc[name] = zlib.crc32(values.data.cast("B")) if values.size else 0
        own = {"columns": list(columns), "key": folder.name, "crc32": crc}
        (tmp / META).write_text(json.dumps({**meta, **own}))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _publish(tmp, folder)


def _header(fh) -> tuple[np.dtype, tuple[int, ...], int]:
    """dtype, shape and data offset of the ``.npy`` file open in ``fh``."""
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
    else:
        raise ValueError(f"{fh.name}: .npy format {version} is not one this cache writes")
    if fortran or dtype.hasobject:
        raise ValueError(f"{fh.name}: not a C-ordered plain-data array")
    return dtype, tuple(shape), fh.tell()


def _crc_of_mapping(mapped: mmap.mmap, offset: int, nbytes: int) -> int:
    """CRC-32 of ``mapped[offset:offset + nbytes]``, a chunk at a time, each chunk's pages dropped after."""
    crc, view = 0, memoryview(mapped)
    try:
        for lo in range(offset, offset + nbytes, _COPY_CHUNK):
            hi = min(lo + _COPY_CHUNK, offset + nbytes)
            crc = zlib.crc32(view[lo:hi], crc)
            page = lo - lo % mmap.PAGESIZE
            if hasattr(mapped, "madvise"):
                mapped.madvise(mmap.MADV_DONTNEED, page, hi - page)
    finally:
        view.release()
    return crc


def _map(path: Path, crc: int | None = None) -> np.ndarray:
    """The array in the ``.npy`` at ``path``, mapped read-only (an empty one is a plain array).

    ``ValueError`` when the file is not as long as its header says, or (``crc``
    given) when its data's CRC-32 differs.
    """
    with open(path, "rb") as fh:
        dtype, shape, offset = _header(fh)
        count = int(np.prod(shape, dtype=np.int64))
        size = os.fstat(fh.fileno()).st_size
        if size != offset + count * dtype.itemsize:
            raise ValueError(f"{path.name}: {size} bytes, its header says {offset + count * dtype.itemsize}")
        if count == 0:
            return np.zeros(shape, dtype)
        mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    if crc is not None and _crc_of_mapping(mapped, offset, count * dtype.itemsize) != crc:
        raise ValueError(f"{path.name}: its bytes changed since they were cached (CRC-32 mismatch)")
    return np.frombuffer(mapped, dtype=dtype, count=count, offset=offset).reshape(shape)


def open_entry(folder: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """``(columns, meta)`` of a complete entry, columns memory-mapped read-only; None if absent.

    ``ValueError`` for an entry that is not this folder's (written under
    another key), or whose column files are truncated or changed.
    """
    folder = Path(folder)
    try:
        meta = json.loads((folder / META).read_text())
    except FileNotFoundError:
        return None
    if meta.get("key") != folder.name:
        raise ValueError(f"entry {folder.name} holds the entry {meta.get('key')!r}: not its own key")
    crc = meta.get("crc32") or {}
    if set(crc) != set(meta["columns"]):
        raise ValueError(f"entry {folder.name}: no checksum for some columns")
    columns = {name: _map(folder / f"{name}.npy", crc[name]) for name in meta["columns"]}
    return columns, meta


def _mapping_of(array: np.ndarray) -> mmap.mmap | None:
    base: Any = array
    while base is not None and not isinstance(base, mmap.mmap):
        base = base.obj if isinstance(base, memoryview) else getattr(base, "base", None)
    return base


def release_pages(arrays: Iterable[np.ndarray]) -> int:
    """Drop the resident pages of every memory-mapped array among ``arrays``; returns how many maps.

    Arrays that are not views of a map (ordinary memory) are left alone, so
    this is safe to call on any columns.
    """
    seen: set[int] = set()
    for array in arrays:
        mapped = _mapping_of(array)
        if mapped is None or id(mapped) in seen or mapped.closed:
            continue
        seen.add(id(mapped))
        if hasattr(mapped, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
            mapped.madvise(mmap.MADV_DONTNEED)
    return len(seen)


def join_key(parts: Sequence[Path], extra: Any = None) -> str:
    """Key of the join of ``parts`` (their folder names, in order) and anything else it depends on."""
    payload = json.dumps([[Path(p).name for p in parts], extra], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def join_entries(
    folder: Path,
    parts: Sequence[Path],
    *,
    replace: Mapping[str, Sequence[np.ndarray]] | None = None,
    meta: Mapping[str, Any] | None = None,
) -> bool:
    """Write the row-wise concatenation of the entries ``parts`` as the entry ``folder``.

    Every part must hold the same columns with the same dtype and trailing
    shape; ``replace[name][i]`` gives part ``i``'s values of column ``name``
    instead of its file (e.g. re-indexed source numbers). Columns are copied
    file to file, so memory stays at one copy buffer. Returns False (and
    writes nothing) when the parts do not line up.
    """
    folder, replace = Path(folder), dict(replace or {})
    opened = [json.loads((Path(p) / META).read_text()) for p in parts]
    names = opened[0]["columns"]
    if any(m["columns"] != names for m in opened):
        return False
    layouts: dict[str, list[tuple[np.dtype, tuple[int, ...], int]]] = {}
    for name in names:
        layouts[name] = []
        for part in parts:
            with open(Path(part) / f"{name}.npy", "rb") as fh:
                layouts[name].append(_header(fh))
        kinds = {(d.str, s[1:]) for d, s, _ in layouts[name]}
        if len(kinds) != 1:
            return False
    tmp = _temporary(folder)
    crc: dict[str, int] = {}
    try:
        for name in names:
            crc[name] = 0
            dtype, shape, _ = layouts[name][0]
            rows = sum(s[0] for _, s, _ in layouts[name])
            with open(tmp / f"{name}.npy", "wb") as out:
                header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
                          "shape": (rows, *shape[1:])}
                np.lib.format.write_array_header_1_0(out, header)
                for i, part in enumerate(parts):
                    if name in replace:
                        data = np.ascontiguousarray(replace[name][i], dtype=dtype).tobytes()
                        crc[name] = zlib.crc32(data, crc[name])
                        out.write(data)
                        continue
                    with open(Path(part) / f"{name}.npy", "rb") as src:
                        src.seek(layouts[name][i][2])
                        while chunk := src.read(_COPY_CHUNK):
                            crc[name] = zlib.crc32(chunk, crc[name])
                            out.write(chunk)
        own = {"columns": names, "key": folder.name, "crc32": crc}
        (tmp / META).write_text(json.dumps({**(meta or {}), **own}))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _publish(tmp, folder)
    return True
