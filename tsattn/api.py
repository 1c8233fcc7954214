"""One-call forecasting: :func:`forecast` and the :class:`Forecaster` behind it.

``data`` is anything :func:`tsattn.load_dataset` takes: a wide DataFrame (DatetimeIndex or a
date column, one numeric column per variable), a long DataFrame (``unique_id``, ``ds``, ``y``),
a CSV path or a registered dataset name. Forecasts come back as a DataFrame with the future
timestamps (inferred frequency) as index and one column per variable, in original units.

>>> import numpy as np, pandas as pd
>>> idx = pd.date_range("2024-01-01", periods=400, freq="h")
>>> df = pd.DataFrame({"a": np.sin(np.arange(400) / 8), "b": np.cos(np.arange(400) / 8)}, index=idx)
>>> model = Forecaster(seq_len=48, horizon=12, max_steps=2, progress_bar=False, layers=1)
>>> future = model.fit(df).predict()
>>> future.shape, str(future.index[0])
((12, 2), '2024-01-17 16:00:00')
"""

from __future__ import annotations

import copy
import math
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd
import torch

from tsattn.data import (
    TimeSeriesDataModule,
    future_index,
    grid_steps,
    load_dataset,
    time_features,
)
from tsattn.data.protocols import WindowGeometry
from tsattn.data.scaling import Scaler
from tsattn.models.mtgnn import MTGNN, MTGNNConfig
from tsattn.train.backtest import (
    cutoff_metrics,
    cutoff_rows,
    long_forecasts,
    min_history_rows,
    refit_every,
)
from tsattn.train.checkpoint import load_checkpoint
from tsattn.train.config import DataConfig, RunConfig, TrainConfig, split_options
from tsattn.train.evaluation import all_windows, calibrate, score_windows
from tsattn.train.intervals import (
    ConformalCalibration,
    check_levels,
    interval_columns,
    window_scale,
)
from tsattn.train.recipe import GRAPH_FROM
from tsattn.train.trainer import TrainResult, build_datamodule, fit_config, scaler_affine

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["FORECAST_DEFAULTS", "Backtest", "Forecaster", "forecast"]

FILE_FORMAT = "tsattn-forecaster"
FILE_VERSION = 2  # 2: float64 scaler, conformal calibration; version 1 files still load

# Defaults of :func:`forecast`: a small model (64k parameters for 7 variables) and at most 300
# optimiser steps, so that an ETTh1-sized frame (17420 x 7) is fitted and forecast in under a
# minute on a CPU (measured: see the README). Raise max_steps / the widths for better accuracy.
FORECAST_DEFAULTS: dict[str, Any] = dict(
    protocol="holdout",  # learn from the whole history, registered benchmarks included
    seq_len=96,
    layers=2,
    conv_channels=8,
    residual_channels=8,
    skip_channels=16,
    end_channels=32,
    node_dim=8,
    batch_size=32,
    max_epochs=100,
    max_steps=300,
    limit_val_batches=10,
    lr=3e-3,
    lr_schedule="none",
    patience=0,
)


def forecast(
    data: Any, horizon: int, *, level: Iterable[float] | None = None, **options: Any
) -> pd.DataFrame:
    """Fit on the whole history of ``data`` and return the next ``horizon`` steps.

    ``options`` are :class:`Forecaster` options on top of :data:`FORECAST_DEFAULTS`
    (e.g. ``mixer="eca"``, ``max_steps=1000``, ``progress_bar=False``). ``level`` (percents,
    e.g. ``[80, 95]``) adds prediction intervals: see :meth:`Forecaster.predict`.

    >>> import numpy as np, pandas as pd
    >>> df = pd.DataFrame({"x": np.sin(np.arange(300) / 5)},
    ...                   index=pd.date_range("2024-01-01", periods=300, freq="D"))
    >>> forecast(df, 7, seq_len=32, max_steps=2, progress_bar=False).shape
    (7, 1)
    """
    model = Forecaster(horizon=horizon, **{**FORECAST_DEFAULTS, **options}).fit(data)
    return model.predict(level=level)


def _index_to_payload(index: pd.Index) -> dict[str, Any]:
    if isinstance(index, pd.DatetimeIndex):
        return {
            "kind": "datetime",
            "ticks": torch.from_numpy(index.asi8.copy()),
            "unit": index.unit,
            "tz": None if index.tz is None else str(index.tz),
            "name": index.name,
        }
    values = torch.as_tensor(np.asarray(index, dtype=np.int64))
    return {"kind": "steps", "values": values, "name": index.name}


def _index_from_payload(payload: Mapping[str, Any]) -> pd.Index:
    if payload["kind"] == "datetime":
        ticks = payload["ticks"].numpy().astype(f"datetime64[{payload['unit']}]")
        index = pd.DatetimeIndex(ticks, name=payload["name"])
        return index.tz_localize("UTC").tz_convert(payload["tz"]) if payload["tz"] else index
    values = payload["values"].numpy()
    steps = np.diff(values)
    if len(values) > 1 and steps[0] > 0 and np.all(steps == steps[0]):
        return pd.RangeIndex(values[0], values[-1] + 1, steps[0], name=payload["name"])
    return pd.Index(values, name=payload["name"])


class Backtest(NamedTuple):
    """What :meth:`Forecaster.cross_validation` returns.

    ``forecasts``: one row per cutoff, forecast step and variable, with the columns
    ``cutoff`` (the last timestamp the model saw), ``ds`` (the forecast timestamp),
    ``variable``, ``actual``, ``forecast`` and, when levels were asked, ``lo-<level>`` and
    ``hi-<level>``; values in original units. ``metrics``: one row per cutoff with ``mae``,
    ``mse``, ``rmse`` over its steps and variables (original units) and ``coverage_<level>``.
    """

    forecasts: pd.DataFrame
    metrics: pd.DataFrame

    def plot(self, columns: list[str] | None = None) -> Figure:
        """Actual series and each cutoff's forecast, one panel per variable (first 6)."""
        from tsattn.plotting import plot_backtest

        levels = [float(c[3:]) for c in self.forecasts.columns if c.startswith("lo-")]
        return plot_backtest(self.forecasts, columns=columns, levels=levels)


class Forecaster:
    """Train an MTGNN forecaster on a series and forecast its future.

    ``options`` are the fields of :class:`~tsattn.train.config.DataConfig` (``seq_len``,
    ``horizon``, ``protocol``, ``val_fraction``, ``scaling``, ``batch_size``, ...),
    :class:`~tsattn.train.config.TrainConfig` (``max_epochs``, ``max_steps``, ``lr``, ``loss``,
    ``seed``, ``accelerator``, ``precision``, ``progress_bar``, ...) and
    :class:`~tsattn.models.mtgnn.MTGNNConfig` (``mixer``, ``layers``, ``fusion``, ...), given
    flat. Unlike the benchmark default, ``test_fraction`` defaults to 0 here: the model learns
    from the whole history except the validation tail. The validation windows also calibrate
    the prediction intervals (:mod:`tsattn.train.intervals`).

    >>> Forecaster(horizon=24, mixer="eca").config.model
    {'mixer': 'eca'}
    """

    def __init__(self, **options: Any) -> None:
        data, model, train = split_options({"test_fraction": 0.0, **options})
        self.config = RunConfig(data=DataConfig(**data), model=model, train=TrainConfig(**train))
        self.model: MTGNN | None = None
        self.metrics_: dict[str, float] = {}
        self.epoch_seconds_: list[float] = []
        #: after ``fit``: ``True`` when no epoch beat the closed-form start, which is then the
        #: model (``train.keep_start``); ``None`` for a file saved without the record.
        self.kept_start_: bool | None = None
        self.calibration_: ConformalCalibration | None = None

    @classmethod
    def from_config(cls, config: RunConfig) -> Forecaster:
        """A Forecaster for a :class:`~tsattn.train.config.RunConfig` (as the CLI builds)."""
        forecaster = cls()
        forecaster.config = copy.deepcopy(config)
        return forecaster

    # ------------------------------------------------------------------ fitting
    def _datamodule(self, data: Any, val_data: Any = None) -> TimeSeriesDataModule:
        if val_data is None:
            return build_datamodule(self.config.data, data)
        joined = self._join_validation(load_dataset(data), load_dataset(val_data))
        # int(fraction * n) must give exactly len(val_data) rows: aim half a row above.
        return build_datamodule(
            self.config.data,
            joined,
            protocol="holdout",
            val_fraction=(self._n_val + 0.5) / len(joined),
            test_fraction=0.0,
        )

    def _join_validation(self, history: pd.DataFrame, val: pd.DataFrame) -> pd.DataFrame:
        if list(val.columns) != list(history.columns):
            raise ValueError(
                f"val_data has columns {list(val.columns)} but data has {list(history.columns)}: "
                "pass the same variables in the same order."
            )
        if isinstance(history.index, pd.DatetimeIndex) and not val.index[0] > history.index[-1]:
            raise ValueError(
                f"val_data starts at {val.index[0]}, not after the end of data "
                f"({history.index[-1]}): validation data must follow the training history."
            )
        self._n_val = len(val)
        joined = pd.concat([history, val])
        if not isinstance(history.index, pd.DatetimeIndex):
            joined = joined.reset_index(drop=True)
        return joined

    def fit(
        self,
        data: Any,
        val_data: Any = None,
        *,
        run_dir: str | Path | None = None,
        ckpt_path: str | None = None,
    ) -> Forecaster:
        """Train on ``data`` (validation on its last ``val_fraction``, or on ``val_data``).

        ``val_data``, when given, must continue ``data`` in time (same columns); it replaces
        the validation tail. ``run_dir`` keeps checkpoints and logs there (a temporary folder
        otherwise); ``ckpt_path`` (``"last"`` or a file) resumes a killed fit in ``run_dir``.
        Test metrics, when the protocol has a test split, land in ``metrics_``. The
        validation windows then calibrate the prediction intervals.
        """
        dm = self._datamodule(data, val_data)
        with tempfile.TemporaryDirectory(prefix="tsattn-") as scratch:
            result = fit_config(self.config, dm, run_dir or scratch, ckpt_path=ckpt_path)
            self._adopt(result, dm)
        return self

    def _adopt(self, result: TrainResult, dm: TimeSeriesDataModule) -> None:
        module = result.module.cpu().eval()
        self.model = module.model
        self.result_ = result
        self.metrics_ = dict(result.metrics)
        self.epoch_seconds_ = list(result.epoch_seconds)
        self.kept_start_ = result.kept_start
        self.window_counts_: dict[str, int] = dict(dm.window_counts)
        self.columns: list[str] = list(dm.columns)
        self.freq: str | None = dm.freq
        self.protocol: str = dm.protocol
        self.output_length: int = dm.output_length
        loc, scale = scaler_affine(dm.scaler, dm.num_nodes)
        self.scaler = Scaler(self.config.data.scaling, np.asarray(loc), np.asarray(scale))
        self.history_ = dm.frame.iloc[-dm.seq_len :].copy()
        has_val = self.window_counts_.get("val", 0) > 0
        self.calibration_ = calibrate(self.model, dm.datasets["val"]) if has_val else None

    # ---------------------------------------------------------------- inference
    def _require_fitted(self) -> MTGNN:
        if self.model is None:
            raise ValueError(
                "this Forecaster is not fitted: call fit(data) first, or Forecaster.load(path)."
            )
        return self.model

    def _frame(self, data: Any) -> pd.DataFrame:
        frame = load_dataset(data)
        if [str(c) for c in frame.columns] != self.columns:
            missing = [c for c in self.columns if c not in map(str, frame.columns)]
            extra = [str(c) for c in frame.columns if str(c) not in self.columns]
            if missing or extra:
                raise ValueError(
                    f"data has columns {[str(c) for c in frame.columns]} but the model was "
                    f"trained on {self.columns} (missing: {missing}, unexpected: {extra}): "
                    "pass the same variables."
                )
            frame = frame[self.columns]  # same variables, matched by name
        return frame

    def _inputs(self, frame: pd.DataFrame) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Scaled values ``(T, N)``, calendar marks ``(T, F)`` (``F`` may be 0) and grid
        positions ``(T,)`` of a frame."""
        model = self._require_fitted()
        scaled = self.scaler.transform(frame.to_numpy(dtype=np.float64))  # (T, N), float64
        values = torch.from_numpy(scaled.astype(np.float32))  # (T, N)
        steps = torch.from_numpy(grid_steps(frame.index, self.freq))  # (T,) int64
        n_marks = model.config.time_features
        if not n_marks:
            return values, torch.zeros(len(frame), 0), steps
        marks = torch.from_numpy(time_features(frame.index, self.freq))  # (T, F)
        if marks.shape[1] != n_marks:
            raise ValueError(
                f"the model was trained with {n_marks} calendar features but this data gives "
                f"{marks.shape[1]} (index type {type(frame.index).__name__}): pass data with "
                f"the same kind of timestamps (frequency {self.freq!r})."
            )
        return values, marks, steps

    def _check_history(self, rows: int) -> None:
        seq_len = self._require_fitted().config.seq_len
        if rows < seq_len:
            raise ValueError(
                f"the history has {rows} rows but the model reads seq_len={seq_len} rows: "
                f"pass at least {seq_len} rows of history."
            )

    def _geometry(self) -> WindowGeometry:
        seq_len, out_len = self._require_fitted().config.seq_len, self.output_length
        gap = self.config.data.horizon - 1 if out_len == 1 else 0
        return WindowGeometry(seq_len, gap, out_len)

    def _half_widths(self, level: Iterable[float] | float | None) -> dict[float, torch.Tensor]:
        """Level -> conformal multiplier ``(H, N)`` of the input spread; ``{}`` for no level."""
        if level is None:
            return {}
        levels = check_levels(level)
        if self.calibration_ is None:
            raise ValueError(
                "prediction intervals need a calibrated model, and this one has none (it was "
                "fitted without validation windows, val_fraction=0, or saved by a tsattn "
                "version without intervals): fit it again with val_fraction > 0 or val_data."
            )
        return {lv: self.calibration_.multiplier(lv) for lv in levels}

    def predict(
        self,
        data: Any = None,
        horizon: int | None = None,
        *,
        level: Iterable[float] | float | None = None,
    ) -> pd.DataFrame:
        """Forecast the steps after ``data`` (default: after the history given to ``fit``).

        ``horizon`` (at most the trained one) cuts the forecast shorter. Under the ``mtgnn``
        single-step protocol the model predicts one row, ``horizon`` steps ahead.
        ``level`` (percents in (0, 100), e.g. ``[80, 95]``) adds the columns
        ``<variable>-lo-<level>`` and ``<variable>-hi-<level>``: split conformal intervals,
        per step and variable, calibrated on the validation windows of the fit.
        """
        model = self._require_fitted()
        trained = self.config.data.horizon
        horizon = trained if horizon is None else int(horizon)
        if not 1 <= horizon <= trained:
            raise ValueError(
                f"horizon={horizon} but the model was trained for horizon={trained}: ask for "
                f"1..{trained} steps, or fit a new model with horizon={horizon}."
            )
        half_widths = self._half_widths(level)
        frame = self.history_ if data is None else self._frame(data)
        self._check_history(len(frame))
        seq_len = model.config.seq_len
        values, marks, steps = self._inputs(frame.iloc[-seq_len:])
        device = next(model.parameters()).device
        with torch.no_grad():
            x = values[None].to(device)  # (T, N) -> (1, L, N)
            x_mark = marks[None].to(device) if model.config.time_features else None  # (1, L, F)
            step = steps[:1].to(device)  # (1,), the window's first row
            pred = model.eval()(x, x_mark, step)[0].double().cpu()  # (1, H, N) -> (H, N)
        pred = self.scaler.inverse_transform(pred)  # original units
        unit = torch.from_numpy(self.scaler.scale)  # (N,) original units per scaled unit
        spread = window_scale(values[None])[0].double() * unit  # (1, L, N) -> (N,)
        index = future_index(frame.index, trained)
        rows = slice(-1, None) if self.output_length == 1 and trained > 1 else slice(0, horizon)
        index, pred = index[rows], pred[rows]
        columns = {name: pred[:, i].numpy() for i, name in enumerate(self.columns)}
        widths = {lv: (half.double()[rows] * spread).numpy() for lv, half in half_widths.items()}
        for i, name in enumerate(self.columns):
            for lv, width in widths.items():  # (H, N)
                lo, hi = interval_columns(name, lv)
                columns[lo], columns[hi] = columns[name] - width[:, i], columns[name] + width[:, i]
        return pd.DataFrame(columns, index=index)

    def evaluate(
        self,
        data: Any,
        batch_size: int = 256,
        *,
        level: Iterable[float] | float | None = None,
    ) -> dict[str, float]:
        """MSE, MAE, RSE, CORR over every window of ``data`` (stride 1), and the window count.

        Units follow the training protocol: scaled values (``tslib``/``holdout``) or original
        units (``mtgnn``). ``level`` adds ``coverage_<level>`` (the share of true values inside
        the interval) and ``width_<level>`` (its mean width, original units).
        """
        half_widths = self._half_widths(level)
        values, marks, steps = self._inputs(self._frame(data))
        windows = all_windows(values, marks, self._geometry(), steps)
        return self._score(windows, batch_size, half_widths)

    def _score(self, windows: Any, batch_size: int, half_widths: dict) -> dict[str, float]:
        return score_windows(
            self._require_fitted(), windows, scaler=self.scaler,
            original_units=self.protocol == "mtgnn", intervals=half_widths,
            batch_size=batch_size,
        )  # fmt: skip

    def test(self, data: Any = None) -> dict[str, float]:
        """Metrics on the test split of ``data`` under the training protocol and split.

        ``data`` defaults to the configured dataset (``config.data.data``); it must be the data
        the model was trained on (its train-split scaling is checked against the model's).
        """
        self._require_fitted()
        data = self.config.data.data if data is None else data
        if data is None:
            raise ValueError("no data to test on: pass data (the model's config names none).")
        dm = self._datamodule(data)
        dm.setup()
        if dm.columns != self.columns:
            raise ValueError(f"data has columns {dm.columns} but the model has {self.columns}.")
        if dm.window_counts["test"] == 0:
            raise ValueError("the data has no test split: set test_fraction > 0.")
        loc, scale = scaler_affine(dm.scaler, dm.num_nodes)
        if not (
            np.allclose(loc, self.scaler.mean, rtol=1e-4, atol=1e-6)
            and np.allclose(scale, self.scaler.scale, rtol=1e-4, atol=1e-6)
        ):
            raise ValueError(
                "the train split of this data scales differently from the model's training "
                "data: test on the data (and split options) the model was trained on."
            )
        scores = self._score(dm.datasets["test"], dm.eval_batch_size, {})
        return {f"test_{k}": v for k, v in scores.items() if k != "windows"}

    # -------------------------------------------------------------- backtesting
    def cross_validation(
        self,
        data: Any,
        n_windows: int = 1,
        step_size: int | None = None,
        *,
        refit: bool | int = False,
        level: Iterable[float] | float | None = None,
    ) -> Backtest:
        """Backtest: forecast ``n_windows`` times from cutoffs ``step_size`` steps apart.

        The last window ends at the end of ``data``; each forecast sees only the rows up to
        its cutoff. A model with this Forecaster's options is fitted on the history up to the
        first cutoff (``holdout`` protocol, its validation tail calibrating the intervals);
        ``refit=k`` fits again every ``k`` windows (``True``: at every window), on all the
        history up to that cutoff. This Forecaster itself is left as it was.
        ``step_size`` defaults to the horizon. Returns a :class:`Backtest`.
        """
        cfg = self.config.data
        step_size = cfg.horizon if step_size is None else int(step_size)
        every = refit_every(refit)
        levels = check_levels(level) if level is not None else []
        if levels and cfg.val_fraction <= 0:
            raise ValueError(
                "intervals are calibrated on validation windows but val_fraction=0: set "
                "val_fraction > 0 to backtest with level=..."
            )
        frame = load_dataset(data)
        first = min_history_rows(cfg.seq_len, cfg.horizon, cfg.val_fraction, len(frame))
        cutoffs = cutoff_rows(len(frame), horizon=cfg.horizon, n_windows=n_windows,
                              step_size=step_size, min_history=first)  # fmt: skip
        options = copy.deepcopy(self.config)
        options.data.protocol, options.data.test_fraction = "holdout", 0.0
        parts, model = [], None
        for i, cut in enumerate(cutoffs):  # `cut` rows of history
            if model is None or (every and i % every == 0):
                model = Forecaster.from_config(options).fit(frame.iloc[:cut])
            history = frame.iloc[cut - cfg.seq_len : cut]
            prediction = model.predict(history, level=levels or None)
            actual = frame.iloc[cut : cut + cfg.horizon]
            parts.append(long_forecasts(frame.index[cut - 1], actual, prediction, levels))
        forecasts = pd.concat(parts, ignore_index=True)
        return Backtest(forecasts, cutoff_metrics(forecasts, levels))

    # ------------------------------------------------------------- learned graph
    def graph(self) -> pd.DataFrame:
        """The learned adjacency with the variables' names on both axes: the row of variable
        ``v`` holds how strongly ``v`` reads from each variable (0 = not at all)."""
        model = self._require_fitted()
        if not model.config.graph:
            raise ValueError(
                "this model was trained with graph=False: it learns no graph. Fit with "
                "graph=True to learn one (the long-horizon recipe learns one from "
                f"{GRAPH_FROM} variables on and runs fewer each on its own)."
            )
        adjacency = model.adjacency().cpu().double().numpy()  # (N, N)
        return pd.DataFrame(
            adjacency,
            index=pd.Index(self.columns, name="variable"),
            columns=pd.Index(self.columns, name="reads from"),
        )

    def plot_graph(self) -> Figure:
        """A heat map of :meth:`graph`. Returns the ``matplotlib`` Figure."""
        from tsattn.plotting import plot_graph

        return plot_graph(self.graph())

    # ------------------------------------------------------------------ storage
    def save(self, path: str | Path) -> Path:
        """Write weights, configs, scaler, calibration, columns, freq and history tail."""
        model = self._require_fitted()
        payload = {
            "format": FILE_FORMAT,
            "version": FILE_VERSION,
            "model_config": model.config.to_dict(),
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "options": self.config.to_dict(),
            "scaler": {"loc": self.scaler.mean.tolist(), "scale": self.scaler.scale.tolist()},
            "calibration": None if self.calibration_ is None else self.calibration_.to_payload(),
            "columns": list(self.columns),
            "freq": self.freq,
            "protocol": self.protocol,
            "output_length": self.output_length,
            "metrics": {k: v for k, v in self.metrics_.items() if math.isfinite(v)},
            "kept_start": self.kept_start_,
            "history": {
                "values": torch.tensor(self.history_.to_numpy(dtype=np.float64)),
                "index": _index_to_payload(self.history_.index),
            },
        }
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(payload, path)
        return path

    @classmethod
    def load(cls, path: str | Path, map_location: str | torch.device | None = None) -> Forecaster:
        """Read a file written by :meth:`save`; the model is placed on ``map_location`` (CPU by
        default), so a GPU-trained model loads on a CPU-only machine. A file holding anything but
        tensors and plain data is refused (:func:`tsattn.train.checkpoint.load_checkpoint`)."""
        payload = load_checkpoint(path)
        if not isinstance(payload, dict) or payload.get("format") != FILE_FORMAT:
            raise ValueError(
                f"{path} is not a tsattn Forecaster file (written by Forecaster.save)."
            )
        forecaster = cls.from_config(RunConfig.from_dict(payload["options"]))
        model = MTGNN(MTGNNConfig.from_dict(payload["model_config"]))
        model.load_state_dict(payload["state_dict"])
        forecaster.model = model.to(map_location or "cpu").eval()
        forecaster.metrics_ = dict(payload["metrics"])
        forecaster.kept_start_ = payload.get("kept_start")  # absent before it was recorded
        forecaster.columns = list(payload["columns"])
        forecaster.freq = payload["freq"]
        forecaster.protocol = payload["protocol"]
        forecaster.output_length = int(payload["output_length"])
        forecaster.scaler = Scaler(
            forecaster.config.data.scaling,
            np.asarray(payload["scaler"]["loc"], dtype=np.float64),
            np.asarray(payload["scaler"]["scale"], dtype=np.float64),
        )
        calibration = payload.get("calibration")  # absent in version 1 files
        forecaster.calibration_ = (
            None if calibration is None else ConformalCalibration.from_payload(calibration)
        )
        forecaster.history_ = pd.DataFrame(
            payload["history"]["values"].numpy(),
            index=_index_from_payload(payload["history"]["index"]),
            columns=forecaster.columns,
        )
        return forecaster

    # ----------------------------------------------------------------- plotting
    def plot(
        self,
        data: Any = None,
        truth: pd.DataFrame | None = None,
        columns: list[str] | None = None,
        history_steps: int | None = None,
        *,
        level: Iterable[float] | float | None = None,
    ) -> Figure:
        """History, forecast, interval bands (``level``) and (when given) the true future, one
        panel per variable.

        ``columns`` picks variables (default: up to the first 6); ``history_steps`` how much
        history to draw (default: 2 x seq_len). Returns the ``matplotlib`` Figure.
        """
        from tsattn.plotting import plot_forecast

        model = self._require_fitted()
        prediction = self.predict(data, level=level)
        history = self.history_ if data is None else self._frame(data)
        history = history.iloc[-(history_steps or 2 * model.config.seq_len) :]
        levels = check_levels(level) if level is not None else []
        return plot_forecast(history, prediction, truth=truth, columns=columns, levels=levels)
