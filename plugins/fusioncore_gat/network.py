"""The GAT network: the shared graph-attention encoder, jumping knowledge, pooled MLP head."""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.nn import JumpingKnowledge, global_mean_pool

from fusioncore.contracts import GraphSchema
from fusioncore.nn import GraphAttentionEncoder, max_pool, mlp
from fusioncore_gat.config import GATConfig

__all__ = ["GATNetwork"]


class GATNetwork(nn.Module):
    """Window graph -> (2 logits, pooled graph embedding).

    Node states come from :class:`fusioncore.nn.GraphAttentionEncoder` (ID
    embedding with an unknown-ID bucket, ``GATv2Conv`` layers with
    ``edge_dim``, LayerNorm / ELU / dropout, residual, no added self-loops).
    Jumping knowledge combines every layer's output, and the graph embedding
    is ``[mean pool, max pool]`` of that.
    """

    def __init__(self, schema: GraphSchema, config: GATConfig) -> None:
        super().__init__()
        self.encoder = GraphAttentionEncoder(
            schema, id_embed_dim=config.id_embed_dim, hidden=config.hidden, heads=config.heads,
            layers=config.layers, dropout=config.dropout, attention_dropout=config.attention_dropout,
        )
        self.jk = JumpingKnowledge(config.jk)
        self.head = mlp(config.embed_dim, (config.width,), 2, activation=nn.ELU, dropout=config.dropout)

    @property
    def convs(self) -> nn.ModuleList:
        return self.encoder.convs

    def forward(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``logits[G, 2]`` and the pooled graph embedding ``[G, embed_dim]``."""
        h = self.jk(self.encoder.layer_outputs(batch))
        size = batch.num_graphs
        embedding = torch.cat(
            [global_mean_pool(h, batch.batch, size), max_pool(h, batch.batch, size)], dim=-1
        )
        return self.head(embedding), embedding
