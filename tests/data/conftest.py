"""Fixtures for the data tests: an isolated user cache and generated benchmark-shaped files."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Point the user cache (downloads, verification ledger) at a per-session temp folder."""
    monkeypatch.setenv("TSATTN_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "tsattn-cache"))


@pytest.fixture(scope="session")
def electricity_dir(tmp_path_factory: pytest.TempPathFactory):
    """A folder holding a generated ``electricity.csv`` of the real shape (26304 x 321)."""
    from tsattn.data.synthetic import make_like

    folder = tmp_path_factory.mktemp("electricity")
    make_like("electricity", folder / "electricity.csv", seed=1)
    return folder
