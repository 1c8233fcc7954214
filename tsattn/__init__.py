"""tsattn: gated dilated-inception temporal convolutions with attention for forecasting."""

from tsattn.api import Forecaster, forecast
from tsattn.data import list_datasets, load_dataset
from tsattn.models.mtgnn import MTGNN, MTGNNConfig
from tsattn.nn.fusion import create_fusion, list_fusions
from tsattn.nn.mixers import create_mixer, list_mixers

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
