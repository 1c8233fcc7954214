"""Dilated-inception gated temporal convolution of MTGNN.

Paper: Wu et al., "Connecting the Dots: Multivariate Time Series Forecasting with Graph Neural
Networks", KDD 2020, https://arxiv.org/abs/2005.11650 (section 4.4, "Temporal Convolution Module").

The textbook form runs one convolution per kernel size, crops every branch to the shortest
output (keeping the most recent steps), concatenates the branches, and does all of that twice:
once for the tanh filter and once for the sigmoid gate. That is ``2 * len(kernel_set)``
convolutions, as many crops and two concatenations per layer.

tsattn computes the same function with ONE convolution: every branch kernel is left-padded with
zeros to the largest kernel size (a kernel of size ``k`` padded to ``k_max`` sees exactly the
``k`` most recent taps of the ``k_max`` window, which is the crop), and the filter and gate
kernels are stacked on the output channels. The parameters are still stored per branch, so the
parameter count and the state-dict layout match the official code, and the padded weight is
rebuilt on every call (a few kilobytes), which keeps the gradients of the padding taps at zero.

The input is handed to the convolution in channels-last memory layout (a no-op when it already
is): oneDNN on CPUs and cuDNN on GPUs run a ``(1, k)`` convolution over ``(B, C, N, T)`` markedly
faster in that layout (``experiments/bench_speed.py`` measures it). Values and shapes are
unchanged; only the strides of the output differ.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DilatedInception", "GatedTemporalConv", "receptive_field"]


def _check_kernel_set(kernel_set: Sequence[int]) -> tuple[int, ...]:
    kernels = tuple(int(k) for k in kernel_set)
    if not kernels:
        raise ValueError("kernel_set is empty: pass at least one kernel size, e.g. (2, 3, 6, 7).")
    if any(k < 1 for k in kernels):
        raise ValueError(f"kernel_set={kernels} holds a size < 1: every kernel size must be >= 1.")
    return kernels


def receptive_field(
    kernel_set: Sequence[int] = (2, 3, 6, 7), layers: int = 3, dilation_exponential: int = 1
) -> int:
    """Number of input steps one output step of an ``layers``-deep stack sees, as in MTGNN.

    With kernel size ``k = max(kernel_set)`` and dilation ``e ** i`` in layer ``i``:
    ``1 + (k - 1) * (e ** layers - 1) / (e - 1)`` for ``e > 1`` and ``1 + layers * (k - 1)``
    for ``e == 1``. MTGNN's single-step setting (k=7, 5 layers, e=2) gives 187; its multi-step
    setting (k=7, 3 layers, e=1) gives 19.

    >>> receptive_field((2, 3, 6, 7), layers=5, dilation_exponential=2)
    187
    """
    k_max = max(_check_kernel_set(kernel_set))
    if layers < 1:
        raise ValueError(f"layers={layers}: a temporal stack needs at least one layer.")
    if dilation_exponential < 1:
        raise ValueError(f"dilation_exponential={dilation_exponential}: pass an integer >= 1.")
    if dilation_exponential == 1:
        return 1 + layers * (k_max - 1)
    e = dilation_exponential
    return 1 + (k_max - 1) * (e**layers - 1) // (e - 1)


class DilatedInception(nn.Module):
    """Inception of dilated 1-D convolutions along time, one branch per kernel size.

    Input ``(B, c_in, N, T)``, output ``(B, c_out, N, T - dilation * (max(kernel_set) - 1))``.
    Each branch has ``c_out / len(kernel_set)`` output channels and no padding; every branch is
    cropped to the shortest branch's length keeping the most recent steps, then the branches are
    concatenated on channels (in ``kernel_set`` order). Computed as one zero-padded convolution
    (see the module docstring); ``branches[i]`` holds the weights of kernel ``kernel_set[i]``.

    >>> conv = DilatedInception(16, 32, dilation=2)
    >>> conv(torch.randn(4, 16, 7, 40)).shape
    torch.Size([4, 32, 7, 28])
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel_set: Sequence[int] = (2, 3, 6, 7),
        dilation: int = 1,
    ) -> None:
        super().__init__()
        self.kernel_set = _check_kernel_set(kernel_set)
        if c_in < 1 or c_out < 1:
            raise ValueError(f"c_in={c_in}, c_out={c_out}: channel counts must be >= 1.")
        if c_out % len(self.kernel_set) != 0:
            raise ValueError(
                f"c_out={c_out} is not divisible by the {len(self.kernel_set)} branches of "
                f"kernel_set={self.kernel_set}: pass a c_out that is a multiple of "
                f"{len(self.kernel_set)}."
            )
        if dilation < 1:
            raise ValueError(f"dilation={dilation}: pass an integer >= 1.")
        self.c_in, self.c_out, self.dilation = c_in, c_out, int(dilation)
        self.k_max = max(self.kernel_set)
        branch_out = c_out // len(self.kernel_set)
        self.branches = nn.ModuleList(
            nn.Conv2d(c_in, branch_out, (1, k), dilation=(1, self.dilation))
            for k in self.kernel_set
        )

    def output_length(self, length: int) -> int:
        """Time steps left after this layer for an input of ``length`` steps."""
        return length - self.dilation * (self.k_max - 1)

    def fused_weight(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The branch kernels left-padded to ``k_max`` and stacked: ``(c_out, c_in, 1, k_max)``."""
        weights = [
            F.pad(conv.weight, (self.k_max - k, 0))  # (c, c_in, 1, k) -> (c, c_in, 1, k_max)
            for conv, k in zip(self.branches, self.kernel_set, strict=True)
        ]
        biases = [conv.bias for conv in self.branches]
        return torch.cat(weights, dim=0), torch.cat(biases, dim=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias = self.fused_weight()
        x = x.contiguous(memory_format=torch.channels_last)
        # (B, c_in, N, T) -> (B, c_out, N, T - d (k_max - 1))
        return F.conv2d(x, weight, bias, dilation=(1, self.dilation))


class GatedTemporalConv(nn.Module):
    """``tanh(filter(x)) * sigmoid(gate(x))`` with two :class:`DilatedInception` blocks.

    Filter and gate are computed by one convolution with ``2 * c_out`` output channels.

    >>> tconv = GatedTemporalConv(16, 16, dilation=1)
    >>> tconv(torch.randn(2, 16, 5, 19)).shape
    torch.Size([2, 16, 5, 13])
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel_set: Sequence[int] = (2, 3, 6, 7),
        dilation: int = 1,
    ) -> None:
        super().__init__()
        self.filter = DilatedInception(c_in, c_out, kernel_set, dilation)
        self.gate = DilatedInception(c_in, c_out, kernel_set, dilation)
        self.c_out = c_out

    def output_length(self, length: int) -> int:
        """Time steps left after this layer for an input of ``length`` steps."""
        return self.filter.output_length(length)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w_filter, b_filter = self.filter.fused_weight()
        w_gate, b_gate = self.gate.fused_weight()
        weight = torch.cat([w_filter, w_gate], dim=0)  # (2 c_out, c_in, 1, k_max)
        bias = torch.cat([b_filter, b_gate], dim=0)
        x = x.contiguous(memory_format=torch.channels_last)
        # (B, c_in, N, T) -> (B, 2 c_out, N, T')
        both = F.conv2d(x, weight, bias, dilation=(1, self.filter.dilation))
        filt, gate = both.split(self.c_out, dim=1)  # 2 x (B, c_out, N, T')
        return torch.tanh(filt) * torch.sigmoid(gate)
