"""Shared fixtures: the real dataset folder and small seeded tensors."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> Iterator[None]:
    """The test models are tiny: a second intra-op thread only adds overhead and contention."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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
