"""Squeeze-and-Excitation over channels.

Paper: Hu, Shen, Sun, "Squeeze-and-Excitation Networks", CVPR 2018,
https://arxiv.org/abs/1709.01507 (official code: https://github.com/hujie-frank/SENet).

Pools (averages) over nodes and time, ``(N, T)``; gates channels. Nothing attends.

Departures from the official code:
- Hidden width ``max(min_channels, C // reduction)`` (``min_channels=1``), never 0: the widespread
  ``C // 16`` gives a zero-width bottleneck for ``C < 16``, whose gate is the constant
  ``sigmoid(bias)``.
- The two fully connected layers are 1x1 convolutions (the same function).
"""

from __future__ import annotations

import torch
from torch import nn

from tsattn.nn.mixers._layers import (
    ActLayer,
    check_channels,
    reduced_channels,
    resolve_act_layer,
)

__all__ = ["SqueezeExcite"]


class SqueezeExcite(nn.Module):
    """``x * sigmoid(fc2(act(fc1(mean_{N,T} x))))``, one gate per (sample, channel).

    >>> SqueezeExcite(8)(torch.randn(2, 8, 7, 12)).shape
    torch.Size([2, 8, 7, 12])
    """

    def __init__(
        self,
        channels: int,
        reduction: float = 16,
        rd_channels: int | None = None,
        min_channels: int = 1,
        act_layer: str | ActLayer = nn.ReLU,
    ) -> None:
        super().__init__()
        check_channels(channels)
        hidden = reduced_channels(channels, reduction, rd_channels, min_channels)
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1)
        self.act = resolve_act_layer(act_layer)()
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)  # (B, C, N, T) -> (B, C, 1, 1)
        gate = torch.sigmoid(self.fc2(self.act(self.fc1(s))))  # (B, C, 1, 1) -> (B, C, 1, 1)
        return x * gate
