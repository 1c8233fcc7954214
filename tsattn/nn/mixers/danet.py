"""Dual attention (DANet): position attention plus channel attention, both residual.

Paper: Fu, Liu, Tian, Li, Bao, Fang, Lu, "Dual Attention Network for Scene Segmentation",
CVPR 2019, https://arxiv.org/abs/1809.02983 (official code: https://github.com/junfu1115/DANet).

``out = x + gamma_pos * P(x) + gamma_chan * A(x)`` with both ``gamma`` initialised to 0, so the
mixer starts as the identity.

Position attention ``P`` attends over positions ``(n, t)``: query and key are 1x1 convolutions
to ``max(1, C // 8)`` channels, value a 1x1 convolution to ``C``, softmax of the raw dot products
(the official code does not scale by ``1/sqrt(d)``, neither do we). Two modes:

- ``position="axial"`` (default): attention factorised along ``T`` and then along ``N``. First
  every position attends over the time steps of its own node, then over the nodes at its own
  time step, the second step aggregating the first step's output. The composition is a
  row-stochastic attention over all ``N * T`` positions (each position reaches every other one
  through one intermediate) at a cost of ``O(N T (N + T))`` instead of ``O((N T)^2)``.
- ``position="full"``: the official global attention over all ``N * T`` positions, run through
  ``scaled_dot_product_attention`` so that its CPU flash kernel keeps memory ``O(N T)``; the time
  stays ``O((N T)^2)``, fine at the ETTh1 shape (672 positions), minutes per step at the
  electricity shape (30816 positions), hence not the default.

Both modes pad query and key with zero channels up to ``C``: the dot products are unchanged and
the flash kernel, which needs one width for query, key and value, can run (otherwise PyTorch
falls back to the math kernel, which materialises the ``(N T)^2`` score matrix: ~3.8 GB per
sample at the electricity shape).

Channel attention ``A`` attends over channels with the ``(B, C, C)`` Gram matrix of ``x`` over all
positions and the official ``softmax(rowmax(E) - E)`` (a channel attends most to the channels it
is least similar to, and the subtraction keeps the exponent bounded).

Departures from the official code:
- The axial default (above) in place of global position attention.
- The official segmentation head wraps each module in 3x3 conv + BN + ReLU reductions to
  ``C / 4`` channels and sums the two modules' outputs (``2 x`` at initialisation); as a mixer we
  keep ``C`` channels, drop those head convolutions, and add the two residual terms to one
  ``x``, so the mixer is the identity at initialisation.
- Query/key width ``max(1, C // 8)`` instead of ``C // 8`` (0 channels for ``C < 8``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tsattn.nn.mixers._layers import check_channels, reduced_channels

__all__ = ["DualAttention"]

_POSITION_MODES = ("axial", "full")


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Unscaled softmax attention ``softmax(q k^T) v`` over dimension -2 of ``(S, L, d)`` tensors,
    with ``q`` and ``k`` zero-padded to ``v``'s width so the flash kernel applies."""
    pad = v.size(-1) - q.size(-1)
    q = F.pad(q, (0, pad))  # (S, L, d_qk) -> (S, L, d_v)
    k = F.pad(k, (0, pad))  # (S, L, d_qk) -> (S, L, d_v)
    # The CPU flash kernel only takes 4-D (S, heads, L, d) inputs: one head here.
    out = F.scaled_dot_product_attention(
        q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1), scale=1.0
    )  # (S, 1, L, d_v)
    return out.squeeze(1)  # (S, 1, L, d_v) -> (S, L, d_v)


class DualAttention(nn.Module):
    """``x + gamma_pos * P(x) + gamma_chan * A(x)``; both gammas start at 0.

    >>> mixer = DualAttention(16)
    >>> x = torch.randn(2, 16, 7, 24)
    >>> torch.equal(mixer(x), x)
    True
    """

    def __init__(
        self,
        channels: int,
        reduction: float = 8,
        position: str = "axial",
    ) -> None:
        super().__init__()
        check_channels(channels)
        if position not in _POSITION_MODES:
            raise ValueError(
                f"position={position!r}: pass one of {', '.join(map(repr, _POSITION_MODES))}."
            )
        self.position = position
        qk_channels = reduced_channels(channels, reduction, None)  # max(1, C // 8)
        self.query = nn.Conv2d(channels, qk_channels, kernel_size=1)
        self.key = nn.Conv2d(channels, qk_channels, kernel_size=1)
        self.value = nn.Conv2d(channels, channels, kernel_size=1)
        self.gamma_pos = nn.Parameter(torch.zeros(1))
        self.gamma_chan = nn.Parameter(torch.zeros(1))

    def position_attention(self, x: torch.Tensor) -> torch.Tensor:
        """``P(x)``: ``(B, C, N, T) -> (B, C, N, T)``, before the ``gamma`` scale."""
        b, c, n, t = x.shape
        q = self.query(x).permute(0, 2, 3, 1)  # (B, C, N, T) -> (B, N, T, C')
        k = self.key(x).permute(0, 2, 3, 1)  # (B, C, N, T) -> (B, N, T, C')
        v = self.value(x).permute(0, 2, 3, 1)  # (B, C, N, T) -> (B, N, T, C)
        if self.position == "full":
            out = _attend(
                q.reshape(b, n * t, -1),  # (B, N, T, C') -> (B, N T, C')
                k.reshape(b, n * t, -1),  # (B, N, T, C') -> (B, N T, C')
                v.reshape(b, n * t, c),  # (B, N, T, C) -> (B, N T, C)
            )  # -> (B, N T, C)
            return out.reshape(b, n, t, c).permute(0, 3, 1, 2)  # -> (B, C, N, T)
        # Along time, inside each node: sequences (B, N), length T.
        h = _attend(
            q.reshape(b * n, t, -1),  # (B, N, T, C') -> (B N, T, C')
            k.reshape(b * n, t, -1),  # (B, N, T, C') -> (B N, T, C')
            v.reshape(b * n, t, c),  # (B, N, T, C) -> (B N, T, C)
        ).reshape(b, n, t, c)  # (B N, T, C) -> (B, N, T, C)
        # Along nodes, at each time step: sequences (B, T), length N.
        out = _attend(
            q.transpose(1, 2).reshape(b * t, n, -1),  # (B, N, T, C') -> (B T, N, C')
            k.transpose(1, 2).reshape(b * t, n, -1),  # (B, N, T, C') -> (B T, N, C')
            h.transpose(1, 2).reshape(b * t, n, c),  # (B, N, T, C) -> (B T, N, C)
        )  # -> (B T, N, C)
        return out.reshape(b, t, n, c).permute(0, 3, 2, 1)  # (B T, N, C) -> (B, C, N, T)

    def channel_attention(self, x: torch.Tensor) -> torch.Tensor:
        """``A(x)``: ``(B, C, N, T) -> (B, C, N, T)``, before the ``gamma`` scale."""
        flat = x.flatten(2)  # (B, C, N, T) -> (B, C, N T)
        energy = torch.bmm(flat, flat.transpose(1, 2))  # -> (B, C, C)
        energy = energy.amax(dim=-1, keepdim=True) - energy  # official rowmax - energy
        attention = torch.softmax(energy, dim=-1)  # (B, C, C)
        return torch.bmm(attention, flat).view_as(x)  # (B, C, N T) -> (B, C, N, T)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (
            x
            + self.gamma_pos * self.position_attention(x)
            + self.gamma_chan * self.channel_attention(x)
        )
