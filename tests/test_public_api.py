"""The public surface of ``tsattn``: the names in ARCHITECTURE.md and nothing else."""

from __future__ import annotations

import subprocess
import sys

import pytest

import tsattn

PUBLIC = {
    "MTGNN", "MTGNNConfig", "Forecaster", "forecast", "create_mixer", "list_mixers",
    "create_fusion", "list_fusions", "load_dataset", "list_datasets", "__version__",
}  # fmt: skip


def test_all_lists_exactly_the_public_api():
    assert set(tsattn.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(tsattn, name) is not None


def test_unknown_attribute_raises_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'not_a_name'"):
        tsattn.not_a_name  # noqa: B018


def test_import_does_not_load_lightning_or_pandas():
    code = "import sys, tsattn; print('lightning' in sys.modules, 'pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
