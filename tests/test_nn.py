"""fusioncore.nn.gatv2_forward: the encoder's GATv2 layer without the message-passing machinery."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.nn import GATv2Conv

from fusioncore.contracts import GraphSchema
from fusioncore.nn import GraphAttentionEncoder, gatv2_forward


def _graph(nodes: int, edges: int, *, edge_dim: int | None = 5, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(nodes, 12, generator=g)
    # the last nodes get no incoming edge (a window's ID seen once, at its end): softmax over nothing
    edge_index = torch.stack([torch.randint(0, nodes, (edges,), generator=g),
                              torch.randint(0, max(1, nodes - 3), (edges,), generator=g)])
    edge_attr = torch.randn(edges, edge_dim, generator=g) if edge_dim else None
    return x, edge_index, edge_attr


def _conv(edge_dim: int | None = 5, **options) -> GATv2Conv:
    torch.manual_seed(1)
    conv = GATv2Conv(12, 8, heads=3, edge_dim=edge_dim, add_self_loops=False, residual=True, **options)
    with torch.no_grad():  # PyG starts the bias at zero; a non-zero one is checked too
        conv.bias.normal_()
    return conv.eval()


@pytest.mark.parametrize(("nodes", "edges", "edge_dim"),
                         [(30, 120, 5), (500, 2500, 5), (4, 0, 5), (30, 120, None)])
def test_the_forward_pass_is_bit_identical_to_pygs(nodes, edges, edge_dim):
    conv = _conv(edge_dim)
    x, edge_index, edge_attr = _graph(nodes, edges, edge_dim=edge_dim)
    with torch.inference_mode():
        assert torch.equal(gatv2_forward(conv, x, edge_index, edge_attr), conv(x, edge_index, edge_attr))


def test_gradients_match_pygs_to_rounding():
    conv = _conv().train()  # attention dropout is 0: the same pass as PyG's
    x, edge_index, edge_attr = _graph(40, 200)
    grads = []
    for forward in (gatv2_forward, lambda c, *a: c(*a)):
        conv.zero_grad()
        inputs = x.clone().requires_grad_()
        forward(conv, inputs, edge_index, edge_attr).pow(2).sum().backward()
        grads.append([inputs.grad, *(p.grad for p in conv.parameters())])
    for ours, theirs in zip(*grads):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


def test_attention_dropout_acts_in_training_only():
    conv = _conv()
    conv.dropout = 0.5
    x, edge_index, edge_attr = _graph(30, 120)
    with torch.no_grad():
        evaluated = gatv2_forward(conv, x, edge_index, edge_attr)
        assert torch.equal(evaluated, conv(x, edge_index, edge_attr))
        conv.train()
        torch.manual_seed(3)
        dropped = gatv2_forward(conv, x, edge_index, edge_attr)
    assert not torch.equal(dropped, evaluated)


@pytest.mark.parametrize("options", [{"share_weights": True}, {"concat": False}])
def test_other_layer_configurations_run_the_layer_itself(options, monkeypatch):
    conv = _conv(**options)
    x, edge_index, edge_attr = _graph(30, 120)
    with torch.inference_mode():
        want = conv(x, edge_index, edge_attr)
        calls = []
        monkeypatch.setattr(GATv2Conv, "forward", lambda self, *a: calls.append(1) or want)
        assert gatv2_forward(conv, x, edge_index, edge_attr) is want
    assert calls == [1]


def test_the_encoder_gives_the_states_pygs_layers_give():
    schema = GraphSchema(node_features=[f"n{i}" for i in range(12)],
                         edge_features=[f"e{i}" for i in range(5)], num_ids=9)
    encoder = GraphAttentionEncoder(schema, id_embed_dim=4, hidden=8, heads=2, layers=2).eval()
    x, edge_index, edge_attr = _graph(30, 120)

    batch = Data(x=x, edge_index=edge_index, edge_attr=edge_attr, node_id=torch.arange(30) % 9)
    with torch.inference_mode():
        got = encoder.layer_outputs(batch)
        h = torch.cat([encoder.id_embedding(batch.node_id), x], dim=-1)
        for conv, norm, layer in zip(encoder.convs, encoder.norms, got):
            h = encoder.act(norm(conv(h, edge_index, edge_attr)))
            assert torch.equal(layer, h)
