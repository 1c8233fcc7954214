from __future__ import annotations

import pytest
import torch

from tsattn.nn.graph import (
    OPERATOR_MAX_NODES,
    SPARSE_MIN_NODES,
    GraphLearner,
    GraphSupport,
    MixHop,
    mix_hop_pair,
)


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
    expected = hop.mlp(torch.cat(_explicit_hops(x, adj, 0.05), dim=1))
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


def _sparse_graph(nodes: int, k: int, dtype=torch.float32):
    """A top-k adjacency as the learner makes it (some kept entries exactly 0), its support."""
    scores = torch.rand(nodes, nodes, dtype=dtype)
    keep = scores.topk(k, dim=1).indices
    adj = torch.zeros_like(scores).scatter_(1, keep, scores.gather(1, keep))
    adj[0, keep[0, 0]] = 0.0  # a kept entry whose value is 0, as relu makes them
    return adj, GraphSupport.from_neighbours(keep)


@pytest.fixture
def propagation():
    """Set ``MixHop.propagation`` for one test, then restore the class default."""
    yield lambda mode: setattr(MixHop, "propagation", mode)
    MixHop.propagation = "auto"


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture
def exact_matmul():
    """Full float32 products on GPUs (no TF32), so both propagations can be compared closely."""
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32 = before


def _outputs_and_grads(set_mode, modes, module, call, x, adj):
    """Per mode: ``call(x, adj)`` and, after a weighted sum's backward, ``[out, dx, dadj,
    *parameter gradients]``."""
    results = []
    for mode in modes:
        set_mode(mode)
        xs, a = x.clone().requires_grad_(), adj.clone().requires_grad_()
        module.zero_grad()
        out = call(xs, a)
        weights = torch.linspace(-1, 1, out.numel(), device=out.device).view(out.shape)
        out.mul(weights).sum().backward()
        results.append([out, xs.grad, a.grad] + [p.grad.clone() for p in module.parameters()])
    return results


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("given_support", [True, False])
def test_sparse_mix_hop_equals_dense_outputs_and_gradients(
    propagation, exact_matmul, transposed, given_support, device
):
    nodes, k = 11, 3
    adj, support = _sparse_graph(nodes, k)
    if transposed:  # the A^T direction of the model: columns vary in length
        adj, support = adj.T, support.transpose()[0]
    adj = adj.to(device)
    support = GraphSupport(support.rows.to(device), support.cols.to(device), nodes)
    hop = MixHop(4, 5, depth=2, beta=0.05).to(device)
    x = torch.randn(3, 4, nodes, 6, device=device)
    given = support if given_support else None
    results = _outputs_and_grads(
        propagation, ("dense", "sparse"), hop, lambda x, a: hop(x, a, given), x, adj
    )
    (out_d, gx_d, ga_d, gw_d, _), (out_s, gx_s, ga_s, gw_s, _) = results
    torch.testing.assert_close(out_s, out_d, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(gx_s, gx_d, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(gw_s, gw_d, atol=1e-5, rtol=1e-4)
    kept = torch.zeros(nodes, nodes, dtype=torch.bool, device=device)
    kept[support.rows, support.cols] = True
    if not given_support:  # found from the nonzeros: the zero-valued kept entry is not there
        kept = (adj != 0) | torch.eye(nodes, dtype=torch.bool, device=device)
    # the adjacency's gradient: the dense one on the kept entries, exactly zero elsewhere
    torch.testing.assert_close(ga_s[kept], ga_d[kept], atol=1e-5, rtol=1e-4)
    assert (ga_s[~kept] == 0).all() and (ga_d[~kept] != 0).any()


@pytest.mark.parametrize("mode", ["sparse", "operator"])
@pytest.mark.parametrize("depth", [1, 3])  # 1: no hop adds beta X; 3: two hops add it in place
def test_propagation_passes_gradcheck(mode, depth):
    adj, support = _sparse_graph(7, 2, dtype=torch.float64)
    hop = MixHop(2, 3, depth=depth, beta=0.1).double()
    hop.propagation = mode
    x = torch.randn(2, 2, 7, 3, dtype=torch.float64, requires_grad=True)
    a = adj.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda x, a: hop(x, a, support), (x, a))


def test_graph_support_keeps_neighbours_and_self_loops_once():
    support = GraphSupport.from_neighbours(torch.tensor([[0, 2], [2, 0], [1, 0]]))
    pairs = list(zip(support.rows.tolist(), support.cols.tolist(), strict=True))
    assert pairs == [(0, 0), (0, 2), (1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2)]
    assert support.crow.tolist() == [0, 2, 5, 8]
    transposed, order = support.transpose()
    assert list(zip(transposed.rows.tolist(), transposed.cols.tolist(), strict=True)) == sorted(
        (c, r) for r, c in pairs
    )
    assert (support.rows[order] == transposed.cols).all()


def test_learner_support_holds_every_nonzero_entry():
    learner = GraphLearner(num_nodes=30, node_dim=6, top_k=4)
    adj, support = learner.learn()
    kept = torch.zeros(30, 30, dtype=torch.bool)
    kept[support.rows, support.cols] = True
    assert ((adj != 0) & ~kept).sum() == 0
    assert support.rows.numel() <= 30 * 5
    assert GraphLearner(num_nodes=3, node_dim=2, top_k=5).learn()[1] is None


def test_automatic_propagation_by_graph_size(propagation):
    hop = MixHop(2, 2)
    x_big = torch.randn(1, 2, SPARSE_MIN_NODES, 1)
    _, sparse = _sparse_graph(SPARSE_MIN_NODES, 4)
    dense_support = GraphSupport.from_dense(torch.ones(SPARSE_MIN_NODES, SPARSE_MIN_NODES))
    adj = torch.ones(SPARSE_MIN_NODES, SPARSE_MIN_NODES)
    assert hop.mode(x_big, adj, sparse) == "sparse" and hop.uses_sparse(x_big, adj, sparse)
    assert hop.mode(x_big, adj, dense_support) == "dense"
    small, small_support = _sparse_graph(SPARSE_MIN_NODES - 1, 1)
    x_small = torch.randn(1, 2, SPARSE_MIN_NODES - 1, 1)
    assert hop.mode(x_small, small, small_support) == "dense"
    tiny, tiny_support = _sparse_graph(OPERATOR_MAX_NODES, 1)
    x_tiny = torch.randn(1, 2, OPERATOR_MAX_NODES, 1)
    assert hop.mode(x_tiny, tiny, tiny_support) == "operator"
    larger = _sparse_graph(OPERATOR_MAX_NODES + 1, 1)
    assert hop.mode(torch.randn(1, 2, OPERATOR_MAX_NODES + 1, 1), *larger) != "operator"
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert hop.mode(x_tiny, tiny, tiny_support) == "dense"
    propagation("sparse")
    assert hop.uses_sparse(torch.randn(1, 2, 5, 1), torch.ones(5, 5), None)
    propagation("dense")
    assert hop.mode(x_big, adj, sparse) == "dense"
    propagation("operator")
    assert hop.mode(x_big, adj, sparse) == "operator"
    hop.propagation = "fast"
    with pytest.raises(ValueError, match=r"MixHop\.propagation='fast': choose one of 'auto'"):
        hop(torch.randn(1, 2, 3, 1), torch.ones(3, 3))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("transposed", [False, True])
def test_operator_mix_hop_equals_dense_outputs_and_gradients(
    propagation, exact_matmul, transposed, device
):
    nodes = 6
    adj, _ = _sparse_graph(nodes, 2)
    adj = (adj.T if transposed else adj).to(device)
    hop = MixHop(4, 5, depth=2, beta=0.05).to(device)
    x = torch.randn(3, 4, nodes, 7, device=device).contiguous(memory_format=torch.channels_last)
    results = _outputs_and_grads(propagation, ("dense", "operator"), hop, hop, x, adj)
    for dense, operator, name in zip(*results, ["out", "x", "adj", "weight", "bias"], strict=True):
        torch.testing.assert_close(operator, dense, atol=1e-5, rtol=1e-4, msg=name)


def test_operator_is_the_hops_as_one_matrix():
    torch.manual_seed(2)
    hop = MixHop(3, 2, depth=2, beta=0.1)
    adj = torch.rand(4, 4)
    op, bias = hop.operator(adj)
    x = torch.randn(1, 3, 4, 1)
    by_hand = op @ x[0, :, :, 0].T.reshape(-1) + bias  # (node, channel) order
    expected = hop.mlp(torch.cat(_explicit_hops(x, adj, 0.1), dim=1))[0, :, :, 0].T.reshape(-1)
    torch.testing.assert_close(by_hand, expected, atol=1e-6, rtol=1e-5)


def _explicit_hops(x: torch.Tensor, adj: torch.Tensor, beta: float) -> list[torch.Tensor]:
    a = adj + torch.eye(adj.size(0))
    a = a / a.sum(dim=1, keepdim=True)
    h1 = beta * x + (1 - beta) * torch.einsum("vw,bcwt->bcvt", a, x)
    h2 = beta * x + (1 - beta) * torch.einsum("vw,bcwt->bcvt", a, h1)
    return [x, h1, h2]


@pytest.mark.parametrize(
    "modes",
    [
        ("operator", "operator"),
        ("dense", "dense"),
        ("sparse", "sparse"),
        ("sparse", "dense"),
        ("dense", "sparse"),
        ("sparse", "operator"),
    ],
)
def test_mix_hop_pair_is_the_sum_of_both_directions(propagation, modes):
    """Each direction in its own mode (set on the module): dense and sparse share one output
    buffer, two operators one matrix, an operator beside another mode the sum of both outputs."""
    nodes = 6
    adj, support = _sparse_graph(nodes, 2)
    hops = torch.nn.ModuleList(MixHop(4, 3, depth=2) for _ in range(2))
    x = torch.randn(2, 4, nodes, 5).contiguous(memory_format=torch.channels_last)
    # the reference: each direction on its own, dense
    (reference,) = _outputs_and_grads(
        propagation, ("dense",), hops, lambda x, a: hops[0](x, a) + hops[1](x, a.T), x, adj
    )
    hops[0].propagation, hops[1].propagation = modes

    def pair(x, a):
        return mix_hop_pair(hops, x, a, support, support.transpose()[0])

    (result,) = _outputs_and_grads(lambda mode: None, ("set",), hops, pair, x, adj)
    kept = torch.zeros(nodes, nodes, dtype=torch.bool)
    kept[support.rows, support.cols] = True
    if "sparse" in modes:  # the adjacency's gradient only on the kept entries
        reference[2], result[2] = reference[2][kept], result[2][kept]
    for expected, got in zip(reference, result, strict=True):
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    if "operator" not in modes:
        assert result[0].is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("mode", ["dense", "sparse"])
def test_mix_hop_pair_under_autocast(propagation, mode):
    """The hops are added into the output in its own precision under autocast."""
    propagation(mode)
    adj, support = _sparse_graph(6, 2)
    hops = torch.nn.ModuleList(MixHop(4, 3, depth=2) for _ in range(2))
    x = torch.randn(2, 4, 6, 5)
    expected = mix_hop_pair(hops, x, adj, support, support.transpose()[0])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = mix_hop_pair(hops, x, adj, support, support.transpose()[0])
    torch.testing.assert_close(got.float(), expected, atol=0.1, rtol=0.05)


@pytest.mark.parametrize("mode", ["dense", "sparse"])
def test_mix_hop_output_is_channels_last(propagation, mode):
    propagation(mode)
    out = MixHop(3, 4)(torch.randn(2, 3, 5, 6), torch.rand(5, 5))
    assert out.is_contiguous(memory_format=torch.channels_last)


def test_operator_output_is_stored_step_major(propagation):
    propagation("operator")
    out = MixHop(3, 4)(torch.randn(2, 3, 5, 6), torch.rand(5, 5))  # (B, C, N, T)
    assert out.permute(0, 3, 2, 1).is_contiguous()  # (B, T, N, C) in memory
