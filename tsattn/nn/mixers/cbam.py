"""Convolutional Block Attention Module: channel gate, then (node, time) gate.

Paper: Woo, Park, Lee, Kweon, "CBAM: Convolutional Block Attention Module", ECCV 2018,
https://arxiv.org/abs/1807.06521 (official code: https://github.com/Jongchan/attention-module).

Channel gate: average- and max-pools over ``(N, T)``, one shared MLP on both descriptors,
summed, sigmoid. Spatial gate: ``[max, mean]`` over channels (ZPool), a ``k_n x k_t`` convolution
and batch norm, sigmoid, one gate per (node, time). Nothing attends.

``kernel_size=(k_n, k_t)`` defaults to ``(1, 7)``: the paper's 7 along time, 1 along nodes,
because node order is arbitrary in a graph and a wider node kernel would mix whichever variables
happen to sit next to each other in the file.

Departures from the official code:
- The spatial kernel is ``(1, 7)`` by default instead of ``7 x 7`` (see above).
- The shared MLP's hidden width is ``max(1, C // reduction)``, never 0 (official: ``C // 16``).
- The MLP layers have biases as in the official code but are 1x1 convolutions (same function).
- The spatial batch norm falls back to running statistics for a one-value training batch
  (see :class:`~tsattn.nn.mixers._layers.BatchNorm2dAnyBatch`).
"""

from __future__ import annotations

import torch
from torch import nn

from tsattn.nn.mixers._layers import (
    ActLayer,
    ConvNormAct,
    ZPool,
    check_channels,
    kernel_pair,
    reduced_channels,
    resolve_act_layer,
)

__all__ = ["CBAM"]


class CBAM(nn.Module):
    """``x * channel_gate(x)``, then ``* spatial_gate(.)`` over ``(N, T)``.

    >>> CBAM(16)(torch.randn(2, 16, 7, 24)).shape
    torch.Size([2, 16, 7, 24])
    """

    def __init__(
        self,
        channels: int,
        reduction: float = 16,
        rd_channels: int | None = None,
        min_channels: int = 1,
        kernel_size: int | tuple[int, int] = (1, 7),
        act_layer: str | ActLayer = nn.ReLU,
    ) -> None:
        super().__init__()
        check_channels(channels)
        hidden = reduced_channels(channels, reduction, rd_channels, min_channels)
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, kernel_size=1),
            resolve_act_layer(act_layer)(),
            nn.Conv2d(hidden, channels, kernel_size=1),
        )
        self.pool = ZPool()
        self.spatial = ConvNormAct(2, 1, kernel_pair(kernel_size), act_layer=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = x.mean(dim=(2, 3), keepdim=True)  # (B, C, N, T) -> (B, C, 1, 1)
        mx = x.amax(dim=(2, 3), keepdim=True)  # (B, C, N, T) -> (B, C, 1, 1)
        x = x * torch.sigmoid(self.mlp(avg) + self.mlp(mx))  # (B, C, 1, 1) gate
        # (B, C, N, T) -> (B, 2, N, T) -> (B, 1, N, T)
        return x * torch.sigmoid(self.spatial(self.pool(x)))
