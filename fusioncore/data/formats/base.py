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

from fusioncore.data.frames import Frames, attack_type_code
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


def read_head(path: Path, size: int = 8192) -> bytes:
    """The first ``size`` bytes, gunzipped when the file is gzip (judged by magic, not suffix)."""
    with open(path, "rb") as fh:
        raw = fh.read(size)
    if not raw.startswith(GZIP_MAGIC):
        return raw
    try:
        with gzip.open(path, "rb") as fh:
            return fh.read(size)
    except (OSError, EOFError, zlib.error) as exc:
        # A truncated gzip still yields its first bytes through a decompressor object.
        try:
            return zlib.decompressobj(wbits=31).decompress(raw, size)
        except zlib.error:
            raise FormatError(path, f"corrupt gzip stream: {exc}") from exc


def read_bytes(path: Path) -> bytes:
    """The whole file, gunzipped when it is gzip; ``FormatError`` for empty or corrupt files."""
    data = Path(path).read_bytes()
    if data.startswith(GZIP_MAGIC):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise FormatError(path, f"corrupt gzip stream: {exc}") from exc
    if not data or data.isspace():
        raise FormatError(path, "empty file")
    return data


def check_text(path: Path, head: bytes) -> None:
    """Refuse binary data early: a NUL byte never occurs in a text capture."""
    if b"\x00" in head:
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


@attrs.define
class SkipTally:
    """Dropped rows of a whole file, accumulated block by block."""

    path: Path
    errors: str
    reasons: Counter[str] = attrs.field(factory=Counter)

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
        return problems.keep

    def raise_at(self, line: int | None, reason: str, text: str, *, truncated: bool = False) -> None:
        excerpt = text if len(text) <= 80 else text[:77] + "..."
        hint = " (last line has no newline: truncated file?)" if truncated else ""
        raise FormatError(self.path, f"{reason}: {excerpt!r}{hint}", line=line)

    def drop(self, reason: str, count: int = 1) -> None:
        """Count rows dropped whatever the mode (error frames are not data)."""
        self.reasons[reason] += count

    @property
    def skipped(self) -> int:
        return sum(self.reasons.values())

    def result_kwargs(self) -> dict:
        return {"skipped": self.skipped, "skipped_reasons": dict(self.reasons)}


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
) -> Frames:
    """``Frames`` of one file, built from full columns (zero rows included)."""
    n = len(timestamp)
    can_id = np.asarray(can_id, np.uint32)
    zeros = np.zeros(n, np.uint8)
    return Frames(
        timestamp=timestamp,
        can_id=can_id,
        extended=can_id > 0x7FF if extended is None else extended,
        remote=np.zeros(n, bool) if remote is None else remote,
        dlc=dlc,
        data=np.asarray(data, np.uint8).reshape(n, 8),
        label=zeros if label is None else label,
        attack_type=zeros if attack_type is None else attack_type,
        source=np.zeros(n, np.uint16),
        sources=(source,),
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
