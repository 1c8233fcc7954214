"""End to end on a real ETTh1 slice: tsattn.forecast, Forecaster fit/predict/evaluate/test,
save/load, plotting, isolation, determinism, and every user error with its message."""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

import tsattn
from tsattn import Forecaster

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
    return Forecaster(**TINY, test_fraction=0.2).fit(etth1.iloc[:700])


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
    a = Forecaster(**TINY, seed=1).fit(history)
    first = a.predict()
    b = Forecaster(**{**TINY, "mixer": "se"}, seed=2).fit(history)
    c = Forecaster(**TINY, seed=1).fit(history)
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
