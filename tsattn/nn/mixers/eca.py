"""Efficient Channel Attention.

Paper: Wang, Wu, Zhu, Li, Zuo, Hu, "ECA-Net: Efficient Channel Attention for Deep Convolutional
Neural Networks", CVPR 2020, https://arxiv.org/abs/1910.03151
(official code: https://github.com/BangguWu/ECANet).

Pools (averages) over nodes and time, ``(N, T)``; a 1-D convolution across neighbouring
channels gives one gate per channel. Nothing attends.

Kernel size: the paper's adaptive rule ``t = int(|(log2 C + beta) / gamma|)``, ``k = t`` if ``t``
is odd else ``t + 1`` (``beta=1``, ``gamma=2``), unless ``kernel_size`` is given. The official
``eca_layer`` module takes a fixed ``k_size=3`` and applies the rule only in its model builders;
here the rule is the default, as in the paper.

Departures from the official code: none in the function computed.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from tsattn.nn.mixers._layers import check_channels, check_odd_kernel, check_positive

__all__ = ["EfficientChannelAttention", "eca_kernel_size"]


def eca_kernel_size(channels: int, gamma: float = 2, beta: float = 1) -> int:
    """The paper's adaptive kernel size, always odd.

    >>> [eca_kernel_size(c) for c in (1, 8, 64, 512, 2048)]
    [1, 3, 3, 5, 7]
    """
    check_channels(channels)
    check_positive("gamma", gamma)
    t = int(abs((math.log2(channels) + beta) / gamma))
    return t if t % 2 else t + 1


class EfficientChannelAttention(nn.Module):
    """``x * sigmoid(conv1d_k(mean_{N,T} x))`` with the 1-D convolution sliding over channels.

    >>> EfficientChannelAttention(64).conv.kernel_size
    (3,)
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int | None = None,
        gamma: float = 2,
        beta: float = 1,
    ) -> None:
        super().__init__()
        check_channels(channels)
        if kernel_size is None:
            kernel_size = eca_kernel_size(channels, gamma, beta)
        check_odd_kernel("kernel_size", kernel_size)
        self.conv = nn.Conv1d(1, 1, kernel_size, padding=(kernel_size - 1) // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3))  # (B, C, N, T) -> (B, C)
        s = self.conv(s.unsqueeze(1))  # (B, C) -> (B, 1, C)
        gate = torch.sigmoid(s).transpose(1, 2).unsqueeze(3)  # (B, 1, C) -> (B, C, 1, 1)
        return x * gate
