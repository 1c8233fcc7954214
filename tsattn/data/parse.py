"""Read the supported formats into one wide frame: rows are steps, one column per variable.

- wide CSV with a date column (Time-Series-Library / ETDataset style); a header that is not
  valid UTF-8 (weather.csv copies hold Latin-1 bytes) is read as Latin-1;
- LSTNet text files (no header, no dates): an integer step index, or a calendar built from a
  user-given ``start`` and ``freq``; ``.gz`` files are read directly;
- user DataFrames in wide form (DatetimeIndex, a date column, or no dates) and in long form
  (``unique_id``, ``ds``, ``y``).

Values are not checked here; :mod:`tsattn.data.validate` does that.

>>> import pandas as pd
>>> long = pd.DataFrame({"unique_id": ["a", "b", "a", "b"], "ds": [1, 1, 2, 2],
...                      "y": [1.0, 2.0, 3.0, 4.0]})
>>> from_long(long).to_numpy().tolist()
[[1.0, 2.0], [3.0, 4.0]]
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

__all__ = ["from_long", "read_lstnet", "read_wide_csv", "to_wide"]

_DATE_NAMES = ("date", "ds", "datetime", "timestamp", "time")
_LONG_COLUMNS = ("unique_id", "ds", "y")


def _read_text_csv(path: Path, encoding: str, **kwargs) -> pd.DataFrame:
    try:
        return pd.read_csv(path, encoding=encoding, **kwargs)
    except UnicodeDecodeError:
        return pd.read_csv(path, encoding="latin-1", **kwargs)


def _parse_dates(values: pd.Series, column: str, source: str) -> pd.DatetimeIndex:
    try:
        index = pd.DatetimeIndex(pd.to_datetime(values))
    except (ValueError, TypeError) as error:
        parsed = pd.to_datetime(values, errors="coerce")
        bad = parsed.isna() & values.notna()
        row = int(bad.to_numpy().argmax()) if bad.any() else 0
        raise ValueError(
            f"{source}: column {column!r} does not hold dates: row {row} has "
            f"{values.iloc[row]!r} ({error}). Fix the value, or pass date_column=None to "
            "use an integer step index."
        ) from error
    if index.hasnans:
        row = int(index.isna().argmax())
        raise ValueError(
            f"{source}: column {column!r} has a missing timestamp at row {row}; "
            "every row needs a date."
        )
    return index


def _set_date_index(frame: pd.DataFrame, date_column: str | None, source: str) -> pd.DataFrame:
    if date_column == "auto":
        lowered = {str(c).lower(): c for c in frame.columns}
        date_column = next((lowered[n] for n in _DATE_NAMES if n in lowered), None)
    elif date_column is not None and date_column not in frame.columns:
        raise ValueError(
            f"{source}: no date column {date_column!r}; columns are {list(frame.columns)[:8]}. "
            "Pass date_column=<name>, or date_column=None for data without dates."
        )
    if date_column is None:
        return frame
    index = _parse_dates(frame[date_column], str(date_column), source)
    out = frame.drop(columns=[date_column])
    out.index = index.rename("date")
    return out


def read_wide_csv(
    path: str | os.PathLike, *, date_column: str | None = "auto", encoding: str = "utf-8"
) -> pd.DataFrame:
    """Read a wide CSV; ``date_column="auto"`` takes the first of date/ds/datetime/timestamp/time.

    The date column becomes a ``DatetimeIndex`` named ``date``; other columns keep their names
    (as strings). Without a date column the index is a ``RangeIndex`` named ``step``.
    """
    path = Path(path)
    frame = _read_text_csv(path, encoding)
    frame.columns = [str(c) for c in frame.columns]
    frame = _set_date_index(frame, date_column, str(path))
    if not isinstance(frame.index, pd.DatetimeIndex):
        frame.index = pd.RangeIndex(len(frame), name="step")
    return frame


def _calendar(n_rows: int, start: object, freq: str | None, source: str) -> pd.Index:
    if start is None and freq is None:
        return pd.RangeIndex(n_rows, name="step")
    if start is None or freq is None:
        raise ValueError(
            f"{source}: give both start= and freq= to build a calendar (got start={start!r}, "
            f"freq={freq!r}), or neither for an integer step index."
        )
    return pd.date_range(start=start, periods=n_rows, freq=freq, name="date")


def read_lstnet(
    path: str | os.PathLike, *, start: object = None, freq: str | None = None
) -> pd.DataFrame:
    """Read an LSTNet text file: comma-separated numbers, no header, no dates.

    Columns are named ``"0" .. "N-1"``. The index is the integer step (``RangeIndex`` named
    ``step``) unless both ``start`` and ``freq`` are given, then a ``DatetimeIndex``.
    """
    path = Path(path)
    frame = pd.read_csv(path, header=None, encoding="latin-1")
    frame.columns = [str(c) for c in range(frame.shape[1])]
    frame.index = _calendar(len(frame), start, freq, str(path))
    return frame


def from_long(
    frame: pd.DataFrame, *, id_col: str = "unique_id", time_col: str = "ds", value_col: str = "y"
) -> pd.DataFrame:
    """Pivot a long frame (one row per series and time) to wide form.

    Columns follow the order in which the series first appear. A missing (series, time) pair
    becomes NaN, which validation then reports with its column and timestamp.
    """
    missing = [c for c in (id_col, time_col, value_col) if c not in frame.columns]
    if missing:
        raise ValueError(f"long-form data needs columns {[id_col, time_col, value_col]}; "
                         f"missing {missing}")  # fmt: skip
    duplicated = frame.duplicated(subset=[id_col, time_col], keep=False)
    if duplicated.any():
        row = int(duplicated.to_numpy().argmax())
        raise ValueError(
            f"long-form data: series {frame[id_col].iloc[row]!r} has more than one value at "
            f"{time_col}={frame[time_col].iloc[row]!r} (row {row}); keep one row per "
            f"({id_col}, {time_col})."
        )
    order = [str(u) for u in pd.unique(frame[id_col])]
    wide = frame.assign(**{id_col: frame[id_col].astype(str)}).pivot(
        index=time_col, columns=id_col, values=value_col
    )
    wide = wide[order]
    wide.columns = pd.Index(order)
    wide.columns.name = None
    times = wide.index
    if not pd.api.types.is_numeric_dtype(times):
        wide.index = _parse_dates(pd.Series(times), time_col, "long-form data").rename("date")
    else:
        wide.index = pd.Index(times, name="step")
    return wide.sort_index()


def to_wide(frame: pd.DataFrame, *, date_column: str | None = "auto") -> pd.DataFrame:
    """Bring a user DataFrame to wide form (copy-free where pandas allows).

    Long frames (``unique_id``, ``ds``, ``y``) are pivoted; a DatetimeIndex is kept; otherwise a
    date column is looked for as in :func:`read_wide_csv`.
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(frame).__name__}")
    if set(_LONG_COLUMNS) <= set(frame.columns) and frame.shape[1] == 3:
        return from_long(frame)
    out = frame.copy(deep=False)
    out.columns = [str(c) for c in out.columns]
    if isinstance(out.index, pd.DatetimeIndex):
        if out.index.hasnans:
            row = int(out.index.isna().argmax())
            raise ValueError(f"the DatetimeIndex has a missing timestamp (NaT) at row {row}")
        return out.rename_axis("date")
    out = _set_date_index(out, date_column, "DataFrame")
    if not isinstance(out.index, pd.DatetimeIndex | pd.RangeIndex) and not (
        pd.api.types.is_integer_dtype(out.index)
    ):
        out = out.reset_index(drop=True)
    return out
