"""Choosing a reader for a file, and reading a capture with whichever fits."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fusioncore.contracts import FormatReader, ReadResult
from fusioncore.data.formats import base
from fusioncore.errors import ConfigError, FormatError, UnknownComponentError

__all__ = ["HEAD_BYTES", "detect_format", "read_capture"]

#: How much of a file (after gunzip) the sniffers see.
HEAD_BYTES = 8192


def _suffixes(path: Path) -> list[str]:
    return [s.lower() for s in Path(base.logical_name(path)).suffixes]


def detect_format(path: Path, readers: Sequence[FormatReader]) -> FormatReader:
    """The reader whose ``sniff`` accepts the file's first bytes (gunzipped if gzip).

    Content decides; the suffix only breaks a tie between several readers that
    all accept the head. No match is a ``FormatError`` naming every reader tried.
    """
    path = Path(path)
    _check_readers(readers)
    _check_file(path)
    head = base.read_head(path, HEAD_BYTES)
    if not head.strip():
        raise FormatError(path, "empty file")
    matches = [r for r in readers if r.sniff(head)]
    if not matches:
        tried = ", ".join(r.name for r in readers) or "(no readers)"
        raise FormatError(path, f"unknown capture format; tried: {tried}")
    suffixes = _suffixes(path)
    for reader in matches:
        if any(s in suffixes for s in getattr(reader, "suffixes", ())):
            return reader
    return matches[0]


def read_capture(
    path: Path,
    *,
    format: str | None = None,
    errors: str = "raise",
    readers: Sequence[FormatReader],
) -> ReadResult:
    """Read one capture file (``.gz`` transparently) with the named or detected reader."""
    base.check_errors_mode(errors)
    path = Path(path)
    if format is None:
        reader = detect_format(path, readers)
    else:  # a named format is used as named: no sniffing
        _check_readers(readers)
        by_name = {r.name: r for r in readers}
        if format not in by_name:
            raise UnknownComponentError("format", format, by_name)
        reader = by_name[format]
        _check_file(path)
    return reader.read(path, errors=errors)


def _check_readers(readers: Sequence[FormatReader]) -> None:
    if not readers:
        raise ConfigError(
            "no capture format reader is installed: every format plugin is disabled "
            "(check FUSIONCORE_DISABLE_PLUGINS; the built-in readers are plugin 'builtin_data')"
        )


def _check_file(path: Path) -> None:
    if path.is_dir():
        raise FormatError(path, "is a directory, not a capture file")
    if not path.is_file():
        raise FormatError(path, "no such file")
