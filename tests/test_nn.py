"""fusioncore.nn's fast paths: the GATv2 layer without the message-passing machinery, the max pool
with a cheaper backward pass, dropout with a cheaper mask. Each is held to what it replaces."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.nn import GATv2Conv, global_max_pool

from fusioncore.contracts import GraphSchema
from fusioncore.nn import Dropout, GraphAttentionEncoder, gatv2_forward, max_pool


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


def _pool_inputs(counts: list[int], channels: int = 6, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    batch = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
    return torch.randn(len(batch), channels, generator=g), batch


@pytest.mark.parametrize("counts", [[3, 1, 5], [4, 0, 2, 0], [0, 0], [7]])
def test_the_max_pool_gives_pygs_values_and_gradients(counts):
    x, batch = _pool_inputs(counts)
    if len(x) > 1:
        x[1] = x[0]  # a tie: both share the gradient, as in torch-geometric
    grads = []
    for pool in (max_pool, global_max_pool):
        inputs = x.clone().requires_grad_()
        out = pool(inputs, batch, len(counts))
        out.backward(torch.arange(out.numel(), dtype=out.dtype).view_as(out))
        grads.append((out.detach(), inputs.grad))
    (ours, our_grad), (theirs, their_grad) = grads
    assert torch.equal(ours, theirs)  # empty graphs pool to 0 in both
    assert torch.equal(our_grad, their_grad)


def test_the_max_pool_needs_no_graph_order():
    x, _ = _pool_inputs([5, 3])
    batch = torch.tensor([1, 0, 0, 1, 1, 0, 1, 1])
    grads = []
    for pool in (max_pool, global_max_pool):
        inputs = x.clone().requires_grad_()
        out = pool(inputs, batch, 3)
        out.backward(torch.ones_like(out))
        grads.append((out.detach(), inputs.grad))
    assert torch.equal(grads[0][0], grads[1][0])
    assert torch.equal(grads[0][1], grads[1][1])


def test_the_max_pool_in_inference_mode():
    x, batch = _pool_inputs([3, 4])
    with torch.inference_mode():
        assert torch.equal(max_pool(x, batch, 2), global_max_pool(x, batch, 2))


def test_dropout_keeps_the_share_and_scale_of_torchs():
    drop = Dropout(0.25).train()
    x = torch.ones(200_000)
    torch.manual_seed(0)
    out = drop(x)
    kept = out != 0
    assert abs(kept.float().mean().item() - 0.75) < 0.005
    assert torch.all(out[kept] == torch.tensor(1 / 0.75))
    torch.manual_seed(0)
    assert torch.equal(drop(x), out)  # the seed decides the mask


def test_dropout_passes_gradients_through_the_kept_entries_only():
    drop = Dropout(0.5).train()
    x = torch.randn(1000, requires_grad=True)
    out = drop(x)
    out.sum().backward()
    assert torch.equal(x.grad, (out != 0).float() * 2.0)


def test_dropout_is_the_identity_in_evaluation_and_at_p0():
    x = torch.randn(50)
    assert Dropout(0.5).eval()(x) is x
    assert Dropout(0.0).train()(x) is x
    assert torch.equal(Dropout(1.0).train()(x), torch.zeros(50))
