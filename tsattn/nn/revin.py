"""Reversible instance normalisation.

Paper: Kim et al., "Reversible Instance Normalization for Accurate Time-Series Forecasting
against Distribution Shift", ICLR 2022, https://openreview.net/forum?id=cGDAkQo1C0p

Statistics are taken per sample and per variable over the input window, the series is
normalised before the network and the forecast is mapped back with the same statistics. The
optional affine weight is per variable, as in the official code.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

__all__ = ["RevIN", "RevINStats"]


class RevINStats(NamedTuple):
    """Per-sample, per-variable statistics of one input window, each ``(B, 1, N)``."""

    mean: torch.Tensor
    std: torch.Tensor


class RevIN(nn.Module):
    """``normalize(x)`` on ``(B, T, N)`` inputs, ``denormalize(y, stats)`` on ``(B, H, N)`` outputs.

    ``normalize`` returns the statistics with the normalised input and the caller hands them to
    ``denormalize``; the module keeps none, so one model can serve several threads at once.

    >>> revin = RevIN(3)
    >>> x = torch.randn(2, 10, 3) * 5 + 7
    >>> z, stats = revin.normalize(x)
    >>> torch.allclose(revin.denormalize(z, stats), x, atol=1e-4)
    True
    """

    def __init__(self, num_features: int, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__()
        if num_features < 1:
            raise ValueError(f"num_features={num_features}: pass the number of variables (>= 1).")
        self.eps = eps
        self.affine = affine
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))

    def normalize(self, x: torch.Tensor) -> tuple[torch.Tensor, RevINStats]:
        """``(B, T, N)`` -> the normalised ``(B, T, N)`` and the window's statistics."""
        mean = x.mean(dim=1, keepdim=True).detach()  # (B, T, N) -> (B, 1, N)
        std = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + self.eps).detach()
        x = (x - mean) / std
        if self.affine:
            x = x * self.weight + self.bias
        return x, RevINStats(mean, std)

    def normalize_target(self, y: torch.Tensor, stats: RevINStats) -> torch.Tensor:
        """The inverse of :meth:`denormalize`: ``(B, H, N)`` in the units the model predicts."""
        y = (y - stats.mean) / stats.std
        if self.affine:
            y = y * (self.weight + self.eps * self.eps) + self.bias
        return y

    def denormalize(self, y: torch.Tensor, stats: RevINStats) -> torch.Tensor:
        """``(B, H, N)`` back to the units of the window ``stats`` came from."""
        if self.affine:
            y = (y - self.bias) / (self.weight + self.eps * self.eps)
        return y * stats.std + stats.mean  # (B, H, N)
