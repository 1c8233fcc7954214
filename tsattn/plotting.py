"""Figures of forecasts, backtests and learned graphs (``matplotlib``, the ``plot`` extra).

Each function takes plain DataFrames and returns a ``matplotlib`` Figure; nothing here trains
or predicts. :class:`tsattn.Forecaster` calls them from ``plot``, ``plot_graph`` and the CLI.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from tsattn.train.intervals import interval_columns

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_backtest", "plot_forecast", "plot_graph"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("plotting needs matplotlib: pip install 'tsattn[plot]'.") from error
    return plt


def _pick(columns: Sequence[str] | None, available: Sequence[str], most: int = 6) -> list[str]:
    chosen = list(columns) if columns is not None else list(available)[:most]
    unknown = [c for c in chosen if c not in available]
    if unknown:
        raise ValueError(f"columns {unknown} are not among the model's {list(available)}.")
    return chosen


def _shade_levels(levels: Sequence[float]) -> list[tuple[float, float]]:
    """(level, alpha) pairs, widest interval palest."""
    ordered = sorted(levels, reverse=True)
    return [(level, 0.15 + 0.2 * i) for i, level in enumerate(ordered)]


def plot_forecast(
    history: pd.DataFrame,
    prediction: pd.DataFrame,
    *,
    truth: pd.DataFrame | None = None,
    columns: Sequence[str] | None = None,
    levels: Sequence[float] = (),
) -> Figure:
    """History, forecast, interval bands (``levels``) and the true future, one panel per
    variable (default: the first 6)."""
    plt = _pyplot()
    columns = _pick(columns, list(history.columns))
    fig, axes = plt.subplots(
        len(columns), 1, figsize=(10, 2.2 * len(columns)), sharex=True, squeeze=False
    )
    for ax, name in zip(axes[:, 0], columns, strict=True):
        ax.plot(history.index, history[name], color="0.3", lw=1, label="history")
        for level, alpha in _shade_levels(levels):
            lo, hi = interval_columns(name, level)
            ax.fill_between(prediction.index, prediction[lo], prediction[hi], color="C1",
                            alpha=alpha, lw=0, label=f"{level:g}% interval")  # fmt: skip
        ax.plot(prediction.index, prediction[name], color="C1", lw=1.5, label="forecast")
        if truth is not None and name in truth:
            ax.plot(truth.index, truth[name], color="C0", lw=1, ls="--", label="truth")
        ax.set_ylabel(name)
    axes[0, 0].legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    return fig


def plot_backtest(
    forecasts: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    levels: Sequence[float] = (),
) -> Figure:
    """The actual series over the backtest and each cutoff's forecast (with its widest
    interval band), one panel per variable; ``forecasts`` is the long frame of
    :meth:`tsattn.Forecaster.cross_validation`."""
    plt = _pyplot()
    variables = list(dict.fromkeys(forecasts["variable"]))
    columns = _pick(columns, variables)
    fig, axes = plt.subplots(
        len(columns), 1, figsize=(10, 2.2 * len(columns)), sharex=True, squeeze=False
    )
    widest = max(levels) if levels else None
    for ax, name in zip(axes[:, 0], columns, strict=True):
        rows = forecasts[forecasts["variable"] == name]
        actual = rows.drop_duplicates("ds").sort_values("ds")
        ax.plot(actual["ds"], actual["actual"], color="0.3", lw=1, label="actual")
        for i, (_, window) in enumerate(rows.groupby("cutoff", sort=True)):
            label = "forecast" if i == 0 else None
            if widest is not None:
                ax.fill_between(window["ds"], window[f"lo-{widest:g}"], window[f"hi-{widest:g}"],
                                color="C1", alpha=0.2, lw=0,
                                label=f"{widest:g}% interval" if i == 0 else None)  # fmt: skip
            ax.plot(window["ds"], window["forecast"], color="C1", lw=1.2, label=label)
            ax.axvline(window["cutoff"].iloc[0], color="0.7", lw=0.6, ls=":")
        ax.set_ylabel(name)
    axes[0, 0].legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    return fig


def plot_graph(graph: pd.DataFrame, *, title: str = "learned graph") -> Figure:
    """The adjacency of :meth:`tsattn.Forecaster.graph` as a heat map: row ``v``, column ``w``
    is how strongly variable ``v`` reads from ``w`` (0 = not at all)."""
    plt = _pyplot()
    n = graph.shape[0]
    size = min(12.0, 2.5 + 0.45 * n)
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    image = ax.imshow(graph.to_numpy(dtype=np.float64), cmap="viridis", vmin=0)
    if n <= 40:  # beyond that, names overlap
        ax.set_xticks(range(n), [str(c) for c in graph.columns], rotation=90)
        ax.set_yticks(range(n), [str(c) for c in graph.index])
    ax.set_xlabel("reads from")
    ax.set_ylabel("variable")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, shrink=0.8, label="edge weight")
    fig.tight_layout()
    return fig
