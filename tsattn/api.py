"""One-call forecasting API (being built)."""

from __future__ import annotations

__all__ = ["Forecaster", "forecast"]


class Forecaster:
    def __init__(self, **options):
        raise NotImplementedError("tsattn.api is not built yet")


def forecast(data, horizon, **options):
    raise NotImplementedError("tsattn.api is not built yet")
