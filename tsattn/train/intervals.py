"""Prediction intervals by split conformal prediction, per horizon step and variable.

After training, the model forecasts every held-back validation window (windows it never
learned from; they only chose the checkpoint). The conformity score of step ``h`` and
variable ``v`` is the absolute error normalised by the spread of the window's own input,
``|y - yhat| / s``, with ``s`` the standard deviation of the variable over the ``L`` input
steps (the statistic RevIN normalises by) plus ``SCALE_FLOOR``; scores and ``s`` are taken on
the standardised values, so the ratio is the same in original units. The interval at level
``p`` (percent) is ``yhat +- q s``, where ``q`` is the ``k``-th smallest score with
``k = ceil((n + 1) p / 100)`` among the ``n`` calibration windows: when the scores of future
windows are exchangeable with the calibration scores, the interval covers the truth with
probability at least ``p`` (Vovk et al. 2005; normalised scores: Lei et al.,
"Distribution-free predictive inference for regression", JASA 2018, section 5.2). Per-step
scores let the interval widen with the horizon; dividing by ``s`` lets it narrow in calm
periods and widen in volatile ones. Exchangeability is an assumption: the README reports the
coverage measured on ETTh1's test windows (``experiments/interval_coverage.py``), where plain
absolute errors over-covered because the test period is calmer than the validation period.

To keep model files small, at most ``MAX_CALIBRATION_VALUES`` scores are kept: when the
validation windows hold more, an evenly spaced subset of windows is used.

>>> import torch
>>> errors = torch.arange(1.0, 10.0).reshape(9, 1, 1)
>>> cal = ConformalCalibration.from_errors(errors, torch.ones(9, 1))
>>> cal.multiplier(80.0).item()  # k = ceil(10 * 0.8) = 8: the 8th smallest of 1..9
8.0
>>> check_levels([95, 80])
[80.0, 95.0]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

__all__ = [
    "MAX_CALIBRATION_VALUES",
    "SCALE_FLOOR",
    "ConformalCalibration",
    "check_levels",
    "interval_columns",
    "window_scale",
]

MAX_CALIBRATION_VALUES = 4_000_000  # 16 MB of float32 scores in a saved model at most
SCALE_FLOOR = 1e-3  # added to the input spread (standardised units): a flat input is no 0


def window_scale(x: torch.Tensor) -> torch.Tensor:
    """Spread of each variable over the input window: ``(B, L, N) -> (B, N)``."""
    return x.float().std(dim=1, unbiased=False) + SCALE_FLOOR  # (B, L, N) -> (B, N)


def check_levels(level: float | Iterable[float]) -> list[float]:
    """Levels in percent, each strictly between 0 and 100, sorted and without repeats."""
    raw = [level] if isinstance(level, int | float) else list(level)
    if not raw:
        raise ValueError("level is empty: pass levels in percent, e.g. level=[80, 95].")
    levels = []
    for value in raw:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"level {value!r} is not a number: pass percents, e.g. [80, 95].")
        if not 0 < value < 100 or not math.isfinite(value):
            raise ValueError(
                f"level {value} is outside (0, 100): levels are percents of coverage, "
                "e.g. level=[80, 95]."
            )
        levels.append(float(value))
    return sorted(set(levels))


def _label(level: float) -> str:
    return f"{level:g}"


def interval_columns(column: str, level: float) -> tuple[str, str]:
    """Names of the lower and upper bound columns: ``("OT-lo-80", "OT-hi-80")``."""
    return f"{column}-lo-{_label(level)}", f"{column}-hi-{_label(level)}"


def _rank(n: int, level: float) -> int:
    """1-based rank of the conformal quantile among ``n`` sorted scores."""
    return math.ceil((n + 1) * level / 100.0)


@dataclass
class ConformalCalibration:
    """Sorted normalised scores ``(n, H, N)`` of ``n`` calibration windows."""

    scores: torch.Tensor

    @classmethod
    def from_errors(cls, errors: torch.Tensor, scales: torch.Tensor) -> ConformalCalibration:
        """From errors ``(n, H, N)`` and input spreads ``(n, N)`` (:func:`window_scale`),
        thinned evenly to ``MAX_CALIBRATION_VALUES``."""
        if (
            errors.ndim != 3
            or errors.shape[0] < 1
            or scales.shape
            != (
                errors.shape[0],
                errors.shape[2],
            )
        ):
            raise ValueError(
                f"calibration errors must be (windows, horizon, variables) with at least one "
                f"window and scales (windows, variables); got shapes {tuple(errors.shape)} "
                f"and {tuple(scales.shape)}."
            )
        errors = errors.abs() / scales[:, None, :]  # (n, H, N) / (n, 1, N)
        n = errors.shape[0]
        keep = min(n, cls.max_windows(errors.shape[1] * errors.shape[2]))
        if keep < n:
            errors = errors[torch.linspace(0, n - 1, keep).round().long()]  # (keep, H, N)
        scores = errors.abs().float().sort(dim=0).values  # (n, H, N), ascending per (h, v)
        return cls(scores.contiguous())

    @staticmethod
    def max_windows(values_per_window: int) -> int:
        """How many calibration windows of ``H x N`` values fit in ``MAX_CALIBRATION_VALUES``."""
        return max(1, MAX_CALIBRATION_VALUES // max(1, values_per_window))

    @property
    def windows(self) -> int:
        return int(self.scores.shape[0])

    def multiplier(self, level: float) -> torch.Tensor:
        """``q`` of the interval ``yhat +- q s`` at ``level`` percent: ``(H, N)``."""
        n = self.windows
        rank = _rank(n, level)
        if rank > n:
            needed = max(1, math.floor(level / (100 - level)))
            while _rank(needed, level) > needed:
                needed += 1
            raise ValueError(
                f"level {level:g} needs at least {needed} "
                f"calibration windows but this model was calibrated on {n}: ask for a lower "
                "level, or fit with more validation data (val_fraction or val_data)."
            )
        return self.scores[rank - 1]  # (n, H, N) -> (H, N)

    def to_payload(self) -> dict[str, Any]:
        return {"method": "split_conformal_normalised", "scores": self.scores.clone()}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> ConformalCalibration:
        if payload.get("method") != "split_conformal_normalised":
            raise ValueError(f"unknown calibration method {payload.get('method')!r}.")
        return cls(payload["scores"].float())
