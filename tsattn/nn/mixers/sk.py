"""Selective Kernel convolution: branches with different receptive fields, softmax-selected.

Paper: Li, Wang, Hu, Yang, "Selective Kernel Networks", CVPR 2019,
https://arxiv.org/abs/1903.06586 (official code: https://github.com/implus/SKNet, Caffe).

Split: one convolution + BN + ReLU branch per dilation (the paper's 3x3 and dilated 3x3, whose
receptive field is 5x5). Fuse: the branches' sum is averaged over ``(N, T)`` and squeezed by
a 1x1 convolution + BN + ReLU to ``d = max(min_channels, C // reduction)`` channels (paper:
``r = 16``, ``L = 32``). Select: one 1x1 convolution per branch back to ``C`` channels, a softmax
over the branches per channel, and the branches summed with those weights.

Pools over ``(N, T)``; attends over branches (per channel). Unlike the gating mixers, SK replaces
its input by the selected convolution output (as in the paper); it has no residual.

``kernel_size=(k_n, k_t)`` defaults to ``(1, 3)`` with ``dilations=(1, 2)``: the paper's 3 and
dilated 3 along time and 1 along nodes, because node order is arbitrary in a graph.

Departures from the paper's code:
- The default kernels are ``(1, 3)`` instead of ``3 x 3`` (see above).
- ``groups=1`` by default (SKNet-50 uses 32 groups inside a ResNeXt block, which a standalone
  mixer does not have); explicit values must divide ``C``.
- The BNs fall back to running statistics for a one-value training batch (``BatchNorm2dAnyBatch``);
  otherwise the pooled ``(B, d, 1, 1)`` descriptor could not be trained with batch size 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from tsattn.nn.mixers._layers import (
    ActLayer,
    ConvNormAct,
    check_channels,
    check_positive,
    default_divisor,
    kernel_pair,
    reduced_channels,
    resolve_act_layer,
)

__all__ = ["SelectiveKernel"]


class SelectiveKernel(nn.Module):
    """``sum_m softmax_m(a_m) * branch_m(x)`` with one ``a_m`` per channel and branch.

    >>> SelectiveKernel(16)(torch.randn(2, 16, 7, 24)).shape
    torch.Size([2, 16, 7, 24])
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int | tuple[int, int] = (1, 3),
        dilations: Sequence[int] = (1, 2),
        groups: int = 1,
        reduction: float = 16,
        rd_channels: int | None = None,
        min_channels: int = 32,
        act_layer: str | ActLayer = nn.ReLU,
    ) -> None:
        super().__init__()
        check_channels(channels)
        kernel = kernel_pair(kernel_size)
        dilations = tuple(dilations)
        if not dilations:
            raise ValueError("dilations=(): pass one dilation per branch, e.g. (1, 2).")
        for d in dilations:
            check_positive("dilations[i]", d, integer=True)
        groups = default_divisor(channels, groups, 1, "groups")
        hidden = reduced_channels(channels, reduction, rd_channels, min_channels)
        act = resolve_act_layer(act_layer)
        self.branches = nn.ModuleList(
            ConvNormAct(channels, channels, kernel, dilation=(d, d), groups=groups, act_layer=act)
            for d in dilations
        )
        self.squeeze = ConvNormAct(channels, hidden, act_layer=act)
        self.select = nn.Conv2d(hidden, len(dilations) * channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        feats = torch.stack([branch(x) for branch in self.branches], dim=1)  # -> (B, M, C, N, T)
        pooled = feats.sum(dim=1).mean(dim=(2, 3), keepdim=True)  # -> (B, C, 1, 1)
        logits = self.select(self.squeeze(pooled))  # (B, C, 1, 1) -> (B, M C, 1, 1)
        weights = torch.softmax(logits.view(b, -1, c, 1, 1), dim=1)  # -> (B, M, C, 1, 1)
        return (feats * weights).sum(dim=1)  # (B, M, C, N, T) -> (B, C, N, T)
