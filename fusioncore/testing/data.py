"""Small generated inputs for the conformance suites: real window graphs, fusion data, detector outputs.

:func:`tiny_dataset` simulates a few seconds of one vehicle's traffic with
:mod:`fusioncore.data.synthetic` (benign, flooding, fuzzing and suppression
captures), fits the ID vocabulary and feature normaliser on the benign
training frames exactly as the core's data module does, and serves the
splits as loaders of the same ``torch_geometric`` batches a detector sees in
``fusioncore run``: same node / edge feature names, same ``node_id`` /
``window_id`` / ``y`` fields. It takes well under a second and is cached per
seed.

:func:`make_detector_outputs` and :func:`make_fusion_data` generate what
state encoders and fusion strategies consume, with scores that carry signal
(attacks score higher), so learned components have something to learn.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import attrs
import numpy as np
import torch
from torch.utils.data import DataLoader
from torch_geometric.data import Batch

from fusioncore.contracts import DetectorOutput, FusionData, GraphSchema
from fusioncore.data.frames import Frames
from fusioncore.data.graphs import FeatureNormalizer, WindowGraphBuilder
from fusioncore.data.synthetic import build_fleet, simulate_capture
from fusioncore.data.vocab import IdVocabulary
from fusioncore.data.windows import WindowSpec, window_labels, window_starts

__all__ = ["TinyDataset", "TinySplit", "make_detector_outputs", "make_fusion_data", "tiny_dataset"]

#: Captures per split: (attack, seconds). Attacks cover 5-20 % of an attack file's frames.
_PLAN: Mapping[str, tuple[tuple[str, float], ...]] = {
    "train": (("benign", 5.0), ("flooding", 4.0), ("fuzzing", 4.0), ("suppress", 4.0)),
    "val": (("benign", 3.0), ("flooding", 3.0), ("fuzzing", 3.0)),
    "test": (("benign", 3.0), ("flooding", 3.0), ("fuzzing", 3.0), ("suppress", 3.0)),
}
_EPOCH_US = 1_700_000_000 * 1_000_000


@attrs.frozen(eq=False)
class TinySplit:
    """One split: frames, window start rows and per-window labels."""

    name: str
    frames: Frames
    starts: np.ndarray
    labels: np.ndarray
    attack_types: np.ndarray

    def __len__(self) -> int:
        return len(self.starts)


class _BuildBatch:
    """collate_fn: window indices -> one batch; window ids are the indices (unique per split)."""

    def __init__(self, builder: WindowGraphBuilder, split: TinySplit, ids: np.ndarray) -> None:
        self.builder, self.split, self.ids = builder, split, ids

    def __call__(self, indices: Sequence[int]) -> Batch:
        idx = np.asarray(indices, dtype=np.int64)
        return self.builder.build(self.split.frames, self.split.starts[idx], window_ids=self.ids[idx])


@attrs.frozen(eq=False)
class TinyDataset:
    """Train / val / test window graphs of a few hundred windows, built like the core builds them."""

    builder: WindowGraphBuilder
    splits: Mapping[str, TinySplit]
    batch_size: int = 32

    @property
    def schema(self) -> GraphSchema:
        return self.builder.schema

    def labels(self, split: str, *, benign_only: bool = False) -> np.ndarray:
        labels = self.splits[split].labels
        return labels[labels == 0] if benign_only else labels

    def loader(
        self,
        split: str,
        *,
        benign_only: bool = False,
        shuffle: bool = False,
        seed: int = 0,
        batch_size: int | None = None,
    ) -> DataLoader:
        """Batches of ``split`` (only its benign windows with ``benign_only``), as the core's loaders."""
        data = self.splits[split]
        ids = np.arange(len(data), dtype=np.int64)
        if benign_only:
            keep = data.labels == 0
            data = attrs.evolve(
                data, starts=data.starts[keep], labels=data.labels[keep], attack_types=data.attack_types[keep]
            )
            ids = ids[keep]
        generator = torch.Generator().manual_seed(seed) if shuffle else None
        return DataLoader(
            range(len(data)),
            batch_size=batch_size or self.batch_size,
            shuffle=shuffle,
            generator=generator,
            collate_fn=_BuildBatch(self.builder, data, ids),
        )

    def batches(self, split: str, *, benign_only: bool = False) -> list[Batch]:
        return list(self.loader(split, benign_only=benign_only))


@functools.lru_cache(maxsize=4)
def tiny_dataset(seed: int = 0, *, vehicle: str = "sedan", window_size: int = 100) -> TinyDataset:
    """The tiny dataset for ``seed`` (deterministic; cached, so treat it as read-only)."""
    fleet = {v.name: v for v in build_fleet(seed)}
    spec = WindowSpec(window_size, window_size)
    frames: dict[str, Frames] = {}
    for s, (split, plan) in enumerate(_PLAN.items()):
        parts = []
        for i, (attack, seconds) in enumerate(plan):
            rng = np.random.default_rng([seed, s, i])
            capture = simulate_capture(
                fleet[vehicle],
                attack,
                rng=rng,
                duration=seconds,
                start_us=_EPOCH_US + (10 * s + i) * 100_000_000,
                source=f"{split}/{attack}.csv",
            )
            parts.append(capture.frames)
        frames[split] = Frames.concat(parts)
    benign = frames["train"].take(frames["train"].label == 0)
    builder = WindowGraphBuilder(IdVocabulary.fit(benign), spec)
    train_starts = window_starts(frames["train"], spec)
    builder = builder.with_normalizer(FeatureNormalizer.fit(builder, frames["train"], train_starts))
    splits = {}
    for split, f in frames.items():
        starts = window_starts(f, spec)
        labels, attack_types = window_labels(f, starts, spec.size)
        splits[split] = TinySplit(split, f, starts, labels.astype(np.int64), attack_types.astype(np.int64))
    return TinyDataset(builder, splits)


def make_detector_outputs(
    n: int = 300,
    detectors: Mapping[str, Sequence[str]] | None = None,
    *,
    seed: int = 0,
    attack_share: float = 0.3,
) -> tuple[dict[str, DetectorOutput], np.ndarray]:
    """Aligned outputs of fake detectors on ``n`` windows, and the window labels.

    ``detectors`` maps a detector name to its feature names (default: two
    detectors with different feature sets). Scores and features separate the
    classes, each detector more or less strongly.
    """
    detectors = detectors or {"alpha": ("p_attack", "confidence"), "beta": ("error", "latent_norm", "gap")}
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < attack_share).astype(np.int64)
    window_ids = np.arange(n, dtype=np.int64) * 3 + 7  # not 0..n-1: ids are names, not positions
    outputs = {}
    for j, (name, features) in enumerate(detectors.items()):
        strength = 1.0 + j
        signal = strength * labels + rng.normal(size=n)
        cols = [signal * (k + 1) + rng.normal(scale=0.5, size=n) for k in range(len(features))]
        feats = np.stack(cols, 1) if cols else np.zeros((n, 0))
        outputs[name] = DetectorOutput(
            window_ids=window_ids, score=signal, features=feats, feature_names=tuple(features)
        )
    return outputs, labels


def make_fusion_data(
    n: int = 400, n_detectors: int = 2, *, seed: int = 0, attack_share: float = 0.3, labelled: bool = True
) -> FusionData:
    """A split as a fusion sees it: calibrated scores in [0, 1], standardised states, labels.

    Each detector sees a different share of the attacks well (detector j is
    sharp on attack kind j and weak on the rest), so a fusion that weighs
    detectors per window can beat any single one.
    """
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < attack_share).astype(np.int64)
    kind = rng.integers(n_detectors, size=n)
    logits = rng.normal(size=(n, n_detectors)) - 1.0
    for j in range(n_detectors):
        logits[:, j] += labels * np.where(kind == j, 4.0, 1.0)
    scores = 1.0 / (1.0 + np.exp(-logits))
    states = np.concatenate([logits, rng.normal(size=(n, 1))], axis=1)
    states = (states - states.mean(0)) / states.std(0)
    names = tuple(f"det{j}" for j in range(n_detectors))
    return FusionData(
        states=states,
        scores=scores,
        labels=labels if labelled else np.full(n, -1),
        detectors=names,
        state_names=(*(f"{d}.logit" for d in names), "noise"),
    )
