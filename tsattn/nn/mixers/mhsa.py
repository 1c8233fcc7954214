"""Multi-head self-attention over time, over nodes, or both.

Paper: Vaswani et al., "Attention Is All You Need", NeurIPS 2017,
https://arxiv.org/abs/1706.03762 (scaled dot-product, multi-head attention, section 3.2).

``out = x + W_o · MHSA(W_qkv · x)``: 1x1 convolutions compute query, key and value
(``C`` channels each, split into ``heads`` heads of ``C / heads``), attention is
``softmax(Q K^T / sqrt(C / heads)) V`` through ``torch.nn.functional.scaled_dot_product_attention``
(its flash kernel keeps memory linear in the sequence length), and a 1x1 convolution projects
the concatenated heads back, added to ``x``.

``axis`` chooses what attends:

- ``"time"``: every node's sequence of ``T`` steps, independently per node (``B N`` sequences).
- ``"node"``: the ``N`` nodes at each time step, independently per step (``B T`` sequences).
- ``"both"``: time attention, then node attention on its output, each with its own projections
  and residual (axial attention): every position reaches every other one in two hops, at cost
  ``O(N T (N + T))`` instead of ``O((N T)^2)`` for attention over all positions.

No pooling. Departures from the paper: no positional encoding (the temporal convolutions in
front supply local order, and nodes are a set), no layer norm or feed-forward sublayer (the
host network provides them), and 1x1 convolutions as the projections (the same function).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tsattn.nn.mixers._layers import check_channels, default_divisor

__all__ = ["MultiHeadSelfAttention"]

_AXES = ("time", "node", "both")


class _AxisAttention(nn.Module):
    """``x + proj(MHSA(x))`` along one axis of ``(B, C, N, T)``: ``time`` or ``node``."""

    def __init__(self, channels: int, heads: int, axis: str, qkv_bias: bool) -> None:
        super().__init__()
        self.heads, self.axis = heads, axis
        self.qkv = nn.Conv2d(channels, 3 * channels, kernel_size=1, bias=qkv_bias)
        self.proj = nn.Conv2d(channels, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, n, t = x.shape
        h = self.heads
        qkv = self.qkv(x)  # (B, C, N, T) -> (B, 3C, N, T)
        if self.axis == "time":
            # (B, 3C, N, T) -> (3, B N, heads, T, C / heads)
            qkv = qkv.view(b, 3, h, c // h, n, t).permute(1, 0, 4, 2, 5, 3)
            qkv = qkv.reshape(3, b * n, h, t, c // h)
        else:
            # (B, 3C, N, T) -> (3, B T, heads, N, C / heads)
            qkv = qkv.view(b, 3, h, c // h, n, t).permute(1, 0, 5, 2, 4, 3)
            qkv = qkv.reshape(3, b * t, h, n, c // h)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # (S, heads, L, C / heads)
        if self.axis == "time":
            # (B N, heads, T, C / heads) -> (B, C, N, T)
            out = out.view(b, n, h, t, c // h).permute(0, 2, 4, 1, 3).reshape(b, c, n, t)
        else:
            # (B T, heads, N, C / heads) -> (B, C, N, T)
            out = out.view(b, t, h, n, c // h).permute(0, 2, 4, 3, 1).reshape(b, c, n, t)
        return x + self.proj(out)


class MultiHeadSelfAttention(nn.Module):
    """Residual multi-head self-attention along ``axis`` (``"time"``, ``"node"``, ``"both"``).

    ``heads`` must divide ``C``; by default ``gcd(C, 4)`` (4 heads when ``C`` allows).

    >>> MultiHeadSelfAttention(16, axis="both")(torch.randn(2, 16, 7, 24)).shape
    torch.Size([2, 16, 7, 24])
    """

    def __init__(
        self,
        channels: int,
        heads: int | None = None,
        axis: str = "time",
        qkv_bias: bool = True,
    ) -> None:
        super().__init__()
        check_channels(channels)
        if axis not in _AXES:
            raise ValueError(f"axis={axis!r}: pass one of {', '.join(map(repr, _AXES))}.")
        heads = default_divisor(channels, heads, 4, "heads")
        axes = ("time", "node") if axis == "both" else (axis,)
        self.axis = axis
        self.layers = nn.ModuleList(_AxisAttention(channels, heads, a, qkv_bias) for a in axes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)  # (B, C, N, T) -> (B, C, N, T)
        return x
