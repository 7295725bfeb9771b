"""The ``iat`` detector: per-ID timing profiles and unknown / missing IDs, learned from benign traffic.

No neural network. During training (benign windows only, ``supervised =
False``) the detector accumulates, for every CAN ID of the vocabulary, the
mean and spread of a few timing node features -- by default
``iat_vs_period`` (log interval relative to the ID's benign period),
``iat_std`` (jitter) and ``count_share`` (how much of the window the ID
takes) -- and how often the ID appears in a benign window. All of it lives in
buffers, so it is part of the checkpoint and of the fingerprint.

A window is then described by four numbers (the output features):

``iat_deviation``
    mean over the window's known IDs of the largest per-ID z-score of those
    features (spoofing and replay speed an ID up, suspension stretches it);
``iat_deviation_max``
    the same, for the most deviant ID;
``unknown_id_rate``
    share of the window's distinct IDs that are not in the vocabulary
    (fuzzing, flooding with a foreign ID);
``missing_id_surprise``
    ``sum(-log(1 - p))`` over the known IDs absent from the window, ``p`` being
    the ID's benign chance to be present given the IDs that are (co-occurrence
    counts): an absent ID that always travels with the window's other IDs
    costs a lot, an occasional one little (suspension; flooding, which crowds
    the other IDs out of the window).

:meth:`IATDetector.calibrate` standardises each of them on benign validation
windows, and the score is the largest standardised value: "how many benign
standard deviations the most unusual signal is away". Everything is computed
for the whole batch at once with ``index_add_`` / ``scatter_reduce_``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import attrs
import torch

from fusioncore import ConfigError, Detector, DetectorOutput, GraphSchema

__all__ = ["DEFAULT_FEATURES", "RELATIVE_FEATURES", "IATDetector"]

#: Node features profiled per ID (names from ``fusioncore.data.graph_features.NODE_FEATURES``).
DEFAULT_FEATURES: tuple[str, ...] = ("iat_vs_period", "iat_std", "count_share")
#: The same signals in profile-relative graphs (the default ``profile`` adapter, docs/adaptation.md):
#: interval and jitter relative to the capture's own vehicle profile.
RELATIVE_FEATURES: tuple[str, ...] = ("period_ratio", "jitter_ratio", "count_share")
_COMPONENTS = ("iat_deviation", "iat_deviation_max", "unknown_id_rate", "missing_id_surprise")


def _as_schema(schema: GraphSchema | Mapping[str, Any]) -> GraphSchema:
    """The schema itself, or its fields as stored in a checkpoint's hyperparameters."""
    return schema if isinstance(schema, GraphSchema) else GraphSchema(**schema)


class IATDetector(Detector):
    """Unsupervised timing-profile detector; score = largest calibrated z of four window signals.

    Parameters: ``features`` (node features profiled per ID; default
    :data:`DEFAULT_FEATURES`, or :data:`RELATIVE_FEATURES` where the graphs are
    profile-relative), ``min_std``
    (floor on a per-ID standard deviation, in normalised feature units, so an
    ID whose timing never varied in training does not turn jitter into huge
    z-scores), ``z_cap`` (per-node z-scores are clipped there) and
    ``component_min_std`` (floor on the benign spread of each window signal).
    """

    name: ClassVar[str] = "iat"
    supervised: ClassVar[bool] = False
    feature_names: ClassVar[tuple[str, ...]] = _COMPONENTS

    def __init__(
        self,
        schema: GraphSchema | Mapping[str, Any],
        features: Sequence[str] | None = None,
        min_std: float = 0.1,
        z_cap: float = 20.0,
        component_min_std: float = 0.01,
    ) -> None:
        super().__init__()
        self.schema = _as_schema(schema)
        if features is None:  # whichever timing features this run's graphs carry
            relative = not set(DEFAULT_FEATURES) <= set(self.schema.node_features)
            features = RELATIVE_FEATURES if relative else DEFAULT_FEATURES
        features = tuple(str(f) for f in features)
        missing = [f for f in features if f not in self.schema.node_features]
        if not features or missing:
            raise ConfigError(
                f"iat: node feature(s) {missing or '(none given)'} not in the graph schema; "
                f"available: {', '.join(self.schema.node_features)}"
            )
        if min_std <= 0 or z_cap <= 0 or component_min_std <= 0:
            raise ConfigError("iat: min_std, z_cap and component_min_std must be positive")
        self.save_hyperparameters(
            {
                "schema": {
                    k: list(v) if isinstance(v, tuple) else v for k, v in attrs.asdict(self.schema).items()
                },
                "features": list(features),
                "min_std": float(min_std),
                "z_cap": float(z_cap),
                "component_min_std": float(component_min_std),
            }
        )
        # columns looked up by name: the schema decides the layout, not this module
        self.columns = [self.schema.node_features.index(f) for f in features]
        n, k = self.schema.num_ids, len(features)
        f64 = torch.float64
        self.register_buffer("id_sum", torch.zeros(n, k, dtype=f64))
        self.register_buffer("id_sumsq", torch.zeros(n, k, dtype=f64))
        # windows containing both ID u and ID v; the diagonal counts windows containing u
        self.register_buffer("cooccurrence", torch.zeros(n, n, dtype=f64))
        self.register_buffer("component_mean", torch.zeros(len(_COMPONENTS), dtype=f64))
        self.register_buffer("component_std", torch.ones(len(_COMPONENTS), dtype=f64))
        # Nothing here is fitted by gradient descent: statistics accumulate in
        # training_step and no optimizer ever steps (see configure_optimizers).
        self.automatic_optimization = False

    # ------------------------------------------------------------ training
    @torch.no_grad()
    def training_step(self, batch, batch_idx: int) -> None:
        """Add the benign windows to the per-ID profiles (more epochs leave the means as they are)."""
        nid = batch.node_id
        values = batch.x[:, self.columns].to(torch.float64)
        self.id_sum.index_add_(0, nid, values)
        self.id_sumsq.index_add_(0, nid, values * values)
        present = self._presence(batch)
        self.cooccurrence += present.T @ present

    def validation_step(self, batch, batch_idx: int) -> torch.Tensor:
        """``val_loss``: the mean score of benign validation windows (lower = a tighter benign profile)."""
        loss = self.score(self.components(batch)).mean().float()
        self.log("val_loss", loss, on_epoch=True, batch_size=batch.num_graphs)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        # Lightning runs fit() only with an optimizer; this detector has no weights to
        # optimise, so it gets one over a placeholder tensor that is never stepped.
        return torch.optim.SGD([torch.zeros((), requires_grad=True)], lr=0.0)

    # ------------------------------------------------------------ scoring
    def components(self, batch) -> torch.Tensor:
        """The four window signals, ``float64[G, 4]`` in :attr:`feature_names` order."""
        hp = self.hparams
        nid, graph, g = batch.node_id, batch.batch, batch.num_graphs
        seen = self.cooccurrence.diagonal()  # benign windows containing each ID
        count = seen.clamp_min(1.0)
        mean = self.id_sum / count[:, None]
        var = (self.id_sumsq / count[:, None] - mean * mean).clamp_min(0.0)
        std = var.sqrt().clamp_min(hp.min_std)
        values = batch.x[:, self.columns].to(torch.float64)
        z = ((values - mean[nid]) / std[nid]).abs().clamp_max(hp.z_cap).amax(dim=1)
        profiled = (nid > 0) & (seen[nid] >= 2)  # unknown IDs and one-off IDs have no profile
        deviation = torch.where(profiled, z, 0.0)

        zeros = torch.zeros(g, dtype=torch.float64, device=z.device)
        n_profiled = zeros.index_add(0, graph, profiled.to(torch.float64)).clamp_min(1.0)
        n_nodes = zeros.index_add(0, graph, torch.ones_like(z)).clamp_min(1.0)
        iat_mean = zeros.index_add(0, graph, deviation) / n_profiled
        iat_max = zeros.scatter_reduce(0, graph, deviation, reduce="amax", include_self=True)
        unknown = zeros.index_add(0, graph, (nid == 0).to(torch.float64)) / n_nodes

        present = self._presence(batch)
        missing = ((1.0 - present) * self._absence_surprise(present)).sum(dim=1)
        return torch.stack([iat_mean, iat_max, unknown, missing], dim=1)

    def _presence(self, batch) -> torch.Tensor:
        """``float64[G, num_ids]``: 1 where the window contains the ID."""
        present = torch.zeros(
            batch.num_graphs, self.schema.num_ids, dtype=torch.float64, device=batch.x.device
        )
        present[batch.batch, batch.node_id] = 1.0
        return present

    def _absence_surprise(self, present: torch.Tensor) -> torch.Tensor:
        """``-log(1 - p)`` per window and ID, ``p`` the ID's chance to be there given the IDs that are.

        ``p = max over present IDs u of P(v | u)`` from benign co-occurrence
        (smoothed): conditioning on the company an ID keeps makes the
        expectation vehicle-specific when training mixes vehicles.
        """
        together = self.cooccurrence
        alone = together.diagonal()
        given = (together + 0.5) / (alone[:, None] + 1.0)  # P(v present | u present)
        given = given * (1.0 - torch.eye(len(alone), dtype=given.dtype, device=given.device))
        given[0, :] = 0.0  # unknown IDs predict nothing ...
        given[:, 0] = 0.0  # ... and are never expected
        expected = (present[:, :, None] * given[None]).amax(dim=1)
        return -torch.log1p(-expected.clamp_max(1.0 - 1e-6))

    def score(self, components: torch.Tensor) -> torch.Tensor:
        """Largest standardised window signal (benign validation mean 0, spread 1)."""
        return ((components - self.component_mean) / self.component_std).amax(dim=1)

    @torch.no_grad()
    def calibrate(self, benign_batches: Iterable[Any]) -> None:
        """Mean and spread of each window signal on benign validation windows (attack windows skipped)."""
        parts = [self.components(b)[b.y == 0] for b in benign_batches]
        if not parts or sum(len(p) for p in parts) < 2:
            raise ConfigError("iat: calibrate() needs at least two benign validation windows")
        values = torch.cat(parts)
        self.component_mean.copy_(values.mean(dim=0))
        self.component_std.copy_(values.std(dim=0).clamp_min(self.hparams.component_min_std))

    @torch.no_grad()
    def predict_step(self, batch, batch_idx: int = 0) -> DetectorOutput:
        components = self.components(batch)
        return DetectorOutput(
            window_ids=batch.window_id.cpu().numpy(),
            score=self.score(components).float().cpu().numpy(),
            features=components.float().cpu().numpy(),
            feature_names=self.feature_names,
        )
