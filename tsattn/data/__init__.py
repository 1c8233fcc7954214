"""Dataset registry, loaders, benchmark protocols and windows (being built)."""

from __future__ import annotations

__all__ = ["list_datasets", "load_dataset"]


def list_datasets() -> list[str]:
    raise NotImplementedError("tsattn.data is not built yet")


def load_dataset(name_or_path, **kwargs):
    raise NotImplementedError("tsattn.data is not built yet")
