"""Fixtures for the training tests: one CPU thread, tiny models, the toy data module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from tests.train.toy import ToyDataModule

TINY_MODEL = dict(
    layers=1, conv_channels=4, residual_channels=4, skip_channels=8, end_channels=8,
    node_dim=4, top_k=2,
)  # fmt: skip


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread, and the test machine is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def toy() -> ToyDataModule:
    return ToyDataModule()
