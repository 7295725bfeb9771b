"""Mixture of experts: a gating network picks each window's detector weights, trained end to end."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from fusioncore import ConfigError, FusionData, FusionStrategy, NotFittedError
from fusioncore.nn import mlp

__all__ = ["MixtureOfExpertsFusion"]

_EPS = 1e-6  # keeps log(fused) finite where every expert says exactly 0 or 1


class MixtureOfExpertsFusion(FusionStrategy):
    """The detectors are the experts; a small gating network weighs them per window.

    The gate is an MLP (``hidden``, ReLU) from the standardised state and the m
    calibrated scores to m logits; their softmax is the window's weight vector
    ``w`` and the fused score is ``sum_i w_i * s_i``: a convex combination,
    exactly the DQN's output form, so the two differ only in how the weights
    are learned. Here they are learned end to end by gradient: the loss is the
    binary cross-entropy of the fused score, the attack class weighted by
    ``#benign / #attack``, plus ``weight_decay`` times the squared weights.
    Full-batch L-BFGS (``max_iter`` iterations, strong-Wolfe line search) on
    the fusion training split: deterministic under ``seed``. ``policy`` is
    the gate's weights.
    """

    name = "moe"
    trainable = True

    def __init__(
        self,
        hidden: int | Sequence[int] = (16,),
        weight_decay: float = 1e-3,
        max_iter: int = 300,
        class_weight: bool = True,
        seed: int = 0,
    ) -> None:
        self.hidden = (hidden,) if isinstance(hidden, int) else tuple(int(h) for h in hidden)
        if any(h <= 0 for h in self.hidden):
            raise ConfigError(f"moe: hidden sizes must be positive, got {self.hidden}")
        if weight_decay < 0 or max_iter < 1:
            raise ConfigError("moe: weight_decay must be >= 0 and max_iter >= 1")
        self.weight_decay, self.max_iter = weight_decay, max_iter
        self.class_weight, self.seed = class_weight, seed
        self.gate: torch.nn.Sequential | None = None
        self.mean: torch.Tensor | None = None
        self.std: torch.Tensor | None = None
        self.n_detectors: int | None = None

    def _inputs(self, data: FusionData) -> torch.Tensor:
        x = torch.from_numpy(np.concatenate([data.states, data.scores], axis=1))
        if not torch.isfinite(x).all():
            raise ConfigError("moe: states / scores contain non-finite values")
        return x

    def _weights(self, x: torch.Tensor) -> torch.Tensor:
        assert self.gate is not None and self.mean is not None and self.std is not None
        return self.gate((x - self.mean) / self.std).softmax(dim=1)

    def fit(self, train: FusionData, val: FusionData) -> MixtureOfExpertsFusion:
        y = torch.from_numpy(train.labels).double()
        if len(train) == 0 or not ((y == 0) | (y == 1)).all() or y.min() == y.max():
            raise ConfigError("moe: the training split needs 0/1 labels with both classes present")
        x = self._inputs(train).double()
        scores = torch.from_numpy(train.scores).double()
        m = scores.shape[1]
        self.mean = x.mean(dim=0)
        std = x.std(dim=0, unbiased=False)
        self.std = torch.where(std > 1e-12, std, torch.ones_like(std))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.gate = mlp(x.shape[1], self.hidden, m).double()
        pos_weight = ((1 - y).sum() / y.sum()) if self.class_weight else torch.tensor(1.0)
        sample_weight = torch.where(y == 1, pos_weight, torch.ones_like(y))
        decayed = [p for name, p in self.gate.named_parameters() if name.endswith("weight")]
        optimizer = torch.optim.LBFGS(
            self.gate.parameters(), max_iter=self.max_iter, line_search_fn="strong_wolfe"
        )

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            fused = (self._weights(x) * scores).sum(dim=1).clamp(_EPS, 1 - _EPS)
            loss = F.binary_cross_entropy(fused, y, weight=sample_weight)
            loss = loss + self.weight_decay * sum((w**2).sum() for w in decayed)
            loss.backward()
            return loss

        optimizer.step(closure)
        self.gate = self.gate.float().eval()
        self.mean, self.std, self.n_detectors = self.mean.float(), self.std.float(), m
        return self

    def _fitted(self, data: FusionData) -> torch.Tensor:
        if self.gate is None or self.mean is None:
            raise NotFittedError("moe fusion is not fitted: call fit() or load_state_dict()")
        x = self._inputs(data)
        if x.shape[1] != len(self.mean) or data.scores.shape[1] != self.n_detectors:
            raise ConfigError(
                f"moe was fitted on {len(self.mean)} inputs / {self.n_detectors} detectors, "
                f"got {x.shape[1]} / {data.scores.shape[1]}"
            )
        return x

    def policy(self, data: FusionData) -> np.ndarray:
        x = self._fitted(data)
        with torch.no_grad():
            return self._weights(x).numpy()

    def fuse(self, data: FusionData) -> np.ndarray:
        weights = self.policy(data)
        return np.clip((weights * data.scores).sum(axis=1), 0.0, 1.0).astype(np.float32)

    def state_dict(self) -> dict[str, Any]:
        if self.gate is None or self.mean is None or self.std is None:
            raise NotFittedError("moe fusion is not fitted")
        state: dict[str, Any] = {
            "mean": self.mean.clone(),
            "std": self.std.clone(),
            "hidden": np.asarray(self.hidden, dtype=np.int64),
            "n_detectors": int(self.n_detectors or 0),
        }
        state.update({f"gate.{k}": v.clone() for k, v in self.gate.state_dict().items()})
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.hidden = tuple(int(h) for h in np.asarray(state["hidden"]).ravel())
        self.n_detectors = int(state["n_detectors"])
        self.mean = torch.as_tensor(np.asarray(state["mean"]), dtype=torch.float32)
        self.std = torch.as_tensor(np.asarray(state["std"]), dtype=torch.float32)
        gate = mlp(len(self.mean), self.hidden, self.n_detectors)
        gate.load_state_dict(
            {
                k.removeprefix("gate."): torch.as_tensor(np.asarray(v), dtype=torch.float32)
                for k, v in state.items()
                if k.startswith("gate.")
            }
        )
        self.gate = gate.eval()
