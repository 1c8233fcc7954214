"""A small TensorDataset-based stand-in for ``tsattn.data.TimeSeriesDataModule`` in unit tests."""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset


class AffineScaler:
    """``(x - loc) / scale`` per column, on numpy or torch."""

    def __init__(self, loc: np.ndarray, scale: np.ndarray) -> None:
        self.loc, self.scale = loc, scale

    def transform(self, x):
        return (x - self.loc) / self.scale

    def inverse_transform(self, x):
        return x * self.scale + self.loc


class ToyDataModule(pl.LightningDataModule):
    """Sine waves with noise, windowed, split 60/20/20, the tsattn.data contract's attributes."""

    def __init__(
        self,
        num_nodes: int = 3,
        seq_len: int = 16,
        horizon: int = 4,
        rows: int = 240,
        batch_size: int = 8,
        n_time_features: int = 2,
        protocol: str = "holdout",
        seed: int = 0,
    ) -> None:
        super().__init__()
        g = np.random.default_rng(seed)
        t = np.arange(rows)[:, None]
        raw = 10 + 5 * np.sin(t / 6 + np.arange(num_nodes)) + g.normal(0, 0.3, (rows, num_nodes))
        n_train = int(0.6 * rows)
        self.scaler = AffineScaler(raw[:n_train].mean(0), raw[:n_train].std(0))
        data = torch.tensor(self.scaler.transform(raw), dtype=torch.float32)  # (T, N)
        marks = torch.tensor(
            np.concatenate([np.sin(t / 24), np.cos(t / 24)], 1)[:, :n_time_features],
            dtype=torch.float32,
        )  # (T, F)
        self.num_nodes, self.output_length, self.n_time_features = (
            num_nodes,
            horizon,
            n_time_features,
        )
        self.protocol, self.batch_size, self.seq_len = protocol, batch_size, seq_len
        bounds = {
            "train": (0, n_train),
            "val": (n_train, int(0.8 * rows)),
            "test": (int(0.8 * rows), rows),
        }
        self.sets = {}
        for name, (lo, hi) in bounds.items():
            starts = range(max(0, lo - seq_len), hi - seq_len - horizon + 1)
            x = torch.stack([data[s : s + seq_len] for s in starts])
            y = torch.stack([data[s + seq_len : s + seq_len + horizon] for s in starts])
            m = torch.stack([marks[s : s + seq_len] for s in starts])
            self.sets[name] = TensorDataset(x, y, m)
        self.window_counts = {k: len(v) for k, v in self.sets.items()}

    def setup(self, stage: str | None = None) -> None:
        pass

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.sets["train"], batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.sets["val"], batch_size=self.batch_size)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.sets["test"], batch_size=self.batch_size)
