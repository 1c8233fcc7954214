from __future__ import annotations

import pytest
import torch

from tsattn.nn.graph import GraphLearner, MixHop


def test_graph_learner_keeps_top_k_per_row_and_is_uni_directed():
    learner = GraphLearner(num_nodes=12, node_dim=6, top_k=3, alpha=3.0)
    adj = learner()
    assert adj.shape == (12, 12)
    assert (adj >= 0).all()
    assert int((adj > 0).sum(dim=1).max()) <= 3
    # antisymmetric scores: an edge v->w excludes w->v
    assert not ((adj > 0) & (adj.T > 0)).any()


def test_graph_learner_is_deterministic_across_calls():
    learner = GraphLearner(num_nodes=9, node_dim=4, top_k=2)
    torch.testing.assert_close(learner(), learner(), atol=0, rtol=0)


def test_graph_learner_top_k_larger_than_nodes_keeps_every_edge():
    learner = GraphLearner(num_nodes=3, node_dim=4, top_k=20)
    adj = learner()
    m1 = torch.tanh(3.0 * learner.lin1(learner.emb1.weight))
    m2 = torch.tanh(3.0 * learner.lin2(learner.emb2.weight))
    expected = torch.relu(torch.tanh(3.0 * (m1 @ m2.T - m2 @ m1.T)))
    torch.testing.assert_close(adj, expected)


def test_graph_learner_gradients_reach_embeddings():
    learner = GraphLearner(num_nodes=6, node_dim=4, top_k=2)
    learner().sum().backward()
    for name, param in learner.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name


def test_mix_hop_matches_explicit_propagation():
    torch.manual_seed(1)
    hop = MixHop(3, 5, depth=2, beta=0.05)
    x = torch.randn(2, 3, 4, 6)
    adj = torch.rand(4, 4)
    a = adj + torch.eye(4)
    a = a / a.sum(dim=1, keepdim=True)
    h1 = 0.05 * x + 0.95 * torch.einsum("vw,bcwt->bcvt", a, x)
    h2 = 0.05 * x + 0.95 * torch.einsum("vw,bcwt->bcvt", a, h1)
    expected = hop.mlp(torch.cat([x, h1, h2], dim=1))
    torch.testing.assert_close(hop(x, adj), expected, atol=1e-5, rtol=1e-5)


def test_mix_hop_aggregates_rows_out_v_from_w():
    hop = MixHop(1, 1, depth=1, beta=0.0)
    with torch.no_grad():
        hop.mlp.weight.zero_()
        hop.mlp.weight[0, 1] = 1.0  # read the first hop only
        hop.mlp.bias.zero_()
    x = torch.tensor([1.0, 10.0, 100.0]).view(1, 1, 3, 1)
    adj = torch.zeros(3, 3)
    adj[0, 2] = 1.0  # node 0 reads from node 2
    out = hop(x, adj).view(3)
    # row 0 of A + I is normalised to [0.5, 0, 0.5]
    torch.testing.assert_close(out, torch.tensor([50.5, 10.0, 100.0]))


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(num_nodes=0), "num_nodes=0"),
    (dict(num_nodes=3, node_dim=0), "node_dim=0"),
    (dict(num_nodes=3, top_k=0), "top_k=0"),
])  # fmt: skip
def test_graph_learner_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GraphLearner(**kwargs)


def test_mix_hop_bad_arguments():
    with pytest.raises(ValueError, match="depth=0"):
        MixHop(2, 2, depth=0)
    with pytest.raises(ValueError, match=r"beta=1\.5"):
        MixHop(2, 2, beta=1.5)
