"""Contextual Transformer (CoT) block: static plus dynamic local context over (node, time).

Paper: Li, Yao, Pan, Mei, "Contextual Transformer Networks for Visual Recognition", TPAMI 2022,
https://arxiv.org/abs/2107.12292 (official code: https://github.com/JDAI-CV/CoTNet, ``CotLayer``).

1. Static context ``k1``: a grouped ``k_n x k_t`` convolution (+ BN + ReLU) of ``x`` (the keys
   contextualised over their local window).
2. Dynamic weights: ``[x, k1]`` (query, key) through two 1x1 convolutions (the first + BN + ReLU
   to ``max(1, C // reduction)`` channels, the second to ``k_n * k_t`` weights per weight group,
   then GroupNorm): one ``k_n x k_t`` kernel per position and weight group.
3. Dynamic context ``k2``: the values (1x1 conv + BN of ``x``) aggregated over each position's
   local ``k_n x k_t`` window with those per-position kernels (``unfold``), then BN + SiLU.
   Channel ``c`` uses weight group ``c mod (C / share_planes)``, as in the official aggregation
   kernel it calls.
4. Fusion: ``k1`` and ``k2`` are mixed per channel by a softmax over the two (SK-style radix
   attention from their pooled sum).

Pools over ``(N, T)`` only in the fusion step; attends over the local ``k_n x k_t`` window of
every position.

The simplified copy that circulates (``CoTAttention``) is a different function: it averages the
``k x k`` predicted weights into one number per position, takes a softmax over all ``H x W``
positions, multiplies the values pointwise by it (no local aggregation at all: a globally
normalised spatial gate), and adds the static context instead of fusing the two with radix
attention. Here the predicted weights are a real per-position local kernel, as in the paper.

``kernel_size=(k_n, k_t)`` defaults to ``(1, 3)``: the paper's 3 along time and 1 along nodes,
because node order is arbitrary in a graph.

Departures from the official code:
- The default window is ``(1, 3)`` instead of ``3 x 3`` (see above).
- Group counts adapt to any ``C``: key-conv ``groups`` defaults to ``gcd(C, 4)`` (official 4) and
  ``share_planes`` to ``gcd(C, 8)`` (official 8); explicit values must divide ``C``.
- The local aggregation is ``unfold`` + a weighted sum instead of the official custom CUDA
  kernel (same function, runs on any device).
- The first convolution of the fusion MLP has no bias: the BN after it cancels a bias.
- The BNs fall back to running statistics for a one-value training batch (``BatchNorm2dAnyBatch``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tsattn.nn.mixers._layers import (
    BatchNorm2dAnyBatch,
    ConvNormAct,
    check_channels,
    default_divisor,
    kernel_pair,
    reduced_channels,
)

__all__ = ["ContextualTransformer"]

_RADIX = 2  # static and dynamic context


class ContextualTransformer(nn.Module):
    """``softmax-fuse(k1, k2)`` with ``k1`` the static and ``k2`` the dynamic local context.

    >>> ContextualTransformer(16)(torch.randn(2, 16, 7, 24)).shape
    torch.Size([2, 16, 7, 24])
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int | tuple[int, int] = (1, 3),
        groups: int | None = None,
        share_planes: int | None = None,
        reduction: float = 2,
    ) -> None:
        super().__init__()
        check_channels(channels)
        self.kernel_size = kernel_pair(kernel_size)
        window = self.kernel_size[0] * self.kernel_size[1]
        groups = default_divisor(channels, groups, 4, "groups")
        share_planes = default_divisor(channels, share_planes, 8, "share_planes")
        self.weight_groups = channels // share_planes
        embed = reduced_channels(channels, reduction, None)
        self.key_embed = ConvNormAct(channels, channels, self.kernel_size, groups=groups)
        self.weight_embed = nn.Sequential(
            ConvNormAct(2 * channels, embed),
            nn.Conv2d(embed, window * self.weight_groups, kernel_size=1),
            nn.GroupNorm(self.weight_groups, window * self.weight_groups),
        )
        self.value_embed = ConvNormAct(channels, channels, act_layer=None)
        self.dynamic_norm = nn.Sequential(BatchNorm2dAnyBatch(channels), nn.SiLU())
        attn_channels = max(channels * _RADIX // 4, 32)  # official width
        self.fuse = nn.Sequential(
            ConvNormAct(channels, attn_channels),
            nn.Conv2d(attn_channels, _RADIX * channels, kernel_size=1),
        )

    def local_aggregate(self, value: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """``out[c, p] = sum_j weight[c mod G, j, p] * value[c, p + offset_j]`` (zero padded).

        ``value: (B, C, N, T)``, ``weight: (B, G * k_n * k_t, N, T)``.
        """
        b, c, n, t = value.shape
        k_n, k_t = self.kernel_size
        g = self.weight_groups
        # (B, C, N, T) -> (B, C k_n k_t, N T)
        windows = F.unfold(value, self.kernel_size, padding=((k_n - 1) // 2, (k_t - 1) // 2))
        windows = windows.view(b, c // g, g, k_n * k_t, n * t)  # -> (B, C/G, G, kk, N T)
        weight = weight.view(b, 1, g, k_n * k_t, n * t)  # (B, G kk, N, T) -> (B, 1, G, kk, N T)
        out = (windows * weight).sum(dim=3)  # -> (B, C/G, G, N T)
        return out.view(b, c, n, t)  # (B, C/G, G, N T) -> (B, C, N, T)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        static = self.key_embed(x)  # (B, C, N, T)
        query_key = torch.cat([x, static], dim=1)  # -> (B, 2C, N, T)
        weight = self.weight_embed(query_key)  # (B, 2C, N, T) -> (B, G kk, N, T)
        dynamic = self.dynamic_norm(self.local_aggregate(self.value_embed(x), weight))
        pooled = (static + dynamic).mean(dim=(2, 3), keepdim=True)  # (B, C, N, T) -> (B, C, 1, 1)
        attn = self.fuse(pooled).view(b, c, _RADIX)  # (B, 2C, 1, 1) -> (B, C, 2)
        attn = torch.softmax(attn, dim=2).unsqueeze(-1).unsqueeze(-1)  # -> (B, C, 2, 1, 1)
        return dynamic * attn[:, :, 0] + static * attn[:, :, 1]  # (B, C, N, T)
