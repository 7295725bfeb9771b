"""Window graphs as PyG batches: the input of every detector.

:class:`WindowGraphBuilder` turns a :class:`~fusioncore.data.frames.Frames`
and the start rows of a batch of windows into one
``torch_geometric.data.Batch`` with array operations only (no Python loop
over frames or windows, no per-window ``Data`` objects). Features are those
of :mod:`fusioncore.data.graph_features`, z-scored by a
:class:`FeatureNormalizer` fitted on benign training windows only.

Which features, and what IDs are compared with, is the builder's
``representation`` and ``reference`` (:mod:`fusioncore.adapt`): by default
the absolute features against the training vocabulary; with capture-relative
adaptation the profile-relative features against each capture's own profile
(a :class:`~fusioncore.adapt.reference.ReferenceTable` bound with
:meth:`WindowGraphBuilder.with_reference`).

Typical use::

    spec = WindowSpec(size=100, stride=100)
    vocab = IdVocabulary.fit(train_frames)
    builder = WindowGraphBuilder(vocab, spec)
    starts = window_starts(train_frames, spec)
    builder = builder.with_normalizer(FeatureNormalizer.fit(builder, train_frames, starts))
    batch = builder.build(train_frames, starts[:1024])
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import attrs
import numpy as np
import torch
from torch_geometric.data import Batch

from fusioncore.adapt.features import STANDARDISED_NODE_FEATURES
from fusioncore.adapt.reference import ReferenceTable
from fusioncore.adapt.representation import ABSOLUTE, GraphRepresentation
from fusioncore.contracts import GraphSchema
from fusioncore.data.frames import Frames
from fusioncore.data.graph_features import (
    EDGE_FEATURES,
    NODE_FEATURES,
    WindowGraphs,
    compute_window_graphs,
)
from fusioncore.data.vocab import IdVocabulary
from fusioncore.data.windows import WindowSpec, validate_starts, window_labels
from fusioncore.errors import ConfigError

__all__ = [
    "EDGE_FEATURES",
    "NODE_FEATURES",
    "FeatureNormalizer",
    "WindowGraphBuilder",
    "WindowGraphs",
    "graphs_to_batch",
]


def _f64(value) -> np.ndarray:
    return np.ascontiguousarray(value, dtype=np.float64)


class _RunningMoments:
    """Count, mean and sum of squared deviations per column, merged chunk by chunk (Chan et al.)."""

    def __init__(self, dim: int) -> None:
        self.n = 0
        self.mean = np.zeros(dim)
        self.m2 = np.zeros(dim)

    def update(self, values: np.ndarray) -> None:
        k = len(values)
        if k == 0:
            return
        values = values.astype(np.float64)
        mean = values.mean(axis=0)
        m2 = ((values - mean) ** 2).sum(axis=0)
        total = self.n + k
        delta = mean - self.mean
        self.mean = self.mean + delta * (k / total)
        self.m2 = self.m2 + m2 + delta * delta * (self.n * k / total)
        self.n = total

    def std(self, floor: float) -> np.ndarray:
        return np.maximum(np.sqrt(self.m2 / max(self.n, 1)), floor)


@attrs.frozen(eq=False)
class FeatureNormalizer:
    """Per-column mean and std of node and edge features (z-scoring).

    Statistics come from benign training windows only, so attack traffic
    stands out instead of shifting the reference. ``std`` is floored (see
    :meth:`fit`) so a column that is constant in benign traffic, such as
    ``unknown_id``, maps to a large but finite value when it does change.
    """

    node_mean: np.ndarray = attrs.field(converter=_f64)
    node_std: np.ndarray = attrs.field(converter=_f64)
    edge_mean: np.ndarray = attrs.field(converter=_f64)
    edge_std: np.ndarray = attrs.field(converter=_f64)
    node_features: tuple[str, ...] = attrs.field(default=NODE_FEATURES, converter=tuple)
    edge_features: tuple[str, ...] = attrs.field(default=EDGE_FEATURES, converter=tuple)

    def __attrs_post_init__(self) -> None:
        shapes = {
            "node_mean": (self.node_mean, self.node_features),
            "node_std": (self.node_std, self.node_features),
            "edge_mean": (self.edge_mean, self.edge_features),
            "edge_std": (self.edge_std, self.edge_features),
        }
        for name, (arr, names) in shapes.items():
            if arr.shape != (len(names),):
                raise ConfigError(f"FeatureNormalizer.{name} needs shape ({len(names)},), got {arr.shape}")
        if np.any(self.node_std <= 0) or np.any(self.edge_std <= 0):
            raise ConfigError("FeatureNormalizer std values must be > 0")

    @classmethod
    def fit(
        cls,
        builder: WindowGraphBuilder,
        frames: Frames,
        starts: np.ndarray,
        *,
        chunk: int = 2048,
        min_std: float = 0.05,
    ) -> FeatureNormalizer:
        """Statistics of the benign windows among ``starts`` (label 0), ``chunk`` windows at a time.

        ``min_std`` floors every std: features live on a scale of about 0..1
        (shares, scaled bytes) to 0..10 (log milliseconds), so 0.05 keeps a
        z-score of a flag that never fires in training at 20 rather than 1e6.
        """
        size = builder.spec.size
        starts = validate_starts(frames, starts, size)
        label, _ = window_labels(frames, starts, size)
        benign = starts[label == 0]
        if benign.size == 0:
            raise ConfigError("FeatureNormalizer.fit needs at least one benign window, got none")
        names_n, names_e = builder.node_features, builder.edge_features
        nodes, edges = _RunningMoments(len(names_n)), _RunningMoments(len(names_e))
        for lo in range(0, len(benign), chunk):
            graphs = builder.features(frames, benign[lo : lo + chunk])
            nodes.update(graphs.x)
            edges.update(graphs.edge_attr)
        # columns standardised by construction keep their scale (see STANDARDISED_NODE_FEATURES)
        fixed = np.isin(np.asarray(names_n, dtype=object), STANDARDISED_NODE_FEATURES)
        return cls(
            node_mean=np.where(fixed, 0.0, nodes.mean),
            node_std=np.where(fixed, 1.0, nodes.std(min_std)),
            edge_mean=edges.mean,
            edge_std=edges.std(min_std),
            node_features=names_n,
            edge_features=names_e,
        )

    def normalize_nodes(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.node_mean) / self.node_std).astype(np.float32)

    def normalize_edges(self, edge_attr: np.ndarray) -> np.ndarray:
        return ((edge_attr - self.edge_mean) / self.edge_std).astype(np.float32)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            "node_mean": self.node_mean,
            "node_std": self.node_std,
            "edge_mean": self.edge_mean,
            "edge_std": self.edge_std,
            "node_features": np.asarray(self.node_features, dtype=str),
            "edge_features": np.asarray(self.edge_features, dtype=str),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> FeatureNormalizer:
        return cls(
            node_mean=arrays["node_mean"],
            node_std=arrays["node_std"],
            edge_mean=arrays["edge_mean"],
            edge_std=arrays["edge_std"],
            node_features=tuple(str(s) for s in arrays["node_features"]),
            edge_features=tuple(str(s) for s in arrays["edge_features"]),
        )

    def fingerprint(self) -> str:
        h = hashlib.sha256(b"FeatureNormalizer/1")
        for name, arr in self.to_arrays().items():
            h.update(name.encode())
            h.update(arr.tobytes())
        return h.hexdigest()


def _tensor(arr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(arr))


def graphs_to_batch(
    graphs: WindowGraphs,
    x: np.ndarray,
    edge_attr: np.ndarray,
    y: np.ndarray,
    attack_type: np.ndarray,
    window_id: np.ndarray,
) -> Batch:
    """Wrap concatenated graph arrays as a ``Batch``, as ``Batch.from_data_list`` would.

    The slice / increment bookkeeping is filled in directly so ``to_data_list``
    and ``get_example`` work without ever creating one ``Data`` per window.
    """
    n = graphs.num_graphs
    node_ptr = _tensor(graphs.node_ptr)
    edge_ptr = _tensor(graphs.edge_ptr)
    graph_ptr = torch.arange(n + 1, dtype=torch.long)
    zeros = torch.zeros(n, dtype=torch.long)
    batch = Batch(
        x=_tensor(x.astype(np.float32, copy=False)),
        node_id=_tensor(graphs.node_id.astype(np.int64, copy=False)),
        edge_index=_tensor(graphs.edge_index.astype(np.int64, copy=False)),
        edge_attr=_tensor(edge_attr.astype(np.float32, copy=False)),
        y=_tensor(np.asarray(y, np.int64)),
        attack_type=_tensor(np.asarray(attack_type, np.int64)),
        window_id=_tensor(np.asarray(window_id, np.int64)),
        batch=_tensor(graphs.node_window),
        ptr=node_ptr,
    )
    per_node = ("x", "node_id")
    per_edge = ("edge_index", "edge_attr")
    per_graph = ("y", "attack_type", "window_id")
    batch._num_graphs = n
    batch._slice_dict = {
        **dict.fromkeys(per_node, node_ptr),
        **dict.fromkeys(per_edge, edge_ptr),
        **dict.fromkeys(per_graph, graph_ptr),
    }
    batch._inc_dict = {
        **dict.fromkeys(per_node + per_edge + per_graph, zeros),
        "edge_index": node_ptr[:-1],  # node rows are offset by the nodes of earlier graphs
    }
    return batch


@attrs.frozen(eq=False)
class WindowGraphBuilder:
    """Builds one PyG ``Batch`` of window graphs from frames and window start rows.

    ``normalizer=None`` leaves features raw (used to fit a normaliser and in
    tests); detectors should always see normalised features.
    ``representation`` picks the feature columns and node identity;
    ``reference`` is what IDs are compared with (default: the vocabulary,
    serving every capture). A profile-relative representation needs a
    reference of per-capture profiles (:meth:`with_reference`); without one
    every ID is unknown.
    """

    vocab: IdVocabulary
    spec: WindowSpec = attrs.field(factory=WindowSpec)
    normalizer: FeatureNormalizer | None = None
    representation: GraphRepresentation = ABSOLUTE
    reference: ReferenceTable | None = None
    _table: ReferenceTable = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        norm = self.normalizer
        if norm is not None and (
            norm.node_features != self.node_features or norm.edge_features != self.edge_features
        ):
            raise ConfigError(
                "the FeatureNormalizer was fitted on other features than this builder computes; "
                "refit it"
            )
        table = self.reference
        if table is None:
            table = (ReferenceTable(names=(), keys=[], identity=[], num_ids=self.representation.buckets + 1)
                     if self.representation.relative else ReferenceTable.from_vocabulary(self.vocab))
        object.__setattr__(self, "_table", table)

    @property
    def node_features(self) -> tuple[str, ...]:
        return self.representation.node_features

    @property
    def edge_features(self) -> tuple[str, ...]:
        return self.representation.edge_features

    @property
    def num_ids(self) -> int:
        """Embedding size of the node identity (the unknown slot 0 included)."""
        return self.representation.buckets + 1 if self.representation.relative else len(self.vocab)

    @property
    def schema(self) -> GraphSchema:
        return GraphSchema(
            node_features=self.node_features,
            edge_features=self.edge_features,
            num_ids=self.num_ids,
            window_size=self.spec.size,
        )

    def with_normalizer(self, normalizer: FeatureNormalizer | None) -> WindowGraphBuilder:
        return attrs.evolve(self, normalizer=normalizer)

    def with_reference(self, reference: ReferenceTable | None) -> WindowGraphBuilder:
        """The same builder comparing IDs with ``reference`` (e.g. the profiles of a split's captures)."""
        return attrs.evolve(self, reference=reference)

    def features(self, frames: Frames, starts: np.ndarray) -> WindowGraphs:
        """Raw (unnormalised) graphs of the windows starting at ``starts``, as numpy arrays."""
        starts = validate_starts(frames, starts, self.spec.size)
        return compute_window_graphs(
            frames, starts, self.spec.size, self._table,
            node_features=self.node_features, edge_features=self.edge_features,
        )

    def build(
        self, frames: Frames, starts: np.ndarray, window_ids: np.ndarray | None = None
    ) -> Batch:
        """The ``Batch`` of the windows starting at rows ``starts`` of ``frames``.

        ``window_ids`` label the graphs for row alignment across detectors;
        by default the start rows themselves.
        """
        return self.build_with_graphs(frames, starts, window_ids)[0]

    def build_with_graphs(
        self, frames: Frames, starts: np.ndarray, window_ids: np.ndarray | None = None
    ) -> tuple[Batch, WindowGraphs]:
        """:meth:`build`, and the raw graphs it normalised (what :meth:`features` returns)."""
        starts = validate_starts(frames, starts, self.spec.size)
        window_ids = starts if window_ids is None else np.asarray(window_ids, np.int64)
        if window_ids.shape != starts.shape:
            raise ConfigError(f"window_ids has shape {window_ids.shape}, starts {starts.shape}")
        graphs = compute_window_graphs(
            frames, starts, self.spec.size, self._table,
            node_features=self.node_features, edge_features=self.edge_features,
        )
        label, attack_type = window_labels(frames, starts, self.spec.size)
        x, edge_attr = graphs.x, graphs.edge_attr
        if self.normalizer is not None:
            x = self.normalizer.normalize_nodes(x)
            edge_attr = self.normalizer.normalize_edges(edge_attr)
        return graphs_to_batch(graphs, x, edge_attr, label, attack_type, window_ids), graphs

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays (``np.savez``-safe, no pickle): spec, representation, vocabulary, normaliser.

        A per-capture ``reference`` is data, not model, and is not saved.
        """
        out = {
            "spec": np.array([self.spec.size, self.spec.stride], np.int64),
            "representation": np.asarray(self.representation.to_json()),
        }
        out.update({f"vocab.{k}": v for k, v in self.vocab.to_arrays().items()})
        if self.normalizer is not None:
            out.update({f"normalizer.{k}": v for k, v in self.normalizer.to_arrays().items()})
        return out

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> WindowGraphBuilder:
        def part(prefix: str) -> dict[str, np.ndarray]:
            return {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}

        size, stride = (int(v) for v in arrays["spec"])
        norm = part("normalizer.")
        rep = arrays["representation"] if "representation" in arrays else None
        return cls(
            vocab=IdVocabulary.from_arrays(part("vocab.")),
            spec=WindowSpec(size, stride),
            normalizer=FeatureNormalizer.from_arrays(norm) if norm else None,
            representation=GraphRepresentation.from_json(str(rep)) if rep is not None else ABSOLUTE,
        )

    def fingerprint(self) -> str:
        """sha256 of everything that shapes the graphs: equal iff equal batches."""
        h = hashlib.sha256(b"WindowGraphBuilder/2")
        h.update(repr((self.spec, self.representation)).encode())
        h.update(self.vocab.fingerprint().encode())
        h.update((self.normalizer.fingerprint() if self.normalizer else "raw").encode())
        h.update((self.reference.fingerprint() if self.reference is not None else "vocabulary").encode())
        return h.hexdigest()
