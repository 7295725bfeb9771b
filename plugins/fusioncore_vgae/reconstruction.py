"""Per-window reconstruction errors of the VGAE, computed for a whole batch at once.

Every quantity is a tensor ``[n_graphs]`` built with scatter reductions or a
dense per-graph layout; there is no Python loop over windows.
"""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F
from torch_geometric.utils import scatter, to_dense_adj, to_dense_batch

from fusioncore_vgae.network import Encoding, VGAENetwork

__all__ = ["CHANNELS", "WindowErrors", "dense_edge_bce", "latent_stats", "window_errors"]

#: The error channels the anomaly score is built from, in column order.
CHANNELS = ("node_mse", "node_mse_max", "id_ce", "id_ce_max", "edge_bce", "standardised_max")


@attrs.frozen(eq=False)
class WindowErrors:
    """Reconstruction errors per window (each ``[n_graphs]``).

    ``node_mse`` / ``id_ce`` average the per-node errors over the window's
    nodes; the ``_max`` variants take the worst node, so one corrupted ID among
    fifty is not diluted away. ``kl`` is the mean per-node KL divergence.
    ``standardised_max`` is the largest absolute error among the node columns
    that are standardised by construction (one byte's change surprise of one
    node is not averaged with some thirty healthy columns either).
    """

    node_mse: torch.Tensor
    node_mse_max: torch.Tensor
    id_ce: torch.Tensor
    id_ce_max: torch.Tensor
    edge_bce: torch.Tensor
    kl: torch.Tensor
    standardised_max: torch.Tensor

    def channels(self) -> torch.Tensor:
        """The score channels as ``[n_graphs, len(CHANNELS)]``."""
        return torch.stack([getattr(self, name) for name in CHANNELS], dim=-1)


def window_errors(network: VGAENetwork, batch, encoding: Encoding,
                  standardised: torch.Tensor | None = None) -> WindowErrors:
    """Decode ``encoding.z`` and measure how far each window is from its reconstruction.

    ``standardised`` (int64 column indices) names the node columns that are
    standardised by construction; ``standardised_max`` is the window's largest
    absolute reconstruction error among them (0 where there are none). Indices,
    not a mask: whether there are any is the tensor's length, which asks the
    device nothing.
    """
    graphs, size = batch.batch, batch.num_graphs
    diff = network.decode_features(encoding.z, batch.node_id) - batch.x
    node_mse = diff.pow(2).mean(dim=-1)
    if standardised is not None and len(standardised):
        worst = diff.index_select(1, standardised).abs().amax(dim=-1)
        standardised_max = scatter(worst, graphs, dim=0, dim_size=size, reduce="max")
    else:
        standardised_max = torch.zeros(size, dtype=diff.dtype, device=diff.device)
    id_ce = F.cross_entropy(network.decode_ids(encoding.z), batch.node_id, reduction="none")
    kl = -0.5 * (1 + encoding.logvar - encoding.mu.pow(2) - encoding.logvar.exp()).sum(dim=-1)
    return WindowErrors(
        node_mse=scatter(node_mse, graphs, dim=0, dim_size=size, reduce="mean"),
        node_mse_max=scatter(node_mse, graphs, dim=0, dim_size=size, reduce="max"),
        id_ce=scatter(id_ce, graphs, dim=0, dim_size=size, reduce="mean"),
        id_ce_max=scatter(id_ce, graphs, dim=0, dim_size=size, reduce="max"),
        edge_bce=dense_edge_bce(encoding.z, batch.edge_index, graphs, size),
        kl=scatter(kl, graphs, dim=0, dim_size=size, reduce="mean"),
        standardised_max=standardised_max,
    )


def dense_edge_bce(
    z: torch.Tensor, edge_index: torch.Tensor, graphs: torch.Tensor, num_graphs: int
) -> torch.Tensor:
    """Balanced BCE of the inner-product decoder over *every* node pair of each window.

    Window graphs are small (at most W nodes), so instead of sampling negatives
    (random, hence non-deterministic scores) all pairs are scored in a dense
    ``[G, n_max, n_max]`` block. The inner product is symmetric, so the target
    is the symmetrised adjacency; the diagonal is left out (``z_i . z_i`` is a
    norm, not a prediction). Positive and negative pairs are averaged
    separately and weighted equally, so sparse and dense windows compare.
    """
    dense_z, node_mask = to_dense_batch(z, graphs, batch_size=num_graphs)
    n_max = dense_z.size(1)
    logits = dense_z @ dense_z.transpose(1, 2)
    adjacency = to_dense_adj(edge_index, graphs, batch_size=num_graphs, max_num_nodes=n_max) > 0
    target = adjacency | adjacency.transpose(1, 2)
    off_diagonal = ~torch.eye(n_max, dtype=torch.bool, device=z.device)
    pairs = node_mask[:, :, None] & node_mask[:, None, :] & off_diagonal
    bce = F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype), reduction="none")
    positive, negative = target & pairs, ~target & pairs
    pos_loss = (bce * positive).sum(dim=(1, 2)) / positive.sum(dim=(1, 2)).clamp(min=1)
    neg_loss = (bce * negative).sum(dim=(1, 2)) / negative.sum(dim=(1, 2)).clamp(min=1)
    return 0.5 * (pos_loss + neg_loss)


def latent_stats(mu: torch.Tensor, graphs: torch.Tensor, num_graphs: int) -> torch.Tensor:
    """Mean, std, max and min of all latent entries of each window: ``[n_graphs, 4]``."""
    dims = mu.size(-1)
    count = scatter(torch.full_like(mu[:, 0], dims), graphs, dim=0, dim_size=num_graphs)
    total = scatter(mu.sum(dim=-1), graphs, dim=0, dim_size=num_graphs)
    total_sq = scatter(mu.pow(2).sum(dim=-1), graphs, dim=0, dim_size=num_graphs)
    mean = total / count.clamp(min=1)
    std = (total_sq / count.clamp(min=1) - mean.pow(2)).clamp(min=0).sqrt()
    high = scatter(mu.amax(dim=-1), graphs, dim=0, dim_size=num_graphs, reduce="max")
    low = scatter(mu.amin(dim=-1), graphs, dim=0, dim_size=num_graphs, reduce="min")
    return torch.stack([mean, std, high, low], dim=-1)
