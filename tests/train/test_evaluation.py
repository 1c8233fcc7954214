"""The naive forecast's scores (``score_last_value``) against the same formula in numpy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from tsattn.data.datamodule import TimeSeriesDataModule
from tsattn.data.protocols import WindowGeometry
from tsattn.train.evaluation import all_windows, score_last_value, score_windows


def _persistence_numpy(values: np.ndarray, seq_len: int, horizon: int) -> tuple[float, float]:
    """MSE / MAE of the last input row repeated over every target row, all windows, stride 1."""
    errors = [
        values[s + seq_len : s + seq_len + horizon] - values[s + seq_len - 1]
        for s in range(len(values) - seq_len - horizon + 1)
    ]
    err = np.stack(errors)  # (windows, H, N)
    return float((err**2).mean()), float(np.abs(err).mean())


def test_last_value_scores_match_numpy_over_every_window_and_batch():
    values = torch.randn(61, 3).cumsum(0)
    ds = all_windows(values, torch.zeros(61, 0), WindowGeometry(8, 0, 5))
    scores = score_last_value(ds, batch_size=7)  # batches of 7 windows: the last is partial
    mse, mae = _persistence_numpy(values.double().numpy(), 8, 5)
    assert scores["windows"] == 61 - 8 - 5 + 1
    assert scores["mse"] == pytest.approx(mse, rel=1e-6)
    assert scores["mae"] == pytest.approx(mae, rel=1e-6)
    assert set(scores) == {"mse", "mae", "rse", "corr", "windows"}


def test_last_value_scores_take_original_units_like_the_model_scores():
    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(200, 2)).cumsum(0) * 10 + 50)
    dm = TimeSeriesDataModule(frame, 12, 4, protocol="holdout", use_time_features=False)
    dm.setup()
    test = dm.datasets["test"]
    scaled = score_last_value(test)
    original = score_last_value(test, scaler=dm.scaler, original_units=True)
    # standard scaling divides every error by its column's std: MSE by its square on average
    scale = np.asarray(dm.scaler.scale)
    assert original["mae"] > scaled["mae"] * scale.min() * 0.99
    assert original["mae"] < scaled["mae"] * scale.max() * 1.01
    with pytest.raises(ValueError, match="scaler"):
        score_last_value(test, original_units=True)


def test_score_windows_and_score_last_value_agree_on_a_model_that_repeats_the_last_value():
    class LastValue(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.anchor = torch.nn.Parameter(torch.zeros(1))  # a device to read
            self.config = type("Config", (), {"time_features": 0})()

        def forward(self, x, marks, step):
            return x[:, -1:, :].expand(-1, 5, -1) + self.anchor

    values = torch.randn(40, 2)
    ds = all_windows(values, torch.zeros(40, 0), WindowGeometry(6, 0, 5))
    assert score_windows(LastValue(), ds) == score_last_value(ds)
