"""``TimeSeriesDataModule``: load -> validate -> split (protocol) -> scale -> strided windows.

Every batch is ``(x, y, x_mark, step)``: ``x`` ``(B, seq_len, N)``, ``y``
``(B, output_length, N)``, ``x_mark`` ``(B, seq_len, F)`` float32 (``F`` may be 0), ``step``
``(B,)`` int64, the grid position of each window's first row
(:func:`~tsattn.data.timefeatures.grid_steps`). Training batches are shuffled; evaluation
loaders keep order and never drop the last partial batch, so every test window counts
(PROTOCOLS.md).

>>> import numpy as np, pandas as pd
>>> frame = pd.DataFrame(np.random.rand(200, 3), columns=list("abc"),
...                      index=pd.date_range("2024-01-01", periods=200, freq="h"))
>>> dm = TimeSeriesDataModule(frame, seq_len=24, horizon=6, batch_size=8); dm.setup()
>>> dm.window_counts
{'train': 111, 'val': 15, 'test': 35}
>>> [tuple(t.shape) for t in next(iter(dm.train_dataloader()))]
[(8, 24, 3), (8, 6, 3), (8, 24, 4), (8,)]
"""

from __future__ import annotations

import os
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from tsattn.data.loader import load_dataset, resolve_spec
from tsattn.data.protocols import PROTOCOLS, SplitPlan, plan_splits
from tsattn.data.scaling import SCALINGS, Scaler, fit_scaler
from tsattn.data.timefeatures import grid_steps, infer_freq, time_features
from tsattn.data.validate import check_enough_rows
from tsattn.data.windows import WindowDataset, collate_windows

__all__ = ["TimeSeriesDataModule"]


class TimeSeriesDataModule(L.LightningDataModule):
    """Windows of a multivariate series under a benchmark protocol.

    Args:
        data: a registered dataset name, a file path, or a wide / long DataFrame.
        seq_len: input steps ``L`` (``P`` for the ``mtgnn`` protocol).
        horizon: ``H`` target steps (tslib / holdout), or ``h`` steps ahead (mtgnn).
        protocol: ``"tslib"``, ``"mtgnn"``, ``"holdout"`` or ``"auto"`` (the registered
            dataset's protocol, ``"holdout"`` for user data).
        val_fraction, test_fraction: chronological fractions for ``"holdout"`` only; 0 turns
            the split off (its loader is then empty).
        scaling: ``"standard"`` (fitted on train rows), ``"maxabs_legacy"`` or ``"none"``.
        use_time_features: calendar marks in ``x_mark`` (needs dates).
        batch_size, eval_batch_size, num_workers, drop_last_train: loader options;
            ``eval_batch_size`` defaults to ``batch_size``.
        **load_kwargs: passed to :func:`tsattn.data.load_dataset` (``start=``, ``freq=``,
            ``fill=``, ``drop_columns=``, ``root=``, ``download=``, ...).
    """

    def __init__(
        self,
        data: str | os.PathLike | pd.DataFrame,
        seq_len: int,
        horizon: int,
        *,
        protocol: str = "auto",
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        scaling: str = "standard",
        use_time_features: bool = True,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        drop_last_train: bool = False,
        **load_kwargs: Any,
    ) -> None:
        super().__init__()
        if protocol not in (*PROTOCOLS, "auto"):
            raise ValueError(f"protocol must be one of {[*PROTOCOLS, 'auto']}, got {protocol!r}")
        if scaling not in SCALINGS:
            raise ValueError(f"scaling must be one of {list(SCALINGS)}, got {scaling!r}")
        if batch_size < 1 or (eval_batch_size is not None and eval_batch_size < 1):
            raise ValueError("batch_size and eval_batch_size must be >= 1")
        self.data = data
        self.seq_len = int(seq_len)
        self.horizon = int(horizon)
        self.spec = resolve_spec(data) if not isinstance(data, pd.DataFrame) else None
        self.protocol = (
            (self.spec.protocol if self.spec is not None else "holdout")
            if protocol == "auto"
            else protocol
        )
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.scaling = scaling
        self.use_time_features = use_time_features
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.drop_last_train = drop_last_train
        self.load_kwargs = load_kwargs
        self._ready = False

    def _registered_step(self, index: pd.Index) -> str | None:
        """The step of a registered file without dates (solar_AL's 10 minutes), which the
        recipe's cycle needs to know a day's length; ``None`` for data with dates or of no
        known step. The series stays one without a calendar: integer steps, no marks."""
        if self.spec is None or isinstance(index, pd.DatetimeIndex):
            return None
        return self.spec.freq

    def prepare_data(self) -> None:
        """Download a registered dataset if it is not on disk (rank 0 only under DDP)."""
        if self.spec is not None:
            from tsattn.data.loader import dataset_file

            dataset_file(self.spec.name, root=self.load_kwargs.get("root"),
                              download=self.load_kwargs.get("download", True))  # fmt: skip

    def setup(self, stage: str | None = None) -> None:
        """Load, validate, split, scale and window the data; later calls do nothing."""
        if self._ready:
            return
        frame = load_dataset(self.data, **self.load_kwargs)
        source = self.spec.name if self.spec is not None else "data"
        check_enough_rows(len(frame), self.seq_len, self.horizon, source)
        plan = plan_splits(
            len(frame), self.seq_len, self.horizon, self.protocol,
            split=self.spec.split if self.spec is not None else "ratio",
            val_fraction=self.val_fraction, test_fraction=self.test_fraction, source=source,
        )  # fmt: skip
        raw = frame.to_numpy(dtype=np.float64)  # (T, N)
        lo, hi = plan.train_rows
        self.scaler: Scaler = fit_scaler(self.scaling, raw[lo:hi], raw)
        values = torch.from_numpy(self.scaler.transform(raw).astype(np.float32))  # (T, N)
        self.freq: str | None = infer_freq(frame.index) or self._registered_step(frame.index)
        marks = (
            time_features(frame.index, self.freq)
            if self.use_time_features
            else np.zeros((len(frame), 0), np.float32)
        )
        self.marks = torch.from_numpy(marks)  # (T, F)
        self.steps = torch.from_numpy(grid_steps(frame.index, self.freq))  # (T,) int64
        self.values = values
        self.frame = frame
        self.columns: list[str] = [str(c) for c in frame.columns]
        self.num_nodes: int = frame.shape[1]
        self.n_time_features: int = self.marks.shape[1]
        self.output_length: int = plan.geometry.target_length
        self.plan: SplitPlan = plan
        self.datasets = {
            name: WindowDataset(values, self.marks, plan.geometry, starts, self.steps)
            for name, starts in plan.starts.items()
        }
        self._ready = True

    @property
    def window_counts(self) -> dict[str, int]:
        """Number of windows per split: ``{"train": ..., "val": ..., "test": ...}``."""
        self._require_setup()
        return {name: len(ds) for name, ds in self.datasets.items()}

    def target_index(self, split: str) -> pd.Index:
        """Timestamps (or steps) of each window's first target row in ``split``."""
        self._require_setup()
        shift = self.plan.geometry.input_length + self.plan.geometry.gap
        starts = self.datasets[split].starts
        return self.frame.index[starts.start + shift : starts.stop + shift]

    def last_window(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The most recent ``seq_len`` rows, scaled: ``x (1, L, N)``, ``x_mark (1, L, F)`` and
        ``step (1,)``, the grid position of its first row."""
        self._require_setup()
        rows = slice(-self.seq_len, None)
        return self.values[rows][None], self.marks[rows][None], self.steps[rows][:1]

    def _require_setup(self) -> None:
        if not self._ready:
            raise RuntimeError("call setup() before using the data module")

    def _loader(self, split: str, *, train: bool) -> DataLoader:
        self._require_setup()
        return DataLoader(
            self.datasets[split],
            batch_size=self.batch_size if train else self.eval_batch_size,
            shuffle=train,
            drop_last=self.drop_last_train if train else False,
            num_workers=self.num_workers,
            collate_fn=collate_windows,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)
