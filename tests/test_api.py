"""End to end on a real ETTh1 slice: tsattn.forecast, Forecaster fit/predict/evaluate/test,
save/load, plotting, isolation, determinism, and every user error with its message."""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
import torch

import tsattn
from tsattn import Forecaster
from tsattn.train.trainer import build_datamodule

TINY = dict(
    seq_len=24, horizon=6, batch_size=32, max_steps=6, limit_val_batches=2, progress_bar=False,
    layers=1, conv_channels=4, residual_channels=4, skip_channels=8, end_channels=8, node_dim=4,
    top_k=3,
)  # fmt: skip


@pytest.fixture(scope="module")
def etth1(data_dir) -> pd.DataFrame:
    return tsattn.load_dataset(data_dir / "ETTh1.csv").iloc[:800]


@pytest.fixture(scope="module")
def fitted(etth1) -> Forecaster:
    # graph=True: a graph model (on 7 variables the recipe runs each on its own, without one)
    return Forecaster(**TINY, graph=True, test_fraction=0.2).fit(etth1.iloc[:700])


def test_fit_reports_finite_validation_and_test_metrics(fitted):
    for name in ("test_mse", "test_mae", "test_rse", "test_corr", "best_val_loss"):
        assert math.isfinite(fitted.metrics_[name]), name


def test_predict_returns_future_frame_in_original_units(fitted, etth1):
    future = fitted.predict()
    assert future.shape == (6, 7)
    assert list(future.columns) == list(etth1.columns)
    assert future.index.equals(
        pd.date_range(etth1.index[699] + pd.Timedelta("1h"), periods=6, freq="h")
    )
    assert future.index.freqstr == "h"
    # original units: OT is ~ 5..50 degrees, far from the standardised scale
    assert future["OT"].between(0, 60).all() and future["OT"].abs().mean() > 3
    later = fitted.predict(etth1)  # the future after new history with the same columns
    assert later.index[0] == etth1.index[-1] + pd.Timedelta("1h")
    assert fitted.predict(horizon=3).equals(future.iloc[:3])


def test_save_load_round_trip_predicts_the_same(fitted, etth1, tmp_path):
    path = fitted.save(tmp_path / "model.pt")
    loaded = Forecaster.load(path, map_location="cpu")
    pd.testing.assert_frame_equal(loaded.predict(), fitted.predict())
    pd.testing.assert_frame_equal(loaded.predict(etth1), fitted.predict(etth1))
    assert loaded.columns == fitted.columns and loaded.freq == "h"
    assert loaded.config == fitted.config
    # whether the fit kept its closed-form start travels with the file
    assert isinstance(fitted.kept_start_, bool) and loaded.kept_start_ == fitted.kept_start_


def test_evaluate_and_test_give_finite_metrics(fitted, etth1, data_dir):
    scores = fitted.evaluate(etth1.iloc[-200:])
    assert scores["windows"] == 200 - 24 - 6 + 1
    assert all(math.isfinite(scores[k]) for k in ("mse", "mae", "rse", "corr"))
    assert fitted.test(etth1.iloc[:700]) == pytest.approx(
        {
            k: v
            for k, v in fitted.metrics_.items()
            if k in ("test_mse", "test_mae", "test_rse", "test_corr")
        },
        rel=1e-5,
    )


def test_plot_returns_a_figure_with_history_forecast_and_truth(fitted, etth1):
    import matplotlib.pyplot as plt

    fig = fitted.plot(etth1.iloc[:700], truth=etth1.iloc[700:706], columns=["OT", "HUFL"])
    assert len(fig.axes) == 2
    assert [line.get_label() for line in fig.axes[0].lines] == ["history", "forecast", "truth"]
    plt.close(fig)
    fig = fitted.plot(level=[80, 95], columns=["OT"])
    bands = [c.get_label() for c in fig.axes[0].collections]
    assert bands == ["95% interval", "80% interval"]  # the widest drawn first, palest
    plt.close(fig)


def test_user_errors_are_clear(fitted, etth1):
    with pytest.raises(ValueError, match=r"missing: \['OT'\], unexpected: \['temp'\]"):
        fitted.predict(etth1.rename(columns={"OT": "temp"}))
    with pytest.raises(ValueError, match="the history has 10 rows but the model reads seq_len=24"):
        fitted.predict(etth1.iloc[:10])
    with pytest.raises(ValueError, match="horizon=12 but the model was trained for horizon=6"):
        fitted.predict(horizon=12)
    with pytest.raises(ValueError, match=r"not fitted: call fit\(data\) first"):
        Forecaster(**TINY).predict()
    with pytest.raises(ValueError, match="unknown option 'layer'"):
        Forecaster(layer=2)


def test_predict_from_several_threads_at_once_gives_each_thread_its_own_answer(fitted, etth1):
    frames = [etth1.iloc[100 * k : 100 * k + 200] * (1 + 3 * k) + 10 * k for k in range(4)]
    expected = [fitted.predict(frame) for frame in frames]
    # every thread normalises its window before any maps its forecast back: a RevIN keeping the
    # statistics on the module would hand all threads but one another thread's units
    barrier = threading.Barrier(len(frames), timeout=60)

    def wait_for_all(module, inputs) -> None:
        barrier.wait()

    hook = fitted.model.start_conv.register_forward_pre_hook(wait_for_all)
    try:
        with ThreadPoolExecutor(len(frames)) as pool:
            got = list(pool.map(fitted.predict, frames))
    finally:
        hook.remove()
    for answer, right in zip(got, expected, strict=True):
        pd.testing.assert_frame_equal(answer, right)


def test_same_seed_is_bit_identical_and_forecasters_do_not_share_state(etth1):
    history = etth1.iloc[:500]
    # the trained models, not the closed-form start (the same for every seed and mixer), which
    # the fit would keep where no epoch beats it on every part of the validation windows
    tiny = {**TINY, "keep_start": False}
    a = Forecaster(**tiny, seed=1).fit(history)
    first = a.predict()
    b = Forecaster(**{**tiny, "mixer": "se"}, seed=2).fit(history)
    c = Forecaster(**tiny, seed=1).fit(history)
    pd.testing.assert_frame_equal(a.predict(), first)  # fitting b and c left a untouched
    assert a.model is not c.model
    assert np.array_equal(c.predict().to_numpy(), first.to_numpy())  # bit-identical
    assert not np.array_equal(b.predict().to_numpy(), first.to_numpy())


def test_forecast_one_call_and_val_data(etth1):
    future = tsattn.forecast(
        etth1.iloc[:400], 6, **{k: v for k, v in TINY.items() if k != "horizon"}
    )
    assert future.shape == (6, 7) and future.index[0] == etth1.index[400]
    model = Forecaster(**TINY).fit(etth1.iloc[:400], val_data=etth1.iloc[400:500])
    assert model.predict().index[0] == etth1.index[500]
    assert math.isfinite(model.metrics_["best_val_loss"])
    with pytest.raises(ValueError, match=r"val_data starts at .* not after the end of data"):
        Forecaster(**TINY).fit(etth1.iloc[:400], val_data=etth1.iloc[300:420])


def _rows_of_split(model: Forecaster, data: pd.DataFrame, split: str) -> pd.DataFrame:
    """The rows that the windows of ``split`` read, as the model's data module splits them."""
    dm = build_datamodule(model.config.data, data)
    dm.setup()
    starts = dm.datasets[split].starts
    return data.iloc[starts.start : starts.stop - 1 + dm.plan.geometry.span]


def test_evaluate_equals_test_on_the_same_windows(fitted, etth1):
    history = etth1.iloc[:700]
    scores = fitted.evaluate(_rows_of_split(fitted, history, "test"))
    tested = fitted.test(history)
    assert scores["windows"] == fitted.window_counts_["test"]
    for name in ("mse", "mae", "rse", "corr"):
        assert scores[name] == pytest.approx(tested[f"test_{name}"], rel=1e-6), name


def test_intervals_bracket_the_forecast_and_cover_the_calibration_windows(fitted, etth1):
    future = fitted.predict(level=[95, 80])
    point = fitted.predict()
    pd.testing.assert_frame_equal(future[point.columns], point)
    assert list(future.columns[7:11]) == ["HUFL-lo-80", "HUFL-hi-80", "HUFL-lo-95", "HUFL-hi-95"]
    for name in point.columns:
        lo80, hi80 = future[f"{name}-lo-80"], future[f"{name}-hi-80"]
        lo95, hi95 = future[f"{name}-lo-95"], future[f"{name}-hi-95"]
        assert (lo95 <= lo80).all() and (lo80 < point[name]).all()
        assert (point[name] < hi80).all() and (hi80 <= hi95).all()
    # split conformal: on its own calibration windows the coverage is at least the level
    val_rows = _rows_of_split(fitted, etth1.iloc[:700], "val")
    scores = fitted.evaluate(val_rows, level=[80, 95])
    assert scores["windows"] == fitted.calibration_.windows
    assert 0.80 <= scores["coverage_80"] < 0.95 <= scores["coverage_95"]
    assert 0 < scores["width_80"] < scores["width_95"]
    # the half width is the conformal multiplier times the spread of the input, in OT's units
    width = future["OT-hi-80"] - future["OT-lo-80"]
    spread = etth1["OT"].iloc[700 - 24 : 700].std(ddof=0) + 1e-3 * fitted.scaler.scale[6]
    expected = 2 * fitted.calibration_.multiplier(80.0)[:, 6].double().numpy() * spread
    assert width.to_numpy() == pytest.approx(expected, rel=1e-4)


def test_interval_errors_say_what_to_do(fitted, etth1, tmp_path):
    for bad in (0, 100, 120, -5, [80, float("nan")]):
        with pytest.raises(ValueError, match=r"outside \(0, 100\)"):
            fitted.predict(level=bad)
    with pytest.raises(ValueError, match="is not a number"):
        fitted.predict(level=["80"])
    with pytest.raises(ValueError, match=r"level 99.9 needs at least 999 calibration windows"):
        fitted.predict(level=99.9)
    uncalibrated = Forecaster(**TINY, val_fraction=0.0).fit(etth1.iloc[:300])
    with pytest.raises(ValueError, match=r"need a calibrated model.*val_fraction > 0"):
        uncalibrated.predict(level=[80])
    # a file saved without calibration (written before intervals existed) loads, and says so
    path = fitted.save(tmp_path / "model.pt")
    payload = torch.load(path, weights_only=True)
    del payload["calibration"]
    payload["version"] = 1
    torch.save(payload, tmp_path / "old.pt")
    old = Forecaster.load(tmp_path / "old.pt")
    pd.testing.assert_frame_equal(old.predict(), fitted.predict())
    with pytest.raises(ValueError, match="need a calibrated model"):
        old.predict(level=80)
    loaded = Forecaster.load(path)
    pd.testing.assert_frame_equal(loaded.predict(level=80), fitted.predict(level=80))


def test_forecast_one_call_with_levels(etth1):
    options = {k: v for k, v in TINY.items() if k != "horizon"}
    future = tsattn.forecast(etth1.iloc[:400], 6, level=[90], **options)
    assert future.shape == (6, 21)
    assert (future["OT-lo-90"] < future["OT"]).all() and (future["OT"] < future["OT-hi-90"]).all()


def test_cross_validation_forecasts_each_cutoff_from_its_past(etth1, monkeypatch):
    data = etth1.iloc[:500]
    fits = []
    original_fit = Forecaster.fit

    def counting_fit(self, frame, *args, **kwargs):
        fits.append(len(frame))
        return original_fit(self, frame, *args, **kwargs)

    monkeypatch.setattr(Forecaster, "fit", counting_fit)
    model = Forecaster(**TINY)
    result = model.cross_validation(data, n_windows=3, step_size=4, refit=2, level=[80])
    assert model.model is None  # the Forecaster itself is left as it was
    assert fits == [500 - 6 - 8, 500 - 6]  # at window 0 and window 2, on the history up to it
    frame = result.forecasts
    assert list(frame.columns) == ["cutoff", "ds", "variable", "actual", "forecast",
                                   "lo-80", "hi-80"]  # fmt: skip
    assert len(frame) == 3 * 6 * 7
    cutoffs = sorted(frame["cutoff"].unique())
    assert cutoffs == list(data.index[[485, 489, 493]])
    last = frame[(frame["cutoff"] == cutoffs[-1]) & (frame["variable"] == "OT")]
    assert list(last["ds"]) == list(data.index[494:500])
    assert last["actual"].to_numpy() == pytest.approx(data["OT"].iloc[494:500].to_numpy())
    assert (frame["lo-80"] < frame["forecast"]).all() and (frame["forecast"] < frame["hi-80"]).all()
    metrics = result.metrics
    assert list(metrics.index) == cutoffs
    assert list(metrics.columns) == ["mae", "mse", "rmse", "coverage_80"]
    first = frame[frame["cutoff"] == cutoffs[0]]
    assert metrics["mae"].iloc[0] == pytest.approx(
        (first["forecast"] - first["actual"]).abs().mean()
    )
    assert metrics["rmse"].to_numpy() == pytest.approx(np.sqrt(metrics["mse"].to_numpy()))
    fig = result.plot(columns=["OT"])
    assert len(fig.axes) == 1 and len(fig.axes[0].lines) >= 4  # actual + 3 forecasts
    with pytest.raises(ValueError, match=r"n_windows=200 .* ask for at most \d+ windows"):
        model.cross_validation(data, n_windows=200, step_size=4)


def test_graph_names_both_axes_and_plots(fitted):
    import matplotlib.pyplot as plt

    graph = fitted.graph()
    assert list(graph.index) == list(graph.columns) == fitted.columns
    assert graph.to_numpy() == pytest.approx(fitted.model.adjacency().numpy())
    assert (graph.to_numpy() >= 0).all() and (graph.to_numpy() > 0).sum() > 0
    fig = fitted.plot_graph()
    assert fig.axes[0].get_xticklabels()[6].get_text() == "OT"
    plt.close(fig)


def test_graph_of_a_model_without_graph_is_an_error(etth1):
    model = Forecaster(**TINY, graph=False).fit(etth1.iloc[:300])
    with pytest.raises(ValueError, match="graph=False: it learns no graph"):
        model.graph()
