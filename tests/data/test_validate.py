"""Validation errors name the column, row and timestamp, and say what to do."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tsattn.data import TimeSeriesDataModule, load_dataset
from tsattn.data.validate import check_enough_rows, validate_frame


def _frame(n: int = 10, freq: str = "h") -> pd.DataFrame:
    index = pd.date_range("2024-01-01", periods=n, freq=freq, name="date")
    return pd.DataFrame({"a": np.arange(n, dtype=float), "b": np.arange(n) * 2.0}, index=index)


def test_non_numeric_column_is_named_with_row_and_value_unless_dropped() -> None:
    frame = _frame().assign(label=["x"] * 10)
    with pytest.raises(
        ValueError,
        match=r"column 'label' is not numeric \(dtype str\): row 0 "
        r"\(2024-01-01 00:00:00\) holds 'x'\. Drop it with drop_columns=\['label'\]",
    ):
        validate_frame(frame)
    assert list(validate_frame(frame, drop_columns=["label"]).columns) == ["a", "b"]
    with pytest.raises(ValueError, match=r"drop_columns names \['nope'\], which are not columns"):
        validate_frame(frame, drop_columns=["nope"])


def test_nan_and_inf_are_errors_naming_column_row_and_timestamp() -> None:
    frame = _frame()
    frame.loc[frame.index[3], "b"] = np.nan
    frame.loc[frame.index[5], "a"] = np.inf
    with pytest.raises(
        ValueError,
        match=r"column 'b' holds NaN at row 3 \(2024-01-01 03:00:00\); "
        r"2 non-finite values in total, in column\(s\) \['a', 'b'\]\. Pass fill=",
    ):
        validate_frame(frame)
    inf_only = _frame()
    inf_only.iloc[7, 0] = -np.inf
    with pytest.raises(ValueError, match=r"column 'a' holds inf at row 7 \(2024-01-01 07:00:00\)"):
        validate_frame(inf_only)


def test_fill_options_fill_explicitly() -> None:
    frame = _frame()
    frame.iloc[0, 0] = np.nan
    frame.iloc[4, 0] = np.inf
    assert validate_frame(frame, fill="ffill")["a"].tolist()[:6] == [1, 1, 2, 3, 3, 5]
    assert validate_frame(frame, fill="interpolate")["a"].tolist()[:6] == [1, 1, 2, 3, 4, 5]
    assert validate_frame(frame, fill="zero")["a"].tolist()[:6] == [0, 1, 2, 3, 0, 5]
    with pytest.raises(ValueError, match=r"fill must be one of \['ffill', 'interpolate', 'zero'\]"):
        validate_frame(frame, fill="mean")


def test_duplicated_unsorted_and_irregular_timestamps_are_located() -> None:
    frame = _frame()
    dup = frame.iloc[[0, 1, 2, 2, 3]]
    with pytest.raises(
        ValueError,
        match=r"timestamp 2024-01-01 02:00:00 appears 2 times "
        r"\(rows \[2, 3\]\); 1 duplicated timestamps in total",
    ):
        validate_frame(dup)
    unsorted = frame.iloc[[0, 1, 3, 2, 4]]
    with pytest.raises(
        ValueError,
        match=r"timestamps are not sorted: row 3 \(2024-01-01 "
        r"02:00:00\) comes after row 2 \(2024-01-01 03:00:00\)\. Pass sort=True",
    ):
        validate_frame(unsorted)
    assert validate_frame(unsorted, sort=True).index.is_monotonic_increasing
    gappy = frame.drop(frame.index[[4, 7]])
    with pytest.raises(
        ValueError,
        match=r"irregular spacing: the usual step is 0 days 01:00:00, "
        r"but 2 step\(s\) differ: row 3 \(2024-01-01 03:00:00\) -> row 4 "
        r"\(2024-01-01 05:00:00\): 0 days 02:00:00.*does not resample silently",
    ):
        validate_frame(gappy)
    assert len(validate_frame(gappy, allow_irregular=True)) == 8


def test_monthly_and_weekly_calendars_count_as_regular() -> None:
    for freq in ("MS", "W-SUN", "B"):
        assert len(validate_frame(_frame(30, freq))) == 30


def test_zero_variables_and_constant_columns() -> None:
    with pytest.raises(ValueError, match="no variables: the data has no numeric value columns"):
        validate_frame(_frame()[[]])
    with pytest.raises(ValueError, match="no variables"):
        load_dataset(pd.DataFrame({"date": pd.date_range("2024", periods=3, freq="D")}))
    frame = _frame().assign(c=5.0)
    with pytest.warns(UserWarning, match=r"constant column\(s\) \['c'\]: .*scale is set to 1"):
        validate_frame(frame)
    with pytest.warns(UserWarning, match="constant column"):
        dm = TimeSeriesDataModule(_frame(200).assign(c=5.0), 24, 6)
        dm.setup()
    assert dm.scaler.scale[2] == 1.0 and np.isfinite(dm.values.numpy()).all()
    assert (dm.values[:, 2] == 0).all()


def test_too_few_rows_says_how_many_are_needed() -> None:
    with pytest.raises(
        ValueError,
        match=r"50 rows is too short for seq_len=96 \+ horizon=24: "
        r"one window needs at least 120 rows",
    ):
        check_enough_rows(50, 96, 24)
    dm = TimeSeriesDataModule(_frame(50), seq_len=96, horizon=24)
    with pytest.raises(ValueError, match=r"data: 50 rows is too short .* at least 120 rows"):
        dm.setup()
    dm = TimeSeriesDataModule(_frame(150), seq_len=96, horizon=24)
    with pytest.raises(
        ValueError,
        match=r"data: the train split \(rows 0\.\.105, 105 rows\) holds no "
        r"window of seq_len=96 and horizon=24 under the 'holdout' protocol: it "
        r"needs 120 rows, 15 more\. 150 rows in total",
    ):
        dm.setup()
