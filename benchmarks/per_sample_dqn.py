"""``DQNFusion``'s training updates written one sample at a time (the benchmark's baseline).

The same optimiser steps as :class:`fusioncore_dqn.DQNFusion` with the same
batch size: every epoch a seeded permutation of the states cut into batches
of ``batch_size``; for each state of a batch, one at a time, an
epsilon-greedy action (one forward pass of one state), the reward of the
fused decision and a push into a ``deque`` replay buffer; then one minibatch
of ``batch_size`` transitions drawn with replacement, stacked, and one Adam
step on the Huber loss. Same Q-network, action grid, epsilon schedule,
reward and loss as ``fusioncore_dqn``; only the Python loop per sample
differs (and there is no Lightning ``Trainer`` around it). Never use it for
training: it exists to be timed.
"""

from __future__ import annotations

import math
import random
from collections import deque

import attrs
import torch
from fusioncore_dqn.actions import simplex_grid
from fusioncore_dqn.module import build_q_network
from fusioncore_dqn.rewards import asymmetric
from torch.nn import functional as F

from fusioncore.contracts import FusionData

__all__ = ["LoopResult", "dqn_steps", "per_sample_training"]


@attrs.frozen
class LoopResult:
    steps: int  #: optimiser steps taken
    batch_size: int  #: transitions per optimiser step
    mean_reward: float  #: of the actions taken


def dqn_steps(n: int, batch_size: int, epochs: int) -> int:
    """Optimiser steps ``DQNFusion.fit`` takes without early stopping: one per batch per epoch."""
    return math.ceil(n / batch_size) * epochs


def per_sample_training(
    data: FusionData,
    *,
    epochs: int,
    batch_size: int = 512,
    k: int = 21,
    hidden: tuple[int, ...] = (64, 64),
    lr: float = 1e-3,
    threshold: float = 0.5,
    epsilon_start: float = 1.0,
    epsilon_end: float = 0.05,
    epsilon_decay: float = 0.5,
    buffer_size: int = 100_000,
    seed: int = 0,
) -> LoopResult:
    """``epochs`` epochs over ``data``, ``DQNFusion``'s defaults, with a Python loop per sample."""
    rng = random.Random(seed)
    generator = torch.Generator().manual_seed(seed)
    actions = simplex_grid(data.scores.shape[1], k)
    inputs = torch.cat([torch.from_numpy(data.states), torch.from_numpy(data.scores)], dim=1).float()
    scores, labels = torch.from_numpy(data.scores).float(), torch.from_numpy(data.labels)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        q_net = build_q_network(inputs.shape[1], hidden, len(actions))
    optimizer = torch.optim.Adam(q_net.parameters(), lr=lr)
    reward_fn = asymmetric()
    replay: deque[tuple[torch.Tensor, int, float]] = deque(maxlen=buffer_size)
    total_steps = max(1, dqn_steps(len(data), batch_size, epochs))
    step, total = 0, 0.0
    for _ in range(epochs):
        for batch in torch.randperm(len(data), generator=generator).split(batch_size):
            progress = min(1.0, step / (epsilon_decay * total_steps)) if epsilon_decay > 0 else 1.0
            epsilon = epsilon_start + (epsilon_end - epsilon_start) * progress
            for i in batch.tolist():
                state = inputs[i]
                if rng.random() < epsilon:
                    action = rng.randrange(len(actions))
                else:
                    with torch.no_grad():
                        action = int(q_net(state[None]).argmax())
                fused = (actions[action] * scores[i]).sum().clamp(0.0, 1.0)
                reward = float(reward_fn((fused > threshold)[None], labels[i : i + 1], fused[None]))
                replay.append((state, action, reward))
                total += reward
            sample = rng.choices(replay, k=batch_size)
            states = torch.stack([s for s, _, _ in sample])
            taken = torch.tensor([a for _, a, _ in sample])
            rewards = torch.tensor([r for _, _, r in sample])
            q = q_net(states).gather(1, taken[:, None]).squeeze(1)
            loss = F.smooth_l1_loss(q, rewards)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
    return LoopResult(steps=step, batch_size=batch_size, mean_reward=total / max(len(data) * epochs, 1))
