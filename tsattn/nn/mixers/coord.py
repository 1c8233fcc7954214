"""Coordinate attention: one gate per (channel, node) times one per (channel, time).

Paper: Hou, Zhou, Feng, "Coordinate Attention for Efficient Mobile Network Design", CVPR 2021,
https://arxiv.org/abs/2103.02907 (official code: https://github.com/houqb/CoordAttention).

Pools (averages) along time (a descriptor per node) and along nodes (a descriptor per time
step); both go through one shared 1x1 convolution + batch norm + h-swish to ``mip`` channels,
then a 1x1 convolution each back to ``C`` channels and a sigmoid. The output is
``x * a_node[:, :, :, None] * a_time[:, :, None, :]``: the gate factorises into a per-(C, N) and
a per-(C, T) factor. Nothing attends. ``(H, W)`` of the paper are ``(N, T)`` here.

``mip = max(min_channels, C // reduction)`` with the official ``reduction=32``, ``min_channels=8``.

Departures from the official code:
- The shared 1x1 convolution has no bias: the batch norm right after it cancels a bias (its
  gradient is exactly zero).
- h-swish is ``torch.nn.Hardswish`` (``x * relu6(x + 3) / 6``, the official ``h_swish``).
"""

from __future__ import annotations

import torch
from torch import nn

from tsattn.nn.mixers._layers import (
    ActLayer,
    ConvNormAct,
    check_channels,
    reduced_channels,
    resolve_act_layer,
)

__all__ = ["CoordinateAttention"]


class CoordinateAttention(nn.Module):
    """``x * a_node * a_time`` with ``a_node: (B, C, N, 1)`` and ``a_time: (B, C, 1, T)``.

    >>> CoordinateAttention(32)(torch.randn(2, 32, 7, 12)).shape
    torch.Size([2, 32, 7, 12])
    """

    def __init__(
        self,
        channels: int,
        reduction: float = 32,
        rd_channels: int | None = None,
        min_channels: int = 8,
        act_layer: str | ActLayer = nn.Hardswish,
    ) -> None:
        super().__init__()
        check_channels(channels)
        mip = reduced_channels(channels, reduction, rd_channels, min_channels)
        self.squeeze = ConvNormAct(channels, mip, act_layer=resolve_act_layer(act_layer))
        self.node_gate = nn.Conv2d(mip, channels, kernel_size=1)
        self.time_gate = nn.Conv2d(mip, channels, kernel_size=1)

    def gates(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two factors ``(a_node: (B, C, N, 1), a_time: (B, C, 1, T))`` of the gate."""
        n = x.size(2)
        x_node = x.mean(dim=3, keepdim=True)  # (B, C, N, T) -> (B, C, N, 1)
        x_time = x.mean(dim=2, keepdim=True).transpose(2, 3)  # (B, C, N, T) -> (B, C, T, 1)
        y = self.squeeze(torch.cat([x_node, x_time], dim=2))  # -> (B, mip, N + T, 1)
        y_node, y_time = y.split([n, y.size(2) - n], dim=2)  # -> (B, mip, N, 1), (B, mip, T, 1)
        a_node = torch.sigmoid(self.node_gate(y_node))  # (B, mip, N, 1) -> (B, C, N, 1)
        a_time = torch.sigmoid(self.time_gate(y_time.transpose(2, 3)))  # -> (B, C, 1, T)
        return a_node, a_time

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a_node, a_time = self.gates(x)
        return x * a_node * a_time  # (B, C, N, T) * (B, C, N, 1) * (B, C, 1, T)
