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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from tsattn.data import TimeSeriesDataModule, future_index, load_dataset, time_features
from tsattn.models.mtgnn import MTGNN, MTGNNConfig
from tsattn.train.checkpoint import load_checkpoint
from tsattn.train.config import DataConfig, RunConfig, TrainConfig, split_options
from tsattn.train.metrics import MetricAccumulator
from tsattn.train.trainer import TrainResult, build_datamodule, fit_datamodule, scaler_affine

__all__ = ["FORECAST_DEFAULTS", "Forecaster", "forecast"]

FILE_FORMAT = "tsattn-forecaster"
FILE_VERSION = 1

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


def forecast(data: Any, horizon: int, **options: Any) -> pd.DataFrame:
    """Fit on the whole history of ``data`` and return the next ``horizon`` steps.

    ``options`` are :class:`Forecaster` options on top of :data:`FORECAST_DEFAULTS`
    (e.g. ``mixer="eca"``, ``max_steps=1000``, ``progress_bar=False``).

    >>> import numpy as np, pandas as pd
    >>> df = pd.DataFrame({"x": np.sin(np.arange(300) / 5)},
    ...                   index=pd.date_range("2024-01-01", periods=300, freq="D"))
    >>> forecast(df, 7, seq_len=32, max_steps=2, progress_bar=False).shape
    (7, 1)
    """
    return Forecaster(horizon=horizon, **{**FORECAST_DEFAULTS, **options}).fit(data).predict()


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


class Forecaster:
    """Train an MTGNN forecaster on a series and forecast its future.

    ``options`` are the fields of :class:`~tsattn.train.config.DataConfig` (``seq_len``,
    ``horizon``, ``protocol``, ``val_fraction``, ``scaling``, ``batch_size``, ...),
    :class:`~tsattn.train.config.TrainConfig` (``max_epochs``, ``max_steps``, ``lr``, ``loss``,
    ``seed``, ``accelerator``, ``precision``, ``progress_bar``, ...) and
    :class:`~tsattn.models.mtgnn.MTGNNConfig` (``mixer``, ``layers``, ``fusion``, ...), given
    flat. Unlike the benchmark default, ``test_fraction`` defaults to 0 here: the model learns
    from the whole history except the validation tail.

    >>> Forecaster(horizon=24, mixer="eca").config.model
    {'mixer': 'eca'}
    """

    def __init__(self, **options: Any) -> None:
        data, model, train = split_options({"test_fraction": 0.0, **options})
        self.config = RunConfig(data=DataConfig(**data), model=model, train=TrainConfig(**train))
        self.model: MTGNN | None = None
        self.metrics_: dict[str, float] = {}
        self.epoch_seconds_: list[float] = []

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
        Test metrics, when the protocol has a test split, land in ``metrics_``.
        """
        dm = self._datamodule(data, val_data)
        with tempfile.TemporaryDirectory(prefix="tsattn-") as scratch:
            result = fit_datamodule(
                dm,
                model=self.config.model,
                train=self.config.train,
                use_time_features=self.config.data.use_time_features,
                run_dir=run_dir or scratch,
                ckpt_path=ckpt_path,
            )
            self._adopt(result, dm)
        return self

    def _adopt(self, result: TrainResult, dm: TimeSeriesDataModule) -> None:
        module = result.module.cpu().eval()
        self.model = module.model
        self.result_ = result
        self.metrics_ = dict(result.metrics)
        self.epoch_seconds_ = list(result.epoch_seconds)
        self.columns: list[str] = list(dm.columns)
        self.freq: str | None = dm.freq
        self.protocol: str = dm.protocol
        self.output_length: int = dm.output_length
        self.scaler_loc = module.scaler_loc.detach().cpu().clone()
        self.scaler_scale = module.scaler_scale.detach().cpu().clone()
        self.history_ = dm.frame.iloc[-dm.seq_len :].copy()

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

    def _inputs(self, frame: pd.DataFrame) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Scaled values ``(T, N)`` and calendar marks ``(T, F)`` (or None) of a frame."""
        model = self._require_fitted()
        values = torch.tensor(frame.to_numpy(dtype=np.float64), dtype=torch.float32)  # (T, N)
        values = (values - self.scaler_loc) / self.scaler_scale  # (T, N)
        n_marks = model.config.time_features
        if not n_marks:
            return values, None
        marks = torch.from_numpy(time_features(frame.index, self.freq))  # (T, F)
        if marks.shape[1] != n_marks:
            raise ValueError(
                f"the model was trained with {n_marks} calendar features but this data gives "
                f"{marks.shape[1]} (index type {type(frame.index).__name__}): pass data with "
                f"the same kind of timestamps (frequency {self.freq!r})."
            )
        return values, marks

    def _check_history(self, rows: int) -> None:
        seq_len = self._require_fitted().config.seq_len
        if rows < seq_len:
            raise ValueError(
                f"the history has {rows} rows but the model reads seq_len={seq_len} rows: "
                f"pass at least {seq_len} rows of history."
            )

    def predict(self, data: Any = None, horizon: int | None = None) -> pd.DataFrame:
        """Forecast the steps after ``data`` (default: after the history given to ``fit``).

        ``horizon`` (at most the trained one) cuts the forecast shorter. Under the ``mtgnn``
        single-step protocol the model predicts one row, ``horizon`` steps ahead.
        """
        model = self._require_fitted()
        trained = self.config.data.horizon
        horizon = trained if horizon is None else int(horizon)
        if not 1 <= horizon <= trained:
            raise ValueError(
                f"horizon={horizon} but the model was trained for horizon={trained}: ask for "
                f"1..{trained} steps, or fit a new model with horizon={horizon}."
            )
        frame = self.history_ if data is None else self._frame(data)
        self._check_history(len(frame))
        seq_len = model.config.seq_len
        values, marks = self._inputs(frame.iloc[-seq_len:])
        device = next(model.parameters()).device
        with torch.no_grad():
            x = values[None].to(device)  # (T, N) -> (1, L, N)
            x_mark = None if marks is None else marks[None].to(device)  # (1, L, F)
            pred = model.eval()(x, x_mark)[0].float().cpu()  # (1, H, N) -> (H, N)
        pred = pred * self.scaler_scale + self.scaler_loc  # original units
        index = future_index(frame.index, trained)
        if self.output_length == 1 and trained > 1:  # single step, `trained` steps ahead
            index, pred = index[-1:], pred[-1:]
        else:
            index, pred = index[:horizon], pred[:horizon]
        return pd.DataFrame(pred.numpy().astype(np.float64), index=index, columns=self.columns)

    def evaluate(self, data: Any, batch_size: int = 256) -> dict[str, float]:
        """MSE, MAE, RSE, CORR over every window of ``data`` (stride 1), and the window count.

        Units follow the training protocol: scaled values (``tslib``/``holdout``) or original
        units (``mtgnn``).
        """
        model = self._require_fitted()
        frame = self._frame(data)
        seq_len, out_len = model.config.seq_len, self.output_length
        gap = self.config.data.horizon - 1 if out_len == 1 else 0
        span = seq_len + gap + out_len
        if len(frame) < span:
            raise ValueError(
                f"data has {len(frame)} rows but one window needs seq_len + horizon = {span}: "
                "pass a longer series."
            )
        values, marks = self._inputs(frame)
        windows = len(frame) - span + 1
        acc = MetricAccumulator()
        device = next(model.parameters()).device
        loc, scale = self.scaler_loc.to(device), self.scaler_scale.to(device)
        with torch.no_grad():
            for start in range(0, windows, batch_size):
                stop = min(windows, start + batch_size)
                x = values[start : stop - 1 + seq_len].unfold(0, seq_len, 1)  # (W, N, L)
                x = x.transpose(1, 2).to(device)  # (W, N, L) -> (W, L, N)
                y = values[start + seq_len + gap : stop - 1 + span].unfold(0, out_len, 1)
                y = y.transpose(1, 2).to(device)  # (W, N, H) -> (W, H, N)
                x_mark = None
                if marks is not None:
                    x_mark = marks[start : stop - 1 + seq_len].unfold(0, seq_len, 1)
                    x_mark = x_mark.transpose(1, 2).to(device)  # (W, F, L) -> (W, L, F)
                pred = model.eval()(x, x_mark).float()  # (W, H, N)
                if self.protocol == "mtgnn":
                    pred, y = pred * scale + loc, y * scale + loc
                acc.update(pred, y)
        return {**acc.compute(), "windows": windows}

    def test(self, data: Any = None) -> dict[str, float]:
        """Metrics on the test split of ``data`` under the training protocol and split.

        ``data`` defaults to the configured dataset (``config.data.data``); it must be the data
        the model was trained on (its train-split scaling is checked against the model's).
        """
        model = self._require_fitted()
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
            np.allclose(loc, self.scaler_loc.numpy(), rtol=1e-4, atol=1e-6)
            and np.allclose(scale, self.scaler_scale.numpy(), rtol=1e-4, atol=1e-6)
        ):
            raise ValueError(
                "the train split of this data scales differently from the model's training "
                "data: test on the data (and split options) the model was trained on."
            )
        acc = MetricAccumulator()
        device = next(model.parameters()).device
        loc_t, scale_t = self.scaler_loc.to(device), self.scaler_scale.to(device)
        with torch.no_grad():
            for x, y, x_mark in dm.test_dataloader():
                x, y = x.to(device), y.to(device)
                marks = x_mark.to(device) if model.config.time_features else None
                pred = model.eval()(x, marks).float()  # (B, H, N)
                if self.protocol == "mtgnn":
                    pred, y = pred * scale_t + loc_t, y * scale_t + loc_t
                acc.update(pred, y)
        return {f"test_{k}": v for k, v in acc.compute().items()}

    # ------------------------------------------------------------------ storage
    def save(self, path: str | Path) -> Path:
        """Write weights, configs, scaler statistics, columns, freq and history tail to ``path``."""
        model = self._require_fitted()
        payload = {
            "format": FILE_FORMAT,
            "version": FILE_VERSION,
            "model_config": model.config.to_dict(),
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "options": self.config.to_dict(),
            "scaler": {"loc": self.scaler_loc.tolist(), "scale": self.scaler_scale.tolist()},
            "columns": list(self.columns),
            "freq": self.freq,
            "protocol": self.protocol,
            "output_length": self.output_length,
            "metrics": {k: v for k, v in self.metrics_.items() if math.isfinite(v)},
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
        forecaster.columns = list(payload["columns"])
        forecaster.freq = payload["freq"]
        forecaster.protocol = payload["protocol"]
        forecaster.output_length = int(payload["output_length"])
        forecaster.scaler_loc = torch.tensor(payload["scaler"]["loc"], dtype=torch.float32)
        forecaster.scaler_scale = torch.tensor(payload["scaler"]["scale"], dtype=torch.float32)
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
    ):
        """History, forecast and (when given) the true future, one panel per variable.

        ``columns`` picks variables (default: up to the first 6); ``history_steps`` how much
        history to draw (default: 2 x seq_len). Returns the ``matplotlib`` Figure.
        """
        import matplotlib.pyplot as plt

        prediction = self.predict(data)
        history = self.history_ if data is None else self._frame(data)
        history = history.iloc[-(history_steps or 2 * self.model.config.seq_len) :]
        columns = columns or self.columns[:6]
        unknown = [c for c in columns if c not in self.columns]
        if unknown:
            raise ValueError(f"columns {unknown} are not among the model's {self.columns}.")
        fig, axes = plt.subplots(
            len(columns), 1, figsize=(10, 2.2 * len(columns)), sharex=True, squeeze=False
        )
        for ax, name in zip(axes[:, 0], columns, strict=True):
            ax.plot(history.index, history[name], color="0.3", lw=1, label="history")
            ax.plot(prediction.index, prediction[name], color="C1", lw=1.5, label="forecast")
            if truth is not None and name in truth:
                ax.plot(truth.index, truth[name], color="C0", lw=1, ls="--", label="truth")
            ax.set_ylabel(name)
        axes[0, 0].legend(loc="upper left", fontsize="small")
        fig.tight_layout()
        return fig
