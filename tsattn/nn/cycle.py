"""A learned periodic component, removed from the input and added back to the forecast.

CycleNet's Residual Cycle Forecasting (Lin et al., "CycleNet: Enhancing Time Series
Forecasting through Modeling Periodic Patterns", NeurIPS 2024, https://arxiv.org/abs/2409.18479):
a table ``Q`` of ``cycle_length x N`` values, one cycle of every variable, learned with the rest
of the model. It is initialised at zero; :meth:`ResidualCycle.fit_mean` starts it at the mean of
each phase over a set of windows instead (the trainer does so, ``TrainConfig.cycle_init``). A
window whose first input step sits at position ``p`` of the cycle reads ``Q[(p + t) mod W]`` for
its input steps ``t = 0..L-1``, which are subtracted before the backbone, and
``Q[(p + L + t) mod W]`` for its forecast steps ``t = 0..H-1``, which are added to the
backbone's forecast. The backbone then forecasts the residual of the cycle.

The position comes with each window (``step`` of the batch, the row's place on the time grid:
:func:`tsattn.data.timefeatures.grid_steps`), so the phase is the calendar's (the hour of the
day for hourly data and ``W = 24``) in training and at forecast time alike.

>>> cycle = ResidualCycle(cycle_length=24, num_nodes=2)
>>> cycle(torch.tensor([5, 23]), offset=96, length=12).shape
torch.Size([2, 12, 2])
"""

from __future__ import annotations

from collections.abc import Iterable

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

    def phases(self, step: torch.Tensor, offset: int, length: int) -> torch.Tensor:
        """``(B, length)`` positions in the cycle of steps ``step + offset + 0..length-1``."""
        positions = torch.arange(offset, offset + length, device=step.device)  # (length,)
        return (step.long()[:, None] + positions) % self.cycle_length  # (B, length)

    def forward(self, step: torch.Tensor, offset: int, length: int) -> torch.Tensor:
        index = self.phases(step, offset, length)  # (B, length)
        return self.values[index]  # (W, N)[(B, length)] -> (B, length, N)

    def fit_mean(self, windows: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> int:
        """Set every phase of the cycle to the mean of the values seen at that phase.

        ``windows`` yields ``(x (B, L, N), step (B,))``: input windows, in the space the cycle
        is subtracted in, and their first steps' grid positions. Sums are taken in float64,
        batch by batch; NaN and inf values are left out, and a phase of a variable with no
        finite value keeps its value. Returns the number of values averaged.

        >>> cycle = ResidualCycle(cycle_length=2, num_nodes=1)
        >>> x = torch.tensor([[1.0, 5.0, 3.0]]).reshape(1, 3, 1)  # phases 0, 1, 0
        >>> cycle.fit_mean([(x, torch.tensor([0]))])
        3
        >>> cycle.values.flatten().tolist()
        [2.0, 5.0]
        """
        sums = torch.zeros(self.values.shape, dtype=torch.float64)  # (W, N)
        counts = torch.zeros(self.values.shape, dtype=torch.float64)  # (W, N)
        for x, step in windows:
            phase = self.phases(step, 0, x.size(1)).reshape(-1).cpu()  # (B*L,)
            values = x.detach().double().reshape(-1, x.size(2)).cpu()  # (B*L, N)
            finite = torch.isfinite(values)
            sums.index_add_(0, phase, torch.where(finite, values, 0.0))
            counts.index_add_(0, phase, finite.double())
        seen = counts > 0
        with torch.no_grad():
            mean = (sums / counts.clamp(min=1)).to(self.values)
            self.values.copy_(torch.where(seen.to(self.values.device), mean, self.values))
        return int(counts.sum())
