"""Synthetic series: shape, calendar, coupling, seasonality, and every write format."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tsattn.data import load_dataset
from tsattn.data.synthetic import generate_series, write_series


def test_shape_calendar_and_determinism() -> None:
    frame = generate_series(500, 6, freq="15min", start="2020-01-01", seed=4)
    assert frame.shape == (500, 6) and frame.index.freqstr == "15min"
    assert frame.equals(generate_series(500, 6, freq="15min", start="2020-01-01", seed=4))
    assert not frame.equals(generate_series(500, 6, freq="15min", start="2020-01-01", seed=5))
    assert isinstance(generate_series(10, 2, start=None).index, pd.RangeIndex)


def test_coupling_correlates_variables_and_seasonality_repeats() -> None:
    coupled = generate_series(3000, 8, coupling=3.0, noise=0.5, periods=(24.0,), seed=0)
    apart = generate_series(3000, 8, coupling=0.0, noise=0.5, periods=(24.0,), seed=0)
    off = ~np.eye(8, dtype=bool)
    noise_c = coupled.diff().to_numpy()[1:]
    noise_a = apart.diff().to_numpy()[1:]
    assert (
        np.abs(np.corrcoef(noise_c.T)[off]).mean() > 2 * np.abs(np.corrcoef(noise_a.T)[off]).mean()
    )
    seasonal = generate_series(2400, 1, noise=0.0, coupling=0.0, trend=0.0, periods=(24.0,))
    np.testing.assert_allclose(seasonal.iloc[24:48].to_numpy(), seasonal.iloc[:24].to_numpy())


@pytest.mark.parametrize(("fmt", "suffix"), [("csv", ".csv"), ("lstnet", ".txt"),
                                              ("lstnet", ".txt.gz"), ("long", ".csv")])  # fmt: skip
def test_every_format_round_trips_through_the_loader(tmp_path, fmt: str, suffix: str) -> None:
    frame = generate_series(120, 3, freq="D", columns=["a", "b", "OT"])
    path = write_series(frame, tmp_path / f"s{suffix}", format=fmt, float_format="%.6f")
    if fmt == "long":
        loaded = load_dataset(pd.read_csv(path))
    else:
        loaded = load_dataset(path)
    np.testing.assert_allclose(loaded.to_numpy(), frame.to_numpy(), atol=1e-6)
    if fmt != "lstnet":
        assert list(loaded.columns) == ["a", "b", "OT"] and loaded.index.equals(frame.index)
    with pytest.raises(ValueError, match=r"format must be one of \['csv', 'lstnet', 'long'\]"):
        write_series(frame, tmp_path / "x", format="parquet")
