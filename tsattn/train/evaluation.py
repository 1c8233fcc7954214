"""Forecasts and metrics over every window of a :class:`~tsattn.data.windows.WindowDataset`.

The one evaluation path of :class:`tsattn.Forecaster`: ``evaluate`` (any frame) and ``test``
(the test split of the training data) both build a ``WindowDataset`` and score it here, with
:class:`~tsattn.train.metrics.MetricAccumulator`, so they agree on the same windows.

>>> import torch
>>> from tsattn.data.protocols import WindowGeometry
>>> from tsattn.models.mtgnn import MTGNN, MTGNNConfig
>>> model = MTGNN(MTGNNConfig(num_nodes=2, seq_len=8, horizon=2, layers=1))
>>> ds = all_windows(torch.randn(20, 2), torch.zeros(20, 0), WindowGeometry(8, 0, 2))
>>> len(ds), score_windows(model, ds)["windows"]
(11, 11)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from tsattn.data.protocols import WindowGeometry
from tsattn.data.scaling import Scaler
from tsattn.data.windows import WindowDataset, collate_windows
from tsattn.models.mtgnn import MTGNN
from tsattn.train.intervals import ConformalCalibration, window_scale
from tsattn.train.metrics import MetricAccumulator

__all__ = [
    "all_windows",
    "calibrate",
    "forecast_windows",
    "last_value_windows",
    "score_last_value",
    "score_windows",
]


def all_windows(
    values: torch.Tensor,
    marks: torch.Tensor,
    geometry: WindowGeometry,
    steps: torch.Tensor | None = None,
) -> WindowDataset:
    """Every stride-1 window of a scaled ``(T, N)`` series with marks ``(T, F)`` and grid
    positions ``(T,)`` (default the row numbers)."""
    count = values.shape[0] - geometry.span + 1
    if count < 1:
        raise ValueError(
            f"the series has {values.shape[0]} rows but one window needs {geometry.span} "
            f"(seq_len {geometry.input_length} + horizon): pass a longer series."
        )
    return WindowDataset(values, marks, geometry, range(count), steps)


def forecast_windows(
    model: MTGNN, dataset: Dataset, batch_size: int = 256
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(x, pred, y)`` per batch on the model's device, scaled units: ``x (B, L, N)``,
    ``pred`` and ``y`` ``(B, H, N)`` float32."""
    device = next(model.parameters()).device
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_windows)
    model.eval()
    with torch.no_grad():
        for x, y, x_mark, step in loader:
            marks = x_mark.to(device) if model.config.time_features else None  # (B, L, F)
            x = x.to(device)
            pred = model(x, marks, step.to(device)).float()  # (B, L, N) -> (B, H, N)
            yield x, pred, y.to(device)


def last_value_windows(
    dataset: Dataset, batch_size: int = 256
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """``(x, pred, y)`` per batch like :func:`forecast_windows`, for the naive forecast that
    repeats each variable's last observed value over the horizon (persistence)."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_windows)
    for x, y, _, _ in loader:
        yield x, x[:, -1:, :].expand_as(y), y  # (B, L, N) -> (B, 1, N) -> (B, H, N)


def score_windows(
    model: MTGNN,
    dataset: WindowDataset,
    *,
    scaler: Scaler | None = None,
    original_units: bool = False,
    intervals: Mapping[float, torch.Tensor] | None = None,
    batch_size: int = 256,
) -> dict[str, Any]:
    """MSE, MAE, RSE, CORR over every window, and the window count.

    ``original_units=True`` takes the metrics in original units (the ``mtgnn`` protocol),
    otherwise on the scaled values (``tslib`` / ``holdout``); ``scaler`` maps between them.
    ``intervals`` (level -> conformal multiplier ``(H, N)``, see
    :mod:`tsattn.train.intervals`) adds ``coverage_<level>``, the share of true values inside
    the interval, and ``width_<level>``, its mean width in original units.
    """
    batches = forecast_windows(model, dataset, batch_size)
    return _score(batches, len(dataset), scaler, original_units, intervals)


def score_last_value(
    dataset: WindowDataset,
    *,
    scaler: Scaler | None = None,
    original_units: bool = False,
    batch_size: int = 256,
) -> dict[str, Any]:
    """:func:`score_windows` for the last observed value repeated over the horizon: the naive
    forecast a model has to beat, scored on the same windows with the same metrics.

    >>> ds = all_windows(torch.arange(12.0).reshape(6, 2), torch.zeros(6, 0),
    ...                  WindowGeometry(3, 0, 2))
    >>> {k: v for k, v in score_last_value(ds).items() if k in ("mae", "windows")}
    {'mae': 3.0, 'windows': 2}
    """
    batches = last_value_windows(dataset, batch_size)
    return _score(batches, len(dataset), scaler, original_units, None)


def _score(
    batches: Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    windows: int,
    scaler: Scaler | None,
    original_units: bool,
    intervals: Mapping[float, torch.Tensor] | None,
) -> dict[str, Any]:
    """The metrics of ``(x, pred, y)`` batches (:func:`score_windows`)."""
    if (original_units or intervals) and scaler is None:
        raise ValueError("original units and intervals need the data's scaler: pass scaler=.")
    acc = MetricAccumulator()
    inside = dict.fromkeys(intervals or {}, 0)
    width = dict.fromkeys(intervals or {}, 0.0)
    elements = 0
    for x, pred, y in batches:
        if original_units:
            acc.update(scaler.inverse_transform(pred), scaler.inverse_transform(y))
        else:
            acc.update(pred, y)
        if intervals:
            error = (pred - y).abs()  # (B, H, N), scaled units
            spread = window_scale(x)[:, None, :]  # (B, N) -> (B, 1, N)
            unit = torch.as_tensor(scaler.scale, dtype=torch.float32, device=x.device)  # (N,)
        for level, multiplier in (intervals or {}).items():
            half = multiplier[: pred.shape[1]].float().to(x.device) * spread  # (B, H, N)
            inside[level] += int((error <= half).sum())
            width[level] += float((2 * half * unit).double().sum())  # original units
        elements += y.numel()
    scores: dict[str, Any] = {**acc.compute(), "windows": windows}
    for level in intervals or {}:
        scores[f"coverage_{level:g}"] = inside[level] / max(1, elements)
        scores[f"width_{level:g}"] = width[level] / max(1, elements)
    return scores


def calibrate(model: MTGNN, dataset: WindowDataset, batch_size: int = 256) -> ConformalCalibration:
    """Conformal scores of ``model`` on the held-back windows of ``dataset`` (validation),
    thinned evenly to the size limit of :mod:`tsattn.train.intervals`."""
    values_per_window = dataset.geometry.target_length * model.config.num_nodes
    keep = min(len(dataset), ConformalCalibration.max_windows(values_per_window))
    picked = np.linspace(0, len(dataset) - 1, keep).round().astype(int).tolist()
    errors, scales = [], []
    for x, pred, y in forecast_windows(model, Subset(dataset, picked), batch_size):
        errors.append((pred - y).abs().cpu())  # (B, H, N), scaled units
        scales.append(window_scale(x).cpu())  # (B, L, N) -> (B, N)
    return ConformalCalibration.from_errors(torch.cat(errors), torch.cat(scales))
