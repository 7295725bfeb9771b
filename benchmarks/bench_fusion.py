"""Comparison 5: one DQN training epoch over cached states.

100 k synthetic cached states (15-D, like vgae's 8 + gat's 7 features, plus
the two calibrated scores and a label). The vectorised ``DQNFusion`` runs one
epoch through its whole ``fit`` (Trainer setup included); the per-sample loop
of :mod:`benchmarks.per_sample_dqn` is timed on a few thousand samples and its
time scaled to 100 k (the summary labels it extrapolated): it is linear in
the sample count once its replay buffer holds a minibatch.
"""

from __future__ import annotations

import numpy as np
import pytest
from fusioncore_dqn import DQNFusion

from fusioncore.contracts import FusionData

from .common import BenchSizes, describe
from .per_sample_dqn import per_sample_epoch
from .system import SEED

COMPARISON = "fusion training"
STATE_DIM = 15


def cached_states(n: int, seed: int = 0) -> FusionData:
    """Random states whose scores carry the label, as trained detectors' would."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.15).astype(np.int64)
    scores = np.clip(labels[:, None] * 0.6 + rng.normal(0.2, 0.2, (n, 2)), 0, 1)
    return FusionData(
        states=rng.normal(size=(n, STATE_DIM)), scores=scores, labels=labels, detectors=("vgae", "gat"),
    )


@pytest.fixture(scope="module")
def states(sizes: BenchSizes) -> FusionData:
    return cached_states(sizes.fusion_states)


def _no_validation(data: FusionData) -> FusionData:
    return FusionData(states=data.states[:0], scores=data.scores[:0], labels=data.labels[:0],
                      detectors=data.detectors)


def test_vectorised_epoch(benchmark, states, source, sizes):
    describe(benchmark, comparison=COMPARISON, case=f"{len(states) // 1000} k states, one epoch",
             variant="DQNFusion (vectorised)", role="fast", items=len(states), unit="states",
             source=source)

    def one_epoch() -> DQNFusion:
        return DQNFusion(epochs=1, patience=None, seed=SEED).fit(states, _no_validation(states))

    fusion = benchmark.pedantic(one_epoch, rounds=sizes.rounds, warmup_rounds=1)
    assert len(fusion.history) == 1 and np.isfinite(fusion.history[0].train_reward)


def test_per_sample_epoch(benchmark, states, source, sizes):
    subset = FusionData(states=states.states[: sizes.per_sample_states],
                        scores=states.scores[: sizes.per_sample_states],
                        labels=states.labels[: sizes.per_sample_states], detectors=states.detectors)
    describe(benchmark, comparison=COMPARISON, case=f"{len(states) // 1000} k states, one epoch",
             variant="per-sample loop", role="baseline", items=len(subset), unit="states",
             source=source, scale=len(states) / len(subset))
    mean_reward = benchmark.pedantic(per_sample_epoch, args=(subset,), rounds=sizes.slow_rounds)
    assert np.isfinite(mean_reward)
