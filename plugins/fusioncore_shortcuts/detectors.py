"""The ``idset`` and ``timing`` shortcut detectors: one graph feature each, no learned weights.

Both read the window graph every detector sees (see
:class:`fusioncore.contracts.GraphSchema`):

``idset``
    share of the window's distinct CAN IDs that are outside the training
    vocabulary, i.e. whose ``unknown_id`` node feature is set. It is read from
    ``node_id == 0`` (the vocabulary index that feature encodes), which is
    exact whatever the feature normaliser did to the column. Fuzzing and
    flooding with a foreign ID light it up; spoofing a known ID never does.
``timing``
    per known ID, ``|iat_vs_period|`` in benign standard deviations (the
    column is z-scored on benign training windows, so 0 is "on period");
    the score is the largest such deviation in the window (``statistic="max"``)
    or their mean (``"mean"``). IDs seen once in a window have no interval and
    carry the benign centre of the column. Spoofing and malfunction speed an
    ID up, flooding delays the others, suppression stretches an interval.

Training runs the core's Trainer like any detector but fits nothing; the
validation loss is the mean score of benign validation windows (lower: the
shortcut stays quieter on benign traffic).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import attrs
import torch

from fusioncore import ConfigError, Detector, DetectorOutput, GraphSchema

__all__ = ["IdSetDetector", "TimingDetector"]

_STATISTICS = ("max", "mean")


def _as_schema(schema: GraphSchema | Mapping[str, Any]) -> GraphSchema:
    """The schema itself, or its fields as stored in a checkpoint's hyperparameters."""
    return schema if isinstance(schema, GraphSchema) else GraphSchema(**schema)


def _schema_hparams(schema: GraphSchema) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in attrs.asdict(schema).items()}


class _Shortcut(Detector):
    """A detector with no weights: every method but :meth:`window_features` is shared."""

    supervised: ClassVar[bool] = False

    def __init__(self, schema: GraphSchema | Mapping[str, Any], **params: Any) -> None:
        super().__init__()
        self.schema = _as_schema(schema)
        self.save_hyperparameters({"schema": _schema_hparams(self.schema), **params})
        self.automatic_optimization = False  # nothing to optimise

    def window_features(self, batch) -> torch.Tensor:
        """``float64[G, len(feature_names)]``; column 0 is the score."""
        raise NotImplementedError

    def training_step(self, batch, batch_idx: int) -> None:
        return None

    def validation_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss = self.window_features(batch)[:, 0].mean().float()
        self.log("val_loss", loss, on_epoch=True, batch_size=batch.num_graphs)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        # Lightning runs fit() only with an optimizer; this one is over a placeholder, never stepped
        return torch.optim.SGD([torch.zeros((), requires_grad=True)], lr=0.0)

    @torch.no_grad()
    def predict_step(self, batch, batch_idx: int = 0) -> DetectorOutput:
        features = self.window_features(batch)
        return DetectorOutput(
            window_ids=batch.window_id.cpu().numpy(),
            score=features[:, 0].float().cpu().numpy(),
            features=features.float().cpu().numpy(),
            feature_names=self.feature_names,
        )


def _per_window(values: torch.Tensor, graph: torch.Tensor, n: int) -> torch.Tensor:
    return torch.zeros(n, dtype=torch.float64, device=values.device).index_add(0, graph, values)


class IdSetDetector(_Shortcut):
    """Shortcut control: score = share of the window's distinct IDs never seen in training."""

    name: ClassVar[str] = "idset"
    feature_names: ClassVar[tuple[str, ...]] = ("unknown_id_share", "unknown_ids")

    def __init__(self, schema: GraphSchema | Mapping[str, Any]) -> None:
        super().__init__(schema)

    def window_features(self, batch) -> torch.Tensor:
        unknown = (batch.node_id == 0).to(torch.float64)
        g = batch.num_graphs
        count = _per_window(unknown, batch.batch, g)
        nodes = _per_window(torch.ones_like(unknown), batch.batch, g).clamp_min(1.0)
        return torch.stack([count / nodes, count], dim=1)


class TimingDetector(_Shortcut):
    """Shortcut control: score = largest (or mean) |iat_vs_period| z-score of the window's known IDs."""

    name: ClassVar[str] = "timing"
    feature_names: ClassVar[tuple[str, ...]] = ("iat_deviation", "iat_deviation_max", "iat_deviation_mean")

    def __init__(self, schema: GraphSchema | Mapping[str, Any], statistic: str = "max") -> None:
        if statistic not in _STATISTICS:
            raise ConfigError(f"timing: statistic must be one of {_STATISTICS}, got {statistic!r}")
        super().__init__(schema, statistic=statistic)
        if "iat_vs_period" not in self.schema.node_features:
            raise ConfigError(
                "timing: the graph schema has no 'iat_vs_period' node feature; available: "
                + ", ".join(self.schema.node_features)
            )
        self.column = self.schema.node_features.index("iat_vs_period")
        self.statistic = statistic

    def window_features(self, batch) -> torch.Tensor:
        known = batch.node_id > 0  # an unknown ID has no benign period to deviate from
        deviation = torch.where(known, batch.x[:, self.column].to(torch.float64).abs(), 0.0)
        g = batch.num_graphs
        zeros = torch.zeros(g, dtype=torch.float64, device=deviation.device)
        largest = zeros.scatter_reduce(0, batch.batch, deviation, reduce="amax", include_self=True)
        n_known = _per_window(known.to(torch.float64), batch.batch, g).clamp_min(1.0)
        mean = _per_window(deviation, batch.batch, g) / n_known
        score = largest if self.statistic == "max" else mean
        return torch.stack([score, largest, mean], dim=1)
