"""Fusion training fed from the prediction store, from memory, or from fresh forward passes.

All three variants train the same ``DQNFusion`` (same seed, E epochs, no
early stopping) on the same fusion-split windows; only where the two
detectors' outputs come from differs:

* **from the store**: both outputs read from the disk store (``store.get``),
  as a second run on the same data does;
* **from memory**: the outputs already in a dict, computed earlier in the
  same process, as a pipeline without a store would keep them: no I/O;
* **recomputed**: both detectors run over the windows again, graphs built
  batch by batch, through ``run_detector`` (``Trainer.predict``), as
  ``predict_split`` does without a store: what a first run, or any run
  without a store, pays.

Every variant then calibrates, encodes the states and fits the DQN the same
way. (A run recomputes the outputs once, not every DQN epoch: no pipeline
without a store would do that, so no variant does.) The three must give
the same Q-network.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np
import pytest
import torch
from fusioncore_dqn import DQNFusion
from torch.utils.data import DataLoader

from fusioncore.contracts import DetectorOutput, FusionData
from fusioncore.pipeline.detectors import prediction_key, run_detector

from .common import BenchSizes, describe
from .system import DETECTORS, SEED, TRAINING, TrainedSystem, fusion_data

COMPARISON = "fusion training inputs"
STORE, MEMORY, RECOMPUTED = "from the store", "from memory", "recomputed by forward passes"


@attrs.frozen(eq=False)
class StoreCase:
    """The fusion-split windows every variant trains on, their outputs and store keys."""

    loader: DataLoader  #: builds the window graphs batch by batch, as the data module's loaders do
    labels: np.ndarray
    keys: dict[str, str]  #: detector -> store key of its output on these windows
    outputs: dict[str, DetectorOutput]  #: the same outputs, kept in memory


class _BuildWindows:
    """collate_fn: window indices -> a graph batch (graphs are built on every pass)."""

    def __init__(self, system: TrainedSystem, starts: np.ndarray) -> None:
        self.builder, self.frames, self.starts = system.dm.builder, system.dm.splits["fusion"].frames, starts

    def __call__(self, indices: Sequence[int]):
        idx = np.asarray(indices, dtype=np.int64)
        return self.builder.build(self.frames, self.starts[idx], window_ids=idx)


@pytest.fixture(scope="module")
def case(system: TrainedSystem, sizes: BenchSizes) -> StoreCase:
    return make_case(system, sizes.store_windows)


def make_case(system: TrainedSystem, windows: int | None) -> StoreCase:
    """The first ``windows`` windows of the fusion split (all if None), their outputs in the store."""
    split = system.dm.splits["fusion"]
    n = len(split) if windows is None else min(windows, len(split))
    starts = split.starts[:n]
    loader = DataLoader(range(n), batch_size=system.dm.batch_size, collate_fn=_BuildWindows(system, starts))
    data_id = f"{system.dm.fingerprint('fusion')}/first-{n}"
    keys, outputs = {}, {}
    for name in DETECTORS:
        model = system.detectors[name].model
        keys[name] = prediction_key(model.fingerprint(), data_id, "fusion")
        outputs[name] = run_detector(model, loader, TRAINING)
        system.store.put(keys[name], outputs[name].to_arrays())
    return StoreCase(loader=loader, labels=split.labels[:n], keys=keys, outputs=outputs)


def _no_validation(data: FusionData) -> FusionData:
    """No validation split: every variant times the training epochs alone."""
    return FusionData(
        states=data.states[:0], scores=data.scores[:0], labels=data.labels[:0],
        detectors=data.detectors, state_names=data.state_names,
    )


def _train(system: TrainedSystem, case: StoreCase, outputs: dict[str, DetectorOutput],
           epochs: int) -> DQNFusion:
    train = fusion_data(outputs, case.labels, system.calibrators, system.encoder)
    return DQNFusion(epochs=epochs, patience=None, seed=SEED, min_steps=0).fit(train, _no_validation(train))


def from_store(system: TrainedSystem, case: StoreCase, epochs: int) -> DQNFusion:
    outputs = {n: DetectorOutput.from_arrays(system.store.get(case.keys[n])) for n in DETECTORS}
    return _train(system, case, outputs, epochs)


def from_memory(system: TrainedSystem, case: StoreCase, epochs: int) -> DQNFusion:
    return _train(system, case, dict(case.outputs), epochs)


def recomputed(system: TrainedSystem, case: StoreCase, epochs: int) -> DQNFusion:
    outputs = {n: run_detector(system.detectors[n].model, case.loader, TRAINING) for n in DETECTORS}
    return _train(system, case, outputs, epochs)


VARIANTS = {
    STORE: (from_store, "reads both detectors' outputs from the disk store (store.get), then trains",
            [RECOMPUTED]),
    MEMORY: (from_memory, "takes both detectors' outputs from a dict already in memory, then trains",
             [STORE, RECOMPUTED]),
    RECOMPUTED: (recomputed, "builds the window graphs and runs both detectors' forward passes "
                 "(run_detector: Trainer.predict, as predict_split without a store), then trains", []),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_fusion_training_inputs(benchmark, variant, system, case, source, sizes):
    func, does, baselines = VARIANTS[variant]
    n, epochs = len(case.labels), sizes.store_epochs
    describe(benchmark, comparison=COMPARISON, case=f"{n} fusion windows, {epochs} DQN epochs",
             variant=variant, does=does, baselines=baselines, items=n, unit="windows", source=source,
             work=f"calibrate, encode and fit DQNFusion (seed {SEED}, {epochs} epochs, no early stopping) "
                  f"on the first {n} windows of the fusion split",
             windows=n, epochs=epochs)
    slow = variant == RECOMPUTED
    # a warm-up round for the fast variants: the first fit of the session pays one-off costs
    fusion = benchmark.pedantic(func, args=(system, case, epochs),
                                rounds=sizes.slow_rounds if slow else sizes.rounds,
                                warmup_rounds=0 if slow else min(1, sizes.rounds - 1))
    assert len(fusion.history) == epochs
    # same seed, same detector outputs: where they come from changes the cost, never the result
    reference = from_memory(system, case, epochs)
    probe = torch.from_numpy(np.c_[system.fusion_data.states, system.fusion_data.scores])
    torch.testing.assert_close(fusion.q_net(probe), reference.q_net(probe))
