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

The zero taps cost multiply-adds: with kernel set 2, 3, 6, 7, 10 of the 28 taps of the padded
kernel are zeros. On CPUs the gated layer therefore runs one convolution per tap group
(:func:`tap_groups`): the branches cut into two runs, each convolved with its own largest
kernel (kernels 2 and 3 as one convolution of size 3, kernels 6 and 7 as one of size 7), 29%
fewer multiply-adds. Every group reads the whole input, and the shorter kernels' group drops
the outputs that come before the largest kernel's first: a convolution over a slice of the
input would copy the slice, forward and backward, which cost more than those few output
steps. The automatic choice (:attr:`GatedTemporalConv.split_taps`) splits where that saves
at least :data:`MIN_TAP_SAVING` of the work; ``experiments/bench_speed.py`` times the training step
both ways.

The input is handed to the convolution in channels-last memory layout (a no-op when it already
is): oneDNN on CPUs and cuDNN on GPUs run a ``(1, k)`` convolution over ``(B, C, N, T)`` markedly
faster in that layout (``experiments/bench_speed.py`` measures it). Values and shapes are
unchanged; only the strides of the output differ.

The gated form has a hand-written backward (:class:`_GatedInception`): at small shapes the
convolution was only two thirds of the layer's forward+backward, and autograd's generic graph
spent the rest on memory passes around it:

* ``tanh(f) = 2 * sigmoid(2 f) - 1``, with the factor 2 folded into the filter weights (an exact
  scaling in floating point), so ONE ``sigmoid`` over the contiguous filter+gate buffer
  replaces a ``tanh`` over a strided half (``tanh`` is several times slower than ``sigmoid`` on
  CPUs) and a ``sigmoid`` over the other half; outputs agree with ``tanh`` to ~1e-7;
* the backward writes the filter and gate gradients into one buffer and calls the
  convolution's backward once, so autograd's split/cat and the eight pad/cat nodes of the
  weight assembly disappear, and the branch gradients are views of the fused weight gradient.

A compiled CPU kernel that multiplied only the taps each branch owns was tried and removed:
2.5x faster on the layer alone, it made the whole training step no faster (0.62x and 0.84x of
the library path at the two benchmark shapes of ``experiments/bench_speed.py``, same run),
and it cost a compiler at run time, a cache of shared libraries and a second OpenMP pool.

Under autocast (mixed precision), and when ``GatedTemporalConv.composed`` is set, the module
takes the composed path instead: the same fused convolution from differentiable ops, gated with
``tanh`` and ``sigmoid``, with autograd's backward. That path supports double backward
(``create_graph=True``, e.g. gradient penalties) and ``torch.func`` transforms; the hand-written
backward raises a clear error when asked for them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DilatedInception", "GatedTemporalConv", "receptive_field", "tap_groups", "tap_saving"]


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
        weight = _stack_padded([conv.weight for conv in self.branches], self.k_max)
        return weight, torch.cat([conv.bias for conv in self.branches], dim=0)

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

    def branch_parameters(self) -> list[torch.Tensor]:
        """``[w, b]`` of every filter branch, then of every gate branch, in ``kernel_set`` order."""
        return [
            p
            for block in (self.filter, self.gate)
            for conv in block.branches
            for p in (conv.weight, conv.bias)
        ]

    #: ``True``: let autograd compose the backward (slower; supports double backward and
    #: ``torch.func`` transforms). Set it on one module, or on the class for every layer.
    composed: bool = False

    #: ``None`` (automatic), ``True`` or ``False``: whether the hand-written path runs one
    #: convolution per tap group (:func:`tap_groups`) instead of one over every branch. The
    #: automatic choice splits on CPUs where the split saves at least
    #: :data:`MIN_TAP_SAVING` of the multiply-adds (the default kernel set saves 29%); set it
    #: on one module, or on the class for every layer.
    split_taps: bool | None = None

    def tap_groups(self, device: torch.device) -> tuple[tuple[int, ...], ...]:
        """The branch groups the hand-written path convolves apart on ``device``."""
        kernel_set = self.filter.kernel_set
        split = self.split_taps
        if split is None:
            split = device.type == "cpu" and tap_saving(kernel_set) >= MIN_TAP_SAVING
        return tap_groups(kernel_set) if split else (tuple(range(len(kernel_set))),)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.composed or _autocast_enabled(x.device.type):
            return self._composed_forward(x)
        params = self.branch_parameters()
        kernel_set, dilation = self.filter.kernel_set, self.filter.dilation
        groups = self.tap_groups(x.device)
        return _GatedInception.apply(x, kernel_set, dilation, groups, *params)

    def _composed_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The same fused convolution from differentiable ops (autocast, ``composed``)."""
        params = self.branch_parameters()
        weight = _stack_padded(params[0::2], self.filter.k_max)  # (2 c_out, c_in, 1, k_max)
        bias = torch.cat(params[1::2])
        x = x.contiguous(memory_format=torch.channels_last)
        # (B, c_in, N, T) -> (B, 2 c_out, N, T')
        both = F.conv2d(x, weight, bias, dilation=(1, self.filter.dilation))
        filt, gate = both.split(self.c_out, dim=1)  # 2 x (B, c_out, N, T')
        return torch.tanh(filt) * torch.sigmoid(gate)


def _stack_padded(weights: Sequence[torch.Tensor], k_max: int) -> torch.Tensor:
    """``(c, c_in, 1, k)`` kernels left-padded with zeros to ``k_max`` and stacked on dim 0."""
    return torch.cat([F.pad(w, (k_max - w.size(3), 0)) for w in weights], dim=0)


def _autocast_enabled(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4 takes no device type
        return torch.is_autocast_enabled() or torch.is_autocast_cpu_enabled()


#: the automatic choice of :attr:`GatedTemporalConv.split_taps` splits the convolution where
#: that saves at least this share of its multiply-adds (``experiments/bench_speed.py``: the
#: default kernel set saves 29% and made the training step 4% faster at the ETTh1 shape, 2%
#: at the electricity shape; smaller savings were not measured and keep one convolution)
MIN_TAP_SAVING = 0.25


def tap_groups(kernel_set: Sequence[int]) -> tuple[tuple[int, ...], ...]:
    """The branches (indices, in ``kernel_set`` order) cut into at most two runs of
    consecutive branches so that each run convolved with its own largest kernel multiplies
    the fewest zero taps.

    >>> tap_groups((2, 3, 6, 7))
    ((0, 1), (2, 3))
    """
    kernels = _check_kernel_set(kernel_set)
    whole = tuple(range(len(kernels)))
    best, best_taps = (whole,), _taps((whole,), kernels)
    for cut in range(1, len(kernels)):
        groups = (whole[:cut], whole[cut:])
        if (taps := _taps(groups, kernels)) < best_taps:
            best, best_taps = groups, taps
    return best


def tap_saving(kernel_set: Sequence[int]) -> float:
    """The share of the one-convolution form's multiply-adds that :func:`tap_groups` saves."""
    kernels = _check_kernel_set(kernel_set)
    whole = (tuple(range(len(kernels))),)
    return 1.0 - _taps(tap_groups(kernels), kernels) / _taps(whole, kernels)


def _taps(groups: Sequence[Sequence[int]], kernels: Sequence[int]) -> int:
    return sum(len(group) * max(kernels[i] for i in group) for group in groups)


class _GatedInception(torch.autograd.Function):
    """``tanh(filter(x)) * sigmoid(gate(x))`` with a hand-written backward, as one convolution
    per tap group.

    Inputs: ``x (B, c_in, N, T)``, the kernel set, the dilation, the branch groups
    (:func:`tap_groups`; one group holding every branch is the one-convolution form), then
    ``[w, b]`` per branch (all filter branches, then all gate branches). Forward, per group
    with largest kernel ``k_g``::

        z = conv(x, [2 W_f; W_g], [2 b_f; b_g])     # (B, 2 c_g, N, T' + drop), one call
        s = sigmoid(z)                              # one pass over the whole buffer
        y[group] = (2 s_f - 1) * s_g                # = tanh(f) * sigmoid(g), on the last T'

    where ``drop = d (k_max - k_g)`` outputs come before the largest kernel's first and are
    dropped.

    Backward, with ``f``, ``g`` the unscaled filter and gate pre-activations::

        dL/df = 4 gy s_g s_f (1 - s_f),   dL/dg = gy (2 s_f - 1) s_g (1 - s_g)

    written as ``sigmoid_backward([4 gy s_g ; gy (2 s_f - 1)], s)`` into one buffer, then one
    convolution backward per group against its unscaled weight (zero gradient on the dropped
    outputs); the groups' input gradients add up.
    """

    @staticmethod
    def forward(ctx, x, kernel_set, dilation, groups, *params):
        weights, biases = params[0::2], params[1::2]
        n_branch = len(kernel_set)
        c = weights[0].size(0)  # output channels of one branch
        k_max = max(kernel_set)
        x = x.contiguous(memory_format=torch.channels_last)
        steps = x.size(3) - dilation * (k_max - 1)
        y = x.new_empty(x.size(0), c * n_branch, x.size(2), steps)
        y = y.contiguous(memory_format=torch.channels_last)
        saved, geometry = [], []
        for group in groups:
            k_g = max(kernel_set[i] for i in group)
            rows = [*group, *(n_branch + i for i in group)]  # filter rows, then gate rows
            weight = _stack_padded([weights[r] for r in rows], k_g)  # (2 c_g, c_in, 1, k_g)
            bias = torch.cat([biases[r] for r in rows])
            c_g = len(group) * c
            scale = _tanh_scale(bias, c_g)
            # the first outputs over the whole input come before the largest kernel's first;
            # dropped (a convolution over the slice x[..., drop:] would copy it, forward and
            # backward, which cost the electricity-like training step more than these steps)
            drop = dilation * (k_max - k_g)
            z = F.conv2d(
                x,
                weight * scale.view(-1, 1, 1, 1),
                bias * scale,
                dilation=(1, dilation),
            )
            s = torch.sigmoid_(z)
            s_f, s_g = s[..., drop:].split(c_g, dim=1)
            out = y[:, group[0] * c : group[-1] * c + c]
            torch.mul(s_f, 2.0, out=out).sub_(1.0).mul_(s_g)
            saved += [weight, s]
            geometry.append((rows, drop, c_g))
        ctx.save_for_backward(x, *saved)
        ctx.geometry = (tuple(kernel_set), int(dilation), c, [g[0] for g in groups], geometry)
        return y

    @staticmethod
    def backward(ctx, grad_y):
        _refuse_double_backward()
        x, *saved = ctx.saved_tensors
        kernel_set, dilation, c, firsts, geometry = ctx.geometry
        needs = ctx.needs_input_grad
        need_x = needs[0]
        need_w = any(needs[4::2])
        need_b = any(needs[5::2])
        grad_x = None
        grads: list[torch.Tensor | None] = [None] * (4 * len(kernel_set))
        for first, (rows, drop, c_g), weight, s in zip(
            firsts, geometry, saved[0::2], saved[1::2], strict=True
        ):
            k_g = weight.size(3)
            s_f, s_g = s[..., drop:].split(c_g, dim=1)
            grad_out = grad_y[:, first * c : first * c + c_g]
            grad_act = torch.empty_like(s)  # (B, 2 c_g, N, T' + drop), same layout as s
            if drop:
                grad_act[..., :drop].zero_()  # the dropped outputs
            grad_f, grad_g = grad_act[..., drop:].split(c_g, dim=1)
            torch.mul(grad_out, s_g, out=grad_f).mul_(4.0)
            torch.mul(s_f, 2.0, out=grad_g).sub_(1.0).mul_(grad_out)
            grad_z = torch.ops.aten.sigmoid_backward.grad_input(grad_act, s, grad_input=grad_act)
            dx, dw, db = torch.ops.aten.convolution_backward(
                grad_z,
                x,
                weight,
                [weight.size(0)],
                [1, 1],  # stride
                [0, 0],  # padding
                [1, dilation],
                False,  # transposed
                [0, 0],  # output padding
                1,  # groups
                [need_x, need_w, need_b],
            )
            if need_x:
                grad_x = dx if grad_x is None else grad_x.add_(dx)
            for j, row in enumerate(rows):
                k = kernel_set[row % len(kernel_set)]
                grads[2 * row] = dw[j * c : j * c + c, ..., k_g - k :] if need_w else None
                grads[2 * row + 1] = db[j * c : j * c + c] if need_b else None
        return (grad_x, None, None, None, *grads)


def _tanh_scale(bias: torch.Tensor, c_out: int) -> torch.Tensor:
    """``(2 c_out,)``: 2 for the filter rows, 1 for the gate rows, so that one sigmoid gives
    ``tanh(f) = 2 sigmoid(2 f) - 1``; doubling is exact in floating point."""
    scale = bias.new_ones(2 * c_out)
    scale[:c_out] = 2.0
    return scale


def _refuse_double_backward() -> None:
    if torch.is_grad_enabled():
        raise RuntimeError(
            "GatedTemporalConv's hand-written backward cannot be differentiated again "
            "(create_graph=True). Set GatedTemporalConv.composed = True (on the module, or "
            "on the class for every layer) to let autograd compose a twice-differentiable "
            "backward."
        )
