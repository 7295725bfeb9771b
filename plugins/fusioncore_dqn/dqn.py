"""DQN fusion: a Q-network picks each window's detector weights from a fixed grid."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping

from fusioncore import ConfigError, FusionData, FusionStrategy, NotFittedError, RewardFunction
from fusioncore_dqn.actions import simplex_grid
from fusioncore_dqn.config import DQNConfig
from fusioncore_dqn.module import (
    DQNModule,
    EpochStats,
    FusionTensors,
    SequentialBatches,
    ShuffledBatches,
    build_q_network,
)
from fusioncore_dqn.rewards import resolve_reward

__all__ = ["DQNFusion", "NotFittedError"]

_CHUNK = 65_536  # rows per forward pass when fusing: bounds memory, not a per-window loop


class DQNFusion(FusionStrategy):
    """Per-window detector weights chosen by a DQN over cached detector outputs.

    **Actions.** With 2 detectors, action i is ``alpha = i / (k - 1)`` and the
    fused score is ``(1 - alpha) * s0 + alpha * s1`` (``k = 21``: the
    predecessor's ``linspace(0, 1, 21)``). With m > 2 detectors the actions are
    the regular grid of the probability simplex with ``k`` levels per axis
    (every weight vector whose entries are multiples of ``1/(k-1)`` summing to
    1; :func:`~fusioncore_dqn.actions.simplex_grid`): it reduces exactly to the
    alpha grid for m = 2, treats all detectors alike, keeps the fused score a
    convex combination (so it stays in [0, 1]), and has ``C(k+m-2, m-1)``
    actions (231 for m = 3).

    **Problem.** With ``gamma = 0`` (default) each window is one step with no
    successor: a contextual bandit, and the Q-network regresses the expected
    reward of each action in each state. ``gamma > 0`` treats the next window
    in order as the successor state (file boundaries are invisible here).
    Q-network inputs are the state (plus the m calibrated scores when
    ``include_scores``: whether the detectors agree decides how much the
    weight matters).

    **Reward.** Computed on the decision the deployed system takes from the
    fused score, never on the action index (``reward``: a RewardFunction
    object or a bundled name, ``asymmetric`` by default, with
    ``reward_params``). The core deploys ``fused > t`` with ``t`` the best-MCC
    threshold of the fused scores on validation; with ``decision="val"``
    (default) the reward uses that same ``t``: it starts at ``threshold`` and
    after every validation pass becomes the threshold the core would choose
    for the current greedy policy (the same function on the same scores), so
    the policy learns for the decision it will be judged by, not for a fixed
    0.5. ``decision="fixed"`` keeps ``threshold`` throughout. In training an
    attack counts as caught only ``margin`` above ``t`` and a benign window
    as passed only ``margin`` below it, so decisions survive a moved
    threshold.

    **Training** (vectorised, no Python loop per window): each step takes a
    batch of cached states, picks all actions at once (epsilon-greedy,
    epsilon linear from ``epsilon_start`` to ``epsilon_end`` over the first
    ``epsilon_decay`` share of all steps), rewards them at once, pushes them
    into a tensor ring buffer, samples a minibatch and takes one Adam step on
    the Huber loss. A small fusion set is passed over several times per
    epoch so a fit takes at least ``min_steps`` gradient steps. Target
    network: hard sync every ``target_update`` steps, or soft updates with
    ``tau``; Double DQN target when ``double`` (both only matter with
    ``gamma > 0``). Early stopping watches ``monitor``
    (``val_reward`` or ``val_mcc`` of the greedy policy) with ``patience``
    epochs (ties go to the later epoch: on a validation split every policy
    may be perfect on), and the best epoch's weights and threshold are restored.

    **Design.** A FusionStrategy that owns a :class:`DQNModule` and builds a
    ``pl.Trainer`` in ``fit``, rather than one class inheriting both: the
    FusionStrategy ``state_dict`` (weights + config, to rebuild from nothing)
    and nn.Module's ``state_dict`` (which Lightning, ``deepcopy`` and the
    target-network sync rely on) have different meanings and signatures, and
    one class cannot honour both.

    ``cpu_threads`` (default 1) sets torch's intra-op threads for the
    duration of ``fit`` only: the Q-network is tiny, so extra threads only add
    synchronisation (100k states, batch 512, on a busy 2-core machine:
    0.35-1 s per epoch with 1 thread, 13-20 s with 2); ``None`` leaves the setting.

    ``seed`` fixes the initial weights (drawn inside a forked RNG, so global
    RNG state is untouched), the shuffling, exploration and replay sampling:
    the same seed and data give the same policy. ``accelerator`` /
    ``progress`` go to the Trainer; ``trainer_factory(**kwargs)`` replaces
    ``pl.Trainer`` (it receives the keyword arguments this class would use).
    """

    name = "dqn"
    trainable = True

    def __init__(
        self,
        *,
        reward: str | RewardFunction = "asymmetric",
        reward_params: Mapping[str, Any] | None = None,
        threshold: float = 0.5,
        decision: str = "val",
        margin: float = 0.05,
        k: int = 21,
        hidden: int | Sequence[int] = (64, 64),
        include_scores: bool = True,
        lr: float = 1e-3,
        batch_size: int = 512,
        minibatch_size: int | None = None,
        epochs: int = 20,
        min_steps: int = 1000,
        gamma: float = 0.0,
        epsilon_start: float = 1.0,
        epsilon_end: float = 0.05,
        epsilon_decay: float = 0.5,
        target_update: int = 100,
        tau: float | None = None,
        double: bool = True,
        buffer_size: int = 100_000,
        patience: int | None = 5,
        monitor: str = "val_reward",
        seed: int = 0,
        accelerator: str = "cpu",
        cpu_threads: int | None = 1,
        progress: bool = False,
        trainer_factory: Callable[..., pl.Trainer] | None = None,
    ) -> None:
        self.config = DQNConfig(
            threshold=threshold,
            decision=decision,
            margin=margin,
            k=k,
            hidden=hidden,
            include_scores=include_scores,
            lr=lr,
            batch_size=batch_size,
            minibatch_size=minibatch_size,
            epochs=epochs,
            min_steps=min_steps,
            gamma=gamma,
            epsilon_start=epsilon_start,
            epsilon_end=epsilon_end,
            epsilon_decay=epsilon_decay,
            target_update=target_update,
            tau=tau,
            double=double,
            buffer_size=buffer_size,
            patience=patience,
            monitor=monitor,
            seed=seed,
        )
        self.reward = resolve_reward(reward, reward_params)
        self.accelerator = accelerator
        if cpu_threads is not None and cpu_threads < 1:
            raise ConfigError(f"dqn: cpu_threads must be >= 1 or None, got {cpu_threads}")
        self.cpu_threads = cpu_threads
        self.progress = progress
        self.trainer_factory = trainer_factory or pl.Trainer
        self.q_net: torch.nn.Sequential | None = None
        self.actions: torch.Tensor | None = None
        self.n_detectors: int | None = None
        self.state_dim: int | None = None
        self.history: list[EpochStats] = []

    # ------------------------------------------------------------ training
    def fit(self, train: FusionData, val: FusionData) -> DQNFusion:
        cfg = self.config
        _check_labels(train, "train")
        if len(val):
            _check_labels(val, "val")
            _check_same_layout(train, val)
        m, d = train.scores.shape[1], train.states.shape[1]
        actions = simplex_grid(m, cfg.k)
        in_dim = d + (m if cfg.include_scores else 0)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            q_net = build_q_network(in_dim, cfg.hidden, len(actions))

        train_t = self._tensors(train)
        per_pass = len(train_t) / cfg.batch_size
        passes = max(1, math.ceil(cfg.min_steps / max(per_pass * cfg.epochs, 1e-9)))
        steps = math.ceil(passes * per_pass) * cfg.epochs
        module = DQNModule(q_net, actions, self.reward, cfg, total_steps=steps)
        callbacks = []
        if len(val) and cfg.patience is not None:
            callbacks.append(EarlyStopping(monitor=cfg.monitor, mode="max", patience=cfg.patience))
        trainer = self.trainer_factory(
            max_epochs=cfg.epochs,
            accelerator=self.accelerator,
            devices=1,
            enable_checkpointing=False,
            logger=False,
            enable_progress_bar=self.progress,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            limit_val_batches=1.0 if len(val) else 0,
            callbacks=callbacks,
        )
        loaders = ShuffledBatches(
            train_t, cfg.batch_size, cfg.seed, with_next=cfg.gamma > 0, passes=passes
        )
        val_loader = SequentialBatches(self._tensors(val)) if len(val) else None
        previous_threads = torch.get_num_threads()
        if self.cpu_threads is not None:
            torch.set_num_threads(self.cpu_threads)
        try:
            trainer.fit(module, train_dataloaders=loaders, val_dataloaders=val_loader)
        finally:
            torch.set_num_threads(previous_threads)

        if module.best_weights is not None:
            module.q_net.load_state_dict(module.best_weights)
            self.config = attrs.evolve(self.config, threshold=module.best_threshold)
        self.q_net = module.q_net.cpu().eval()
        self.actions = actions
        self.n_detectors, self.state_dim = m, d
        self.history = list(module.history)
        return self

    # ----------------------------------------------------------- inference
    def policy(self, data: FusionData) -> np.ndarray:
        """``float32[N, m]``: the greedy action's detector weights for each window."""
        actions = self._greedy_actions(data)
        assert self.actions is not None
        return self.actions[actions].numpy()

    def fuse(self, data: FusionData) -> np.ndarray:
        """``float32[N]`` in [0, 1]: each window's scores weighted by its greedy action."""
        weights = torch.from_numpy(self.policy(data))
        fused = (weights * torch.from_numpy(data.scores)).sum(dim=1).clamp(0.0, 1.0)
        return fused.numpy()

    def _greedy_actions(self, data: FusionData) -> torch.Tensor:
        q_net = self._fitted()
        if data.scores.shape[1] != self.n_detectors or data.states.shape[1] != self.state_dim:
            raise ConfigError(
                f"dqn was fitted on {self.n_detectors} detectors and {self.state_dim}-D states; "
                f"got {data.scores.shape[1]} detectors and {data.states.shape[1]}-D states"
            )
        inputs = self._tensors(data).inputs
        with torch.no_grad():
            parts = [q_net(chunk).argmax(dim=1) for chunk in inputs.split(_CHUNK)]
        return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)

    def _tensors(self, data: FusionData) -> FusionTensors:
        states = torch.from_numpy(data.states)
        scores = torch.from_numpy(data.scores)
        inputs = torch.cat([states, scores], dim=1) if self.config.include_scores else states
        return FusionTensors(inputs, scores, torch.from_numpy(data.labels))

    def _fitted(self) -> torch.nn.Sequential:
        if self.q_net is None:
            raise NotFittedError("dqn fusion is not fitted: call fit() or load_state_dict()")
        return self.q_net

    # --------------------------------------------------------- persistence
    def state_dict(self) -> dict[str, Any]:
        """Q-network weights (``q_net.*``) plus what is needed to rebuild it (numbers / arrays)."""
        q_net = self._fitted()
        cfg = self.config
        state: dict[str, Any] = {
            "n_detectors": self.n_detectors,
            "state_dim": self.state_dim,
            "k": cfg.k,
            "hidden": np.asarray(cfg.hidden, dtype=np.int64),
            "include_scores": int(cfg.include_scores),
            "threshold": cfg.threshold,
        }
        state.update({f"q_net.{k}": v.detach().clone() for k, v in q_net.state_dict().items()})
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        try:
            m, d = int(state["n_detectors"]), int(state["state_dim"])
            self.config = attrs.evolve(
                self.config,
                k=int(state["k"]),
                hidden=tuple(int(h) for h in np.asarray(state["hidden"]).ravel()),
                include_scores=bool(int(state["include_scores"])),
                threshold=float(state["threshold"]),
            )
        except KeyError as exc:
            raise ConfigError(f"dqn state is missing {exc.args[0]!r}") from None
        actions = simplex_grid(m, self.config.k)
        in_dim = d + (m if self.config.include_scores else 0)
        q_net = build_q_network(in_dim, self.config.hidden, len(actions))
        weights = {
            k.removeprefix("q_net."): torch.as_tensor(np.asarray(v))
            for k, v in state.items()
            if k.startswith("q_net.")
        }
        q_net.load_state_dict(weights)
        self.q_net, self.actions = q_net.eval(), actions
        self.n_detectors, self.state_dim = m, d


def _check_labels(data: FusionData, split: str) -> None:
    if len(data) == 0 and split == "train":
        raise ConfigError("dqn: the training split is empty")
    bad = (data.labels != 0) & (data.labels != 1)
    if bad.any():
        raise ConfigError(
            f"dqn: {split} labels must be 0/1 to compute rewards; "
            f"{int(bad.sum())} rows have other values (e.g. {int(data.labels[bad][0])})"
        )


def _check_same_layout(train: FusionData, val: FusionData) -> None:
    if train.detectors != val.detectors or train.states.shape[1] != val.states.shape[1]:
        raise ConfigError(
            f"train and val differ: detectors {train.detectors} vs {val.detectors}, "
            f"state dims {train.states.shape[1]} vs {val.states.shape[1]}"
        )
