"""``Frames``: the columnar in-memory form of a CAN capture.

Every reader produces one, every later stage (windows, graphs, streaming)
consumes one. Columns are plain numpy arrays of equal length so slicing,
concatenation and sorting are single vectorised operations.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import attrs
import numpy as np

__all__ = [
    "ATTACK_TYPES",
    "FLAG_BRS",
    "FLAG_ESI",
    "FLAG_FD",
    "MAX_FD_BYTES",
    "Frames",
    "attack_type_code",
    "attack_type_name",
]

#: Bits of :attr:`Frames.flags`: a CAN FD frame, its bit-rate switch, its error-state indicator.
FLAG_FD, FLAG_BRS, FLAG_ESI = 1, 2, 4
#: Largest CAN FD payload; bytes 8..63 live in :attr:`Frames.data_ext`.
MAX_FD_BYTES = 64
_EXT = MAX_FD_BYTES - 8

#: Attack-type vocabulary shared by every reader and dataset. Code 0 is benign,
#: the last code catches attacks whose kind is unknown.
ATTACK_TYPES: tuple[str, ...] = (
    "benign",
    "flooding",
    "fuzzing",
    "spoofing",
    "malfunction",
    "replay",
    "suppress",
    "masquerade",
    "unknown",
)
_CODE = {name: i for i, name in enumerate(ATTACK_TYPES)}


def attack_type_code(name: str) -> int:
    """Code of an attack-type name (``DoS`` and ``dos`` are aliases of flooding)."""
    key = name.strip().lower()
    key = {"dos": "flooding", "fuzzy": "fuzzing", "gear": "spoofing", "rpm": "spoofing"}.get(key, key)
    return _CODE.get(key, _CODE["unknown"])


def attack_type_name(code: int) -> str:
    return ATTACK_TYPES[code] if 0 <= code < len(ATTACK_TYPES) else "unknown"


def _col(dtype, ndim: int = 1):
    def convert(value):
        arr = np.ascontiguousarray(value, dtype=dtype)
        if arr.ndim != ndim:
            raise ValueError(f"expected a {ndim}-D array, got shape {arr.shape}")
        return arr

    return attrs.field(converter=convert, eq=False)


def _optional(dtype, ndim: int = 1):
    """A column that may be left out (``None``); ``__attrs_post_init__`` fills its default."""

    def convert(value):
        return None if value is None else np.ascontiguousarray(value, dtype=dtype)

    return attrs.field(default=None, converter=convert, eq=False)


@attrs.frozen(eq=False)
class Frames:
    """Columns of N CAN frames.

    ``data`` holds the first 8 payload bytes, zero-padded; ``dlc`` says how
    many payload bytes are real (0..8 for classic CAN, up to 64 for CAN FD;
    for a remote frame, the length it requests). CAN FD payload bytes 8..63
    are in ``data_ext[N, 56]``, which has zero columns (``[N, 0]``) when no
    frame of the capture carries more than 8 bytes, so classic captures cost
    no extra memory. ``flags`` holds :data:`FLAG_FD` / :data:`FLAG_BRS` /
    :data:`FLAG_ESI` bits. ``label`` is 1 for injected / attack frames.
    ``attack_type`` holds codes from :data:`ATTACK_TYPES`. ``source`` indexes
    ``sources`` (file names, or ``file#interface`` for a log of several
    buses), so windows never straddle two files or buses.
    """

    timestamp: np.ndarray = _col(np.float64)
    can_id: np.ndarray = _col(np.uint32)
    extended: np.ndarray = _col(np.bool_)
    remote: np.ndarray = _col(np.bool_)
    dlc: np.ndarray = _col(np.uint8)
    data: np.ndarray = _col(np.uint8, ndim=2)
    label: np.ndarray = _col(np.uint8)
    attack_type: np.ndarray = _col(np.uint8)
    source: np.ndarray = _col(np.uint16)
    sources: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    flags: np.ndarray | None = _optional(np.uint8)
    data_ext: np.ndarray | None = _optional(np.uint8, ndim=2)

    def __attrs_post_init__(self) -> None:
        n = len(self.timestamp)
        if self.flags is None:
            object.__setattr__(self, "flags", np.zeros(n, np.uint8))
        if self.data_ext is None:
            object.__setattr__(self, "data_ext", np.zeros((n, 0), np.uint8))
        for name in ("can_id", "extended", "remote", "dlc", "label", "attack_type", "source", "flags"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"column {name!r} has {len(getattr(self, name))} rows, expected {n}")
        if self.data.shape != (n, 8):
            raise ValueError(f"data must have shape ({n}, 8), got {self.data.shape}")
        if self.data_ext.ndim != 2 or self.data_ext.shape[0] != n or self.data_ext.shape[1] not in (0, _EXT):
            raise ValueError(f"data_ext must have shape ({n}, 0) or ({n}, {_EXT}), got {self.data_ext.shape}")

    # -- construction ---------------------------------------------------
    @classmethod
    def empty(cls, sources: Sequence[str] = ()) -> Frames:
        return cls.from_columns(
            timestamp=np.zeros(0), can_id=np.zeros(0), data=np.zeros((0, 8)), sources=sources
        )

    @classmethod
    def from_columns(
        cls,
        *,
        timestamp,
        can_id,
        data,
        dlc=None,
        extended=None,
        remote=None,
        label=None,
        attack_type=None,
        source=None,
        sources: Sequence[str] = (),
        flags=None,
    ) -> Frames:
        """Build from the columns a reader has; the missing ones get defaults.

        ``data`` may be up to 64 bytes wide (CAN FD); bytes 8.. go to ``data_ext``.
        """
        n = len(timestamp)
        data = np.asarray(data, dtype=np.uint8)
        data = data.reshape(n, data.shape[-1] if data.ndim == 2 else 8)
        if data.shape[1] < 8:
            data = np.pad(data, ((0, 0), (0, 8 - data.shape[1])))
        data, data_ext = split_payload(data)
        zeros_u8 = np.zeros(n, np.uint8)
        can_id = np.asarray(can_id, np.uint32)
        label = zeros_u8 if label is None else np.asarray(label, np.uint8)
        if attack_type is None:
            attack_type = np.where(label > 0, _CODE["unknown"], 0).astype(np.uint8)
        return cls(
            timestamp=timestamp,
            can_id=can_id,
            extended=(can_id > 0x7FF) if extended is None else extended,
            remote=np.zeros(n, bool) if remote is None else remote,
            dlc=np.full(n, 8, np.uint8) if dlc is None else dlc,
            data=data,
            label=label,
            attack_type=attack_type,
            source=np.zeros(n, np.uint16) if source is None else source,
            sources=tuple(sources) or ("<memory>",),
            flags=flags,
            data_ext=data_ext,
        )

    # -- basic protocol -------------------------------------------------
    def __len__(self) -> int:
        return len(self.timestamp)

    def _columns(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in attrs.fields(Frames) if f.name != "sources"}

    @property
    def has_fd(self) -> bool:
        """Whether any frame is CAN FD (or carries more than 8 payload bytes)."""
        return bool(self.data_ext.shape[1]) or bool(np.any(self.flags & FLAG_FD))

    @property
    def payload(self) -> np.ndarray:
        """All payload bytes, ``uint8[N, 8]`` for classic captures, ``[N, 64]`` with CAN FD."""
        return np.concatenate([self.data, self.data_ext], axis=1) if self.data_ext.shape[1] else self.data

    def take(self, index) -> Frames:
        """Rows selected by a slice, boolean mask or integer index array."""
        return attrs.evolve(self, **{k: v[index] for k, v in self._columns().items()})

    def __getitem__(self, index) -> Frames:
        if isinstance(index, (int, np.integer)):
            index = slice(index, index + 1 if index != -1 else None)
        return self.take(index)

    @classmethod
    def concat(cls, parts: Sequence[Frames]) -> Frames:
        """Concatenate, re-indexing ``source`` so file names stay unique."""
        if not parts:
            return cls.empty()
        sources: list[str] = []
        remapped = []
        for part in parts:
            lookup = []
            for name in part.sources:
                if name not in sources:
                    sources.append(name)
                lookup.append(sources.index(name))
            mapping = np.asarray(lookup or [0], np.uint16)
            remapped.append(mapping[part.source] if len(part) else part.source)
        if any(p.data_ext.shape[1] for p in parts):  # one FD part widens every part
            parts = [
                p if p.data_ext.shape[1] else attrs.evolve(p, data_ext=np.zeros((len(p), _EXT), np.uint8))
                for p in parts
            ]
        columns = {
            k: np.concatenate([getattr(p, k) for p in parts]) for k in parts[0]._columns()
        }
        columns["source"] = np.concatenate(remapped)
        return cls(**columns, sources=tuple(sources))

    def sort_by_time(self) -> Frames:
        """Stable sort by (source, timestamp): order inside a file by time, files kept apart."""
        order = np.lexsort((self.timestamp, self.source))
        return self.take(order)

    # -- summaries --------------------------------------------------------
    @property
    def n_attack(self) -> int:
        return int(np.count_nonzero(self.label))

    def fingerprint(self) -> str:
        """sha256 over every column's bytes: equal content, equal fingerprint."""
        h = hashlib.sha256()
        for name, col in self._columns().items():
            h.update(name.encode())
            h.update(np.ascontiguousarray(col).tobytes())
        h.update("\0".join(self.sources).encode())
        return h.hexdigest()

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays (for ``np.savez``; ``sources`` stored as a unicode array)."""
        out = self._columns()
        out["sources"] = np.asarray(self.sources, dtype=str)
        return out

    @classmethod
    def from_arrays(cls, arrays) -> Frames:
        cols = {k: arrays[k] for k in arrays if k != "sources"}
        return cls(**cols, sources=tuple(str(s) for s in arrays["sources"]))


def split_payload(data: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``uint8[N, w]`` payloads (w <= 64) -> (``data[N, 8]``, ``data_ext[N, 56]`` or ``None``).

    ``data_ext`` is ``None`` (no extension column) when no byte past the 8th is set
    and the input is at most 8 wide, so classic captures stay ``[N, 8]``.
    """
    n, width = data.shape
    if width > MAX_FD_BYTES:
        raise ValueError(f"payloads are at most {MAX_FD_BYTES} bytes, got width {width}")
    if width <= 8:
        return data[:, :8], None
    ext = np.zeros((n, _EXT), np.uint8)
    ext[:, : width - 8] = data[:, 8:]
    return np.ascontiguousarray(data[:, :8]), ext
