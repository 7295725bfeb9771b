"""Stacking: a logistic regression (or small MLP) on states and scores."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from fusioncore import ConfigError, FusionData, FusionStrategy, NotFittedError
from fusioncore.calibration import unit_score
from fusioncore.nn import mlp

__all__ = ["StackingFusion"]


class StackingFusion(FusionStrategy):
    """A learned combiner: P(attack | state, scores) from a class-weighted logistic regression.

    Inputs are the state vector and the m calibrated scores (``use_states=False``:
    scores only), standardised with the fitting split's mean / std. The loss is
    binary cross-entropy with the attack class weighted by ``#benign / #attack``
    (so a 1 % attack rate is not learned as "always benign") plus an L2 penalty
    ``weight_decay`` on the weights. ``hidden=(32,)`` turns it into a small MLP.
    Trained full-batch with L-BFGS (``max_iter`` iterations, strong-Wolfe line
    search): no minibatch noise, so the fit is deterministic under ``seed``.
    The fused score is :func:`fusioncore.calibration.unit_score` of the logit:
    monotone in it and never saturating, so confident windows keep their order.
    ``fit_on`` picks the split to fit (``"train"`` default, or ``"val"``).
    """

    name = "stacking"

    def __init__(
        self,
        hidden: int | Sequence[int] = (),
        use_states: bool = True,
        weight_decay: float = 1e-4,
        max_iter: int = 200,
        class_weight: bool = True,
        fit_on: str = "train",
        seed: int = 0,
    ) -> None:
        self.hidden = (hidden,) if isinstance(hidden, int) else tuple(int(h) for h in hidden)
        if any(h <= 0 for h in self.hidden):
            raise ConfigError(f"stacking: hidden sizes must be positive, got {self.hidden}")
        if weight_decay < 0 or max_iter < 1:
            raise ConfigError("stacking: weight_decay must be >= 0 and max_iter >= 1")
        if fit_on not in ("train", "val"):
            raise ConfigError(f"stacking: fit_on must be 'train' or 'val', got {fit_on!r}")
        self.use_states, self.weight_decay, self.max_iter = use_states, weight_decay, max_iter
        self.class_weight, self.fit_on, self.seed = class_weight, fit_on, seed
        self.model: torch.nn.Sequential | None = None
        self.mean: torch.Tensor | None = None
        self.std: torch.Tensor | None = None

    def _inputs(self, data: FusionData) -> torch.Tensor:
        parts = [data.states, data.scores] if self.use_states else [data.scores]
        x = torch.from_numpy(np.concatenate(parts, axis=1))
        if not torch.isfinite(x).all():
            raise ConfigError("stacking: states / scores contain non-finite values")
        return x

    def fit(self, train: FusionData, val: FusionData) -> StackingFusion:
        data = train if self.fit_on == "train" else val
        y = torch.from_numpy(data.labels).double()
        if len(data) == 0 or not ((y == 0) | (y == 1)).all() or y.min() == y.max():
            raise ConfigError(
                f"stacking: the {self.fit_on} split needs 0/1 labels with both classes present"
            )
        x = self._inputs(data).double()
        self.mean = x.mean(dim=0)
        std = x.std(dim=0, unbiased=False)
        self.std = torch.where(std > 1e-12, std, torch.ones_like(std))
        z = (x - self.mean) / self.std
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            model = mlp(z.shape[1], self.hidden, 1).double()
        pos_weight = (1 - y).sum() / y.sum() if self.class_weight else torch.tensor(1.0)
        weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
        optimizer = torch.optim.LBFGS(
            model.parameters(), max_iter=self.max_iter, line_search_fn="strong_wolfe"
        )

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            logits = model(z).squeeze(1)
            loss = F.binary_cross_entropy_with_logits(logits, y, pos_weight=pos_weight)
            loss = loss + self.weight_decay * sum((w**2).sum() for w in weights)
            loss.backward()
            return loss

        optimizer.step(closure)
        self.model = model.float().eval()
        self.mean, self.std = self.mean.float(), self.std.float()
        return self

    def fuse(self, data: FusionData) -> np.ndarray:
        if self.model is None or self.mean is None or self.std is None:
            raise NotFittedError("stacking fusion is not fitted: call fit() or load_state_dict()")
        x = self._inputs(data)
        if x.shape[1] != len(self.mean):
            raise ConfigError(f"stacking was fitted on {len(self.mean)} inputs, got {x.shape[1]}")
        with torch.no_grad():
            logit = self.model((x - self.mean) / self.std).squeeze(1).double().numpy()
        # not a float32 sigmoid: it is exactly 1.0 past a logit of ~17 and would tie windows
        return unit_score(logit).astype(np.float32)

    def state_dict(self) -> dict[str, Any]:
        if self.model is None or self.mean is None or self.std is None:
            raise NotFittedError("stacking fusion is not fitted")
        state: dict[str, Any] = {
            "mean": self.mean.clone(),
            "std": self.std.clone(),
            "hidden": np.asarray(self.hidden, dtype=np.int64),
            "use_states": int(self.use_states),
        }
        state.update({f"model.{k}": v.clone() for k, v in self.model.state_dict().items()})
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.hidden = tuple(int(h) for h in np.asarray(state["hidden"]).ravel())
        self.use_states = bool(int(state["use_states"]))
        self.mean = torch.as_tensor(np.asarray(state["mean"]), dtype=torch.float32)
        self.std = torch.as_tensor(np.asarray(state["std"]), dtype=torch.float32)
        model = mlp(len(self.mean), self.hidden, 1)
        model.load_state_dict(
            {
                k.removeprefix("model."): torch.as_tensor(np.asarray(v), dtype=torch.float32)
                for k, v in state.items()
                if k.startswith("model.")
            }
        )
        self.model = model.eval()
