"""The arithmetic of backtesting: where the cutoffs fall, the long frame, per-cutoff metrics.

:meth:`tsattn.Forecaster.cross_validation` fits and forecasts; this module decides which rows
each forecast may see and scores the result. A cutoff is the number of history rows a
forecast sees; the last window's forecast ends on the last row of the data.

>>> cutoff_rows(100, horizon=6, n_windows=3, step_size=4, min_history=50)
[86, 90, 94]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from tsattn.data.protocols import plan_splits
from tsattn.train.intervals import interval_columns

__all__ = ["cutoff_metrics", "cutoff_rows", "long_forecasts", "min_history_rows", "refit_every"]


def min_history_rows(seq_len: int, horizon: int, val_fraction: float, rows: int) -> int:
    """Fewest rows a ``holdout`` fit needs (a train window, and validation windows when
    ``val_fraction > 0``), or ``rows + 1`` when even ``rows`` are too few.

    >>> min_history_rows(24, 6, 0.0, 1000)
    30
    """
    for n in range(seq_len + horizon, rows + 1):
        try:
            plan_splits(n, seq_len, horizon, "holdout", val_fraction=val_fraction,
                        test_fraction=0.0)  # fmt: skip
        except ValueError:
            continue
        return n
    return rows + 1


def cutoff_rows(
    n_rows: int, *, horizon: int, n_windows: int, step_size: int, min_history: int
) -> list[int]:
    """History lengths of the ``n_windows`` forecasts, ``step_size`` apart, the last ending
    on row ``n_rows - 1``; a ``ValueError`` saying how many windows fit when they do not."""
    if isinstance(n_windows, bool) or n_windows < 1 or step_size < 1:
        raise ValueError(f"n_windows={n_windows} and step_size={step_size} must both be >= 1.")
    cutoffs = [n_rows - horizon - (n_windows - 1 - i) * step_size for i in range(n_windows)]
    if cutoffs[0] < min_history:
        most = max(0, (n_rows - horizon - min_history) // step_size + 1)
        raise ValueError(
            f"n_windows={n_windows} with step_size={step_size} and horizon={horizon} needs "
            f"{min_history + horizon + (n_windows - 1) * step_size} rows ({min_history} to fit "
            f"the first model on), but data has {n_rows}: ask for at most {most} windows, a "
            "smaller step_size, or pass more history."
        )
    return cutoffs


def refit_every(refit: bool | int) -> int:
    """``False`` -> 0 (fit once), ``True`` -> 1 (every window), ``k`` -> ``k``."""
    every = (1 if refit else 0) if isinstance(refit, bool) else int(refit)
    if every < 0:
        raise ValueError(f"refit={refit}: pass False, True or a number of windows >= 1.")
    return every


def long_forecasts(
    cutoff: object, actual: pd.DataFrame, prediction: pd.DataFrame, levels: Sequence[float]
) -> pd.DataFrame:
    """One cutoff's rows: ``cutoff, ds, variable, actual, forecast[, lo-<l>, hi-<l>]``."""
    parts = []
    for name in map(str, actual.columns):
        part = {
            "cutoff": cutoff, "ds": actual.index, "variable": name,
            "actual": actual[name].to_numpy(), "forecast": prediction[name].to_numpy(),
        }  # fmt: skip
        for level in levels:
            lo, hi = interval_columns(name, level)
            part[f"lo-{level:g}"] = prediction[lo].to_numpy()
            part[f"hi-{level:g}"] = prediction[hi].to_numpy()
        parts.append(pd.DataFrame(part))
    return pd.concat(parts, ignore_index=True)


def cutoff_metrics(forecasts: pd.DataFrame, levels: Sequence[float]) -> pd.DataFrame:
    """MAE, MSE, RMSE and interval coverage per cutoff, over its steps and variables."""
    error = forecasts["forecast"] - forecasts["actual"]
    table = pd.DataFrame({"cutoff": forecasts["cutoff"], "mae": error.abs(), "mse": error**2})
    for level in levels:
        inside = forecasts["actual"].between(forecasts[f"lo-{level:g}"], forecasts[f"hi-{level:g}"])
        table[f"coverage_{level:g}"] = inside.astype(float)
    metrics = table.groupby("cutoff", sort=True).mean()
    metrics.insert(2, "rmse", np.sqrt(metrics["mse"]))
    return metrics
