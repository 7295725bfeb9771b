"""The VGAE network: edge-aware attention encoder to a per-node Gaussian, three decoders."""

from __future__ import annotations

import attrs
import torch
from torch import nn
from torch_geometric.nn import GATv2Conv

from fusioncore.contracts import GraphSchema
from fusioncore_vgae.config import VGAEConfig

__all__ = ["Encoding", "VGAENetwork"]

# exp(logvar) overflows / the KL explodes beyond this; the clamp only bites on broken inputs.
_LOGVAR_LIMIT = 10.0


@attrs.frozen(eq=False)
class Encoding:
    """Per-node posterior ``N(mu, exp(logvar))`` and the latent ``z`` the decoders read."""

    mu: torch.Tensor
    logvar: torch.Tensor
    z: torch.Tensor


class VGAENetwork(nn.Module):
    """Encoder ``[embedding(node_id), x] -> (mu, logvar)`` per node, and decoders from ``z``.

    The encoder is a stack of ``GATv2Conv(edge_dim=...)`` layers (edge features
    shape the attention), without added self-loops (the builder's self-loops
    carry their own edge features) but with a residual projection. Decoders:
    an MLP from ``[z, embedding(node_id)]`` back to the node features, an MLP
    classifying the node's CAN-ID vocabulary index (0 = unknown) from ``z``,
    and the parameter-free inner product ``z_i . z_j`` as the logit of an edge
    between two nodes. The feature decoder is told the ID so the latent only
    needs the window context: a payload that does not fit its ID (malfunction,
    spoofing) is then reconstructed as what that ID normally sends, and shows
    up as error instead of being copied through the latent.
    """

    def __init__(self, schema: GraphSchema, config: VGAEConfig) -> None:
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
                add_self_loops=False,
                residual=True,
            )
            for i in range(config.layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(config.width) for _ in range(config.layers))
        self.act = nn.ELU()
        self.dropout = nn.Dropout(config.dropout)
        self.mu = nn.Linear(config.width, config.latent)
        self.logvar = nn.Linear(config.width, config.latent)
        self.feature_decoder = _mlp(config.latent + config.id_embed_dim, config.width, schema.node_dim)
        self.id_decoder = _mlp(config.latent, config.width, schema.num_ids)

    def encode(self, batch, *, sample: bool) -> Encoding:
        """Posterior per node; ``z`` is a reparameterised sample if ``sample`` else ``mu``."""
        h = torch.cat([self.id_embedding(batch.node_id), batch.x], dim=-1)
        edge_attr = batch.edge_attr if self.edge_dim else None
        for conv, norm in zip(self.convs, self.norms):
            h = self.dropout(self.act(norm(conv(h, batch.edge_index, edge_attr))))
        mu = self.mu(h)
        logvar = self.logvar(h).clamp(-_LOGVAR_LIMIT, _LOGVAR_LIMIT)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if sample else mu
        return Encoding(mu=mu, logvar=logvar, z=z)

    def decode_features(self, z: torch.Tensor, node_id: torch.Tensor) -> torch.Tensor:
        """Reconstructed node features ``[n_nodes, node_dim]``."""
        return self.feature_decoder(torch.cat([z, self.id_embedding(node_id)], dim=-1))

    def decode_ids(self, z: torch.Tensor) -> torch.Tensor:
        """Logits over the ID vocabulary, ``[n_nodes, num_ids]``."""
        return self.id_decoder(z)


def _mlp(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ELU(), nn.Linear(hidden, out_dim))
