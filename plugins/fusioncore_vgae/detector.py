"""The unsupervised VGAE detector (a Lightning module trained on benign windows)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import attrs
import torch

from fusioncore.adapt.features import STANDARDISED_NODE_FEATURES
from fusioncore.contracts import Detector, DetectorOutput, GraphSchema
from fusioncore.errors import ConfigError
from fusioncore.nn import as_schema, plain_json
from fusioncore_vgae.config import VGAEConfig
from fusioncore_vgae.network import Encoding, VGAENetwork
from fusioncore_vgae.reconstruction import CHANNELS, WindowErrors, latent_stats, window_errors
from fusioncore_vgae.scoring import ScoreCalibration

__all__ = ["VGAEDetector"]


class VGAEDetector(Detector):
    """Variational graph auto-encoder of benign windows; anomaly = poor reconstruction.

    Loss per window: ``node_weight * node MSE + id_weight * ID CE +
    edge_weight * edge BCE + kl_weight * KL`` (see
    :mod:`fusioncore_vgae.reconstruction`), averaged over the batch's benign
    windows only (windows with ``y == 1`` are masked out, in case attacks
    reach the training data). ``score`` is the calibrated z-score defined in
    :mod:`fusioncore_vgae.scoring`; call :meth:`calibrate` with benign
    validation batches after training. Predictions encode with the posterior
    mean (no sampling), so scores are deterministic.

    Features per window: mean node-feature MSE, mean ID cross-entropy, edge
    BCE, mean / std / max / min of the latent means, and
    ``confidence = 1 / (1 + max(score, 0))`` (1 for windows no more unusual
    than an average benign one, towards 0 as the anomaly grows), and
    ``standardised_max``, the worst reconstruction error among the columns
    standardised by construction (:data:`fusioncore.adapt.features.STANDARDISED_NODE_FEATURES`;
    0 where the representation has none).
    """

    name: ClassVar[str] = "vgae"
    supervised: ClassVar[bool] = False
    feature_names: ClassVar[tuple[str, ...]] = (
        "node_mse",
        "id_ce",
        "edge_bce",
        "z_mean",
        "z_std",
        "z_max",
        "z_min",
        "confidence",
        "standardised_max",
    )
    score_label: ClassVar[str] = "VGAE reconstruction error (z-score vs benign)"

    def __init__(
        self,
        schema: GraphSchema | Mapping[str, Any],
        preset: str = "small",
        *,
        hidden: int | None = None,
        layers: int | None = None,
        heads: int | None = None,
        latent: int | None = None,
        id_embed_dim: int | None = None,
        dropout: float | None = None,
        lr: float | None = None,
        weight_decay: float | None = None,
        node_weight: float | None = None,
        id_weight: float | None = None,
        edge_weight: float | None = None,
        kl_weight: float | None = None,
        combine: str | None = None,
    ) -> None:
        """``preset`` names a :data:`~fusioncore_vgae.PRESETS` entry; any other argument left at
        ``None`` takes the preset's value (the full signature is the detector's config)."""
        super().__init__()
        self.schema = as_schema(schema)
        given = dict(hidden=hidden, layers=layers, heads=heads, latent=latent, id_embed_dim=id_embed_dim,
                     dropout=dropout, lr=lr, weight_decay=weight_decay, node_weight=node_weight,
                     id_weight=id_weight, edge_weight=edge_weight, kl_weight=kl_weight, combine=combine)
        self.settings = VGAEConfig.from_preset(preset, **{k: v for k, v in given.items() if v is not None})
        # Plain JSON-able hparams so checkpoints load with weights_only=True.
        self.save_hyperparameters(
            plain_json(
                {
                    "schema": attrs.asdict(self.schema),
                    "preset": preset,
                    **attrs.asdict(self.settings),
                }
            )
        )
        self.network = VGAENetwork(self.schema, self.settings)
        self.calibration = ScoreCalibration(len(CHANNELS), self.settings.combine)
        self.register_buffer("standardised", torch.tensor(
            [i for i, f in enumerate(self.schema.node_features) if f in STANDARDISED_NODE_FEATURES],
            dtype=torch.long), persistent=False)

    @property
    def is_calibrated(self) -> bool:
        return self.calibration.is_calibrated

    def forward(self, batch) -> tuple[Encoding, WindowErrors]:
        """Encode (sampling only in training mode) and measure the per-window errors."""
        encoding = self.network.encode(batch, sample=self.training)
        return encoding, window_errors(self.network, batch, encoding, self.standardised)

    # ------------------------------------------------------------ training
    def _benign_loss(self, batch) -> tuple[torch.Tensor, int]:
        _, errors = self(batch)
        s = self.settings
        per_window = (
            s.node_weight * errors.node_mse
            + s.id_weight * errors.id_ce
            + s.edge_weight * errors.edge_bce
            + s.kl_weight * errors.kl
        )
        benign = _benign_mask(batch, per_window)
        n_benign = int(benign.sum())
        # An all-attack batch gives a zero loss that still touches every weight,
        # so distributed workers stay in step.
        return (per_window * benign).sum() / max(n_benign, 1), n_benign

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss, n_benign = self._benign_loss(batch)
        if n_benign:
            self.log("train_loss", loss, on_epoch=True, batch_size=n_benign)
        return loss

    def validation_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss, n_benign = self._benign_loss(batch)
        if n_benign:
            self.log("val_loss", loss, on_epoch=True, prog_bar=True, batch_size=n_benign)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(
            self.parameters(), lr=self.settings.lr, weight_decay=self.settings.weight_decay
        )

    # --------------------------------------------------------- calibration
    def calibrate(self, benign_batches: Iterable[Any]) -> None:
        """Fit the score's benign statistics on validation batches (attack windows skipped)."""
        was_training = self.training
        self.eval()
        parts = []
        try:
            with torch.no_grad():
                for batch in benign_batches:
                    batch = batch.to(self.device)
                    _, errors = self(batch)
                    channels = errors.channels()
                    parts.append(channels[_benign_mask(batch, channels[:, 0])])
        finally:
            self.train(was_training)
        if not parts:
            raise ConfigError("vgae calibrate() received no batches of benign windows")
        self.calibration.fit(torch.cat(parts))

    # ---------------------------------------------------------- prediction
    @torch.no_grad()
    def predict_step(self, batch, batch_idx: int = 0) -> DetectorOutput:
        encoding = self.network.encode(batch, sample=False)
        errors = window_errors(self.network, batch, encoding, self.standardised)
        score = self.calibration(errors.channels())
        features = torch.cat(
            [
                torch.stack([errors.node_mse, errors.id_ce, errors.edge_bce], dim=-1),
                latent_stats(encoding.mu, batch.batch, batch.num_graphs),
                (1.0 / (1.0 + score.clamp(min=0))).unsqueeze(-1),
                errors.standardised_max.unsqueeze(-1),
            ],
            dim=-1,
        )
        return DetectorOutput(
            window_ids=batch.window_id.cpu().numpy(),
            score=score.float().cpu().numpy(),
            features=features.float().cpu().numpy(),
            feature_names=self.feature_names,
        )


def _benign_mask(batch, like: torch.Tensor) -> torch.Tensor:
    """Windows not labelled attack (``y < 1``: benign, or -1 = unlabelled); all if no ``y``."""
    y = getattr(batch, "y", None)
    if y is None:
        return torch.ones_like(like, dtype=torch.bool)
    return y < 1
