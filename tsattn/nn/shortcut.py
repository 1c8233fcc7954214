"""Linear maps of the look-back window, added beside the deep path of a forecaster.

- ``linear``: one ``nn.Linear(L, H)`` along time, shared by every variable (RLinear: Li et al.,
  "Revisiting Long-term Time Series Forecasting: An Investigation on Linear Mapping", 2023,
  https://arxiv.org/abs/2305.10721). Applied after RevIN, it is RLinear.
- ``dlinear``: DLinear's decomposition (Zeng et al., "Are Transformers Effective for Time Series
  Forecasting?", AAAI 2023, https://arxiv.org/abs/2205.13504): a moving average (edge-replicated,
  odd ``kernel_size``, 25 in the paper) splits the window into trend and remainder, each mapped
  to the horizon by its own shared ``nn.Linear(L, H)``, and the two forecasts are added.

Departures: the maps are always shared across variables (DLinear's ``individual=False``); both
paths are initialised as in ``nn.Linear`` (DLinear's official code sets every weight to
``1 / L``, a moving average of the whole window).

>>> shortcut = LinearShortcut("dlinear", seq_len=96, horizon=24)
>>> shortcut(torch.randn(8, 96, 7)).shape
torch.Size([8, 24, 7])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SHORTCUTS", "LinearShortcut", "moving_average"]

SHORTCUTS = ("none", "linear", "dlinear")


def moving_average(x: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Centred moving average along time of ``(B, T, N)``, edges replicated; same shape out.

    >>> moving_average(torch.arange(5.0).reshape(1, 5, 1), 3).flatten().tolist()
    [0.3333333432674408, 1.0, 2.0, 3.0, 3.6666667461395264]
    """
    half = (kernel_size - 1) // 2
    series = x.transpose(1, 2)  # (B, T, N) -> (B, N, T)
    series = F.pad(series, (half, half), mode="replicate")  # (B, N, T) -> (B, N, T + k - 1)
    trend = F.avg_pool1d(series, kernel_size, stride=1)  # (B, N, T + k - 1) -> (B, N, T)
    return trend.transpose(1, 2)  # (B, N, T) -> (B, T, N)


class LinearShortcut(nn.Module):
    """``(B, L, N) -> (B, H, N)``: ``linear`` or ``dlinear`` (see the module docstring)."""

    def __init__(self, kind: str, seq_len: int, horizon: int, kernel_size: int = 25) -> None:
        super().__init__()
        if kind not in SHORTCUTS[1:]:
            raise ValueError(f"linear shortcut {kind!r}: choose one of {', '.join(SHORTCUTS[1:])}.")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(
                f"kernel_size={kernel_size}: the moving average needs an odd size >= 1."
            )
        self.kind = kind
        self.kernel_size = kernel_size
        self.linear = nn.Linear(seq_len, horizon)
        self.trend = nn.Linear(seq_len, horizon) if kind == "dlinear" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.trend is None:
            return self.linear(x.transpose(1, 2)).transpose(1, 2)  # (B, L, N) -> (B, H, N)
        trend = moving_average(x, self.kernel_size)  # (B, L, N)
        season = (x - trend).transpose(1, 2)  # (B, L, N) -> (B, N, L)
        out = self.linear(season) + self.trend(trend.transpose(1, 2))  # (B, N, L) -> (B, N, H)
        return out.transpose(1, 2)  # (B, N, H) -> (B, H, N)
