"""Check a wide frame before it is split and windowed; every error says what, where and what to do.

Checked: non-numeric columns (drop them with ``drop_columns``), NaN / inf values (error unless
``fill`` is given), missing, duplicated or unsorted timestamps (``sort=True`` sorts), irregular
spacing (never resampled silently), zero variables, constant columns (a warning: they scale to 0).

>>> import pandas as pd
>>> frame = pd.DataFrame({"a": [1.0, None, 3.0]})
>>> validate_frame(frame, fill="interpolate")["a"].tolist()
[1.0, 2.0, 3.0]
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

__all__ = ["FILL_METHODS", "check_enough_rows", "validate_frame"]

FILL_METHODS = ("ffill", "interpolate", "zero")


def _where(frame: pd.DataFrame, row: int) -> str:
    label = frame.index[row]
    if isinstance(frame.index, pd.DatetimeIndex):
        return f"row {row} ({label})"
    return f"row {row}"


def _numeric_only(frame: pd.DataFrame, drop_columns, source: str) -> pd.DataFrame:
    if drop_columns:
        unknown = [c for c in drop_columns if c not in frame.columns]
        if unknown:
            raise ValueError(
                f"{source}: drop_columns names {unknown}, which are not columns; "
                f"columns are {list(frame.columns)}"
            )
        frame = frame.drop(columns=list(drop_columns))
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            continue
        coerced = pd.to_numeric(values, errors="coerce")
        bad = coerced.isna() & values.notna()
        row = int(bad.to_numpy().argmax()) if bad.any() else 0
        raise ValueError(
            f"{source}: column {column!r} is not numeric (dtype {values.dtype}): "
            f"{_where(frame, row)} holds {values.iloc[row]!r}. Drop it with "
            f"drop_columns=[{column!r}] or convert it to numbers first."
        )
    if frame.shape[1] == 0:
        raise ValueError(
            f"{source}: no variables: the data has no numeric value columns left "
            "(check the file, the date column and drop_columns)."
        )
    if len(frame) == 0:
        raise ValueError(f"{source}: the data has no rows.")
    return frame


def _check_finite(frame: pd.DataFrame, fill: str | None, source: str) -> pd.DataFrame:
    values = frame.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if not bad.any():
        return frame
    if fill is None:
        flat = int(bad.argmax())
        row, col = divmod(flat, values.shape[1])
        kind = "NaN" if np.isnan(values[row, col]) else "inf"
        columns = [str(c) for c, b in zip(frame.columns, bad.any(axis=0), strict=True) if b]
        raise ValueError(
            f"{source}: column {frame.columns[col]!r} holds {kind} at {_where(frame, row)}; "
            f"{int(bad.sum())} non-finite values in total, in column(s) {columns}. "
            f"Pass fill= one of {list(FILL_METHODS)} to fill them, or clean the data first."
        )
    if fill not in FILL_METHODS:
        raise ValueError(f"fill must be one of {list(FILL_METHODS)} or None, got {fill!r}")
    cleaned = frame.astype(np.float64).mask(bad)
    if fill == "ffill":
        cleaned = cleaned.ffill().bfill()
    elif fill == "interpolate":
        cleaned = cleaned.interpolate(method="linear", limit_direction="both")
    else:
        cleaned = cleaned.fillna(0.0)
    empty = [str(c) for c in cleaned.columns if cleaned[c].isna().all()]
    if empty:
        raise ValueError(f"{source}: column(s) {empty} hold no finite value at all; drop them "
                         "with drop_columns=[...]")  # fmt: skip
    return cleaned


def _check_time(frame: pd.DataFrame, sort: bool, allow_irregular: bool, source: str):
    index = frame.index
    if not isinstance(index, pd.DatetimeIndex) or len(index) < 2:
        return frame
    duplicated = index.duplicated(keep=False)
    if duplicated.any() and not allow_irregular:
        row = int(duplicated.argmax())
        rows = np.flatnonzero(index == index[row])[:5].tolist()
        raise ValueError(
            f"{source}: timestamp {index[row]} appears {int((index == index[row]).sum())} "
            f"times (rows {rows}); {int(index.duplicated().sum())} duplicated timestamps in "
            "total. Remove or aggregate duplicates first, e.g. "
            "frame.groupby(level=0).mean()."
        )
    stamps = index.as_unit("ns").asi8
    steps = np.diff(stamps)
    if (steps < 0).any():  # strictly earlier; equal stamps are duplicates, handled above
        if not sort:
            row = int((steps < 0).argmax()) + 1
            raise ValueError(
                f"{source}: timestamps are not sorted: row {row} ({index[row]}) comes after "
                f"row {row - 1} ({index[row - 1]}). Pass sort=True to sort the rows by time."
            )
        frame = frame.sort_index()
        index = frame.index
        stamps = index.as_unit("ns").asi8
        steps = np.diff(stamps)
    if allow_irregular or len(index) < 3:
        return frame
    from tsattn.data.timefeatures import infer_freq

    if infer_freq(index, strict=True) is not None:
        return frame
    values, counts = np.unique(steps, return_counts=True)
    usual = int(values[counts.argmax()])
    odd = np.flatnonzero(steps != usual)
    shown = ", ".join(
        f"row {i} ({index[i]}) -> row {i + 1} ({index[i + 1]}): "
        f"{pd.Timedelta(int(steps[i]), unit='ns')}"
        for i in odd[:3]
    )
    raise ValueError(
        f"{source}: irregular spacing: the usual step is {pd.Timedelta(usual, unit='ns')}, but "
        f"{len(odd)} step(s) differ: {shown}. tsattn does not resample silently: resample "
        "the data yourself (e.g. frame.asfreq(freq) then fill=...), or pass "
        "allow_irregular=True to window it as it is."
    )


def validate_frame(
    frame: pd.DataFrame,
    *,
    fill: str | None = None,
    drop_columns: list[str] | tuple[str, ...] | None = None,
    sort: bool = False,
    allow_irregular: bool = False,
    source: str = "data",
) -> pd.DataFrame:
    """Return ``frame`` checked and cleaned as the options allow, values as float64.

    Args:
        fill: ``None`` (NaN / inf are errors), ``"ffill"`` (forward fill, leading gaps back
            filled), ``"interpolate"`` (linear, ends held) or ``"zero"``.
        drop_columns: columns to drop before the numeric check (e.g. a text label column).
        sort: sort unsorted timestamps instead of raising.
        allow_irregular: accept irregular spacing and repeated timestamps instead of raising
            (they must still be in order, or ``sort=True``).
        source: a name for the data used in messages (file path or dataset name).
    """
    frame = _numeric_only(frame, drop_columns, source)
    frame = _check_time(frame, sort, allow_irregular, source)
    frame = _check_finite(frame, fill, source)
    frame = frame.astype(np.float64)
    constant = frame.columns[(frame.max() - frame.min()).to_numpy() == 0]
    if len(constant):
        warnings.warn(
            f"{source}: constant column(s) {[str(c) for c in constant][:10]}: they carry no "
            "signal; scaling maps them to 0 (their scale is set to 1, never divided by 0).",
            UserWarning,
            stacklevel=2,
        )
    return frame


def check_enough_rows(n_rows: int, seq_len: int, horizon: int, source: str = "data") -> None:
    """Raise when ``n_rows`` cannot hold even one window of ``seq_len`` inputs + ``horizon``."""
    if seq_len < 1 or horizon < 1:
        raise ValueError(f"seq_len and horizon must be >= 1, got {seq_len} and {horizon}")
    if n_rows < seq_len + horizon:
        raise ValueError(
            f"{source}: {n_rows} rows is too short for seq_len={seq_len} + horizon={horizon}: "
            f"one window needs at least {seq_len + horizon} rows (and each of the train / val / "
            "test splits needs its own). Use a shorter seq_len or horizon, or more data."
        )
