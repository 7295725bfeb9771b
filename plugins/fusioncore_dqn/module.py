"""The DQN's Lightning side: Q-network, batch iterables and the training step.

One training step handles a whole batch of cached windows at once: greedy
Q-values for all of them, a vectorised epsilon-greedy choice, fused scores and
rewards for all of them, one indexed write into the replay buffer, one sampled
minibatch and one gradient step. Nothing loops over windows in Python.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator

import attrs
import pytorch_lightning as pl
import torch
from torch import nn
from torch.nn import functional as F

from fusioncore import RewardFunction
from fusioncore.evaluation import best_mcc_threshold
from fusioncore.evaluation.metrics import mcc_from_counts
from fusioncore.nn import mlp
from fusioncore_dqn.config import DQNConfig
from fusioncore_dqn.replay import ReplayBuffer, Transitions

__all__ = [
    "Batch",
    "DQNModule",
    "EpochStats",
    "FusionTensors",
    "SequentialBatches",
    "ShuffledBatches",
    "build_q_network",
]


def build_q_network(in_dim: int, hidden: tuple[int, ...], n_actions: int) -> nn.Sequential:
    """MLP ``in_dim -> hidden... -> n_actions`` with ReLU between layers."""
    return mlp(in_dim, hidden, n_actions)


@attrs.frozen(eq=False)
class FusionTensors:
    """One split as tensors: Q-network inputs, detector scores, labels."""

    inputs: torch.Tensor  #: float[N, d]
    scores: torch.Tensor  #: float[N, m], in [0, 1]
    labels: torch.Tensor  #: long[N]

    def __len__(self) -> int:
        return len(self.labels)


@attrs.frozen(eq=False)
class Batch:
    """Rows of a split; ``next_inputs`` / ``done`` only when gamma > 0."""

    inputs: torch.Tensor
    scores: torch.Tensor
    labels: torch.Tensor
    next_inputs: torch.Tensor | None = None
    done: torch.Tensor | None = None


class ShuffledBatches:
    """``passes`` fresh seeded permutations per epoch, cut into batches gathered by index.

    Deliberately not a ``DataLoader``: its default collation would index one
    window at a time. With ``with_next`` the successor of row i is row i + 1
    (the next window in order) and the last row has none. ``passes > 1``
    gives a small fusion set enough gradient steps per epoch (see
    ``DQNConfig.min_steps``).
    """

    def __init__(
        self, data: FusionTensors, batch_size: int, seed: int, *, with_next: bool = False,
        passes: int = 1,
    ) -> None:
        self.data, self.batch_size, self.with_next = data, batch_size, with_next
        self.passes = max(1, int(passes))
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return math.ceil(self.passes * len(self.data) / self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        n = len(self.data)
        order = torch.cat([torch.randperm(n, generator=self.generator) for _ in range(self.passes)])
        for idx in order.split(self.batch_size):
            nxt = (idx + 1).clamp(max=n - 1) if self.with_next else None
            yield Batch(
                inputs=self.data.inputs[idx],
                scores=self.data.scores[idx],
                labels=self.data.labels[idx],
                next_inputs=self.data.inputs[nxt] if nxt is not None else None,
                done=(idx == n - 1) if self.with_next else None,
            )


class SequentialBatches:
    """The split in order, in large chunks (for validation)."""

    def __init__(self, data: FusionTensors, chunk: int = 65_536) -> None:
        self.data, self.chunk = data, chunk

    def __len__(self) -> int:
        return math.ceil(len(self.data) / self.chunk)

    def __iter__(self) -> Iterator[Batch]:
        for start in range(0, len(self.data), self.chunk):
            end = start + self.chunk
            yield Batch(
                self.data.inputs[start:end], self.data.scores[start:end],
                self.data.labels[start:end],
            )


@attrs.frozen
class EpochStats:
    """What one training epoch did (validation metrics are None without a val split)."""

    epoch: int
    seconds: float  #: wall time of the epoch, its validation pass included
    train_reward: float  #: mean reward of the actions taken (exploration included)
    epsilon: float  #: exploration rate at the end of the epoch
    val_reward: float | None = None  #: mean reward of the greedy policy
    val_mcc: float | None = None  #: MCC of the greedy policy at the training threshold (None: one class)


class DQNModule(pl.LightningModule):
    """Q-network training over cached fusion states (see :class:`~fusioncore_dqn.dqn.DQNFusion`)."""

    def __init__(
        self,
        q_net: nn.Module,
        actions: torch.Tensor,
        reward: RewardFunction,
        config: DQNConfig,
        total_steps: int,
    ) -> None:
        super().__init__()
        self.q_net = q_net
        self.target_net = copy.deepcopy(q_net).requires_grad_(False)
        self.register_buffer("actions", actions)
        self.reward = reward
        self.config = config
        self.total_steps = max(1, total_steps)
        self.buffer: ReplayBuffer | None = None
        self.generator: torch.Generator | None = None
        self.history: list[EpochStats] = []
        self.best_metric = -math.inf
        self.best_weights: dict[str, torch.Tensor] | None = None
        #: the decision threshold rewards are computed at; with decision="val" it follows the
        #: best-MCC threshold of the greedy policy on validation (the one the core deploys)
        self.threshold = float(config.threshold)
        self.best_threshold = self.threshold
        self._val_parts: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._epoch_start = 0.0
        # Accumulated on the module's device (created in on_fit_start): no host sync per step.
        self._train_reward = torch.zeros(2, dtype=torch.float64)  # (sum, count)
        self._last_val: tuple[float, float] | None = None

    # -------------------------------------------------------------- policy
    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.q_net(inputs)

    def fused(self, actions: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """Fused score of each row under its chosen action's weights."""
        return (self.actions[actions] * scores).sum(dim=1).clamp(0.0, 1.0)

    def outcome(
        self, actions: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(fused, decision, reward)`` of each row's action.

        The reward sees the decision taken from the fused score, never the
        action index: a high alpha is not "saying attack".
        """
        fused = self.fused(actions, scores)
        decision = fused > self.threshold
        return fused, decision, self.reward(decision, labels, fused).float()

    def training_outcome(
        self, actions: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        """The reward of each row's action in training: the deployed decision, with a margin.

        An attack counts as caught only if its fused score clears the threshold
        by ``margin``, a benign window as passed only if it stays ``margin``
        below it: the policy is paid for decisions that survive a threshold
        moved by up to ``margin`` (the validation threshold moves as the policy
        learns, and the deployed one is chosen on windows the policy never saw).
        """
        fused = self.fused(actions, scores)
        shift = torch.where(labels.bool(), self.config.margin, -self.config.margin)
        decision = fused > self.threshold + shift
        return self.reward(decision, labels, fused).float()

    def epsilon(self, step: int) -> float:
        """Linear decay from start to end over the first ``epsilon_decay`` share of all steps."""
        cfg = self.config
        horizon = cfg.epsilon_decay * self.total_steps
        progress = 1.0 if horizon <= 0 else min(1.0, step / horizon)
        return cfg.epsilon_start + (cfg.epsilon_end - cfg.epsilon_start) * progress

    # ------------------------------------------------------------ training
    def transfer_batch_to_device(self, batch: Batch, device: torch.device, dataloader_idx: int):
        # Lightning moves tuples / dataclasses itself, but not attrs records.
        return attrs.evolve(
            batch,
            **{
                f.name: value.to(device)
                for f in attrs.fields(Batch)
                if (value := getattr(batch, f.name)) is not None
            },
        )

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.q_net.parameters(), lr=self.config.lr)

    def on_fit_start(self) -> None:
        dim = next(self.q_net.parameters()).shape[1]
        self.buffer = ReplayBuffer(
            self.config.buffer_size, dim, with_next=self.config.gamma > 0, device=self.device
        )
        self.generator = torch.Generator(device=self.device).manual_seed(self.config.seed + 1)
        self.target_net.load_state_dict(self.q_net.state_dict())
        self._train_reward = self._train_reward.to(self.device)

    def on_train_epoch_start(self) -> None:
        self._epoch_start = time.perf_counter()
        self._train_reward.zero_()

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        assert self.buffer is not None and self.generator is not None
        n = len(batch.labels)
        with torch.no_grad():
            greedy = self.q_net(batch.inputs).argmax(dim=1)
            explore = (
                torch.rand(n, generator=self.generator, device=self.device)
                < self.epsilon(self.global_step)
            )
            random = torch.randint(
                len(self.actions), (n,), generator=self.generator, device=self.device
            )
            action = torch.where(explore, random, greedy)
            reward = self.training_outcome(action, batch.scores, batch.labels)
        self.buffer.push(Transitions(batch.inputs, action, reward, batch.next_inputs, batch.done))
        self._train_reward[0] += reward.sum()
        self._train_reward[1] += n

        sample = self.buffer.sample(self.config.replay_minibatch, self.generator)
        q_taken = self.q_net(sample.inputs).gather(1, sample.actions[:, None]).squeeze(1)
        return F.smooth_l1_loss(q_taken, self._targets(sample))

    def _targets(self, sample: Transitions) -> torch.Tensor:
        if self.config.gamma == 0 or sample.next_inputs is None or sample.done is None:
            return sample.rewards  # contextual bandit: the window is the whole episode
        with torch.no_grad():
            next_target = self.target_net(sample.next_inputs)
            if self.config.double:
                # Double DQN: the online net picks the action, the target net values it.
                best = self.q_net(sample.next_inputs).argmax(dim=1, keepdim=True)
                value = next_target.gather(1, best).squeeze(1)
            else:
                value = next_target.max(dim=1).values
            return sample.rewards + self.config.gamma * (~sample.done) * value

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        if self.config.gamma == 0:
            return  # the bandit target never reads the target network
        if self.config.tau is not None:
            with torch.no_grad():
                for target, online in zip(self.target_net.parameters(), self.q_net.parameters()):
                    target.lerp_(online, self.config.tau)
        elif self.global_step % self.config.target_update == 0:
            self.target_net.load_state_dict(self.q_net.state_dict())

    def on_train_epoch_end(self) -> None:
        total, count = self._train_reward.tolist()
        val = self._last_val or (None, None)
        self.history.append(
            EpochStats(
                epoch=self.current_epoch,
                seconds=time.perf_counter() - self._epoch_start,
                train_reward=total / max(count, 1.0),
                epsilon=self.epsilon(self.global_step),
                val_reward=val[0],
                val_mcc=val[1],
            )
        )

    # ---------------------------------------------------------- validation
    def on_validation_epoch_start(self) -> None:
        self._val_parts = []

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        action = self.q_net(batch.inputs).argmax(dim=1)
        self._val_parts.append((self.fused(action, batch.scores), batch.labels))

    def on_validation_epoch_end(self) -> None:
        if not self._val_parts:
            return
        fused = torch.cat([f for f, _ in self._val_parts])
        labels = torch.cat([y for _, y in self._val_parts])
        if self.config.decision == "val":
            # the threshold the core will choose for this policy (same function, same scores)
            self.threshold = best_mcc_threshold(labels.cpu().numpy(), fused.float().cpu().numpy())
        decision = fused > self.threshold
        attack = labels.bool()
        tp, tn = float((decision & attack).sum()), float((~decision & ~attack).sum())
        fp, fn = float((decision & ~attack).sum()), float((~decision & attack).sum())
        val_reward = float(self.reward(decision, labels, fused).double().mean())
        val_mcc = float(mcc_from_counts(tp, fp, tn, fn))  # NaN: the val split holds one class
        self._last_val = (val_reward, None if math.isnan(val_mcc) else val_mcc)
        # Early stopping and weight selection need a number (Lightning stops on NaN); one
        # class gives no evidence either way, so the monitor reads "no skill" (0) there.
        metrics = {"val_reward": val_reward, "val_mcc": 0.0 if math.isnan(val_mcc) else val_mcc}
        self.log_dict(metrics, prog_bar=True)
        current = metrics[self.config.monitor]
        # ties go to the later epoch: on a validation split where every policy is perfect the
        # metric is flat, and the policy trained longer on the fusion set is the one to keep
        if current >= self.best_metric:
            self.best_metric = current
            self.best_threshold = self.threshold
            self.best_weights = {k: v.detach().clone() for k, v in self.q_net.state_dict().items()}
