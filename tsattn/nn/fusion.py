"""Fusion of the temporal pyramid that the TCN stack produces.

Each layer of the dilated TCN yields a feature map ``(B, C_i, N, T_i)`` with ``T_i`` shrinking
layer by layer. A fusion maps that list of levels to one map ``(B, out_channels, N, out_length)``;
the model's head then collapses the remaining ``out_length`` steps and maps to the horizon, the
same way for every fusion.

- ``skip``: MTGNN's skip connections (Wu et al., KDD 2020, https://arxiv.org/abs/2005.11650):
  one convolution per level whose kernel spans the level's whole length, summed.
  ``out_length = 1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

__all__ = ["Fusion", "SkipFusion", "create_fusion", "list_fusions"]


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

    def forward(self, levels: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(levels) != len(self.channels_list):
            raise ValueError(
                f"got {len(levels)} levels, built for {len(self.channels_list)}: pass one map "
                "per level, finest (longest) first."
            )
        for i, (level, c, t) in enumerate(zip(levels, self.channels_list, self.lengths, strict=True)):
            if level.dim() != 4 or level.size(1) != c or level.size(3) != t:
                raise ValueError(
                    f"level {i} has shape {tuple(level.shape)}, expected (B, {c}, N, {t})."
                )
        return self.fuse(list(levels))

    def fuse(self, levels: list[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError


class SkipFusion(Fusion):
    """MTGNN's skip connections: ``sum_i conv_i(level_i)``, each kernel ``(1, T_i)``.

    Pools nothing and attends over nothing; every level is collapsed along time by a learned
    convolution and the results are summed. Output ``(B, out_channels, N, 1)``.
    """

    def __init__(
        self, channels_list: Sequence[int], lengths: Sequence[int], out_channels: int = 64
    ) -> None:
        super().__init__(channels_list, lengths)
        if out_channels < 1:
            raise ValueError(f"out_channels={out_channels}: pass an int >= 1.")
        self.out_channels, self.out_length = out_channels, 1
        self.convs = nn.ModuleList(
            nn.Conv2d(c, out_channels, (1, t))
            for c, t in zip(self.channels_list, self.lengths, strict=True)
        )

    def fuse(self, levels: list[torch.Tensor]) -> torch.Tensor:
        out = self.convs[0](levels[0])  # (B, C_0, N, T_0) -> (B, out, N, 1)
        for conv, level in zip(self.convs[1:], levels[1:], strict=True):
            out = out + conv(level)  # (B, C_i, N, T_i) -> (B, out, N, 1)
        return out


_FUSIONS: dict[str, type[Fusion]] = {
    "skip": SkipFusion,
}


def list_fusions() -> list[str]:
    """Names accepted by :func:`create_fusion`, ``skip`` (MTGNN's) first."""
    return list(_FUSIONS)


def create_fusion(
    name: str, channels_list: Sequence[int], lengths: Sequence[int], **kwargs: Any
) -> Fusion:
    """Build the fusion ``name`` over levels of ``channels_list`` channels and ``lengths`` steps.

    Levels are ordered finest (longest) first. Keyword arguments go to the fusion class
    (all take ``out_channels``). Unknown names raise ``ValueError`` listing the valid ones.

    >>> fusion = create_fusion("skip", [8, 16], lengths=[12, 6], out_channels=4)
    >>> fusion([torch.randn(2, 8, 3, 12), torch.randn(2, 16, 3, 6)]).shape
    torch.Size([2, 4, 3, 1])
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in _FUSIONS:
        raise ValueError(f"unknown fusion {name!r}: choose one of {', '.join(_FUSIONS)}.")
    try:
        return _FUSIONS[key](channels_list, lengths, **kwargs)
    except TypeError as err:
        raise ValueError(f"bad arguments for fusion {key!r}: {err}") from err
