"""Calendar features (Time-Series-Library timeenc=1), frequency inference, future index."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tsattn.data import future_index, infer_freq, time_features


def test_hourly_features_follow_the_timeenc1_formulas() -> None:
    index = pd.date_range("2016-07-01 05:00", periods=50, freq="h")
    got = time_features(index, "h")
    expected = np.stack([
        index.hour / 23.0 - 0.5,
        index.day_of_week / 6.0 - 0.5,
        (index.day - 1) / 30.0 - 0.5,
        (index.day_of_year - 1) / 365.0 - 0.5,
    ], axis=1)  # fmt: skip
    assert got.dtype == np.float32 and got.shape == (50, 4)
    np.testing.assert_allclose(got, expected, rtol=1e-6)


@pytest.mark.parametrize(
    ("freq", "n"),
    [("s", 6), ("min", 5), ("15min", 5), ("h", 4), ("D", 3), ("B", 3), ("W", 2), ("MS", 1),
     ("ME", 1), ("QE", 1), ("YE", 0)],
)  # fmt: skip
def test_feature_count_by_frequency_and_range(freq: str, n: int) -> None:
    index = pd.date_range("2015-01-01", periods=400, freq=freq)
    features = time_features(index)
    assert features.shape == (400, n)
    assert features.min(initial=0) >= -0.5 and features.max(initial=0) <= 0.5


def test_no_dates_gives_zero_features() -> None:
    assert time_features(pd.RangeIndex(7)).shape == (7, 0)


def test_infer_freq_regular_gappy_and_dateless() -> None:
    index = pd.date_range("2024-01-01", periods=20, freq="15min")
    assert infer_freq(index) == "15min"
    assert infer_freq(index.delete(5)) == "15min"
    assert infer_freq(index.delete(5), strict=True) is None
    assert infer_freq(pd.date_range("2024-01-01", periods=5, freq="MS")) == "MS"
    assert infer_freq(pd.RangeIndex(5)) is None


def test_future_index_continues_dates_and_steps() -> None:
    index = pd.date_range("2024-01-01", periods=10, freq="10min", name="date")
    future = future_index(index, 3)
    assert future.tolist() == list(pd.date_range("2024-01-01 01:40", periods=3, freq="10min"))
    assert future_index(pd.RangeIndex(100), 4).tolist() == [100, 101, 102, 103]
    months = future_index(pd.date_range("2024-01-01", periods=3, freq="MS"), 2)
    assert months.tolist() == [pd.Timestamp("2024-04-01"), pd.Timestamp("2024-05-01")]
    with pytest.raises(ValueError, match="horizon must be >= 1, got 0"):
        future_index(index, 0)
