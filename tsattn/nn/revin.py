"""Reversible instance normalisation.

Paper: Kim et al., "Reversible Instance Normalization for Accurate Time-Series Forecasting
against Distribution Shift", ICLR 2022, https://openreview.net/forum?id=cGDAkQo1C0p

Statistics are taken per sample and per variable over the input window, the series is
normalised before the network and the forecast is mapped back with the same statistics. The
optional affine weight is per variable, as in the official code.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["RevIN"]


class RevIN(nn.Module):
    """``normalize(x)`` on ``(B, T, N)`` inputs, ``denormalize(y)`` on ``(B, H, N)`` outputs.

    The statistics of the last ``normalize`` call are kept for the matching ``denormalize``.

    >>> revin = RevIN(3)
    >>> x = torch.randn(2, 10, 3) * 5 + 7
    >>> torch.allclose(revin.denormalize(revin.normalize(x)), x, atol=1e-4)
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
        self._mean: torch.Tensor | None = None
        self._std: torch.Tensor | None = None

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        self._mean = x.mean(dim=1, keepdim=True).detach()  # (B, T, N) -> (B, 1, N)
        self._std = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + self.eps).detach()
        x = (x - self._mean) / self._std
        if self.affine:
            x = x * self.weight + self.bias
        return x

    def denormalize(self, y: torch.Tensor) -> torch.Tensor:
        if self._mean is None or self._std is None:
            raise RuntimeError("RevIN.denormalize() was called before normalize().")
        if self.affine:
            y = (y - self.bias) / (self.weight + self.eps * self.eps)
        return y * self._std + self._mean  # (B, H, N)
