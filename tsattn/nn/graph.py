"""Graph learning and mix-hop propagation of MTGNN.

Paper: Wu et al., "Connecting the Dots: Multivariate Time Series Forecasting with Graph Neural
Networks", KDD 2020, https://arxiv.org/abs/2005.11650 (sections 4.2 and 4.3).

Departures from the official code:
- The top-k tie-break noise (``rand * 0.01`` in the official code, drawn anew on every call)
  is drawn once at construction and kept as a buffer, so a trained model gives the same graph
  and the same predictions on every call, and after a save/load round trip.
- ``top_k`` larger than the number of nodes keeps every edge instead of failing.
- Mix-hop propagation multiplies only the kept entries (``top_k`` per row plus the self loop)
  where that is faster, and on small graphs the model's two mix-hops (``A`` and ``A^T``) run
  as one matrix over (node, channel), see :class:`MixHop` and :func:`mix_hop_pair`; both
  compute the same function.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GraphLearner", "GraphSupport", "MixHop", "mix_hop_pair"]

_TIE_BREAK_SCALE = 0.01


class GraphLearner(nn.Module):
    """Learns a sparse, uni-directed adjacency matrix ``A`` of shape ``(N, N)``.

    ``M1 = tanh(alpha * E1 Theta1)``, ``M2 = tanh(alpha * E2 Theta2)``,
    ``A = relu(tanh(alpha * (M1 M2^T - M2 M1^T)))``; then every row keeps its ``top_k``
    largest entries (ties broken by a fixed, tiny random offset) and the rest are set to 0.
    The antisymmetric form makes ``A[v, w] > 0`` and ``A[w, v] > 0`` mutually exclusive.

    >>> learner = GraphLearner(num_nodes=5, node_dim=8, top_k=2)
    >>> adj = learner()
    >>> adj.shape, int((adj > 0).sum(dim=1).max()) <= 2
    (torch.Size([5, 5]), True)
    """

    def __init__(
        self, num_nodes: int, node_dim: int = 40, top_k: int = 20, alpha: float = 3.0
    ) -> None:
        super().__init__()
        if num_nodes < 1:
            raise ValueError(f"num_nodes={num_nodes}: a graph needs at least one node.")
        if node_dim < 1:
            raise ValueError(f"node_dim={node_dim}: node embeddings need a dimension >= 1.")
        if top_k < 1:
            raise ValueError(f"top_k={top_k}: keep at least one neighbour per node.")
        self.num_nodes, self.top_k, self.alpha = num_nodes, min(top_k, num_nodes), alpha
        self.emb1 = nn.Embedding(num_nodes, node_dim)
        self.emb2 = nn.Embedding(num_nodes, node_dim)
        self.lin1 = nn.Linear(node_dim, node_dim)
        self.lin2 = nn.Linear(node_dim, node_dim)
        self.register_buffer(
            "tie_break", torch.rand(num_nodes, num_nodes) * _TIE_BREAK_SCALE, persistent=True
        )

    def forward(self) -> torch.Tensor:
        return self.learn()[0]

    def learn(self) -> tuple[torch.Tensor, GraphSupport | None]:
        """The adjacency and the entries the top-k kept (``None`` when every entry is kept)."""
        m1 = torch.tanh(self.alpha * self.lin1(self.emb1.weight))  # (N, D)
        m2 = torch.tanh(self.alpha * self.lin2(self.emb2.weight))  # (N, D)
        scores = m1 @ m2.T - m2 @ m1.T  # (N, D) x (D, N) -> (N, N), antisymmetric
        adj = F.relu(torch.tanh(self.alpha * scores))  # (N, N)
        if self.top_k >= self.num_nodes:
            return adj, None
        keep = (adj.detach() + self.tie_break).topk(self.top_k, dim=1).indices  # (N, k)
        mask = torch.zeros_like(adj).scatter_(1, keep, 1.0)  # (N, N)
        return adj * mask, GraphSupport.from_neighbours(keep)


class GraphSupport:
    """The kept entries of an ``(N, N)`` adjacency and the self loops, in row-major order.

    ``rows[e], cols[e]`` is entry ``e``; ``crow`` holds where each row starts (CSR offsets).
    Built from the top-k neighbours of :class:`GraphLearner` (:meth:`from_neighbours`) or from
    the nonzero entries of a dense matrix (:meth:`from_dense`).

    >>> support = GraphSupport.from_neighbours(torch.tensor([[1], [0], [0]]))
    >>> support.rows.tolist(), support.cols.tolist()
    ([0, 0, 1, 1, 2, 2], [0, 1, 0, 1, 0, 2])
    """

    def __init__(self, rows: torch.Tensor, cols: torch.Tensor, num_nodes: int) -> None:
        key = torch.unique(rows.long() * num_nodes + cols.long())  # sorted, duplicates merged
        self.num_nodes = num_nodes
        self.rows, self.cols = key // num_nodes, key % num_nodes  # (nnz,), (nnz,)
        counts = torch.bincount(self.rows, minlength=num_nodes)
        self.crow = F.pad(counts.cumsum(0), (1, 0))  # (N + 1,)
        self._batched: dict[tuple[int, torch.device], tuple[torch.Tensor, ...]] = {}
        self._transpose: tuple[GraphSupport, torch.Tensor] | None = None

    @classmethod
    def from_neighbours(cls, neighbours: torch.Tensor) -> GraphSupport:
        """Row ``v`` keeps ``neighbours[v]`` (``(N, k)`` indices) and ``v`` itself."""
        nodes, k = neighbours.shape
        loops = torch.arange(nodes, device=neighbours.device)
        rows = torch.cat([loops.repeat_interleave(k), loops])
        return cls(rows, torch.cat([neighbours.reshape(-1), loops]), nodes)

    @classmethod
    def from_dense(cls, adj: torch.Tensor) -> GraphSupport:
        """The nonzero entries of ``adj`` and the diagonal."""
        rows, cols = (adj.detach() != 0).nonzero(as_tuple=True)
        loops = torch.arange(adj.size(0), device=adj.device)
        return cls(torch.cat([rows, loops]), torch.cat([cols, loops]), adj.size(0))

    @property
    def density(self) -> float:
        """Kept entries over ``N^2``."""
        return self.rows.numel() / self.num_nodes**2

    def transpose(self) -> tuple[GraphSupport, torch.Tensor]:
        """The support of ``A^T`` and, for each of its entries, the index of that entry in A."""
        if self._transpose is None:
            order = torch.argsort(self.cols * self.num_nodes + self.rows)
            self._transpose = (GraphSupport(self.cols, self.rows, self.num_nodes), order)
        return self._transpose

    def batched(self, batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(indices, offsets, crow)`` of the block-diagonal ``(B N, B N)`` matrix that applies
        this support to every sample of a ``(B N, M)`` stack at once."""
        key = (batch, self.rows.device)
        if key not in self._batched:
            nnz, nodes = self.rows.numel(), self.num_nodes
            shift = torch.arange(batch, device=self.rows.device).unsqueeze(1)  # (B, 1)
            indices = (self.cols.unsqueeze(0) + shift * nodes).reshape(-1)  # (B nnz,)
            offsets = (self.crow[:-1].unsqueeze(0) + shift * nnz).reshape(-1)  # (B N,)
            crow = torch.cat([offsets, offsets.new_tensor([batch * nnz])])  # (B N + 1,)
            self._batched = {key: (indices, offsets, crow)}  # one batch size at a time
        return self._batched[key]


class _SparsePropagation(torch.autograd.Function):
    """``out[b, v] = sum_{(v, w) kept} values[(v, w)] h[b, w] + beta residual[b, v]`` for
    ``h (B, N, M)`` (no residual term where ``residual`` is ``None``).

    Forward and the gradient of ``h`` are row gathers with weights
    (``F.embedding_bag(mode="sum")``, the second one over the transposed support); the gradient
    of the values is the sampled product ``sum_b <grad[b, v], h[b, w]>`` on the kept entries
    only (``torch.sparse.sampled_addmm``). Work and memory scale with the kept entries, not
    with ``N^2``. The residual (mix-hop's ``beta X``) is added into the gathered rows in place,
    where a separate sum would allocate and fill one more ``(B, N, M)`` buffer per hop
    (``experiments/bench_speed.py``, electricity-like shape).
    """

    @staticmethod
    def forward(ctx, h, values, support, residual, beta):
        batch, nodes, width = h.shape
        ctx.save_for_backward(h, values)
        ctx.support, ctx.beta = support, beta
        out = _gather_rows(h, values, support)  # (B N, M), a fresh buffer
        if residual is not None:
            out.add_(residual.reshape(batch * nodes, width), alpha=beta)
        return out.view(batch, nodes, width)

    @staticmethod
    def backward(ctx, grad_out):
        h, values = ctx.saved_tensors
        support = ctx.support
        batch, nodes, width = h.shape
        grad_out = grad_out.contiguous()
        grad_h = grad_values = None
        if ctx.needs_input_grad[0]:
            transposed, order = support.transpose()
            grad_h = _gather_rows(grad_out, values[order], transposed).view(batch, nodes, width)
        if ctx.needs_input_grad[1]:
            _, _, crow = support.batched(batch)
            indices = support.batched(batch)[0]
            with warnings.catch_warnings():  # "sparse CSR support is in beta state"
                warnings.simplefilter("ignore", UserWarning)
                pattern = torch.sparse_csr_tensor(
                    crow,
                    indices,
                    h.new_zeros(indices.numel()),
                    size=(batch * nodes,) * 2,
                    check_invariants=False,  # built sorted and in range above
                )
            # (B N, M) x (M, B N), sampled on the block-diagonal support -> (B nnz,)
            sampled = torch.sparse.sampled_addmm(
                pattern, grad_out.view(-1, width), h.view(-1, width).T, beta=0.0
            )
            grad_values = sampled.values().view(batch, -1).sum(0).to(values.dtype)
        grad_residual = grad_out.mul(ctx.beta) if ctx.needs_input_grad[3] else None
        return grad_h, grad_values, None, grad_residual, None


def _gather_rows(h: torch.Tensor, values: torch.Tensor, support: GraphSupport) -> torch.Tensor:
    """``(B, N, M) -> (B N, M)``: every row the weighted sum of the rows its support names."""
    batch, nodes, width = h.shape
    indices, offsets, _ = support.batched(batch)
    weights = values.to(h.dtype).repeat(batch)  # (B nnz,)
    return F.embedding_bag(
        indices, h.reshape(batch * nodes, width), offsets, mode="sum", per_sample_weights=weights
    )


#: the automatic choice takes the sparse propagation on CPUs from this many nodes ...
SPARSE_MIN_NODES = 64
#: ... when at most this share of the ``N^2`` entries is kept (``experiments/bench_graph.py``)
SPARSE_MAX_DENSITY = 0.25
#: the automatic choice applies mix-hop as one (node, channel) operator on CPUs up to this many
#: nodes (``experiments/bench_graph.py``, operator table)
OPERATOR_MAX_NODES = 32
PROPAGATIONS = ("auto", "dense", "sparse", "operator")


class MixHop(nn.Module):
    """Mix-hop propagation: ``H_k = beta * X + (1 - beta) * A_norm H_{k-1}``, ``H_0 = X``.

    ``A_norm = D^-1 (A + I)`` (row-normalised with self loops) and one hop aggregates
    ``out[v] = sum_w A_norm[v, w] x[w]``: node ``v`` gathers from the nodes ``w`` its row
    points to. The hops ``H_0 .. H_depth`` are concatenated on channels and mixed by a
    1x1 convolution. Input ``(B, c_in, N, T)``, output ``(B, c_out, N, T)``.

    Three propagations compute the same function:

    - ``dense``: one batched matrix product per hop with the whole ``(N, N)`` matrix;
    - ``sparse``: only the kept entries, ``support`` (the learner's top-k per row plus the self
      loops; by default the nonzero entries of ``adj``), forward and backward; the gradient
      of ``adj`` is computed on those entries only (elsewhere it is zero, where the dense form
      gives a value that the top-k mask then discards);
    - ``operator``: the whole layer as one ``(N c_out, N c_in)`` matrix over (node, channel),
      ``sum_k P_k(A) (x) W_k`` with ``H_k = P_k(A) X`` (:meth:`operator`), applied to every
      ``(sample, step)`` by one matrix product. It does ``N / (depth + 1)`` times the
      multiply-adds of the other two, in one large product instead of ``2 depth + 1`` thin
      ones and as many passes over memory, which wins on small graphs; the model's two
      directions then share one product (:func:`mix_hop_pair`).

    ``propagation = "auto"`` (the default) takes, on CPUs, ``operator`` when ``N <=``
    :data:`OPERATOR_MAX_NODES`, ``sparse`` when ``N >=`` :data:`SPARSE_MIN_NODES` and at most
    :data:`SPARSE_MAX_DENSITY` of the entries are kept, and ``dense`` otherwise, the crossovers
    measured by ``experiments/bench_graph.py``; ``dense`` on GPUs and under autocast. Set a
    mode on one module or on the class to override it. ``dense`` and ``sparse`` write their
    output in channels-last memory layout (the layout the gated convolution writes and reads),
    ``operator`` in ``(B, T, N, C)`` order.

    >>> hop = MixHop(8, 16, depth=2)
    >>> hop(torch.randn(2, 8, 4, 10), torch.rand(4, 4)).shape
    torch.Size([2, 16, 4, 10])
    """

    #: ``"auto"``, ``"dense"``, ``"sparse"`` or ``"operator"``; on one module or on the class.
    propagation: str = "auto"

    def __init__(self, c_in: int, c_out: int, depth: int = 2, beta: float = 0.05) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth={depth}: mix-hop propagation needs at least one hop.")
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta={beta}: the retain ratio must lie in [0, 1].")
        self.depth, self.beta = depth, beta
        self.mlp = nn.Conv2d((depth + 1) * c_in, c_out, kernel_size=1)

    def mode(self, x: torch.Tensor, adj: torch.Tensor, support: GraphSupport | None) -> str:
        """The propagation ``forward(x, adj, support)`` takes: dense, sparse or operator."""
        mode = self.propagation
        if mode not in PROPAGATIONS:
            raise ValueError(
                f"MixHop.propagation={mode!r}: choose one of {', '.join(map(repr, PROPAGATIONS))}."
            )
        if mode != "auto":
            return mode
        nodes = adj.size(0)
        if x.device.type != "cpu" or _autocast_enabled(x):
            return "dense"
        if nodes <= OPERATOR_MAX_NODES:
            return "operator"
        if nodes < SPARSE_MIN_NODES:
            return "dense"
        if support is None:
            kept = int((adj.detach() != 0).sum()) + nodes  # the self loops, at most
            return "sparse" if kept / nodes**2 <= SPARSE_MAX_DENSITY else "dense"
        return "sparse" if support.density <= SPARSE_MAX_DENSITY else "dense"

    def uses_sparse(self, x: torch.Tensor, adj: torch.Tensor, support: GraphSupport | None) -> bool:
        """Whether ``forward(x, adj, support)`` takes the sparse propagation."""
        return self.mode(x, adj, support) == "sparse"

    def forward(
        self, x: torch.Tensor, adj: torch.Tensor, support: GraphSupport | None = None
    ) -> torch.Tensor:
        mode = self.mode(x, adj, support)
        if mode == "operator":
            return _apply_operator(x, *self.operator(adj))
        x_cl = _channels_last_rows(x)  # (B, N, T, C)
        # (B N T, C) x (C, c_out) -> (B N T, c_out): the H_0 = X term and the bias
        out = F.linear(x_cl.view(-1, x.size(1)), self.hop_weight(0), self.mlp.bias)
        self.add_hops(out, x_cl, adj, support, mode)
        return _from_rows(out, x)

    def hop_weight(self, k: int) -> torch.Tensor:
        """The ``(c_out, c_in)`` slice of the 1x1 convolution that mixes hop ``H_k``."""
        weight = self.mlp.weight  # (c_out, (depth + 1) c_in, 1, 1)
        return weight.view(self.mlp.out_channels, self.depth + 1, -1)[:, k]

    def add_hops(
        self,
        out: torch.Tensor,
        x_cl: torch.Tensor,
        adj: torch.Tensor,
        support: GraphSupport | None,
        mode: str,
    ) -> None:
        """``out += sum_{k >= 1} H_k W_k^T``, in place, for the ``dense`` or ``sparse`` mode.

        ``x_cl`` is the input in ``(B, N, T, C)`` order and ``out`` its ``(B N T, c_out)``
        rows. Channels-last layout: each sample's ``(N, T C)`` block is contiguous, so a hop is
        one product per sample, and the 1x1 convolution over the concatenated hops is a sum of
        one product per hop, accumulated into ``out`` (no concatenation, no copy of ``out``).
        """
        batch, nodes, steps, channels = x_cl.shape
        x_flat = x_cl.view(batch, nodes, steps * channels)  # (B, N, T C)
        if mode == "sparse":
            support = support if support is not None else GraphSupport.from_dense(adj)
            values = self._normalised_values(adj, support)  # (nnz,)
            # H_1 = beta X + A' X: beta folded into the self loops, which every support keeps
            loops = (support.rows == support.cols).to(values.dtype)
            h = _SparsePropagation.apply(x_flat, values + self.beta * loops, support, None, 0.0)
            _accumulate(out, h, self.hop_weight(1))  # += H_1 W_1^T
            for k in range(2, self.depth + 1):
                # H_k[v] = beta X[v] + sum_{w kept} A'[v, w] H_{k-1}[w]
                h = _SparsePropagation.apply(h, values, support, x_flat, self.beta)
                _accumulate(out, h, self.hop_weight(k))  # += H_k W_k^T
            return
        adj = self._normalised(adj).to(x_flat.dtype).expand(batch, nodes, nodes)  # a view
        h = x_flat
        for k in range(1, self.depth + 1):
            # (B, N, N) x (B, N, T C) -> (B, N, T C), plus beta X
            h = torch.baddbmm(x_flat, adj, h, beta=self.beta)
            _accumulate(out, h, self.hop_weight(k))  # += H_k W_k^T

    def operator(self, adj: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """This layer as one linear map over (node, channel): ``(N c_out, N c_in)`` and its bias
        ``(N c_out,)``, differentiable in ``adj`` and the weights.

        ``H_k = P_k(A) X`` with ``P_0 = I`` and ``P_k = beta I + A_norm' P_{k-1}`` (``A_norm'``
        the normalised matrix with ``1 - beta`` folded in), so ``out = sum_k P_k X W_k^T``,
        whose entry ``[(v, o), (w, c)]`` is ``sum_k P_k[v, w] W_k[o, c]``.

        >>> hop = MixHop(2, 3, depth=1)
        >>> [tuple(t.shape) for t in hop.operator(torch.rand(4, 4))]
        [(12, 8), (12,)]
        """
        nodes = adj.size(0)
        c_out = self.mlp.out_channels
        weight = self.mlp.weight.view(c_out, self.depth + 1, -1)  # (c_out, depth + 1, c_in)
        step, eye = self._normalised(adj), torch.eye(nodes, dtype=adj.dtype, device=adj.device)
        polys = [eye]
        for _ in range(self.depth):
            polys.append(torch.addmm(eye, step, polys[-1], beta=self.beta))  # beta I + A' P
        polys = torch.stack(polys).to(weight.dtype)  # (depth + 1, N, N)
        op = torch.einsum("kvw,okc->vowc", polys, weight)  # (N, c_out, N, c_in)
        return op.reshape(nodes * c_out, -1), self.mlp.bias.repeat(nodes)

    def _normalised(self, adj: torch.Tensor) -> torch.Tensor:
        """``(1 - beta) D^-1 (A + I)``, ``(N, N)``."""
        adj = adj + torch.eye(adj.size(0), dtype=adj.dtype, device=adj.device)
        return (1.0 - self.beta) * adj / adj.sum(dim=1, keepdim=True)

    def _normalised_values(self, adj: torch.Tensor, support: GraphSupport) -> torch.Tensor:
        """``(1 - beta) D^-1 (A + I)`` on the kept entries, ``(nnz,)``, differentiable."""
        rows, cols = support.rows, support.cols
        raw = adj[rows, cols] + (rows == cols).to(adj.dtype)  # (nnz,)
        degree = torch.zeros(support.num_nodes, dtype=adj.dtype, device=adj.device)
        degree = degree.index_add(0, rows, raw)  # (N,), the row sums of A + I
        return (1.0 - self.beta) * raw / degree[rows]


def mix_hop_pair(
    hops: nn.ModuleList | tuple[MixHop, MixHop],
    x: torch.Tensor,
    adj: torch.Tensor,
    support: GraphSupport | None = None,
    support_t: GraphSupport | None = None,
) -> torch.Tensor:
    """``hops[0](x, A) + hops[1](x, A^T)``, MTGNN's graph convolution in both directions.

    Where both take the operator form, their operators are summed and applied once: one matrix
    product for the pair, the shared ``H_0 = X`` term counted once. Where both take the dense or
    sparse form, the ``H_0`` term is one product with the summed weights and both directions add
    their hops into the same output (:meth:`MixHop.add_hops`). ``support_t`` is the support
    of ``A^T``.

    >>> hops = (MixHop(4, 4), MixHop(4, 4))
    >>> mix_hop_pair(hops, torch.randn(2, 4, 5, 6), torch.rand(5, 5)).shape
    torch.Size([2, 4, 5, 6])
    """
    first, second = hops
    adj_t = adj.T
    modes = first.mode(x, adj, support), second.mode(x, adj_t, support_t)
    if modes == ("operator", "operator"):
        op, bias = first.operator(adj)
        op_t, bias_t = second.operator(adj_t)
        return _apply_operator(x, op + op_t, bias + bias_t)
    if "operator" in modes:
        return first(x, adj, support) + second(x, adj_t, support_t)
    # dense or sparse: both directions accumulate into one output, H_0 = X's term computed once
    x_cl = _channels_last_rows(x)  # (B, N, T, C)
    weight = first.hop_weight(0) + second.hop_weight(0)
    out = F.linear(x_cl.view(-1, x.size(1)), weight, first.mlp.bias + second.mlp.bias)
    first.add_hops(out, x_cl, adj, support, modes[0])
    second.add_hops(out, x_cl, adj_t, support_t, modes[1])
    return _from_rows(out, x)


def _accumulate(out: torch.Tensor, h: torch.Tensor, weight: torch.Tensor) -> None:
    """``out += h W^T`` in place: ``out (rows, c_out)``, ``h`` viewed as ``(rows, c_in)``, in
    ``out``'s dtype (under autocast the hops may come in another precision)."""
    out.addmm_(h.reshape(out.size(0), -1).to(out.dtype), weight.T.to(out.dtype))


def _channels_last_rows(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, N, T) -> (B, N, T, C)``, contiguous: no copy when ``x`` is channels-last."""
    return x.permute(0, 2, 3, 1).contiguous()


def _from_rows(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``(B N T, c_out)`` rows -> ``(B, c_out, N, T)`` for input ``x``, channels-last, no copy."""
    batch, _, nodes, steps = x.shape
    return out.view(batch, nodes, steps, -1).permute(0, 3, 1, 2)


def _apply_operator(x: torch.Tensor, op: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``(B, c_in, N, T) -> (B, c_out, N, T)``: ``op (N c_out, N c_in)`` applied at every
    ``(sample, step)``; the output is stored in ``(B, T, N, c_out)`` order."""
    batch, channels, nodes, steps = x.shape
    x_t = x.permute(0, 3, 2, 1).contiguous()  # (B, C, N, T) -> (B, T, N, C)
    out = F.linear(x_t.view(batch * steps, nodes * channels), op.to(x.dtype), bias.to(x.dtype))
    return out.view(batch, steps, nodes, -1).permute(0, 3, 2, 1)  # -> (B, c_out, N, T)


def _autocast_enabled(x: torch.Tensor) -> bool:
    try:
        return torch.is_autocast_enabled(x.device.type)
    except TypeError:  # torch < 2.4 takes no device type
        return torch.is_autocast_enabled() or torch.is_autocast_cpu_enabled()
