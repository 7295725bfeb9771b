"""Machinery every reader shares: file bytes, bad-row bookkeeping, file-name labels.

Readers validate whole columns at once and record each failed check as a
boolean mask with a reason (:class:`RowProblems`). Only when a file has bad
rows do they pay for line numbers and excerpts, and only for the first bad
row (``errors="raise"``) or for the counts (``errors="skip"``).
"""

from __future__ import annotations

import gzip
import logging
import re
import zlib
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path

import attrs
import numpy as np

from fusioncore.data.frames import Frames, attack_type_code, split_payload
from fusioncore.errors import FormatError

__all__ = [
    "ERRORS_MODES",
    "GZIP_MAGIC",
    "RowProblems",
    "SkipTally",
    "attack_type_from_filename",
    "build_frames",
    "check_errors_mode",
    "check_text",
    "count_backward_steps",
    "is_gzip",
    "logical_name",
    "read_bytes",
    "read_head",
]

logger = logging.getLogger("fusioncore.data.formats")

ERRORS_MODES = ("raise", "skip")
GZIP_MAGIC = b"\x1f\x8b"

# Reasons shared by several readers; they are the keys of ``skipped_reasons``.
WRONG_FIELD_COUNT = "wrong field count"
BAD_TIMESTAMP = "non-numeric timestamp"
BAD_ID_HEX = "bad hex in CAN ID"
ID_OUT_OF_RANGE = "CAN ID above 0x1FFFFFFF"
BAD_PAYLOAD_HEX = "bad hex in payload"
ODD_PAYLOAD = "odd number of payload hex digits"
PAYLOAD_TOO_LONG = "payload longer than 8 bytes"
FD_TOO_LONG = "payload longer than 64 bytes"
BAD_FD_LENGTH = "CAN FD payload length not one of 0-8, 12, 16, 20, 24, 32, 48, 64"
TRUNCATED_LAST = "last line cut short (no newline at the end of the file)"
BAD_DLC = "non-numeric DLC"
DLC_TOO_LARGE = "DLC > 8"
DLC_MISMATCH = "DLC does not match payload length"
BAD_LABEL = "bad attack flag"
ERROR_FRAME = "error frame"


def check_errors_mode(errors: str) -> None:
    if errors not in ERRORS_MODES:
        raise ValueError(f"errors must be one of {ERRORS_MODES}, got {errors!r}")


def logical_name(path: Path) -> str:
    """The file name without a trailing ``.gz`` (``DoS-kia.csv.gz`` -> ``DoS-kia.csv``)."""
    name = Path(path).name
    return name[:-3] if name.lower().endswith(".gz") else name


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def text_encoding(head: bytes) -> str | None:
    """``"utf-16"`` for content that starts with a UTF-16 byte-order mark, else ``None``."""
    return "utf-16" if head[:2] in _UTF16_BOMS else None


def as_utf8(data: bytes, *, partial: bool = False) -> bytes:
    """Text content as UTF-8 bytes: a UTF-16 file (with BOM) is re-encoded, a UTF-8 BOM dropped.

    Windows tools write UTF-16 logs; the readers work on ASCII bytes, so such a
    file is converted once instead of refused. ``partial`` (a file's head) drops
    a last incomplete character instead of failing on it.
    """
    if text_encoding(data):
        if partial and len(data) % 2:
            data = data[:-1]
        return data.decode("utf-16", errors="replace").encode("utf-8")
    return data[len(UTF8_BOM):] if data.startswith(UTF8_BOM) else data


def read_head(path: Path, size: int = 8192) -> bytes:
    """The first ``size`` bytes of text (gunzipped when gzip, judged by magic; UTF-16 re-encoded)."""
    with open(path, "rb") as fh:
        raw = fh.read(size)
    if not raw.startswith(GZIP_MAGIC):
        return as_utf8(raw, partial=True)
    try:
        with gzip.open(path, "rb") as fh:
            return as_utf8(fh.read(size), partial=True)
    except (OSError, EOFError, zlib.error) as exc:
        # A truncated gzip still yields its first bytes through a decompressor object.
        try:
            return as_utf8(zlib.decompressobj(wbits=31).decompress(raw, size), partial=True)
        except zlib.error:
            raise FormatError(path, f"corrupt gzip stream: {exc}") from exc


def read_raw(path: Path) -> bytes:
    """The whole file, gunzipped when it is gzip; ``FormatError`` for a corrupt gzip stream."""
    data = Path(path).read_bytes()
    if data.startswith(GZIP_MAGIC):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise FormatError(path, f"corrupt gzip stream: {exc}") from exc
    return data


def read_bytes(path: Path) -> bytes:
    """The whole text file as UTF-8 (see :func:`as_utf8`); ``FormatError`` for empty or corrupt files."""
    data = as_utf8(read_raw(path))
    if not data or data.isspace():
        raise FormatError(path, "empty file")
    return data


def check_text(path: Path, head: bytes) -> None:
    """Refuse binary data early: a NUL byte never occurs in a text capture."""
    if b"\x00" in head:
        sample = head[:512]
        if len(sample) >= 8 and sample[1::2].count(0) + sample[0::2].count(0) >= len(sample) // 2 - 1:
            raise FormatError(path, "looks like UTF-16 text without a byte-order mark; convert it "
                              "first, e.g. iconv -f UTF-16LE -t UTF-8")
        raise FormatError(path, "binary data, not a text capture (NUL byte in the first block)")


# ------------------------------------------------------------ labels by file name
# The first token of the file name that names an attack decides its type; the
# can-train-and-test and HCRL names put the attack first (``rpm-accessory-1``).
_BENIGN_NAME = re.compile(r"attack[-_ ]?free|^normal|^benign")
_KEYWORDS: Mapping[str, str] = {
    "dos": "flooding",
    "flooding": "flooding",
    "flood": "flooding",
    "fuzzing": "fuzzing",
    "fuzzy": "fuzzing",
    "fuzz": "fuzzing",
    "systematic": "fuzzing",
    "spoofing": "spoofing",
    "gear": "spoofing",
    "rpm": "spoofing",
    "speed": "spoofing",
    "force": "spoofing",
    "standstill": "spoofing",
    "accessory": "spoofing",
    "double": "spoofing",
    "triple": "spoofing",
    "interval": "spoofing",
    "malfunction": "malfunction",
    "replay": "replay",
    "suppress": "suppress",
    "masquerade": "masquerade",
}


def attack_type_from_filename(name: str) -> int:
    """Attack-type code (``fusioncore.data.frames.ATTACK_TYPES``) named by a capture file.

    ``DoS-kia.csv`` -> flooding, ``Fuzzy_dataset.csv`` -> fuzzing, ``gear_dataset.csv``
    -> spoofing, ``attack-free-kia.csv`` -> benign (0); a name with no known attack
    word gives ``unknown``, so labelled frames of odd files are never called benign.
    """
    stem = logical_name(Path(name)).lower()
    stem = stem.rsplit(".", 1)[0] if "." in stem else stem
    if _BENIGN_NAME.search(stem):
        return 0
    for token in re.split(r"[-_. ]+", stem):
        if token in _KEYWORDS:
            return attack_type_code(_KEYWORDS[token])
    return attack_type_code("unknown")


# ------------------------------------------------------------ bad-row bookkeeping
class RowProblems:
    """Reasons for rejecting rows of one parsed block, found by vectorised checks.

    ``add(mask, reason)`` records a failed check; a row keeps the first reason
    it failed, so checks go from the most basic (field count) to the most
    specific. ``drop(mask, reason)`` records rows that are valid but hold no
    frame (error frames): they are counted, never raised for.
    """

    def __init__(self, n: int) -> None:
        self.bad = np.zeros(n, dtype=bool)
        self.dropped = np.zeros(n, dtype=bool)
        self._code = np.zeros(n, dtype=np.int16)
        self._reasons: list[str] = []

    def _record(self, mask: np.ndarray, reason: str, into: np.ndarray) -> None:
        new = np.asarray(mask, dtype=bool) & ~self.bad & ~self.dropped
        if new.any():
            if reason not in self._reasons:
                self._reasons.append(reason)
            self._code[new] = self._reasons.index(reason)
            into |= new

    def add(self, mask: np.ndarray, reason: str) -> None:
        self._record(mask, reason, self.bad)

    def drop(self, mask: np.ndarray, reason: str) -> None:
        self._record(mask, reason, self.dropped)

    @property
    def keep(self) -> np.ndarray:
        return ~(self.bad | self.dropped)

    def counts(self) -> Counter[str]:
        rejected = self.bad | self.dropped
        codes = np.bincount(self._code[rejected], minlength=len(self._reasons))
        return Counter({r: int(c) for r, c in zip(self._reasons, codes) if c})

    def first(self) -> tuple[int, str] | None:
        """Row index and reason of the first bad row, if any."""
        if not self.bad.any():
            return None
        row = int(np.argmax(self.bad))
        return row, self._reasons[self._code[row]]

    def first_rows(self, k: int) -> dict[str, np.ndarray]:
        """Per reason, the indices of its first ``k`` rejected rows."""
        rejected = self.bad | self.dropped
        if not rejected.any():
            return {}
        return {
            reason: np.flatnonzero(rejected & (self._code == code))[:k]
            for code, reason in enumerate(self._reasons)
        }


#: How many line numbers per skip reason a ``ReadResult`` keeps.
FIRST_LINES = 5


@attrs.define
class SkipTally:
    """Dropped rows of a whole file, accumulated block by block."""

    path: Path
    errors: str
    reasons: Counter[str] = attrs.field(factory=Counter)
    lines: dict[str, list[int]] = attrs.field(factory=dict)
    notes: list[str] = attrs.field(factory=list)

    def settle(
        self,
        problems: RowProblems,
        line_of: Callable[[int], int],
        text_of: Callable[[int], str],
        *,
        unterminated_row: int | None = None,
    ) -> np.ndarray:
        """Raise for the first bad row (``errors="raise"``) or count them; return the keep mask.

        ``unterminated_row`` is the row index of a last line lacking its newline:
        when that row is bad the file was most likely cut short, and the message says so.
        """
        first = problems.first()
        if first is not None and self.errors == "raise":
            row, reason = first
            self.raise_at(line_of(row), reason, text_of(row), truncated=row == unterminated_row)
        self.reasons.update(problems.counts())
        for reason, rows in problems.first_rows(FIRST_LINES).items():
            kept = self.lines.setdefault(reason, [])
            kept.extend(line_of(int(r)) for r in rows[: FIRST_LINES - len(kept)])
        return problems.keep

    def raise_at(self, line: int | None, reason: str, text: str, *, truncated: bool = False) -> None:
        excerpt = text if len(text) <= 80 else text[:77] + "..."
        hint = " (last line has no newline: truncated file?)" if truncated else ""
        raise FormatError(self.path, f"{reason}: {excerpt!r}{hint}", line=line)

    def drop(self, reason: str, count: int = 1, line: int | None = None) -> None:
        """Count rows dropped whatever the mode (error frames are not data)."""
        self.reasons[reason] += count
        if line is not None:
            kept = self.lines.setdefault(reason, [])
            if len(kept) < FIRST_LINES:
                kept.append(line)

    def bad(self, line: int, reason: str, text: str) -> None:
        """One bad record found by a record-at-a-time reader: raise or count it."""
        if self.errors == "raise":
            self.raise_at(line, reason, text)
        self.drop(reason, line=line)

    @property
    def skipped(self) -> int:
        return sum(self.reasons.values())

    def result_kwargs(self) -> dict:
        return {
            "skipped": self.skipped,
            "skipped_reasons": dict(self.reasons),
            "first_lines": {k: tuple(v) for k, v in self.lines.items() if v},
            "notes": tuple(self.notes),
        }


def build_frames(
    source: str,
    *,
    timestamp: np.ndarray,
    can_id: np.ndarray,
    data: np.ndarray,
    dlc: np.ndarray,
    extended: np.ndarray | None = None,
    remote: np.ndarray | None = None,
    label: np.ndarray | None = None,
    attack_type: np.ndarray | None = None,
    flags: np.ndarray | None = None,
) -> Frames:
    """``Frames`` of one file, built from full columns (zero rows included).

    ``data`` is ``[N, 8]`` or, for CAN FD, up to ``[N, 64]``.
    """
    n = len(timestamp)
    can_id = np.asarray(can_id, np.uint32)
    zeros = np.zeros(n, np.uint8)
    data = np.asarray(data, np.uint8)
    data, data_ext = split_payload(data.reshape(n, data.shape[-1] if data.ndim == 2 else 8))
    return Frames(
        timestamp=timestamp,
        can_id=can_id,
        extended=can_id > 0x7FF if extended is None else extended,
        remote=np.zeros(n, bool) if remote is None else remote,
        dlc=dlc,
        data=data,
        label=zeros if label is None else label,
        attack_type=zeros if attack_type is None else attack_type,
        source=np.zeros(n, np.uint16),
        sources=(source,),
        flags=flags,
        data_ext=data_ext,
    )


def count_backward_steps(frames: Frames) -> int:
    """How many frames carry a timestamp earlier than the frame before them (same file).

    Readers keep file order -- some public captures (hcrl_sa) really step back --
    and log this count; callers that need time order call ``Frames.sort_by_time``.
    """
    if len(frames) < 2:
        return 0
    same_file = frames.source[1:] == frames.source[:-1]
    return int(np.count_nonzero((np.diff(frames.timestamp) < 0) & same_file))


def log_backward_steps(path: Path, frames: Frames) -> None:
    steps = count_backward_steps(frames)
    if steps:
        logger.info("%s: %d timestamps step backwards; file order kept", path, steps)
