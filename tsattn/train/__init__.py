"""Training and evaluation on Lightning: configs, the LightningModule, metrics, trainer factory."""

from tsattn.train.config import DataConfig, RunConfig, TrainConfig, split_options
from tsattn.train.metrics import MetricAccumulator
from tsattn.train.module import ForecastModule
from tsattn.train.resume import DeterministicResume, EpochShuffleSampler, resumable_loader
from tsattn.train.trainer import (
    TrainResult,
    build_trainer,
    fit_config,
    fit_datamodule,
    scaler_affine,
)

__all__ = [
    "DataConfig",
    "DeterministicResume",
    "EpochShuffleSampler",
    "ForecastModule",
    "MetricAccumulator",
    "RunConfig",
    "TrainConfig",
    "TrainResult",
    "build_trainer",
    "fit_config",
    "fit_datamodule",
    "resumable_loader",
    "scaler_affine",
    "split_options",
]
