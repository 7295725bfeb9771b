"""The supervised GAT detector (a Lightning module)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs
import torch
import torch.nn.functional as F

from fusioncore.contracts import Detector, DetectorOutput, GraphSchema
from fusioncore.nn import as_schema, plain_json
from fusioncore_gat.config import GATConfig
from fusioncore_gat.network import GATNetwork

__all__ = ["GATDetector"]


class GATDetector(Detector):
    """Supervised window classifier: edge-aware graph attention over the window graph.

    ``score`` is the logit margin ``logit_attack - logit_benign`` (the log-odds
    of the attack class): unbounded and monotone in the attack probability.
    The probability itself is no score: in float32 it is exactly 1.0 once the
    margin passes about 17, so every confidently flagged window would tie and
    rankings (AUROC, AP) among them would be lost. Features, per window: the
    two class probabilities, mean / std / max / min of the pooled graph
    embedding, ``confidence = 1 - entropy / ln 2`` (1: certain, 0: a coin
    flip) and the logit margin again. Parameters: see
    :class:`~fusioncore_gat.GATConfig`.
    """

    name: ClassVar[str] = "gat"
    supervised: ClassVar[bool] = True
    feature_names: ClassVar[tuple[str, ...]] = (
        "p_benign",
        "p_attack",
        "emb_mean",
        "emb_std",
        "emb_max",
        "emb_min",
        "confidence",
        "logit_margin",
    )
    score_label: ClassVar[str] = "GAT attack log-odds (logit margin)"

    def __init__(
        self,
        schema: GraphSchema | Mapping[str, Any],
        preset: str = "small",
        *,
        hidden: int | None = None,
        layers: int | None = None,
        heads: int | None = None,
        id_embed_dim: int | None = None,
        jk: str | None = None,
        dropout: float | None = None,
        attention_dropout: float | None = None,
        lr: float | None = None,
        weight_decay: float | None = None,
        class_weights: tuple[float, float] | None = None,
        positive_share: float | None = None,
    ) -> None:
        """``preset`` names a :data:`~fusioncore_gat.PRESETS` entry; any other argument left at
        ``None`` takes the preset's value (the full signature is the detector's config)."""
        super().__init__()
        self.schema = as_schema(schema)
        given = dict(hidden=hidden, layers=layers, heads=heads, id_embed_dim=id_embed_dim, jk=jk,
                     dropout=dropout, attention_dropout=attention_dropout, lr=lr, weight_decay=weight_decay,
                     class_weights=class_weights, positive_share=positive_share)
        self.settings = GATConfig.from_preset(preset, **{k: v for k, v in given.items() if v is not None})
        # Plain JSON-able hparams (schema as its fields, resolved settings) so a
        # checkpoint loads with torch.load(weights_only=True) and two detectors
        # built from equivalent arguments have the same config and fingerprint.
        self.save_hyperparameters(
            plain_json(
                {
                    "schema": attrs.asdict(self.schema),
                    "preset": preset,
                    **attrs.asdict(self.settings),
                }
            )
        )
        self.network = GATNetwork(self.schema, self.settings)
        fixed = _fixed_class_weights(self.settings)
        self.register_buffer(
            "fixed_class_weights",
            torch.tensor(fixed if fixed is not None else (1.0, 1.0)),
            persistent=False,
        )
        self._weights_from_batch = fixed is None

    def forward(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits[G, 2], graph embedding[G, embed_dim])``."""
        return self.network(batch)

    # ------------------------------------------------------------ training
    def class_weights(self, y: torch.Tensor) -> torch.Tensor:
        """Cross-entropy weights (benign, attack) for a batch with labels ``y``."""
        if not self._weights_from_batch:
            return self.fixed_class_weights
        counts = torch.bincount(y, minlength=2).to(torch.float32)
        # Absent classes get weight 1; they contribute nothing to this batch anyway.
        return torch.where(counts > 0, counts.sum() / (2 * counts.clamp(min=1)), 1.0)

    def _loss(self, batch) -> torch.Tensor:
        logits, _ = self(batch)
        return F.cross_entropy(logits, batch.y, weight=self.class_weights(batch.y))

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("train_loss", loss, on_epoch=True, batch_size=batch.num_graphs)
        return loss

    def validation_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("val_loss", loss, on_epoch=True, prog_bar=True, batch_size=batch.num_graphs)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(
            self.parameters(), lr=self.settings.lr, weight_decay=self.settings.weight_decay
        )

    # ---------------------------------------------------------- prediction
    @torch.no_grad()
    def predict_step(self, batch, batch_idx: int = 0) -> DetectorOutput:
        logits, embedding = self(batch)
        prob = logits.softmax(dim=-1)
        margin = logits[:, 1] - logits[:, 0]
        entropy = -(prob * prob.clamp_min(1e-12).log()).sum(dim=-1)
        features = torch.stack(
            [
                prob[:, 0],
                prob[:, 1],
                embedding.mean(dim=-1),
                embedding.std(dim=-1),
                embedding.amax(dim=-1),
                embedding.amin(dim=-1),
                1.0 - entropy / math.log(2.0),
                margin,
            ],
            dim=-1,
        )
        return DetectorOutput(
            window_ids=batch.window_id.cpu().numpy(),
            score=margin.float().cpu().numpy(),
            features=features.float().cpu().numpy(),
            feature_names=self.feature_names,
        )


def _fixed_class_weights(config: GATConfig) -> tuple[float, float] | None:
    if config.class_weights is not None:
        return config.class_weights
    if config.positive_share is not None:
        p = config.positive_share
        return (0.5 / (1.0 - p), 0.5 / p)
    return None
