"""The predecessor's DQN fusion training loop, one sample at a time (the benchmark's baseline).

For every cached state: pick an action epsilon-greedily with one forward pass,
compute the reward of the fused decision, push the transition into a
``deque``, sample a minibatch from it and take one gradient step. Same
Q-network, action grid, reward and Huber loss as ``fusioncore_dqn``; only
the loop differs. Never use it for training: it exists to be timed.
"""

from __future__ import annotations

import random
from collections import deque

import torch
from fusioncore_dqn.actions import simplex_grid
from fusioncore_dqn.module import build_q_network
from fusioncore_dqn.rewards import asymmetric
from torch.nn import functional as F

from fusioncore.contracts import FusionData

__all__ = ["per_sample_epoch"]


def per_sample_epoch(
    data: FusionData,
    *,
    minibatch: int = 64,
    epsilon: float = 0.1,
    threshold: float = 0.5,
    k: int = 21,
    seed: int = 0,
) -> float:
    """One epoch over ``data``, sample by sample; returns the mean reward of the actions taken."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    actions = simplex_grid(data.scores.shape[1], k)
    inputs = torch.cat([torch.from_numpy(data.states), torch.from_numpy(data.scores)], dim=1)
    scores, labels = torch.from_numpy(data.scores), torch.from_numpy(data.labels)
    q_net = build_q_network(inputs.shape[1], (64, 64), len(actions))
    optimizer = torch.optim.Adam(q_net.parameters(), lr=1e-3)
    reward_fn = asymmetric()
    replay: deque[tuple[torch.Tensor, int, float]] = deque(maxlen=100_000)
    total = 0.0
    for i in range(len(data)):
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
        batch = rng.sample(replay, min(minibatch, len(replay)))
        states = torch.stack([b[0] for b in batch])
        taken = torch.tensor([b[1] for b in batch])
        rewards = torch.tensor([b[2] for b in batch])
        q = q_net(states).gather(1, taken[:, None]).squeeze(1)
        loss = F.smooth_l1_loss(q, rewards)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return total / max(len(data), 1)
