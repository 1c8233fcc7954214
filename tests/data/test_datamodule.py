"""TimeSeriesDataModule: the contract the training code relies on, on real and generated data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.preprocessing import StandardScaler

from tsattn.data import TimeSeriesDataModule, load_dataset
from tsattn.data.synthetic import generate_series, make_like

from .test_protocols import ELECTRICITY


def _frame(n: int = 300) -> pd.DataFrame:
    return generate_series(n, 4, freq="h", seed=3)


def test_train_scaler_equals_standard_scaler_fitted_by_hand(data_dir) -> None:
    dm = TimeSeriesDataModule("ETTh1", 96, 96, root=data_dir)
    dm.setup()
    raw = load_dataset("ETTh1", root=data_dir).to_numpy()
    by_hand = StandardScaler().fit(raw[:8640])
    np.testing.assert_array_equal(dm.scaler.mean, by_hand.mean_)
    np.testing.assert_array_equal(dm.scaler.scale, by_hand.scale_)
    np.testing.assert_allclose(dm.values.numpy(), by_hand.transform(raw), rtol=1e-5, atol=1e-5)
    _, y, m, step = dm.datasets["test"][0]  # first test target row is row 11520
    np.testing.assert_allclose(y[0].numpy(), by_hand.transform(raw[11520:11521])[0], rtol=1e-5)
    assert m.shape == (96, 4) and dm.n_time_features == 4 and dm.freq == "h"
    # The window starts at row 11520 - 96; its grid position modulo 24 is its hour of the day.
    assert int(step) % 24 == dm.frame.index[11520 - 96].hour


def test_inverse_transform_returns_original_units_for_numpy_and_torch(data_dir) -> None:
    dm = TimeSeriesDataModule("ETTh1", 96, 24, root=data_dir)
    dm.setup()
    _, y, *_ = dm.test_dataloader().dataset.__getitems__([0, 1])
    back = dm.scaler.inverse_transform(y)  # (2, 24, 7) torch
    assert isinstance(back, torch.Tensor) and back.dtype == torch.float32
    np.testing.assert_allclose(back[0].numpy(), dm.frame.to_numpy()[11520:11544], rtol=1e-5)
    raw = dm.frame.to_numpy()[:5]
    np.testing.assert_allclose(dm.scaler.inverse_transform(dm.scaler.transform(raw)), raw)


def test_mtgnn_legacy_maxabs_scaling_uses_the_whole_series(data_dir) -> None:
    dm = TimeSeriesDataModule("exchange_rate", 168, 3, root=data_dir, scaling="maxabs_legacy")
    dm.setup()
    raw = dm.frame.to_numpy()
    np.testing.assert_array_equal(dm.scaler.scale, np.abs(raw).max(axis=0))
    x, y, *_ = dm.datasets["train"][0]  # target row P + h - 1 = 170, inputs rows 0..167
    np.testing.assert_allclose(y[0].numpy(), raw[170] / np.abs(raw).max(axis=0), rtol=1e-6)
    np.testing.assert_allclose(x[-1].numpy(), raw[167] / np.abs(raw).max(axis=0), rtol=1e-6)
    assert dm.n_time_features == 0 and dm.freq == "D"  # no dates; the registry knows the step
    none = TimeSeriesDataModule("exchange_rate", 168, 3, root=data_dir, scaling="none")
    none.setup()
    np.testing.assert_allclose(none.values.numpy(), raw.astype(np.float32))


def test_batches_shapes_order_and_no_dropped_eval_batches() -> None:
    dm = TimeSeriesDataModule(_frame(), 24, 12, batch_size=16, eval_batch_size=7,
                              drop_last_train=True)  # fmt: skip
    dm.setup()
    dm.setup("fit")  # idempotent
    counts = dm.window_counts
    assert counts == {"train": 210 - 36 + 1, "val": 30 - 11, "test": 60 - 11}
    assert dm.protocol == "holdout" and dm.output_length == 12 and dm.num_nodes == 4
    assert dm.columns == ["0", "1", "2", "3"]
    for loader, split in ((dm.val_dataloader(), "val"), (dm.test_dataloader(), "test"),
                          (dm.predict_dataloader(), "test")):  # fmt: skip
        batches = list(loader)
        assert len(batches) == math.ceil(counts[split] / 7)
        assert sum(b[0].shape[0] for b in batches) == counts[split]
        assert torch.equal(batches[0][1][0], dm.datasets[split][0][1])  # not shuffled
    train = list(dm.train_dataloader())
    assert len(train) == counts["train"] // 16
    x, y, m, step = train[0]
    assert (x.shape, y.shape, m.shape) == ((16, 24, 4), (16, 12, 4), (16, 24, 4))
    assert step.shape == (16,) and step.dtype == torch.int64
    assert x.dtype == y.dtype == m.dtype == torch.float32


def test_holdout_without_val_or_test_and_without_time_features() -> None:
    dm = TimeSeriesDataModule(_frame(), 24, 12, val_fraction=0.0, test_fraction=0.0,
                              use_time_features=False)  # fmt: skip
    dm.setup()
    assert dm.window_counts == {"train": 300 - 36 + 1, "val": 0, "test": 0}
    assert list(dm.val_dataloader()) == [] and dm.n_time_features == 0
    assert next(iter(dm.train_dataloader()))[2].shape == (32, 24, 0)


def test_long_frames_and_csv_paths_and_load_kwargs(tmp_path) -> None:
    frame = _frame(200)
    long = frame.rename_axis("ds").reset_index().melt(id_vars="ds", var_name="unique_id",
                                                      value_name="y")  # fmt: skip
    dm = TimeSeriesDataModule(long[["unique_id", "ds", "y"]], 24, 6)
    dm.setup()
    np.testing.assert_allclose(dm.frame.to_numpy(), frame.to_numpy())
    text = tmp_path / "series.txt"
    text.write_text("\n".join(",".join(map(str, row)) for row in frame.to_numpy()) + "\n")
    dm = TimeSeriesDataModule(text, 24, 6, start="2024-01-01", freq="h", protocol="tslib")
    dm.setup()
    assert dm.freq == "h" and dm.n_time_features == 4 and dm.protocol == "tslib"
    assert dm.window_counts["train"] == int(0.7 * 200) - 30 + 1
    window = dm.last_window()
    assert window[0].shape == (1, 24, 4) and window[1].shape == (1, 24, 4)
    assert window[2].tolist() == [int(dm.steps[200 - 24])]
    assert dm.target_index("test")[0] == dm.frame.index[200 - int(0.2 * 200)]


def test_bad_arguments_are_named() -> None:
    with pytest.raises(
        ValueError, match=r"protocol must be one of \['tslib', 'mtgnn', 'holdout', "
    ):
        TimeSeriesDataModule(_frame(), 24, 6, protocol="etth")
    with pytest.raises(ValueError, match=r"scaling must be one of \['standard', 'maxabs_legacy'"):
        TimeSeriesDataModule(_frame(), 24, 6, scaling="minmax")
    with pytest.raises(RuntimeError, match=r"call setup\(\) before using the data module"):
        TimeSeriesDataModule(_frame(), 24, 6).window_counts  # noqa: B018


@pytest.mark.parametrize("horizon", [96, 192, 336, 720])
def test_generated_electricity_file_gives_table_counts(electricity_dir, horizon: int) -> None:
    dm = TimeSeriesDataModule("electricity", 96, horizon, root=electricity_dir)
    dm.setup()
    assert dm.protocol == "tslib" and dm.num_nodes == 321 and dm.columns[-1] == "OT"
    assert tuple(dm.window_counts.values()) == ELECTRICITY[horizon]


def test_traffic_and_solar_formats_at_real_width(tmp_path) -> None:
    # Full-length traffic (15M values) is slow to write; full width with fewer rows exercises
    # the same parser, and the registered loader's shape check names the real shape.
    traffic = make_like("traffic", tmp_path / "traffic.csv", n_rows=300)
    assert traffic.read_text().splitlines()[0].endswith(",859,860,OT")
    frame = load_dataset(traffic)
    assert frame.shape == (300, 862) and isinstance(frame.index, pd.DatetimeIndex)
    with pytest.raises(
        ValueError,
        match=r"expected 17544 rows x 862 variables for 'traffic', "
        r"found 300 x 862\. The file is not the public benchmark file",
    ):
        load_dataset("traffic", root=tmp_path)
    solar = make_like("solar_AL", tmp_path / "solar_AL.txt", n_rows=500)
    assert load_dataset(solar).shape == (500, 137)
    dm = TimeSeriesDataModule(solar, 168, 3, protocol="mtgnn")
    dm.setup()
    assert dm.window_counts == {"train": 300 - 168 - 3 + 1, "val": 100, "test": 100}


@pytest.fixture
def dateless(monkeypatch, tmp_path):
    """A registered LSTNet file (no header, no dates) whose step the registry knows, in a
    folder of its own."""
    from tsattn.data import DatasetSpec, register_dataset
    from tsattn.data.registry import _SPECS
    from tsattn.data.synthetic import write_series

    monkeypatch.delenv("TSATTN_DATA_DIR", raising=False)
    spec = DatasetSpec("dateless_toy", "dateless_toy.txt", "file:///nowhere/dateless_toy.txt",
                       None, "10min", "lstnet", "mtgnn", "ratio", (600, 3))  # fmt: skip
    register_dataset(spec, overwrite=True)
    path = write_series(generate_series(600, 3, freq="10min"), tmp_path / spec.filename,
                        format="lstnet")  # fmt: skip
    yield path
    _SPECS.pop(spec.name, None)


def test_a_registered_file_without_dates_reports_the_registry_step(dateless) -> None:
    """solar_AL and exchange_rate come without dates; their step is known all the same, and
    the recipe's cycle (``model.cycle_length="auto"``) needs it. The series stays one without a
    calendar: integer steps, no calendar marks. An unregistered path has no known step."""
    dm = TimeSeriesDataModule("dateless_toy", 96, 24, protocol="tslib", root=dateless.parent)
    dm.setup()
    assert dm.freq == "10min"
    assert isinstance(dm.frame.index, pd.RangeIndex) and dm.n_time_features == 0
    assert dm.steps.tolist() == list(range(600))
    by_path = TimeSeriesDataModule(dateless, 96, 24, protocol="tslib")
    by_path.setup()
    assert by_path.freq is None
    assert torch.equal(by_path.values, dm.values) and torch.equal(by_path.steps, dm.steps)
    dated = TimeSeriesDataModule(_frame(), 24, 6)
    dated.setup()
    assert dated.freq == "h"
