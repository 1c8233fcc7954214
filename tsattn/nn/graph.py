"""Graph learning and mix-hop propagation of MTGNN.

Paper: Wu et al., "Connecting the Dots: Multivariate Time Series Forecasting with Graph Neural
Networks", KDD 2020, https://arxiv.org/abs/2005.11650 (sections 4.2 and 4.3).

Departures from the official code:
- The top-k tie-break noise (``rand * 0.01`` in the official code, drawn anew on every call)
  is drawn once at construction and kept as a buffer, so a trained model gives the same graph
  and the same predictions on every call, and after a save/load round trip.
- ``top_k`` larger than the number of nodes keeps every edge instead of failing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GraphLearner", "MixHop"]

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
        m1 = torch.tanh(self.alpha * self.lin1(self.emb1.weight))  # (N, D)
        m2 = torch.tanh(self.alpha * self.lin2(self.emb2.weight))  # (N, D)
        scores = m1 @ m2.T - m2 @ m1.T  # (N, D) x (D, N) -> (N, N), antisymmetric
        adj = F.relu(torch.tanh(self.alpha * scores))  # (N, N)
        if self.top_k >= self.num_nodes:
            return adj
        keep = (adj.detach() + self.tie_break).topk(self.top_k, dim=1).indices  # (N, k)
        mask = torch.zeros_like(adj).scatter_(1, keep, 1.0)  # (N, N)
        return adj * mask


class MixHop(nn.Module):
    """Mix-hop propagation: ``H_k = beta * X + (1 - beta) * A_norm H_{k-1}``, ``H_0 = X``.

    ``A_norm = D^-1 (A + I)`` (row-normalised with self loops) and one hop aggregates
    ``out[v] = sum_w A_norm[v, w] x[w]``: node ``v`` gathers from the nodes ``w`` its row
    points to. The hops ``H_0 .. H_depth`` are concatenated on channels and mixed by a
    1x1 convolution. Input ``(B, c_in, N, T)``, output ``(B, c_out, N, T)``.

    >>> hop = MixHop(8, 16, depth=2)
    >>> hop(torch.randn(2, 8, 4, 10), torch.rand(4, 4)).shape
    torch.Size([2, 16, 4, 10])
    """

    def __init__(self, c_in: int, c_out: int, depth: int = 2, beta: float = 0.05) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth={depth}: mix-hop propagation needs at least one hop.")
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta={beta}: the retain ratio must lie in [0, 1].")
        self.depth, self.beta = depth, beta
        self.mlp = nn.Conv2d((depth + 1) * c_in, c_out, kernel_size=1)

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        batch, channels, nodes, steps = x.shape
        adj = adj + torch.eye(nodes, dtype=adj.dtype, device=adj.device)  # (N, N)
        # row-normalised, with the (1 - beta) of every hop folded in
        adj = (1.0 - self.beta) * adj / adj.sum(dim=1, keepdim=True)
        # (c_out, (depth + 1) c_in, 1, 1) -> (depth + 1, c_out, c_in): one matrix per hop
        weight = self.mlp.weight.view(self.mlp.out_channels, self.depth + 1, channels)
        weight = weight.transpose(0, 1)
        # Node-major, channels-last layout: each hop is ONE matrix product that also adds
        # beta * X (addmm), and the 1x1 convolution over the concatenated hops is a sum of one
        # product per hop, so the concatenation is never materialised.
        h = x.permute(2, 0, 3, 1).reshape(nodes, -1)  # (B, C, N, T) -> (N, B T C)
        x_n = h
        out = F.linear(h.reshape(-1, channels), weight[0], self.mlp.bias)  # (N B T, c_out)
        for k in range(1, self.depth + 1):
            # H_k[v] = beta X[v] + sum_w A'[v, w] H_{k-1}[w]: (N, N) x (N, B T C) -> (N, B T C)
            h = torch.addmm(x_n, adj, h, beta=self.beta)
            out = torch.addmm(out, h.view(-1, channels), weight[k].T)  # += H_k W_k^T
        out = out.view(nodes, batch, steps, -1)  # (N B T, c_out) -> (N, B, T, c_out)
        return out.permute(1, 3, 0, 2)  # (N, B, T, c_out) -> (B, c_out, N, T), a view
