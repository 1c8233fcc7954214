"""Bricks shared by the mixers: argument checks, conv + norm + act, ZPool, a batch-size-safe BN.

Every mixer validates its arguments through the helpers here, so a bad argument raises the same
kind of ``ValueError`` with the same wording whichever mixer received it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ActLayer",
    "BatchNorm2dAnyBatch",
    "ConvNormAct",
    "ZPool",
    "check_channels",
    "check_odd_kernel",
    "check_positive",
    "default_divisor",
    "kernel_pair",
    "reduced_channels",
    "resolve_act_layer",
]

ActLayer = Callable[..., nn.Module]

# Names accepted wherever a mixer takes ``act_layer``: strings keep ``mixer_kwargs`` plain data,
# so an ``MTGNNConfig`` holding them still round-trips through YAML.
_ACTIVATIONS: dict[str, ActLayer] = {
    "relu": nn.ReLU,
    "hardswish": nn.Hardswish,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
}


def check_channels(channels: int) -> int:
    """``channels`` as an int >= 1, or a ``ValueError`` that says what to pass."""
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ValueError(f"channels={channels!r}: pass the number of input channels (an int >= 1).")
    return channels


def check_positive(name: str, value: float, *, integer: bool = False) -> float:
    """``value`` if it is a number > 0 (an int when ``integer``), else a ``ValueError``."""
    kind = "an int" if integer else "a number"
    bad_type = isinstance(value, bool) or not isinstance(value, int if integer else (int, float))
    if bad_type or value <= 0:
        raise ValueError(f"{name}={value!r}: pass {kind} > 0.")
    return value


def check_odd_kernel(name: str, size: int) -> int:
    """An odd kernel size >= 1, the only sizes whose 'same' padding keeps the length."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1 or size % 2 == 0:
        raise ValueError(
            f"{name}={size!r}: pass an odd int >= 1 (e.g. 1, 3, 5, 7) so the output keeps the "
            "input's length."
        )
    return size


def kernel_pair(kernel_size: int | tuple[int, int], name: str = "kernel_size") -> tuple[int, int]:
    """``(k_n, k_t)`` from an int (used for both axes) or a pair, both odd."""
    if isinstance(kernel_size, int) and not isinstance(kernel_size, bool):
        pair = (kernel_size, kernel_size)
    elif isinstance(kernel_size, (tuple, list)) and len(kernel_size) == 2:
        pair = (kernel_size[0], kernel_size[1])
    else:
        raise ValueError(
            f"{name}={kernel_size!r}: pass an odd int or a pair (k_n, k_t) of odd ints, "
            "e.g. (1, 7)."
        )
    return (check_odd_kernel(f"{name}[0]", pair[0]), check_odd_kernel(f"{name}[1]", pair[1]))


def reduced_channels(
    channels: int, reduction: float, rd_channels: int | None, min_channels: int = 1
) -> int:
    """Hidden width of a squeeze MLP: ``rd_channels`` if given, else ``max(min, C // r)``.

    Never 0: a zero-width bottleneck would turn the gate into a constant.
    """
    check_positive("reduction", reduction)
    check_positive("min_channels", min_channels, integer=True)
    if rd_channels is not None:
        return int(check_positive("rd_channels", rd_channels, integer=True))
    return max(min_channels, int(channels // reduction))


def default_divisor(channels: int, value: int | None, preferred: int, name: str) -> int:
    """``value`` if it divides ``channels``; when ``None``, the largest divisor of ``preferred``
    that divides ``channels`` (so the default works for every channel count)."""
    if value is None:
        return math.gcd(channels, preferred)
    check_positive(name, value, integer=True)
    if channels % value != 0:
        raise ValueError(
            f"{name}={value} does not divide channels={channels}: pass a divisor of {channels} "
            f"(or leave {name} unset for {math.gcd(channels, preferred)})."
        )
    return value


def resolve_act_layer(act_layer: str | ActLayer) -> ActLayer:
    """An activation class from a name (``relu``, ``hardswish``, ``silu``, ``gelu``, ``tanh``)
    or a callable returning a module, which is passed through."""
    if isinstance(act_layer, str):
        key = act_layer.lower()
        if key not in _ACTIVATIONS:
            raise ValueError(
                f"act_layer={act_layer!r}: pass one of {', '.join(_ACTIVATIONS)} or a callable "
                "returning an nn.Module."
            )
        return _ACTIVATIONS[key]
    if not callable(act_layer):
        raise ValueError(f"act_layer={act_layer!r}: pass a name or a callable returning a module.")
    return act_layer


class BatchNorm2dAnyBatch(nn.BatchNorm2d):
    """``BatchNorm2d`` that also works when a training batch holds one value per channel.

    PyTorch raises there (e.g. a pooled ``(1, C, 1, 1)`` descriptor with batch size 1), and batch
    statistics of one value would zero the signal anyway. This layer normalises such a batch
    with the running statistics instead and leaves them untouched; every other batch is plain
    ``BatchNorm2d``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.numel() == x.size(1):
            return F.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
            )
        return super().forward(x)


class ConvNormAct(nn.Sequential):
    """``Conv2d`` ('same' padding, no bias) -> ``BatchNorm2dAnyBatch`` -> activation (optional).

    The convolution has no bias because the batch norm right after it would cancel it (its
    gradient would be exactly zero).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: tuple[int, int] = (1, 1),
        *,
        dilation: tuple[int, int] = (1, 1),
        groups: int = 1,
        act_layer: ActLayer | None = nn.ReLU,
    ) -> None:
        padding = (
            dilation[0] * (kernel_size[0] - 1) // 2,
            dilation[1] * (kernel_size[1] - 1) // 2,
        )
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                padding=padding,
                dilation=dilation,
                groups=groups,
                bias=False,
            ),
            BatchNorm2dAnyBatch(out_channels),
        ]
        if act_layer is not None:
            layers.append(act_layer())
        super().__init__(*layers)


class ZPool(nn.Module):
    """``[max, mean]`` over one dimension, stacked as 2 channels (max first, as in the official
    CBAM and Triplet code): ``dim=1`` maps ``(B, C, N, T) -> (B, 2, N, T)``, ``dim=2`` maps
    ``(B, C, N, T) -> (B, 2, C, T)``, ``dim=3`` maps ``(B, C, N, T) -> (B, 2, C, N)``."""

    def __init__(self, dim: int = 1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, C, N, T) -> (B, 2, the two remaining axes in order)
        return torch.stack([x.amax(dim=self.dim), x.mean(dim=self.dim)], dim=1)
