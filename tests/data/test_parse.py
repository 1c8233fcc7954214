"""Parsing: wide CSVs, Latin-1 headers, LSTNet text, long and wide DataFrames."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from tsattn.data import load_dataset
from tsattn.data.parse import from_long, read_lstnet


def test_real_ett_and_weather_files_parse_with_dates(data_dir) -> None:
    ett = load_dataset("ETTh1", root=data_dir)
    assert ett.shape == (17420, 7) and list(ett.columns)[-1] == "OT"
    assert isinstance(ett.index, pd.DatetimeIndex) and ett.index[0] == pd.Timestamp("2016-07-01")
    assert ett.dtypes.eq(np.float64).all()
    assert ett["OT"].iloc[0] == pytest.approx(30.5310001373291)
    weather = load_dataset("weather", root=data_dir)
    assert weather.shape == (52696, 21) and weather.columns[16].startswith("SWDR (W/m")
    assert weather.columns[0] == "p (mbar)" and weather.columns[-1] == "OT"


def test_latin1_header_is_read_without_error(tmp_path) -> None:
    path = tmp_path / "w.csv"
    path.write_bytes("date,SWDR (W/m²),T (°C)\n2020-01-01 00:10:00,1.0,2.0\n"
                     "2020-01-01 00:20:00,3.0,4.0\n".encode("latin-1"))  # fmt: skip
    frame = load_dataset(path)
    assert list(frame.columns) == ["SWDR (W/m²)", "T (°C)"] and frame.shape == (2, 2)


def test_lstnet_text_gets_step_index_or_a_calendar(data_dir, tmp_path) -> None:
    rates = load_dataset("exchange_rate", root=data_dir)
    assert rates.shape == (7588, 8) and isinstance(rates.index, pd.RangeIndex)
    assert list(rates.columns) == [str(i) for i in range(8)]
    assert rates.iloc[0, 0] == pytest.approx(0.7855)
    dated = load_dataset("exchange_rate", root=data_dir, start="1990-01-01", freq="D")
    assert dated.index[-1] == pd.Timestamp("1990-01-01") + pd.Timedelta(days=7587)
    gz = tmp_path / "small.txt.gz"
    gz.write_bytes(gzip.compress(b"1,2\n3,4\n5,6\n"))
    assert load_dataset(gz).to_numpy().tolist() == [[1, 2], [3, 4], [5, 6]]
    with pytest.raises(ValueError, match=r"give both start= and freq= to build a calendar"):
        read_lstnet(gz, start="2020-01-01")


def test_long_frames_pivot_to_wide_and_report_gaps_and_duplicates() -> None:
    ds = pd.date_range("2024-01-01", periods=4, freq="D")
    long = pd.DataFrame({"unique_id": ["b"] * 4 + ["a"] * 4, "ds": list(ds) * 2,
                         "y": np.arange(8.0)})  # fmt: skip
    wide = load_dataset(long)
    assert list(wide.columns) == ["b", "a"] and wide["a"].tolist() == [4, 5, 6, 7]
    assert isinstance(wide.index, pd.DatetimeIndex)
    with pytest.raises(ValueError, match=r"column 'a' holds NaN at row 2 \(2024-01-03 00:00:00\)"):
        load_dataset(long.drop(index=6))
    with pytest.raises(ValueError, match=r"series 'b' has more than one value at ds="):
        from_long(pd.concat([long, long.iloc[:1]]))


def test_wide_frames_with_index_or_date_column_or_no_dates() -> None:
    values = np.arange(6.0).reshape(3, 2)
    by_index = pd.DataFrame(values, columns=["x", "y"],
                            index=pd.date_range("2024", periods=3, freq="h"))  # fmt: skip
    assert isinstance(load_dataset(by_index).index, pd.DatetimeIndex)
    by_column = by_index.reset_index(names="timestamp")
    assert load_dataset(by_column).index.equals(by_index.index.rename("date"))
    plain = pd.DataFrame(values, columns=[0, 1])
    frame = load_dataset(plain)
    assert list(frame.columns) == ["0", "1"] and isinstance(frame.index, pd.RangeIndex)
    with pytest.raises(ValueError, match=r"column 'when' does not hold dates: row 1 has 'soon'"):
        load_dataset(pd.DataFrame({"when": ["2024-01-01", "soon"], "v": [1.0, 2.0]}),
                     date_column="when")  # fmt: skip


def test_missing_file_and_shape_mismatch(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.csv is neither a file nor a registered "):
        load_dataset(tmp_path / "nope.csv")
