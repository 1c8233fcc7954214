"""The control mixer: returns its input unchanged."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Identity"]


class Identity(nn.Module):
    """No mixing, the baseline of every ablation. Pools nothing, attends over nothing.

    >>> Identity(8)(torch.ones(2, 8, 3, 5)).shape
    torch.Size([2, 8, 3, 5])
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x
