"""A learned periodic component, removed from the input and added back to the forecast.

CycleNet's Residual Cycle Forecasting (Lin et al., "CycleNet: Enhancing Time Series
Forecasting through Modeling Periodic Patterns", NeurIPS 2024, https://arxiv.org/abs/2409.18479):
a table ``Q`` of ``cycle_length x N`` values, one cycle of every variable, learned with the rest
of the model and initialised at zero. A window whose first input step sits at position ``p`` of
the cycle reads ``Q[(p + t) mod W]`` for its input steps ``t = 0..L-1``, which are subtracted
before the backbone, and ``Q[(p + L + t) mod W]`` for its forecast steps ``t = 0..H-1``, which are
added to the backbone's forecast. The backbone then forecasts the residual of the cycle.

The position comes with each window (``step`` of the batch, the row's place on the time grid:
:func:`tsattn.data.timefeatures.grid_steps`), so the phase is the calendar's (the hour of the
day for hourly data and ``W = 24``) in training and at forecast time alike.

>>> cycle = ResidualCycle(cycle_length=24, num_nodes=2)
>>> cycle(torch.tensor([5, 23]), offset=96, length=12).shape
torch.Size([2, 12, 2])
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ResidualCycle"]


class ResidualCycle(nn.Module):
    """``forward(step (B,), offset, length) -> (B, length, N)``: the cycle at positions
    ``step + offset + 0..length-1``."""

    def __init__(self, cycle_length: int, num_nodes: int) -> None:
        super().__init__()
        if cycle_length < 1 or num_nodes < 1:
            raise ValueError(
                f"cycle_length={cycle_length} and num_nodes={num_nodes} must both be >= 1."
            )
        self.cycle_length = cycle_length
        self.values = nn.Parameter(torch.zeros(cycle_length, num_nodes))  # (W, N)

    def forward(self, step: torch.Tensor, offset: int, length: int) -> torch.Tensor:
        positions = torch.arange(offset, offset + length, device=step.device)  # (length,)
        index = (step.long()[:, None] + positions) % self.cycle_length  # (B, length)
        return self.values[index]  # (W, N)[(B, length)] -> (B, length, N)
