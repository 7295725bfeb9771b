"""The VGAE network: edge-aware attention encoder to a per-node Gaussian, three decoders."""

from __future__ import annotations

import attrs
import torch
from torch import nn

from fusioncore.contracts import GraphSchema
from fusioncore.nn import GraphAttentionEncoder, mlp
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

    The encoder is :class:`fusioncore.nn.GraphAttentionEncoder` (``GATv2Conv``
    layers with ``edge_dim``, LayerNorm / ELU / dropout, residual, no added
    self-loops) followed by two linear heads for mu and logvar. Decoders:
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
        self.encoder = GraphAttentionEncoder(
            schema, id_embed_dim=config.id_embed_dim, hidden=config.hidden, heads=config.heads,
            layers=config.layers, dropout=config.dropout,
        )
        self.mu = nn.Linear(config.width, config.latent)
        self.logvar = nn.Linear(config.width, config.latent)
        self.feature_decoder = mlp(
            config.latent + config.id_embed_dim, (config.width,), schema.node_dim, activation=nn.ELU
        )
        self.id_decoder = mlp(config.latent, (config.width,), schema.num_ids, activation=nn.ELU)

    @property
    def convs(self) -> nn.ModuleList:
        return self.encoder.convs

    @property
    def id_embedding(self) -> nn.Embedding:
        return self.encoder.id_embedding

    def encode(self, batch, *, sample: bool) -> Encoding:
        """Posterior per node; ``z`` is a reparameterised sample if ``sample`` else ``mu``."""
        h = self.encoder(batch)
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

