"""Fusion of the temporal pyramid that the TCN stack produces.

Each layer of the dilated TCN yields a feature map ``(B, C_i, N, T_i)`` with ``T_i`` shrinking
layer by layer. A fusion maps that list of levels, finest (longest) first, to one map
``(B, out_channels, N, out_length)``; the model's head (ReLU -> conv with kernel
``(1, out_length)`` -> ReLU -> 1x1 conv to the horizon) then collapses the remaining
``out_length`` steps into ``H`` forecasts per node, the same way for every fusion.

- ``skip``: MTGNN's skip connections (Wu et al., KDD 2020, https://arxiv.org/abs/2005.11650):
  one convolution per level whose kernel spans the level's whole length, summed.
  ``out_length = 1``.
- ``fpn``: Feature Pyramid Network's top-down pathway (Lin et al., CVPR 2017,
  https://arxiv.org/abs/1612.03144). By default the finest smoothed level goes to the head,
  ``out_length = T_0``; ``output="all"`` collapses every smoothed level instead.
- ``panet``: FPN plus PANet's bottom-up path aggregation, every aggregated level collapsed and
  summed as in PANet's adaptive feature pooling (Liu et al., CVPR 2018,
  https://arxiv.org/abs/1803.01534). ``out_length = 1``.
- ``asff``: Adaptively Spatial Feature Fusion (Liu et al., 2019, https://arxiv.org/abs/1911.09516):
  every level resized to one target length and mixed with per-position softmax weights over
  levels. ``out_length = T_target`` (the finest level's length by default).

All convolutions here slide along time only (kernels ``(1, k)``): node order in a graph is
arbitrary, so nothing mixes neighbouring node indices, and :func:`resize_time` never resamples
the node axis. The fusions are therefore equivariant to any permutation of the nodes.

What "resolution" means here: the TCN has no strides, so every level still has one step per
input step; its levels are right-aligned in time (valid convolutions keep the most recent steps)
and differ in receptive field and length, not in sampling rate. Resizing a level of length
``T_i`` to ``T_j`` (linear interpolation up, area averaging down) stretches it over the other
level's span, which is how the papers' factor-2 resampling generalises to arbitrary length
ratios (MTGNN's single-step setting gives 187, 181, 169, 145, 97, 1, 1). A stack of one layer
still yields three levels (input, gated output, layer output) at two lengths, and a single level
is accepted too: every fusion then reduces to a learned transform of that level (ASFF's weights
become 1), so no depth is rejected.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tsattn.nn._registry import Registry

__all__ = [
    "ASFFFusion",
    "FPNFusion",
    "Fusion",
    "PANetFusion",
    "SkipFusion",
    "create_fusion",
    "list_fusions",
    "resize_time",
]


def resize_time(x: torch.Tensor, length: int) -> torch.Tensor:
    """Resize ``(B, C, N, T)`` to ``(B, C, N, length)`` along time only.

    Linear interpolation (``align_corners=False``) when growing, area averaging when shrinking
    (an anti-aliased analogue of a strided convolution's subsampling). Every node's series is
    resampled on its own; the node axis is never touched. (The 1-D linear interpolation of
    ``(B, C N, T)``, the same values, took over 80 % of the GPU time of an electricity-shaped
    FPN training step on an H200: ``experiments/profile_step.py``.)

    >>> resize_time(torch.ones(2, 3, 5, 4), 9).shape
    torch.Size([2, 3, 5, 9])
    """
    b, c, n, steps = x.shape
    if steps == length:
        return x
    if length < steps:
        flat = x.reshape(b, c * n, steps)  # (B, C, N, T) -> (B, C*N, T)
        flat = F.adaptive_avg_pool1d(flat, length)  # (B, C*N, T) -> (B, C*N, T')
        return flat.reshape(b, c, n, length)  # (B, C*N, T') -> (B, C, N, T')
    # Bilinear with the node axis kept at its size is linear along time and exactly the identity
    # along nodes (every source row falls on itself). Its CUDA kernel runs one thread per
    # output (n, t) position, where the 1-D kernel on (B, C*N, T) runs one per output step.
    return F.interpolate(x, size=(n, length), mode="bilinear", align_corners=False)


def _time_conv(c_in: int, c_out: int, kernel_size: int) -> nn.Conv2d:
    """A ``(1, k)`` convolution padded to keep the length (``k`` odd), never across nodes."""
    return nn.Conv2d(c_in, c_out, (1, kernel_size), padding=(0, kernel_size // 2))


def _check_positive(**values: int | None) -> None:
    for name, value in values.items():
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"{name}={value!r}: pass an int >= 1.")


def _check_kernel(kernel_size: int) -> None:
    if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(
            f"kernel_size={kernel_size!r}: pass an odd int >= 1 (1, 3, 5, ...) so that the "
            "smoothing convolution keeps every level's length."
        )


class Fusion(nn.Module):
    """Base class: checks the pyramid description and the levels handed to ``forward``.

    Subclasses set ``out_channels`` and ``out_length`` and implement ``fuse(levels)``.
    """

    out_channels: int
    out_length: int

    def __init__(self, channels_list: Sequence[int], lengths: Sequence[int]) -> None:
        super().__init__()
        self.channels_list = tuple(int(c) for c in channels_list)
        self.lengths = tuple(int(t) for t in lengths)
        if not self.channels_list:
            raise ValueError("channels_list is empty: a pyramid needs at least one level.")
        if len(self.channels_list) != len(self.lengths):
            raise ValueError(
                f"channels_list has {len(self.channels_list)} levels but lengths has "
                f"{len(self.lengths)}: pass one length per level."
            )
        if min(self.channels_list) < 1 or min(self.lengths) < 1:
            raise ValueError(
                f"channels_list={self.channels_list}, lengths={self.lengths}: every level needs "
                "at least one channel and one time step."
            )

    @property
    def num_levels(self) -> int:
        return len(self.channels_list)

    def forward(self, levels: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(levels) != len(self.channels_list):
            raise ValueError(
                f"got {len(levels)} levels, built for {len(self.channels_list)}: pass one map "
                "per level, finest (longest) first."
            )
        described = zip(levels, self.channels_list, self.lengths, strict=True)
        for i, (level, c, t) in enumerate(described):
            if level.dim() != 4 or level.size(1) != c or level.size(3) != t:
                raise ValueError(
                    f"level {i} has shape {tuple(level.shape)}, expected (B, {c}, N, {t})."
                )
            if level.shape[::2] != levels[0].shape[::2]:
                raise ValueError(
                    f"level {i} has shape {tuple(level.shape)} but level 0 has "
                    f"{tuple(levels[0].shape)}: every level needs the same batch B and nodes N."
                )
        return self.fuse(list(levels))

    def fuse(self, levels: list[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError


class SkipFusion(Fusion):
    """MTGNN's skip connections: ``sum_i conv_i(level_i)``, each kernel ``(1, T_i)``.

    Pools nothing and attends over nothing; every level is collapsed along time by a learned
    convolution and the results are summed. Output ``(B, out_channels, N, 1)``; the head maps
    that single step to the horizon with 1x1 convolutions.
    """

    def __init__(
        self, channels_list: Sequence[int], lengths: Sequence[int], out_channels: int = 64
    ) -> None:
        super().__init__(channels_list, lengths)
        _check_positive(out_channels=out_channels)
        self.out_channels, self.out_length = out_channels, 1
        self.convs = nn.ModuleList(
            nn.Conv2d(c, out_channels, (1, t))
            for c, t in zip(self.channels_list, self.lengths, strict=True)
        )

    def fuse(self, levels: list[torch.Tensor]) -> torch.Tensor:
        # A convolution whose kernel spans the whole length is one matrix product per level:
        # (B N, T_i C_i) x (T_i C_i, out), read in the channels-last layout the layers write
        # (a copy only for a level in another layout). Summed in place of the convolutions,
        # 2-3x faster forward + backward on CPUs (experiments/bench_speed.py, fused skip).
        batch, _, nodes, _ = levels[0].shape
        bias = torch.stack([conv.bias for conv in self.convs]).sum(0)  # (out,)
        out = None
        for conv, level in zip(self.convs, levels, strict=True):
            c, t = level.size(1), level.size(3)
            flat = level.permute(0, 2, 3, 1).reshape(batch * nodes, t * c)  # -> (B N, T_i C_i)
            weight = conv.weight.squeeze(2).transpose(1, 2).reshape(-1, t * c)  # (out, T_i C_i)
            if out is None:
                out = F.linear(flat, weight, bias)  # (B N, out)
            else:
                out = torch.addmm(out, flat, weight.T)  # += level_i W_i^T
        out = out.view(batch, nodes, 1, -1)  # (B N, out) -> (B, N, 1, out)
        return out.permute(0, 3, 1, 2)  # (B, N, 1, out) -> (B, out, N, 1)


class FPNFusion(Fusion):
    """FPN's top-down pathway over the temporal pyramid.

    Lin et al., "Feature Pyramid Networks for Object Detection", CVPR 2017,
    https://arxiv.org/abs/1612.03144. A 1x1 lateral convolution brings level ``i`` to ``width``
    channels; walking from the coarsest level to the finest, the merged map of level ``i + 1`` is
    resized along time to ``T_i`` and added to level ``i``'s lateral
    (``M_i = lateral_i(C_i) + resize(M_{i+1}, T_i)``); a ``(1, kernel_size)`` convolution smooths
    each merged map (``P_i = smooth_i(M_i)``). As in the paper, these extra layers have no
    non-linearity.

    Pyramid to horizon: with ``output="finest"`` (default) only ``P_0`` is produced, mapped to
    ``out_channels`` by its smoothing convolution: ``(B, out_channels, N, T_0)``. It carries every
    coarser level through the top-down path at the input's full temporal detail, and the head's
    ``(1, T_0)`` convolution reads it as a learned linear map over the whole window (the FPN
    use for dense prediction, where the finest level feeds the predictor). With ``output="all"``
    every ``P_i`` is kept and collapsed by MTGNN's per-level ``(1, T_i)`` convolutions, summed:
    ``(B, out_channels, N, 1)`` (the analogue of FPN's predictions at every level).

    Departures: time-only kernels ``(1, k)`` instead of ``3 x 3``; levels of any length ratio,
    resized by linear interpolation instead of 2x nearest upsampling; ``width`` defaults to the
    widest level instead of 256; ``output="finest"`` builds no smoothing convolution for the
    coarser levels, since nothing would read them.
    """

    def __init__(
        self,
        channels_list: Sequence[int],
        lengths: Sequence[int],
        out_channels: int = 64,
        width: int | None = None,
        kernel_size: int = 3,
        output: str = "finest",
    ) -> None:
        super().__init__(channels_list, lengths)
        _check_positive(out_channels=out_channels, width=width)
        _check_kernel(kernel_size)
        if output not in ("finest", "all"):
            raise ValueError(f"output={output!r}: choose one of finest, all.")
        self.output = output
        self.width = width = width or max(self.channels_list)
        self.laterals = nn.ModuleList(nn.Conv2d(c, width, 1) for c in self.channels_list)
        if output == "finest":
            self.smooths = nn.ModuleList([_time_conv(width, out_channels, kernel_size)])
            self.collapse = None
            self.out_channels, self.out_length = out_channels, self.lengths[0]
        else:
            self.smooths = nn.ModuleList(
                _time_conv(width, width, kernel_size) for _ in self.channels_list
            )
            self.collapse = SkipFusion([width] * self.num_levels, self.lengths, out_channels)
            self.out_channels, self.out_length = out_channels, 1

    def top_down(self, levels: list[torch.Tensor]) -> list[torch.Tensor]:
        """The smoothed maps ``P_i``, finest first (only ``P_0`` when ``output="finest"``)."""
        merged = [self.laterals[-1](levels[-1])]  # (B, C_L, N, T_L) -> (B, W, N, T_L)
        for lateral, level in zip(self.laterals[-2::-1], levels[-2::-1], strict=True):
            upper = resize_time(merged[-1], level.size(3))  # (B, W, N, T_{i+1}) -> (B, W, N, T_i)
            merged.append(lateral(level) + upper)  # (B, C_i, N, T_i) -> (B, W, N, T_i)
        merged.reverse()  # finest first
        return [smooth(m) for smooth, m in zip(self.smooths, merged, strict=False)]

    def fuse(self, levels: list[torch.Tensor]) -> torch.Tensor:
        smoothed = self.top_down(levels)
        if self.collapse is None:
            return smoothed[0]  # (B, out, N, T_0)
        return self.collapse(smoothed)  # [(B, W, N, T_i)] -> (B, out, N, 1)


class PANetFusion(FPNFusion):
    """FPN followed by PANet's bottom-up path aggregation and adaptive feature pooling.

    Liu et al., "Path Aggregation Network for Instance Segmentation", CVPR 2018,
    https://arxiv.org/abs/1803.01534. The FPN maps ``P_i`` (see :class:`FPNFusion`) feed a
    bottom-up path: ``N_0 = P_0`` and
    ``N_{i+1} = relu(fuse_{i+1}(P_{i+1} + resize(relu(down_i(N_i)), T_{i+1})))``, each a
    ``(1, kernel_size)`` convolution followed by a ReLU as in the paper, so that the finest,
    most local features reach the coarsest level through a short path.

    Pyramid to horizon: the bottom-up path leaves ``N_0 = P_0`` unchanged, so reading only the
    finest level would ignore it. Following PANet's adaptive feature pooling (a per-level
    layer, then an element-wise sum over levels), every ``N_i`` is collapsed along time by its own
    ``(1, T_i)`` convolution to ``out_channels`` and the results are summed:
    ``(B, out_channels, N, 1)``, which the head maps to the horizon with 1x1 convolutions.

    Departures: as in :class:`FPNFusion`; the stride-2 ``3 x 3`` downsampling convolution becomes
    a ``(1, k)`` convolution followed by area resizing to the next level's length (any ratio);
    pooling is over the whole level (no RoIs) and fused by sum.
    """

    def __init__(
        self,
        channels_list: Sequence[int],
        lengths: Sequence[int],
        out_channels: int = 64,
        width: int | None = None,
        kernel_size: int = 3,
    ) -> None:
        super().__init__(channels_list, lengths, out_channels, width, kernel_size, output="all")
        levels_above = self.num_levels - 1
        self.downs = nn.ModuleList(
            _time_conv(self.width, self.width, kernel_size) for _ in range(levels_above)
        )
        self.fuses = nn.ModuleList(
            _time_conv(self.width, self.width, kernel_size) for _ in range(levels_above)
        )

    def bottom_up(self, smoothed: list[torch.Tensor]) -> list[torch.Tensor]:
        """The aggregated maps ``N_i``, finest first, each ``(B, width, N, T_i)``."""
        outs = [smoothed[0]]
        for down, fuse, p in zip(self.downs, self.fuses, smoothed[1:], strict=True):
            lower = F.relu(down(outs[-1]))  # (B, W, N, T_i) -> (B, W, N, T_i)
            lower = resize_time(lower, p.size(3))  # (B, W, N, T_i) -> (B, W, N, T_{i+1})
            outs.append(F.relu(fuse(p + lower)))  # (B, W, N, T_{i+1})
        return outs

    def fuse(self, levels: list[torch.Tensor]) -> torch.Tensor:
        aggregated = self.bottom_up(self.top_down(levels))
        return self.collapse(aggregated)  # [(B, W, N, T_i)] -> (B, out, N, 1)


class ASFFFusion(Fusion):
    """Adaptively spatial feature fusion along time: per-position softmax weights over levels.

    Liu, Huang and Wang, "Learning Spatial Fusion for Single-Shot Object Detection", 2019,
    https://arxiv.org/abs/1911.09516. Each level goes through a 1x1 convolution to ``width``
    channels and is resized along time to the target level's length ``T_t``. A 1x1 convolution
    (+ ReLU) compresses each resized level to ``weight_channels``; their concatenation goes through
    a 1x1 convolution to one logit per level, and a softmax over levels gives weights
    ``alpha_l(n, t)`` that sum to 1 at every node and step (:meth:`level_weights`). The fused map
    ``sum_l alpha_l * x_l`` passes a ``(1, kernel_size)`` convolution to ``out_channels``.

    Pyramid to horizon: the output is ``(B, out_channels, N, T_t)``, by default at the finest
    level's length ``T_0``, so every node and step picks its own mix of receptive fields; the
    head's ``(1, T_t)`` convolution reads it as a learned linear map over the window.

    Departures: the paper builds one ASFF per output level and uses conv-BN-LeakyReLU blocks;
    here one ASFF at ``target_level`` feeds the single head, the blocks are conv + ReLU (no
    batch norm across nodes), kernels slide along time only, and resizing is linear / area to any
    length instead of strided convolutions, max-pooling and 2x/4x nearest upsampling.
    """

    def __init__(
        self,
        channels_list: Sequence[int],
        lengths: Sequence[int],
        out_channels: int = 64,
        width: int | None = None,
        kernel_size: int = 3,
        weight_channels: int = 16,
        target_level: int = 0,
    ) -> None:
        super().__init__(channels_list, lengths)
        _check_positive(out_channels=out_channels, width=width, weight_channels=weight_channels)
        _check_kernel(kernel_size)
        if not isinstance(target_level, int) or not 0 <= target_level < self.num_levels:
            raise ValueError(
                f"target_level={target_level!r}: pass a level index in 0..{self.num_levels - 1} "
                "(0 is the finest)."
            )
        self.width = width = width or max(self.channels_list)
        self.target_length = self.lengths[target_level]
        self.projections = nn.ModuleList(nn.Conv2d(c, width, 1) for c in self.channels_list)
        # One level needs no weights: its softmax would be 1 whatever the logits.
        if self.num_levels > 1:
            self.weight_convs = nn.ModuleList(
                nn.Sequential(nn.Conv2d(width, weight_channels, 1), nn.ReLU())
                for _ in self.channels_list
            )
            self.weight_logits = nn.Conv2d(weight_channels * self.num_levels, self.num_levels, 1)
        self.smooth = _time_conv(width, out_channels, kernel_size)
        self.out_channels, self.out_length = out_channels, self.target_length

    def _resized(self, levels: list[torch.Tensor]) -> list[torch.Tensor]:
        return [
            resize_time(proj(level), self.target_length)  # (B, C_l, N, T_l) -> (B, W, N, T_t)
            for proj, level in zip(self.projections, levels, strict=True)
        ]

    def _weights(self, resized: list[torch.Tensor]) -> torch.Tensor:
        if self.num_levels == 1:
            return torch.ones_like(resized[0][:, :1])  # (B, 1, N, T_t)
        compressed = [conv(x) for conv, x in zip(self.weight_convs, resized, strict=True)]
        logits = self.weight_logits(torch.cat(compressed, dim=1))  # -> (B, L, N, T_t)
        return logits.softmax(dim=1)  # (B, L, N, T_t), sums to 1 over L

    def level_weights(self, levels: Sequence[torch.Tensor]) -> torch.Tensor:
        """The fusion weights ``(B, L, N, T_t)`` for ``levels``; they sum to 1 over ``L``."""
        return self._weights(self._resized(list(levels)))

    def fuse(self, levels: list[torch.Tensor]) -> torch.Tensor:
        resized = self._resized(levels)
        weights = self._weights(resized)  # (B, L, N, T_t)
        stacked = torch.stack(resized, dim=1)  # L x (B, W, N, T_t) -> (B, L, W, N, T_t)
        fused = (weights.unsqueeze(2) * stacked).sum(dim=1)  # -> (B, W, N, T_t)
        return self.smooth(fused)  # (B, W, N, T_t) -> (B, out, N, T_t)


_FUSIONS: Registry[Fusion] = Registry(
    "fusion",
    {"skip": SkipFusion, "fpn": FPNFusion, "panet": PANetFusion, "asff": ASFFFusion},
    positional=("channels_list", "lengths"),
)


def list_fusions() -> list[str]:
    """Names accepted by :func:`create_fusion`, ``skip`` (MTGNN's) first."""
    return _FUSIONS.names()


def create_fusion(
    name: str, channels_list: Sequence[int], lengths: Sequence[int], **kwargs: Any
) -> Fusion:
    """Build the fusion ``name`` over levels of ``channels_list`` channels and ``lengths`` steps.

    Levels are ordered finest (longest) first. Keyword arguments go to the fusion class
    (all take ``out_channels``). Unknown names raise ``ValueError`` listing the valid ones.

    >>> fusion = create_fusion("skip", [8, 16], lengths=[12, 6], out_channels=4)
    >>> fusion([torch.randn(2, 8, 3, 12), torch.randn(2, 16, 3, 6)]).shape
    torch.Size([2, 4, 3, 1])
    >>> create_fusion("asff", [8, 16], lengths=[12, 6], out_channels=4).out_length
    12
    """
    return _FUSIONS.create(name, channels_list, lengths, **kwargs)
