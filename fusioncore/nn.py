"""Building blocks for graph detector authors: the encoder stack, MLPs, presets, JSON hparams.

The bundled ``gat`` and ``vgae`` detectors are built from these pieces, and a
third-party detector may be too:

* :class:`GraphAttentionEncoder` -- ``[embedding(node_id), x]`` through a stack
  of edge-aware ``GATv2Conv`` layers, each followed by LayerNorm, ELU and
  dropout, with a residual projection and no added self-loops;
* :func:`gatv2_forward` -- one such layer as plain tensor ops (bit-identical
  to ``GATv2Conv.forward``, without the message-passing machinery);
* :func:`max_pool` -- ``global_max_pool`` with a cheaper backward pass (same
  values and gradients, a fifth of the time in training);
* :class:`Dropout` -- ``nn.Dropout`` with a cheaper mask (half the time of
  torch's CPU kernel, the same distribution);
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
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import GATv2Conv, global_max_pool

from fusioncore.contracts import GraphSchema
from fusioncore.errors import ConfigError

__all__ = ["Dropout", "GraphAttentionEncoder", "as_schema", "config_from_preset", "gatv2_forward", "max_pool",
           "mlp", "plain_json"]

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


class Dropout(nn.Dropout):
    """``nn.Dropout`` whose keep-mask is ``uniform >= p``, drawn from torch's generator.

    Each entry is kept with probability ``1 - p`` and scaled by ``1 / (1 - p)``,
    as in ``nn.Dropout``; only the way the mask is drawn differs. torch's CPU
    ``bernoulli_`` is slow: on the encoder's ``[7,555, 96]`` states (256
    windows) forward + backward took 8.8 ms against 4.0 ms here (one thread),
    about a tenth of a VGAE or GAT training step. The masks are other draws
    than ``nn.Dropout``'s, so a training run is as reproducible as before
    (same seed, same weights) but not equal to one with ``nn.Dropout``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self.p == 1.0:
            return x * 0.0
        with torch.no_grad():
            keep = torch.rand_like(x).ge_(self.p).mul_(1.0 / (1.0 - self.p))
        return x * keep


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
            layers.append(Dropout(dropout))
        width = int(h)
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


def gatv2_forward(conv: GATv2Conv, x: torch.Tensor, edge_index: torch.Tensor,
                  edge_attr: torch.Tensor | None = None) -> torch.Tensor:
    """``conv(x, edge_index, edge_attr)`` for the encoder's layer configuration, as plain tensor ops.

    The same arithmetic as torch-geometric's ``GATv2Conv.forward`` (2.8) in the
    same order, so the forward pass is bit-identical; what it skips is the
    message-passing machinery around it (hooks, argument inspection, one
    module call per ``Linear``), which is most of a layer's time on a window
    graph of a few dozen nodes: 0.60 ms -> 0.25 ms per layer at 30 nodes,
    28 -> 22 ms at 7,680 (one thread). The backward pass differs from
    PyG's by summation order only. Layers this does not cover (shared
    weights, averaged heads, added self-loops, no residual or bias, or a
    subclass) run ``conv`` itself.
    """
    if (type(conv) is not GATv2Conv or conv.share_weights or not conv.concat or conv.add_self_loops
            or conv.res is None or conv.bias is None or (conv.lin_edge is None) != (edge_attr is None)):
        return conv(x, edge_index, edge_attr)
    heads, channels, n = conv.heads, conv.out_channels, x.size(0)
    src, dst = edge_index[0], edge_index[1]
    x_l = F.linear(x, conv.lin_l.weight, conv.lin_l.bias).view(-1, heads, channels)
    x_r = F.linear(x, conv.lin_r.weight, conv.lin_r.bias).view(-1, heads, channels)
    x_j = x_l.index_select(0, src)  # messages flow source -> target (edge_index[0] -> [1])
    pre = x_r.index_select(0, dst) + x_j
    if edge_attr is not None:
        pre = pre + F.linear(edge_attr, conv.lin_edge.weight).view(-1, heads, channels)
    alpha = (F.leaky_relu(pre, conv.negative_slope) * conv.att).sum(dim=-1)  # [E, heads]
    # softmax over each target's incoming edges, shifted by the (detached) per-target maximum
    index = dst.view(-1, 1).expand_as(alpha)
    peak = alpha.new_zeros(n, heads).scatter_reduce_(0, index, alpha.detach(), "amax", include_self=False)
    alpha = (alpha - peak.index_select(0, dst)).exp()
    total = alpha.new_zeros(n, heads).scatter_add_(0, index, alpha) + 1e-16
    alpha = F.dropout(alpha / total.index_select(0, dst), p=conv.dropout, training=conv.training)
    message = x_j * alpha.unsqueeze(-1)
    out = message.new_zeros(n, heads, channels).scatter_add_(
        0, dst.view(-1, 1, 1).expand_as(message), message).view(n, heads * channels)
    return out + F.linear(x, conv.res.weight) + conv.bias


class _MaxPool(torch.autograd.Function):
    """Per-graph maximum: ``scatter_reduce`` forward, a gradient from row gathers (see :func:`max_pool`)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, batch: torch.Tensor, size: int) -> torch.Tensor:
        # include_self=False on zeros: a graph without nodes keeps 0, as in torch-geometric
        out = x.new_zeros(size, x.size(1)).scatter_reduce_(
            0, batch.view(-1, 1).expand_as(x), x, "amax", include_self=False)
        ctx.save_for_backward(x, batch, out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, batch, out = ctx.saved_tensors
        hit = (x == out.index_select(0, batch)).to(grad.dtype)  # the nodes that hold their graph's max
        ties = hit.new_zeros(out.shape).index_add_(0, batch, hit)
        return hit * (grad / ties.clamp(min=1)).index_select(0, batch), None, None


def max_pool(x: torch.Tensor, batch: torch.Tensor, size: int) -> torch.Tensor:
    """``global_max_pool(x, batch, size)``: the per-graph maximum of node states ``x [N, C]``.

    The same values as torch-geometric (``scatter_reduce(..., "amax")``) and the
    same gradient (nodes tied for a maximum share it equally), but torch's
    backward of that reduction on CPU (gathers and a scatter over an index
    expanded to every node and channel) was a fifth of a GAT training step.
    Here the gradient is a comparison with the maximum gathered back by rows,
    a row-wise ``index_add_`` counting ties, and one more row gather: forward +
    backward at 256 windows and 192 channels took 4.7 instead of 23.6 ms (one
    thread), the forward alone 0.3 ms in both. An empty graph pools to 0.
    """
    if x.dim() != 2:
        return global_max_pool(x, batch, size)
    return _MaxPool.apply(x, batch, size)


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
        self.dropout = Dropout(dropout)

    def layer_outputs(self, batch) -> list[torch.Tensor]:
        """Every layer's node states ``[n_nodes, width]``, first layer first."""
        h = torch.cat([self.id_embedding(batch.node_id), batch.x], dim=-1)
        edge_attr = batch.edge_attr if self.edge_dim else None
        outputs = []
        for conv, norm in zip(self.convs, self.norms):
            h = self.dropout(self.act(norm(gatv2_forward(conv, h, batch.edge_index, edge_attr))))
            outputs.append(h)
        return outputs

    def forward(self, batch) -> torch.Tensor:
        """The last layer's node states ``[n_nodes, width]``."""
        return self.layer_outputs(batch)[-1]
