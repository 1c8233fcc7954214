"""Datasets, benchmark protocols and windows for tsattn.

Registered public datasets (:func:`list_datasets`) are located on disk or downloaded and
checked (:mod:`tsattn.data.download`); files and DataFrames are parsed and validated
(:func:`load_dataset`); :class:`TimeSeriesDataModule` splits them under the protocols of
``PROTOCOLS.md``, scales on train rows and serves strided windows.

Functions for a ``tsattn datasets list|download|verify`` command: :func:`dataset_status`,
:func:`download_dataset`, :func:`verify_dataset`.
"""

from __future__ import annotations

from tsattn.data.datamodule import TimeSeriesDataModule
from tsattn.data.download import (
    cache_dir,
    dataset_status,
    download_dataset,
    locate_dataset,
    search_paths,
)
from tsattn.data.loader import dataset_file, load_dataset, verify_dataset
from tsattn.data.protocols import plan_splits
from tsattn.data.registry import DatasetSpec, get_spec, list_datasets, register_dataset
from tsattn.data.scaling import Scaler
from tsattn.data.timefeatures import (
    cycle_lengths,
    daily_cycle,
    future_index,
    grid_steps,
    infer_freq,
    span,
    time_features,
)

__all__ = [
    "DatasetSpec",
    "Scaler",
    "TimeSeriesDataModule",
    "cache_dir",
    "cycle_lengths",
    "daily_cycle",
    "dataset_file",
    "dataset_status",
    "download_dataset",
    "future_index",
    "get_spec",
    "grid_steps",
    "infer_freq",
    "list_datasets",
    "load_dataset",
    "locate_dataset",
    "plan_splits",
    "register_dataset",
    "search_paths",
    "span",
    "time_features",
    "verify_dataset",
]
