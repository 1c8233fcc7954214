"""tsattn: gated dilated-inception temporal convolutions with attention for forecasting.

The model and its building blocks import with PyTorch alone; the data, training and one-call
API layers (pandas, Lightning) load on first use of their names, so ``import tsattn`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tsattn.models.mtgnn import MTGNN, MTGNNConfig
from tsattn.nn.fusion import create_fusion, list_fusions
from tsattn.nn.mixers import create_mixer, list_mixers

if TYPE_CHECKING:
    from tsattn.api import Forecaster, forecast
    from tsattn.data import list_datasets, load_dataset

__version__ = "0.1.0"

__all__ = [
    "MTGNN",
    "Forecaster",
    "MTGNNConfig",
    "__version__",
    "create_fusion",
    "create_mixer",
    "forecast",
    "list_datasets",
    "list_fusions",
    "list_mixers",
    "load_dataset",
]

_LAZY = {
    "Forecaster": "tsattn.api",
    "forecast": "tsattn.api",
    "list_datasets": "tsattn.data",
    "load_dataset": "tsattn.data",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tsattn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
