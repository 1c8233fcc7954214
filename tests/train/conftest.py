"""Fixtures for the training tests: tiny models and the toy data module."""

from __future__ import annotations

import pytest

from tests.train.toy import ToyDataModule

TINY_MODEL = dict(
    layers=1, conv_channels=4, residual_channels=4, skip_channels=8, end_channels=8,
    node_dim=4, top_k=2,
)  # fmt: skip


@pytest.fixture
def toy() -> ToyDataModule:
    return ToyDataModule()
