"""Vectorised line and field splitting of text captures.

A file is cut into blocks of whole lines (bounded memory for multi-GB
captures); each block becomes :class:`TextLines` (offsets of its non-blank
lines) and then a :class:`Fields` matrix of field offsets. Lines end at
``\\n``, ``\\r\\n`` or a lone ``\\r`` -- the same rule as ``bytes.splitlines``,
so "line N" in an error message is what any editor shows. Blank lines carry
no frame and are ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import numpy as np

from fusioncore.contracts import ReadResult
from fusioncore.data.formats import base
from fusioncore.data.formats.base import RowProblems, SkipTally
from fusioncore.data.formats.decode import strip_fields
from fusioncore.data.frames import Frames

__all__ = [
    "Fields",
    "TextLines",
    "iter_line_blocks",
    "read_line_format",
    "split_csv",
    "split_whitespace",
]

_NL, _CR, _COMMA = 10, 13, 44
_SPACE = np.zeros(256, dtype=bool)
_SPACE[[9, 10, 11, 12, 13, 32]] = True

BLOCK_BYTES = 8 << 20


@attrs.frozen
class TextLines:
    """Non-blank lines of one block: ``buf[start[i]:end[i]]`` is line ``number[i]``."""

    buf: np.ndarray
    start: np.ndarray
    end: np.ndarray
    number: np.ndarray
    #: row index of a final line that lacks its newline (only in the file's last block)
    unterminated_row: int | None = None

    def __len__(self) -> int:
        return len(self.start)

    def after_header(self) -> TextLines:
        """These lines less physical line 1 (a header the caller has checked)."""
        if not len(self) or self.number[0] != 1:
            return self
        last = self.unterminated_row
        return attrs.evolve(
            self,
            start=self.start[1:],
            end=self.end[1:],
            number=self.number[1:],
            unterminated_row=None if last is None or last == 0 else last - 1,
        )

    def text(self, row: int) -> str:
        raw = self.buf[self.start[row] : self.end[row]].tobytes()
        return raw.decode("utf-8", errors="backslashreplace")


def iter_line_blocks(data: bytes, block_bytes: int = BLOCK_BYTES) -> Iterator[TextLines]:
    """Split ``data`` into blocks of whole lines and yield each block's lines."""
    buf = np.frombuffer(data, dtype=np.uint8)
    first_line = 1
    pos = 0
    while pos < len(buf):
        stop = min(pos + block_bytes, len(buf))
        if stop < len(buf):
            # Cut after the last \n of the block so no line (nor a \r\n pair) is split.
            cut = data.rfind(b"\n", pos, stop)
            stop = len(buf) if cut < 0 else cut + 1
        lines, n_physical = _split_lines(buf, pos, stop, first_line, last=stop == len(buf))
        yield lines
        first_line += n_physical
        pos = stop


def _split_lines(
    buf: np.ndarray, lo: int, hi: int, first_line: int, *, last: bool
) -> tuple[TextLines, int]:
    block = buf[lo:hi]
    is_nl = block == _NL
    is_cr = block == _CR
    # A \r directly before \n is part of a \r\n ending, not a line break of its own.
    cr_before_nl = np.zeros_like(is_cr)
    cr_before_nl[:-1] = is_cr[:-1] & is_nl[1:]
    term = np.flatnonzero(is_nl | (is_cr & ~cr_before_nl))
    starts = np.concatenate(([0], term + 1))
    ends = np.concatenate((term, [len(block)]))
    if starts[-1] == len(block):  # nothing after the final terminator
        starts, ends = starts[:-1], ends[:-1]
    ends = ends - cr_before_nl[np.maximum(ends - 1, 0)] * (ends > starts)
    n_physical = len(starts)
    # Non-whitespace characters per line, via a running count: blank lines have none.
    solid = np.concatenate(([0], np.cumsum(~_SPACE[block], dtype=np.int64)))
    keep = solid[ends] > solid[starts]
    unterminated = None
    if last and n_physical and (len(term) == 0 or term[-1] < len(block) - 1) and keep[-1]:
        unterminated = int(np.count_nonzero(keep)) - 1
    lines = TextLines(
        buf=block,
        start=starts[keep],
        end=ends[keep],
        number=(first_line + np.arange(n_physical))[keep],
        unterminated_row=unterminated,
    )
    return lines, n_physical


@attrs.frozen
class Fields:
    """Offsets of the first ``width`` fields of every line, and how many each line has."""

    start: np.ndarray  #: int64[N, width]; columns past ``count`` hold end offsets
    end: np.ndarray  #: int64[N, width]
    count: np.ndarray  #: int64[N], may exceed ``width``

    def column(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self.start[:, k], self.end[:, k]

    def at(self, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Field ``k[i]`` of row ``i`` (a per-row column index, clipped into range)."""
        rows = np.arange(len(self.count))
        k = np.clip(k, 0, self.start.shape[1] - 1)
        return self.start[rows, k], self.end[rows, k]


def _fields_from_separators(
    lines: TextLines, tok_start: np.ndarray, tok_end: np.ndarray, width: int
) -> Fields:
    """Place token offsets (sorted, all inside kept lines) into an ``[N, width]`` matrix."""
    n = len(lines)
    row = np.searchsorted(lines.start, tok_start, side="right") - 1
    first = np.searchsorted(row, np.arange(n))
    rank = np.arange(len(row)) - first[row]
    count = np.bincount(row, minlength=n).astype(np.int64)
    start = np.repeat(lines.end[:, None], width, axis=1)
    end = start.copy()
    fits = rank < width
    start[row[fits], rank[fits]] = tok_start[fits]
    end[row[fits], rank[fits]] = tok_end[fits]
    return Fields(start=start, end=end, count=count)


def _inside_lines(lines: TextLines, pos: np.ndarray, *, mask: bool = False) -> np.ndarray:
    """Positions (or their mask) that fall inside a kept line -- not in a skipped header."""
    if not len(lines):
        inside = np.zeros(len(pos), dtype=bool)
    else:
        row = np.searchsorted(lines.start, pos, side="right") - 1
        inside = (row >= 0) & (pos < lines.end[np.maximum(row, 0)])
    return inside if mask else pos[inside]


def split_csv(lines: TextLines, width: int) -> Fields:
    """Comma-separated fields; empty fields count (``a,,b`` has three)."""
    commas = _inside_lines(lines, np.flatnonzero(lines.buf == _COMMA))
    tok_start = np.sort(np.concatenate((lines.start, commas + 1)))
    row = np.searchsorted(lines.start, tok_start, side="right") - 1
    # A field ends at the next comma of its line, or at the line's end.
    next_start = np.append(tok_start[1:], np.iinfo(np.int64).max)
    next_row = np.append(row[1:], -1)
    tok_end = np.where(next_row == row, next_start - 1, lines.end[row])
    # Stray spaces, tabs and CRs around a value are not errors (real captures have them).
    tok_start, tok_end = strip_fields(lines.buf, tok_start, tok_end)
    return _fields_from_separators(lines, tok_start, tok_end, width)


def split_whitespace(lines: TextLines, width: int) -> Fields:
    """Fields separated by runs of spaces / tabs."""
    solid = ~_SPACE[lines.buf]
    edges = np.diff(np.concatenate(([False], solid, [False])).astype(np.int8))
    tok_start = np.flatnonzero(edges == 1)
    tok_end = np.flatnonzero(edges == -1)
    inside = _inside_lines(lines, tok_start, mask=True)
    tok_start, tok_end = tok_start[inside], tok_end[inside]
    return _fields_from_separators(lines, tok_start, tok_end, width)


BlockDecoder = Callable[[TextLines], tuple[Frames, RowProblems]]


def read_line_format(
    path: Path,
    errors: str,
    decode: BlockDecoder,
    *,
    data: bytes | None = None,
    header: bool = False,
) -> ReadResult:
    """Run a block decoder over a text capture: bytes -> blocks -> frames, bad rows settled.

    ``data`` is the file's (gunzipped) content when the caller has it already;
    ``header=True`` leaves line 1 out of the data rows.
    """
    base.check_errors_mode(errors)
    if data is None:
        data = base.read_bytes(path)
    base.check_text(path, data[:8192])
    tally = SkipTally(path, errors)
    parts = []
    for lines in iter_line_blocks(data):
        if header:
            lines = lines.after_header()
        frames, problems = decode(lines)
        keep = tally.settle(
            problems,
            line_of=lambda row, lines=lines: int(lines.number[row]),
            text_of=lines.text,
            unterminated_row=lines.unterminated_row,
        )
        parts.append(frames if keep.all() else frames.take(keep))
    frames = Frames.concat(parts) if len(parts) > 1 else parts[0]
    base.log_backward_steps(path, frames)
    return ReadResult(frames=frames, **tally.result_kwargs())
