"""Backtest arithmetic: cutoffs, refit schedule, the long frame and per-cutoff metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tsattn.data.protocols import plan_splits
from tsattn.train.backtest import (
    cutoff_metrics,
    cutoff_rows,
    long_forecasts,
    min_history_rows,
    refit_every,
)


def test_cutoffs_step_back_from_the_end_of_the_data():
    assert cutoff_rows(100, horizon=6, n_windows=3, step_size=4, min_history=50) == [86, 90, 94]
    assert cutoff_rows(100, horizon=6, n_windows=1, step_size=1, min_history=94) == [94]


def test_too_many_windows_says_how_many_fit():
    with pytest.raises(ValueError, match=r"needs 112 rows \(50 to fit .* ask for at most 12"):
        cutoff_rows(100, horizon=6, n_windows=15, step_size=4, min_history=50)
    with pytest.raises(ValueError, match="must both be >= 1"):
        cutoff_rows(100, horizon=6, n_windows=0, step_size=4, min_history=50)


def test_min_history_is_the_first_length_a_holdout_fit_accepts():
    n = min_history_rows(24, 6, 0.1, 10_000)
    plan_splits(n, 24, 6, "holdout", val_fraction=0.1, test_fraction=0.0)  # accepted
    with pytest.raises(ValueError):
        plan_splits(n - 1, 24, 6, "holdout", val_fraction=0.1, test_fraction=0.0)
    assert min_history_rows(24, 6, 0.1, 40) == 41  # too short for any fit


def test_refit_schedule():
    assert [refit_every(r) for r in (False, True, 0, 3)] == [0, 1, 0, 3]
    with pytest.raises(ValueError, match="refit=-1"):
        refit_every(-1)


def test_long_frame_and_metrics_per_cutoff():
    index = pd.date_range("2024-01-01", periods=2, freq="h")
    actual = pd.DataFrame({"a": [1.0, 2.0], "b": [0.0, 0.0]}, index=index)
    prediction = pd.DataFrame({"a": [1.5, 2.0], "b": [1.0, -1.0], "a-lo-80": [1.2, 1.0],
                               "a-hi-80": [1.8, 3.0], "b-lo-80": [0.5, -2.0],
                               "b-hi-80": [1.5, 0.5]}, index=index)  # fmt: skip
    frame = long_forecasts(index[0] - pd.Timedelta("1h"), actual, prediction, [80.0])
    assert list(frame.columns) == ["cutoff", "ds", "variable", "actual", "forecast", "lo-80",
                                   "hi-80"]  # fmt: skip
    assert list(frame["variable"]) == ["a", "a", "b", "b"]
    metrics = cutoff_metrics(frame, [80.0])
    errors = np.array([0.5, 0.0, 1.0, -1.0])
    assert metrics["mae"].item() == pytest.approx(np.abs(errors).mean())
    assert metrics["mse"].item() == pytest.approx((errors**2).mean())
    assert metrics["rmse"].item() == pytest.approx(np.sqrt((errors**2).mean()))
    assert metrics["coverage_80"].item() == pytest.approx(2 / 4)  # a twice in, b never
