"""The predecessor's DQN fusion training, reimplemented from its description (a baseline to time).

``../shared/BRIEF.md`` section 5 describes it: a DQN picks alpha per window
from 21 values, with a replay buffer, a target network and epsilon-greedy
exploration; each window is one step with no successor state (a contextual
bandit, gamma = 0). Their code is not available, so this is that
description written plainly, one window at a time in a Python loop: per
window an epsilon-greedy action (one forward pass), the reward of the fused
decision, a push into a ``deque``, then -- once the buffer holds a minibatch
-- ``random.sample`` of ``minibatch`` transitions and one Adam step on the
Huber loss; the target network is synced every ``target_update`` steps
(with gamma = 0 the loss target is the reward, so it is never read: the
sync is the cost the description implies). Epsilon decays multiplicatively
per window. The minibatch of 64 and the decay rate are our choices (the
description gives none). Same Q-network, action grid and reward as
``fusioncore_dqn``. It exists to be timed: never use it for training.
"""

from __future__ import annotations

import copy
import random
from collections import deque

import torch
from fusioncore_dqn.actions import simplex_grid
from fusioncore_dqn.module import build_q_network
from fusioncore_dqn.rewards import asymmetric
from torch.nn import functional as F

from fusioncore.contracts import FusionData

from .per_sample_dqn import LoopResult

__all__ = ["predecessor_training"]


def predecessor_training(
    data: FusionData,
    *,
    epochs: int,
    minibatch: int = 64,
    k: int = 21,
    hidden: tuple[int, ...] = (64, 64),
    lr: float = 1e-3,
    threshold: float = 0.5,
    epsilon_start: float = 1.0,
    epsilon_end: float = 0.05,
    epsilon_decay: float = 0.9995,
    target_update: int = 100,
    buffer_size: int = 100_000,
    seed: int = 0,
) -> LoopResult:
    """``epochs`` passes over the windows in order, one window (and one optimiser step) at a time."""
    rng = random.Random(seed)
    actions = simplex_grid(data.scores.shape[1], k)
    inputs = torch.cat([torch.from_numpy(data.states), torch.from_numpy(data.scores)], dim=1).float()
    scores, labels = torch.from_numpy(data.scores).float(), torch.from_numpy(data.labels)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        q_net = build_q_network(inputs.shape[1], hidden, len(actions))
    target_net = copy.deepcopy(q_net).requires_grad_(False)
    optimizer = torch.optim.Adam(q_net.parameters(), lr=lr)
    reward_fn = asymmetric()
    replay: deque[tuple[torch.Tensor, int, float]] = deque(maxlen=buffer_size)
    epsilon, steps, total = epsilon_start, 0, 0.0
    for _ in range(epochs):
        for i in range(len(data)):
            state = inputs[i]
            if rng.random() < epsilon:
                action = rng.randrange(len(actions))
            else:
                with torch.no_grad():
                    action = int(q_net(state[None]).argmax())
            epsilon = max(epsilon_end, epsilon * epsilon_decay)
            fused = (actions[action] * scores[i]).sum().clamp(0.0, 1.0)
            reward = float(reward_fn((fused > threshold)[None], labels[i : i + 1], fused[None]))
            replay.append((state, action, reward))
            total += reward
            if len(replay) < minibatch:
                continue
            batch = rng.sample(replay, minibatch)
            states = torch.stack([s for s, _, _ in batch])
            taken = torch.tensor([a for _, a, _ in batch])
            rewards = torch.tensor([r for _, _, r in batch])
            q = q_net(states).gather(1, taken[:, None]).squeeze(1)
            loss = F.smooth_l1_loss(q, rewards)  # gamma = 0: the target is the reward itself
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
            if steps % target_update == 0:
                target_net.load_state_dict(q_net.state_dict())
    return LoopResult(steps=steps, batch_size=minibatch, mean_reward=total / max(len(data) * epochs, 1))
