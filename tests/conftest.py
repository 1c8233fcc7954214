"""Shared fixtures: the real dataset folder and small seeded tensors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder with the real benchmark files (``$TSATTN_DATA_DIR``).

    Skips locally when it is missing; fails in CI, where the data tests must run.
    """
    raw = os.environ.get("TSATTN_DATA_DIR")
    path = Path(raw) if raw else None
    if path is None or not (path / "ETTh1.csv").is_file():
        message = (
            f"TSATTN_DATA_DIR={raw!r} does not hold ETTh1.csv: run the tests as "
            "`TSATTN_DATA_DIR=../shared/datasets python -m pytest -q`"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path.resolve()
