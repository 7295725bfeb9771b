"""The GAT network: ID embedding, edge-aware attention, jumping knowledge, pooled MLP head."""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.nn import GATv2Conv, JumpingKnowledge, global_max_pool, global_mean_pool

from fusioncore.contracts import GraphSchema
from fusioncore_gat.config import GATConfig

__all__ = ["GATNetwork"]


class GATNetwork(nn.Module):
    """Window graph -> (2 logits, pooled graph embedding).

    Node input is ``[embedding(node_id), x]``; row 0 of the embedding is the
    unknown-ID bucket, trained like any other row so an unseen ID is a signal,
    not a crash. Attention layers are ``GATv2Conv`` with ``edge_dim``, so edge
    features enter the attention weights. The builder already puts a self-loop
    on every ID that repeats (with its own edge features), so the conv adds no
    self-loops of its own (that would replace those features by a mean fill);
    a residual projection keeps each node's own state instead.
    """

    def __init__(self, schema: GraphSchema, config: GATConfig) -> None:
        super().__init__()
        self.edge_dim = schema.edge_dim
        self.id_embedding = nn.Embedding(schema.num_ids, config.id_embed_dim)
        in_dim = config.id_embed_dim + schema.node_dim
        self.convs = nn.ModuleList(
            GATv2Conv(
                in_dim if i == 0 else config.width,
                config.hidden,
                heads=config.heads,
                edge_dim=schema.edge_dim or None,
                dropout=config.attention_dropout,
                add_self_loops=False,
                residual=True,
            )
            for i in range(config.layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(config.width) for _ in range(config.layers))
        self.jk = JumpingKnowledge(config.jk)
        self.act = nn.ELU()
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Sequential(
            nn.Linear(config.embed_dim, config.width),
            nn.ELU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.width, 2),
        )

    def forward(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``logits[G, 2]`` and the pooled graph embedding ``[G, embed_dim]``."""
        h = torch.cat([self.id_embedding(batch.node_id), batch.x], dim=-1)
        edge_attr = batch.edge_attr if self.edge_dim else None
        layer_outputs = []
        for conv, norm in zip(self.convs, self.norms):
            h = self.dropout(self.act(norm(conv(h, batch.edge_index, edge_attr))))
            layer_outputs.append(h)
        h = self.jk(layer_outputs)
        size = batch.num_graphs
        embedding = torch.cat(
            [global_mean_pool(h, batch.batch, size), global_max_pool(h, batch.batch, size)], dim=-1
        )
        return self.head(embedding), embedding
