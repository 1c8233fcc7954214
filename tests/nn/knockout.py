"""Forecasts with one block knocked out, all other weights unchanged.

A test that only watches the loss fall passes just as well for a mixer or fusion that does
nothing; comparing a model's forecast with and without the block shows the block is used.
"""

from __future__ import annotations

import torch
from torch import nn

from tsattn import MTGNN


@torch.no_grad()
def forecast_with_identity_mixers(model: MTGNN, x: torch.Tensor) -> torch.Tensor:
    """``model(x)`` with every layer's mixer replaced by the identity."""
    mixers = model.mixers
    model.mixers = nn.ModuleList(nn.Identity() for _ in mixers)
    try:
        return model(x)
    finally:
        model.mixers = mixers


@torch.no_grad()
def forecast_with_level_zeroed(model: MTGNN, x: torch.Tensor, level: int) -> torch.Tensor:
    """``model(x)`` with pyramid level ``level`` set to zero before the fusion sees it."""

    def zero_level(module: nn.Module, inputs: tuple) -> tuple:
        levels = list(inputs[0])
        levels[level] = torch.zeros_like(levels[level])
        return (levels,)

    hook = model.fusion.register_forward_pre_hook(zero_level)
    try:
        return model(x)
    finally:
        hook.remove()
