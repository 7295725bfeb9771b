"""Building blocks for graph detector authors: the encoder stack, MLPs, presets, JSON hparams.

The bundled ``gat`` and ``vgae`` detectors are built from these pieces, and a
third-party detector may be too:

* :class:`GraphAttentionEncoder` -- ``[embedding(node_id), x]`` through a stack
  of edge-aware ``GATv2Conv`` layers, each followed by LayerNorm, ELU and
  dropout, with a residual projection and no added self-loops;
* :func:`mlp` -- ``Linear`` layers with an activation between them;
* :func:`config_from_preset` -- a named attrs preset with keyword overrides,
  every mistake a one-line :class:`~fusioncore.errors.ConfigError`;
* :func:`plain_json` / :func:`as_schema` -- hyperparameters that survive
  ``torch.load(weights_only=True)`` and a schema rebuilt from them.

torch and torch-geometric are imported here, so import this module only
where a model is built.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import attrs
import torch
from torch import nn
from torch_geometric.nn import GATv2Conv

from fusioncore.contracts import GraphSchema
from fusioncore.errors import ConfigError

__all__ = ["GraphAttentionEncoder", "as_schema", "config_from_preset", "mlp", "plain_json"]

C = TypeVar("C")


def plain_json(value: Mapping[str, Any]) -> dict[str, Any]:
    """``value`` as JSON would give it back (tuples become lists): safe as Lightning hparams."""
    return json.loads(json.dumps(dict(value)))


def as_schema(schema: GraphSchema | Mapping[str, Any]) -> GraphSchema:
    """Accept the schema itself or its fields (as stored in a checkpoint's hparams)."""
    return schema if isinstance(schema, GraphSchema) else GraphSchema(**schema)


def config_from_preset(
    cls: type[C], presets: Mapping[str, C], kind: str, preset: str, overrides: Mapping[str, Any]
) -> C:
    """``presets[preset]`` with ``overrides`` applied; bad names or values raise ConfigError.

    ``kind`` names the component in messages (``unknown gat preset 'huge'``).
    """
    if preset not in presets:
        raise ConfigError(
            f"unknown {kind} preset {preset!r}; available presets: {', '.join(sorted(presets))}"
        )
    known = {a.name for a in attrs.fields(cls)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(
            f"unknown {kind} option(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}"
        )
    try:
        return attrs.evolve(presets[preset], **overrides)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid {kind} option: {exc}") from exc


def mlp(
    in_dim: int,
    hidden: Sequence[int],
    out_dim: int,
    *,
    activation: type[nn.Module] = nn.ReLU,
    dropout: float = 0.0,
) -> nn.Sequential:
    """``in_dim -> hidden[0] -> ... -> out_dim``, ``activation`` (and dropout) between layers."""
    layers: list[nn.Module] = []
    width = in_dim
    for h in hidden:
        layers += [nn.Linear(width, int(h)), activation()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = int(h)
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


class GraphAttentionEncoder(nn.Module):
    """Node states of a window-graph batch: ID embedding + edge-aware graph attention.

    Node input is ``[embedding(node_id), x]``; row 0 of the embedding is the
    unknown-ID bucket, trained like any other row, so an unseen ID is a
    signal, not a crash. Each layer is ``GATv2Conv(edge_dim=...)`` (edge
    features shape the attention weights) followed by LayerNorm, ELU and
    dropout. The builder already puts a self-loop on every ID that repeats,
    with its own edge features, so the convolution adds none of its own
    (that would replace those features by a mean fill); a residual
    projection keeps each node's own state instead.

    ``hidden`` is the number of channels per head; heads are concatenated, so
    every layer is ``hidden * heads`` wide (:attr:`width`).
    """

    def __init__(
        self,
        schema: GraphSchema,
        *,
        id_embed_dim: int,
        hidden: int,
        heads: int,
        layers: int,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.edge_dim = schema.edge_dim
        self.width = hidden * heads
        self.id_embedding = nn.Embedding(schema.num_ids, id_embed_dim)
        in_dim = id_embed_dim + schema.node_dim
        self.convs = nn.ModuleList(
            GATv2Conv(
                in_dim if i == 0 else self.width,
                hidden,
                heads=heads,
                edge_dim=schema.edge_dim or None,
                dropout=attention_dropout,
                add_self_loops=False,
                residual=True,
            )
            for i in range(layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(self.width) for _ in range(layers))
        self.act = nn.ELU()
        self.dropout = nn.Dropout(dropout)

    def layer_outputs(self, batch) -> list[torch.Tensor]:
        """Every layer's node states ``[n_nodes, width]``, first layer first."""
        h = torch.cat([self.id_embedding(batch.node_id), batch.x], dim=-1)
        edge_attr = batch.edge_attr if self.edge_dim else None
        outputs = []
        for conv, norm in zip(self.convs, self.norms):
            h = self.dropout(self.act(norm(conv(h, batch.edge_index, edge_attr))))
            outputs.append(h)
        return outputs

    def forward(self, batch) -> torch.Tensor:
        """The last layer's node states ``[n_nodes, width]``."""
        return self.layer_outputs(batch)[-1]
