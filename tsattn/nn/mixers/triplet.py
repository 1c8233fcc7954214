"""Triplet attention: three rotated branches over the (C, T), (N, C) and (N, T) planes.

Paper: Misra, Nalamada, Arasanipalai, Hou, "Rotate to Attend: Convolutional Triplet Attention
Module", WACV 2021, https://arxiv.org/abs/2010.03045
(official code: https://github.com/landskape-ai/triplet-attention).

Each branch pools one axis with ZPool (``[max, mean]``), convolves the remaining plane, applies
batch norm and a sigmoid, and gates ``x``; the three gated maps are averaged:

- branch ``ct``: pools nodes ``N``, gate per (channel, time);
- branch ``nc``: pools time ``T``, gate per (node, channel);
- branch ``nt``: pools channels ``C``, gate per (node, time).

Nothing attends. ``(H, W)`` of the paper are ``(N, T)`` here.

Kernels: ``kernel_size=(k_n, k_t)`` defaults to ``(1, 7)`` (node order is arbitrary in a graph,
so nodes are not convolved across by default; the paper's 7 along time) and
``channel_kernel_size=7`` is the kernel along channels (as in the paper).

Departures from the official code:
- The kernels are ``(7, 7)`` over (C, T), ``(7, 1)`` over (C, N) and ``(1, 7)`` over (N, T) by
  default instead of ``7 x 7`` everywhere (see above).
- The batch norms use PyTorch's default momentum 0.1 (official: 0.01) and fall back to running
  statistics for a one-value training batch (see ``BatchNorm2dAnyBatch``).
- The rotations are not materialised: each branch's gate is permuted back and broadcast onto
  ``x``, so ``x`` is multiplied once by the mean of the three gates (the same function).
"""

from __future__ import annotations

import torch
from torch import nn

from tsattn.nn.mixers._layers import (
    ConvNormAct,
    ZPool,
    check_channels,
    check_odd_kernel,
    kernel_pair,
)

__all__ = ["TripletAttention"]


class _AttentionGate(nn.Sequential):
    """ZPool over ``dim`` -> conv + BN -> sigmoid: a gate over the two remaining axes."""

    def __init__(self, dim: int, kernel_size: tuple[int, int]) -> None:
        super().__init__(ZPool(dim), ConvNormAct(2, 1, kernel_size, act_layer=None), nn.Sigmoid())


class TripletAttention(nn.Module):
    """``x * (g_ct + g_nc + g_nt) / 3``, each gate from one rotation of ``x``.

    >>> TripletAttention(16)(torch.randn(2, 16, 7, 24)).shape
    torch.Size([2, 16, 7, 24])
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int | tuple[int, int] = (1, 7),
        channel_kernel_size: int = 7,
    ) -> None:
        super().__init__()
        check_channels(channels)
        k_n, k_t = kernel_pair(kernel_size)
        k_c = check_odd_kernel("channel_kernel_size", channel_kernel_size)
        self.gate_ct = _AttentionGate(dim=2, kernel_size=(k_c, k_t))  # pools N
        self.gate_nc = _AttentionGate(dim=3, kernel_size=(k_c, k_n))  # pools T
        self.gate_nt = _AttentionGate(dim=1, kernel_size=(k_n, k_t))  # pools C

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g_ct = self.gate_ct(x).transpose(1, 2)  # (B, 1, C, T) -> (B, C, 1, T)
        g_nc = self.gate_nc(x).permute(0, 2, 3, 1)  # (B, 1, C, N) -> (B, C, N, 1)
        g_nt = self.gate_nt(x)  # (B, 1, N, T)
        return x * ((g_ct + g_nc + g_nt) / 3.0)  # broadcast to (B, C, N, T)
