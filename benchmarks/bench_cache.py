"""Comparison 1: what the prediction cache buys fusion training.

Both variants train the same ``DQNFusion`` for E epochs on the fusion split,
through the same ``fit``; only where the detector outputs come from differs:

* **cached**: both detectors' outputs read once from the disk store
  (``store.get``), then E DQN epochs;
* **uncached**: what a pipeline without the store does: every epoch builds
  the window graphs and runs both detectors' forward passes again, encodes
  the states, then one DQN epoch. The forward passes call each detector's
  ``predict_step`` over the loader directly rather than through
  ``fusioncore.pipeline.detectors.run_detector``: that one builds a Lightning
  ``Trainer`` per call, whose fixed cost would inflate the ratio without
  being a forward pass. The recomputation is hooked in through
  ``DQNFusion``'s ``trainer_factory``, so the DQN code path is identical.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import attrs
import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from fusioncore_dqn import DQNFusion
from fusioncore_dqn.module import FusionTensors, ShuffledBatches
from torch.utils.data import DataLoader

from fusioncore.contracts import Detector, DetectorOutput, FusionData
from fusioncore.pipeline.detectors import prediction_key, run_detector

from .common import BenchSizes, describe, sizes_for
from .system import DETECTORS, SEED, TRAINING, TrainedSystem, fusion_data

COMPARISON = "prediction cache"


@attrs.frozen(eq=False)
class CacheCase:
    """The fusion-split windows both variants train on, and their store keys."""

    loader: DataLoader  #: builds the window graphs batch by batch, as the data module's loaders do
    labels: np.ndarray
    keys: dict[str, str]  #: detector -> store key of its output on these windows


class _BuildWindows:
    """collate_fn: window indices -> a graph batch (graphs are rebuilt on every pass)."""

    def __init__(self, system: TrainedSystem, starts: np.ndarray) -> None:
        self.builder, self.frames, self.starts = system.dm.builder, system.dm.splits["fusion"].frames, starts

    def __call__(self, indices: Sequence[int]):
        idx = np.asarray(indices, dtype=np.int64)
        return self.builder.build(self.frames, self.starts[idx], window_ids=idx)


@pytest.fixture(scope="module")
def case(system: TrainedSystem, sizes: BenchSizes) -> CacheCase:
    return make_case(system, sizes.cache_windows)


def make_case(system: TrainedSystem, windows: int | None) -> CacheCase:
    """The first ``windows`` windows of the fusion split (all if None), their outputs in the store."""
    split = system.dm.splits["fusion"]
    n = len(split) if windows is None else min(windows, len(split))
    starts = split.starts[:n]
    loader = DataLoader(range(n), batch_size=system.dm.batch_size, collate_fn=_BuildWindows(system, starts))
    data_id = f"{system.dm.fingerprint('fusion')}/first-{n}"
    keys = {}
    for name in DETECTORS:
        model = system.detectors[name].model
        keys[name] = prediction_key(model.fingerprint(), data_id, "fusion")
        system.store.put(keys[name], run_detector(model, loader, TRAINING).to_arrays())
    return CacheCase(loader=loader, labels=split.labels[:n], keys=keys)


def _empty_like(data: FusionData) -> FusionData:
    """No validation split: both variants time training epochs only."""
    return FusionData(
        states=data.states[:0], scores=data.scores[:0], labels=data.labels[:0],
        detectors=data.detectors, state_names=data.state_names,
    )


def cached_training(system: TrainedSystem, case: CacheCase, epochs: int) -> DQNFusion:
    outputs = {n: DetectorOutput.from_arrays(system.store.get(case.keys[n])) for n in DETECTORS}
    train = fusion_data(outputs, case.labels, system.calibrators, system.encoder)
    fusion = DQNFusion(epochs=epochs, patience=None, seed=SEED)
    return fusion.fit(train, _empty_like(train))


class _RecomputeEachEpoch:
    """The DQN's batches, with the detector outputs recomputed at the start of every epoch after
    the first (the first epoch uses the outputs computed just before ``fit``).

    ``__iter__`` is a generator, so the work happens when an epoch asks for its first batch:
    Lightning also calls ``iter()`` once up front just to check the object is iterable.
    """

    def __init__(self, batches: ShuffledBatches, recompute: Callable[[], FusionTensors]) -> None:
        self.batches, self.recompute, self.epochs = batches, recompute, 0

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator:
        if self.epochs:
            self.batches.data = self.recompute()
        self.epochs += 1
        yield from self.batches


def forward_passes(model: Detector, loader: DataLoader) -> DetectorOutput:
    """A detector over every batch of ``loader``: the graphs are built and the model run again."""
    model.eval()
    with torch.inference_mode():
        return DetectorOutput.concat([model.predict_step(batch, i) for i, batch in enumerate(loader)])


def uncached_training(system: TrainedSystem, case: CacheCase, epochs: int) -> DQNFusion:
    models = {n: system.detectors[n].model for n in DETECTORS}
    threads = torch.get_num_threads()

    def recompute_data() -> FusionData:
        # DQNFusion.fit runs on one thread (cpu_threads=1); the detectors get all of them back,
        # as in the pass that filled the store
        inside_fit = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            outputs = {n: forward_passes(models[n], case.loader) for n in DETECTORS}
        finally:
            torch.set_num_threads(inside_fit)
        return fusion_data(outputs, case.labels, system.calibrators, system.encoder)

    def recompute() -> FusionTensors:
        data = recompute_data()
        scores = torch.from_numpy(data.scores)
        # include_scores=True (the default): the Q-network sees states and scores
        inputs = torch.cat([torch.from_numpy(data.states), scores], dim=1)
        return FusionTensors(inputs, scores, torch.from_numpy(data.labels))

    wrapped: list[_RecomputeEachEpoch] = []

    class RecomputingTrainer(pl.Trainer):
        def fit(self, model, train_dataloaders=None, val_dataloaders=None, **kwargs):
            wrapped.append(_RecomputeEachEpoch(train_dataloaders, recompute))
            return super().fit(model, train_dataloaders=wrapped[0], val_dataloaders=val_dataloaders, **kwargs)

    train = recompute_data()
    fusion = DQNFusion(epochs=epochs, patience=None, seed=SEED, trainer_factory=RecomputingTrainer)
    fusion.fit(train, _empty_like(train))
    if wrapped[0].epochs != epochs:  # E forward passes in all: one before fit, one per later epoch
        raise RuntimeError(f"uncached variant trained {wrapped[0].epochs} epochs, not {epochs}")
    return fusion


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "epochs" in metafunc.fixturenames:
        metafunc.parametrize("epochs", sizes_for(metafunc.config).cache_epochs, ids=lambda e: f"E{e}")


def test_cached(benchmark, system, case, epochs, source, sizes):
    describe(benchmark, comparison=COMPARISON, case=f"E={epochs}", variant="outputs from the store",
             role="fast", items=len(case.labels) * epochs, unit="window-epochs", source=source,
             windows=len(case.labels), epochs=epochs)
    fusion = benchmark.pedantic(cached_training, args=(system, case, epochs), rounds=sizes.rounds)
    assert len(fusion.history) == epochs


def test_uncached(benchmark, system, case, epochs, source, sizes):
    describe(benchmark, comparison=COMPARISON, case=f"E={epochs}", variant="forward passes every epoch",
             role="baseline", items=len(case.labels) * epochs, unit="window-epochs", source=source,
             windows=len(case.labels), epochs=epochs)
    # one round of E = 50 already takes a minute or more, and its median is steady
    rounds = sizes.slow_rounds if epochs < 50 else 1
    fusion = benchmark.pedantic(uncached_training, args=(system, case, epochs), rounds=rounds)
    assert len(fusion.history) == epochs
    # same seed, same outputs: the recomputation changes the cost, never the result
    reference = cached_training(system, case, epochs)
    probe = torch.from_numpy(np.c_[system.fusion_data.states, system.fusion_data.scores])
    torch.testing.assert_close(fusion.q_net(probe), reference.q_net(probe))
