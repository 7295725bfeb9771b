"""The records and protocols that cross the core / plugin boundary.

Small frozen attrs classes holding numpy arrays (``GraphSchema``,
``DetectorOutput``, ``FusionData``, ``ReadResult``, ``DatasetFiles``, ...) and
the ``Protocol`` / base classes of the component kinds; the table of kinds and
what each registers is in :mod:`fusioncore.contracts`.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import attrs
import numpy as np

if TYPE_CHECKING:
    import torch

    from fusioncore.data.frames import Frames

__all__ = [
    "DatasetFiles",
    "DatasetSource",
    "DetectorOutput",
    "FormatReader",
    "FusionData",
    "FusionStrategy",
    "GraphSchema",
    "PredictionStore",
    "ReadResult",
    "RewardFunction",
    "StateEncoder",
]


def _f32(value) -> np.ndarray:
    return np.ascontiguousarray(value, dtype=np.float32)


def _i64(value) -> np.ndarray:
    return np.ascontiguousarray(value, dtype=np.int64)


# ---------------------------------------------------------------- graphs
@attrs.frozen
class GraphSchema:
    """What a window graph looks like: the detector's input dimensions.

    Every batch a detector sees is a ``torch_geometric.data.Batch`` with
    ``x[n_nodes, len(node_features)]`` (normalised node features),
    ``node_id[n_nodes]`` (vocabulary index, 0 = unknown ID),
    ``edge_index[2, n_edges]``, ``edge_attr[n_edges, len(edge_features)]``,
    ``y[n_graphs]`` (window label), ``attack_type[n_graphs]`` and
    ``window_id[n_graphs]`` (row alignment across detectors).
    """

    node_features: tuple[str, ...] = attrs.field(converter=tuple)
    edge_features: tuple[str, ...] = attrs.field(converter=tuple)
    num_ids: int  #: vocabulary size including the unknown slot 0
    window_size: int = 100

    @property
    def node_dim(self) -> int:
        return len(self.node_features)

    @property
    def edge_dim(self) -> int:
        return len(self.edge_features)


# -------------------------------------------------------------- detectors
@attrs.frozen(eq=False)
class DetectorOutput:
    """A detector's verdict on N windows.

    ``score`` is oriented "higher = more anomalous" and comparable across
    windows; ``features`` are named per-window values a state encoder may use.
    ``window_ids`` align rows across detectors.
    """

    window_ids: np.ndarray = attrs.field(converter=_i64)
    score: np.ndarray = attrs.field(converter=_f32)
    features: np.ndarray = attrs.field(converter=_f32)
    feature_names: tuple[str, ...] = attrs.field(converter=tuple)

    def __attrs_post_init__(self) -> None:
        n = len(self.window_ids)
        if self.score.shape != (n,):
            raise ValueError(f"score must have shape ({n},), got {self.score.shape}")
        if self.features.shape != (n, len(self.feature_names)):
            raise ValueError(
                f"features must have shape ({n}, {len(self.feature_names)}) to match "
                f"feature_names, got {self.features.shape}"
            )

    def __len__(self) -> int:
        return len(self.window_ids)

    @classmethod
    def concat(cls, parts: Sequence[DetectorOutput]) -> DetectorOutput:
        if not parts:
            raise ValueError("nothing to concatenate")
        return cls(
            window_ids=np.concatenate([p.window_ids for p in parts]),
            score=np.concatenate([p.score for p in parts]),
            features=np.concatenate([p.features for p in parts]),
            feature_names=parts[0].feature_names,
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            "window_ids": self.window_ids,
            "score": self.score,
            "features": self.features,
            "feature_names": np.asarray(self.feature_names, dtype=str),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> DetectorOutput:
        return cls(
            window_ids=arrays["window_ids"],
            score=arrays["score"],
            features=arrays["features"],
            feature_names=tuple(str(s) for s in arrays["feature_names"]),
        )


# ------------------------------------------------------------------ fusion
@attrs.frozen(eq=False)
class FusionData:
    """Everything a fusion strategy sees for one split.

    ``scores[N, m]``: the m detectors' scores, calibrated to [0, 1] by the core
    (monotone, so each detector's ranking is unchanged); ``states[N, d]``: the
    state encoder's output; ``labels[N]``: window labels (0/1), available in
    ``fit`` and hidden (all -1) when fusing unlabelled data.
    """

    states: np.ndarray = attrs.field(converter=_f32)
    scores: np.ndarray = attrs.field(converter=_f32)
    labels: np.ndarray = attrs.field(converter=_i64)
    detectors: tuple[str, ...] = attrs.field(converter=tuple)
    state_names: tuple[str, ...] = attrs.field(converter=tuple, default=())

    def __attrs_post_init__(self) -> None:
        n = len(self.labels)
        if self.states.ndim != 2 or len(self.states) != n:
            raise ValueError(f"states must be [N={n}, d], got {self.states.shape}")
        if self.scores.shape != (n, len(self.detectors)):
            raise ValueError(
                f"scores must be [N={n}, {len(self.detectors)} detectors], got {self.scores.shape}"
            )

    def __len__(self) -> int:
        return len(self.labels)


class StateEncoder:
    """Turns the chosen detectors' outputs into one state vector per window.

    ``fit`` sees the training split (e.g. to learn standardisation);
    ``encode`` must be a pure function of its input afterwards.
    """

    name: ClassVar[str] = "encoder"

    def fit(self, outputs: Mapping[str, DetectorOutput]) -> StateEncoder:
        return self

    @property
    def state_names(self) -> tuple[str, ...]:  # pragma: no cover
        raise NotImplementedError

    @property
    def dim(self) -> int:
        return len(self.state_names)

    def encode(self, outputs: Mapping[str, DetectorOutput]) -> np.ndarray:  # pragma: no cover
        """``outputs`` maps detector name -> output (rows aligned); returns ``float32[N, dim]``."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, np.ndarray]:
        """Fitted parameters as plain arrays (saved with a run)."""
        return {}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        return None


@runtime_checkable
class RewardFunction(Protocol):
    """Vectorised reward of a fusion decision.

    ``decision[N]`` (bool: the fused score crossed the threshold), ``label[N]``
    (0/1) and ``fused[N]`` (the fused score) as tensors; returns ``reward[N]``.
    The reward must depend on the decision taken from the fused score, never
    on an action index.
    """

    def __call__(
        self, decision: torch.Tensor, label: torch.Tensor, fused: torch.Tensor
    ) -> torch.Tensor: ...


class FusionStrategy:
    """Combines m detector scores into one fused score per window.

    ``fit(train, val)`` learns (``val`` for early stopping / model selection;
    the decision threshold is chosen by the core on ``val`` after fitting);
    ``fuse(data) -> float32[N]`` in [0, 1]. Strategies that pick per-window
    weights also implement ``policy(data) -> float32[N, m]`` (rows sum to 1).
    """

    name: ClassVar[str] = "fusion"
    #: True if ``fit`` uses labels (all do except fixed rules like mean / max).
    trainable: ClassVar[bool] = True

    def fit(self, train: FusionData, val: FusionData) -> FusionStrategy:
        return self

    def fuse(self, data: FusionData) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def policy(self, data: FusionData) -> np.ndarray | None:
        return None

    def state_dict(self) -> dict[str, Any]:
        """Learned parameters (tensors / arrays / numbers) saved with a run."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        return None


# ------------------------------------------------------------------ stores
@runtime_checkable
class PredictionStore(Protocol):
    """Keyed storage of detector outputs so frozen detectors run once.

    Keys are hex strings built by the core (detector fingerprint, data
    fingerprint, split). Values are mappings of plain numpy arrays and must be
    stored in a safe format (``.npy`` bytes, never pickle); ``get`` returns
    ``None`` for a missing or corrupted entry (a corrupted one is dropped).
    """

    def get(self, key: str) -> dict[str, np.ndarray] | None: ...
    def put(self, key: str, arrays: Mapping[str, np.ndarray]) -> None: ...
    def keys(self) -> Iterator[str]: ...
    def delete(self, key: str) -> None: ...
    def clear(self) -> None: ...
    def close(self) -> None: ...


def arrays_to_npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """Serialise arrays without pickle (object arrays are refused)."""
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()}, allow_pickle=False)
    return buf.getvalue()


# numpy parses each .npy header with ast.literal_eval, and CPython 3.11's AST
# constructor is not thread-safe ("SystemError: AST constructor recursion depth
# mismatch" when threads parse at once): stores shared by threads serialise here.
_NPZ_READ_LOCK = threading.Lock()


def npz_bytes_to_arrays(blob: bytes) -> dict[str, np.ndarray]:
    with _NPZ_READ_LOCK, np.load(io.BytesIO(blob), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


# ---------------------------------------------------------------- datasets
@attrs.frozen
class DatasetFiles:
    """A dataset resolved on disk: which files play which role.

    ``train`` files feed training and validation (the catalog holds out time
    blocks or whole files); each entry of ``tests`` is one scenario.
    ``validation`` files, when a dataset names them, go wholly to the
    validation split (no time block of them is used for training).
    ``duplicates`` maps a skipped file to the byte-identical file read instead;
    ``dropped_tests`` lists, per test scenario, the files left out of it as
    duplicates (so a report can say that a scenario lost files).
    """

    name: str
    root: Path = attrs.field(converter=Path)
    train: tuple[Path, ...] = attrs.field(converter=tuple)
    tests: Mapping[str, tuple[Path, ...]] = attrs.field(factory=dict)
    validation: tuple[Path, ...] = attrs.field(converter=tuple, default=())
    duplicates: Mapping[Path, Path] = attrs.field(factory=dict)
    dropped_tests: Mapping[str, tuple[Path, ...]] = attrs.field(factory=dict)


@runtime_checkable
class DatasetSource(Protocol):
    """A named dataset: finds (or, for generated ones, makes) its files."""

    name: str
    description: str

    def resolve(self, data_root: Path) -> DatasetFiles:
        """Return the files, or raise :class:`~fusioncore.errors.DatasetNotFoundError`."""
        ...


# ----------------------------------------------------------------- formats
@attrs.frozen(eq=False)
class ReadResult:
    """Frames parsed from one file, plus what was skipped and why.

    Every record of the file is accounted for: ``records == len(frames) +
    skipped`` (a record is one data line of a text capture -- blank, comment
    and header lines are not records -- or one object of a binary one).
    ``skipped_reasons`` counts the skipped records per reason and
    ``first_lines`` holds, per reason, the line numbers (record numbers for
    binary formats) of the first few of them. ``notes`` are one-line remarks
    that are not skipped records (e.g. a log of several buses kept apart).
    """

    frames: Frames
    skipped: int = 0
    skipped_reasons: Mapping[str, int] = attrs.field(factory=dict)
    first_lines: Mapping[str, tuple[int, ...]] = attrs.field(factory=dict)
    records: int = attrs.field(
        default=attrs.Factory(lambda self: len(self.frames) + self.skipped, takes_self=True)
    )
    notes: tuple[str, ...] = attrs.field(default=(), converter=tuple)


@runtime_checkable
class FormatReader(Protocol):
    """A capture-file format.

    ``sniff(head)`` sees the first bytes (already gunzipped) and says whether
    this reader understands them; ``read(path, errors=...)`` parses the whole
    file. ``errors="raise"`` (default) raises :class:`~fusioncore.errors.FormatError`
    naming file, line and reason; ``errors="skip"`` drops bad rows and counts
    them in :attr:`ReadResult.skipped` -- rows are never lost silently.
    """

    name: str
    description: str

    def sniff(self, head: bytes) -> bool: ...
    def read(self, path: Path, *, errors: str = "raise") -> ReadResult: ...
