"""DQN fusion training over cached states: vectorised, per sample, and the predecessor's way.

Every variant trains on the same synthetic cached states (15-D, like the
predecessor's state; plus the two calibrated scores and a label) for the
same number of epochs:

* ``DQNFusion`` (vectorised), through its whole ``fit`` (Trainer set-up
  included): per epoch ceil(N / 512) steps, each a batch of 512 states
  handled at once and one Adam step on a minibatch of 512;
* the same updates one sample at a time (:mod:`benchmarks.per_sample_dqn`):
  the same steps and batch size, a Python loop per state for the action,
  reward and replay push;
* the predecessor's approach as ``../shared/BRIEF.md`` section 5 describes
  it, reimplemented (:mod:`benchmarks.predecessor_dqn`): one window per
  step, one Adam step on a 64-transition minibatch per window. It does the
  same windows and epochs with more, smaller optimiser steps; the summary
  row says so.

The states are as many as the slowest variant finishes in a round.
"""

from __future__ import annotations

import numpy as np
import pytest
from fusioncore_dqn import DQNFusion

from fusioncore.contracts import FusionData

from .common import BenchSizes, describe
from .per_sample_dqn import dqn_steps, per_sample_training
from .predecessor_dqn import predecessor_training
from .system import SEED

COMPARISON = "fusion training"
STATE_DIM = 15
BATCH = 512  # DQNFusion's default batch_size
VECTORISED, PER_SAMPLE, PREDECESSOR = (
    "DQNFusion (vectorised)", "same updates, per-sample loop", "predecessor's approach (reimplemented)",
)


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
    return cached_states(sizes.dqn_states)


def _no_validation(data: FusionData) -> FusionData:
    return FusionData(states=data.states[:0], scores=data.scores[:0], labels=data.labels[:0],
                      detectors=data.detectors)


def _tags(states: FusionData, sizes: BenchSizes) -> dict:
    n, epochs = len(states), sizes.dqn_epochs
    return dict(
        comparison=COMPARISON, case=f"{n:,} cached states, {epochs} epoch(s)", items=n * epochs,
        unit="state-epochs",
        work=f"train a DQN fusion (21 actions, 64x64 Q-network, asymmetric reward, gamma 0) for "
             f"{epochs} epoch(s) over {n:,} synthetic 15-D cached states",
        note="states shrunk until the predecessor-style loop finishes a round" if n < 100_000 else "",
    )


def test_vectorised(benchmark, states, source, sizes):
    steps = dqn_steps(len(states), BATCH, sizes.dqn_epochs)
    describe(benchmark, variant=VECTORISED, source=source, baselines=[PER_SAMPLE, PREDECESSOR],
             does=f"DQNFusion.fit, Trainer set-up included: {steps} steps of a {BATCH}-state batch "
                  "(actions, rewards, replay push and minibatch all as tensors)",
             steps=steps, **_tags(states, sizes))

    def fit() -> DQNFusion:
        # min_steps=0: exactly ceil(n / batch) steps per epoch, the work the other variants do
        fusion = DQNFusion(epochs=sizes.dqn_epochs, patience=None, seed=SEED, min_steps=0)
        return fusion.fit(states, _no_validation(states))

    fusion = benchmark.pedantic(fit, rounds=sizes.rounds, warmup_rounds=1)
    assert len(fusion.history) == sizes.dqn_epochs and np.isfinite(fusion.history[-1].train_reward)


def test_per_sample(benchmark, states, source, sizes):
    steps = dqn_steps(len(states), BATCH, sizes.dqn_epochs)
    describe(benchmark, variant=PER_SAMPLE, source=source, baselines=[PREDECESSOR],
             does=f"the same {steps} steps of {BATCH}: a Python loop per state (one forward pass, "
                  "reward, deque push), then a 512-transition minibatch and one Adam step",
             steps=steps, **_tags(states, sizes))
    result = benchmark.pedantic(per_sample_training, args=(states,),
                                kwargs=dict(epochs=sizes.dqn_epochs, batch_size=BATCH, seed=SEED),
                                rounds=sizes.slow_rounds)
    assert (result.steps, result.batch_size) == (steps, BATCH)  # the same updates as DQNFusion
    assert np.isfinite(result.mean_reward)


def test_predecessor(benchmark, states, source, sizes):
    steps = len(states) * sizes.dqn_epochs - 63
    describe(benchmark, variant=PREDECESSOR, source=source,
             does="one window per step in a Python loop: epsilon-greedy forward pass, reward, deque push, "
                  f"random.sample of 64 and one Adam step per window ({steps:,} steps of 64, where DQNFusion "
                  f"takes {dqn_steps(len(states), BATCH, sizes.dqn_epochs):,} of {BATCH}), target network "
                  "synced every 100 steps (BRIEF section 5, reimplemented)",
             steps=steps, **_tags(states, sizes))
    result = benchmark.pedantic(predecessor_training, args=(states,),
                                kwargs=dict(epochs=sizes.dqn_epochs, seed=SEED), rounds=sizes.slow_rounds)
    assert result.steps == steps  # one per window once 64 are buffered
    assert np.isfinite(result.mean_reward)
