"""Calendar features for the time marks, frequency inference and future timestamps.

The features follow Time-Series-Library's ``timeenc=1`` encoding: each is a calendar field
scaled to ``[-0.5, 0.5]``, and the set depends on the step of the series:

=============  ==========================================================================
step           features (in this order)
=============  ==========================================================================
year           none
quarter/month  month-of-year
week           day-of-month, week-of-year
day / bday     day-of-week, day-of-month, day-of-year
hour           hour-of-day, day-of-week, day-of-month, day-of-year
minute         minute-of-hour, hour-of-day, day-of-week, day-of-month, day-of-year
second         second-of-minute + the minute set
=============  ==========================================================================

One departure: Time-Series-Library passes ``freq="h"`` for every dataset unless told
otherwise, so its ETTm runs get the 4 hourly features; here the step of the data decides
(ETTm1 gets 5, with minute-of-hour).

>>> import pandas as pd
>>> idx = pd.date_range("2016-07-01", periods=3, freq="h")
>>> time_features(idx, "h").shape
(3, 4)
>>> infer_freq(idx)
'h'
>>> future_index(idx, 2).strftime("%H:%M").tolist()
['03:00', '04:00']
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

__all__ = [
    "cycle_lengths",
    "daily_cycle",
    "future_index",
    "grid_steps",
    "infer_freq",
    "span",
    "time_features",
]


def _second(i: pd.DatetimeIndex) -> np.ndarray:
    return i.second.to_numpy() / 59.0 - 0.5


def _minute(i: pd.DatetimeIndex) -> np.ndarray:
    return i.minute.to_numpy() / 59.0 - 0.5


def _hour(i: pd.DatetimeIndex) -> np.ndarray:
    return i.hour.to_numpy() / 23.0 - 0.5


def _day_of_week(i: pd.DatetimeIndex) -> np.ndarray:
    return i.day_of_week.to_numpy() / 6.0 - 0.5


def _day_of_month(i: pd.DatetimeIndex) -> np.ndarray:
    return (i.day.to_numpy() - 1) / 30.0 - 0.5


def _day_of_year(i: pd.DatetimeIndex) -> np.ndarray:
    return (i.day_of_year.to_numpy() - 1) / 365.0 - 0.5


def _month(i: pd.DatetimeIndex) -> np.ndarray:
    return (i.month.to_numpy() - 1) / 11.0 - 0.5


def _week(i: pd.DatetimeIndex) -> np.ndarray:
    return (i.isocalendar().week.to_numpy(dtype=np.float64) - 1) / 52.0 - 0.5


_DAILY = (_day_of_week, _day_of_month, _day_of_year)
_BY_OFFSET = {
    "YearEnd": (), "YearBegin": (), "BYearEnd": (), "BYearBegin": (),
    "QuarterEnd": (_month,), "QuarterBegin": (_month,), "BQuarterEnd": (_month,),
    "BQuarterBegin": (_month,), "MonthEnd": (_month,), "MonthBegin": (_month,),
    "BusinessMonthEnd": (_month,), "BusinessMonthBegin": (_month,),
    "Week": (_day_of_month, _week),
    "Day": _DAILY, "BusinessDay": _DAILY, "CustomBusinessDay": _DAILY,
    "Hour": (_hour, *_DAILY), "BusinessHour": (_hour, *_DAILY),
    "Minute": (_minute, _hour, *_DAILY),
    "Second": (_second, _minute, _hour, *_DAILY),
    "Milli": (_second, _minute, _hour, *_DAILY),
    "Micro": (_second, _minute, _hour, *_DAILY),
    "Nano": (_second, _minute, _hour, *_DAILY),
}  # fmt: skip


def infer_freq(index: pd.Index, *, strict: bool = False) -> str | None:
    """The step of ``index`` as a pandas frequency string, or ``None`` without dates.

    ``pandas.infer_freq`` decides for regular indexes; otherwise (``strict=False``) the most
    common step is returned, e.g. ``"h"`` for an hourly series with a gap.
    """
    if not isinstance(index, pd.DatetimeIndex) or len(index) < 2:
        return None
    if len(index) >= 3:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                found = pd.infer_freq(index)
            except (TypeError, ValueError):
                found = None
        if found is not None:
            return found if isinstance(found, str) else found.freqstr
    if strict:
        return None
    values, counts = np.unique(np.diff(index.as_unit("ns").asi8), return_counts=True)
    usual = int(values[counts.argmax()])
    if usual <= 0:
        return None
    return to_offset(pd.Timedelta(usual, unit="ns")).freqstr


def _fixed_step(freq: str | None) -> pd.Timedelta | None:
    """The step of ``freq`` as a duration, or ``None`` for calendar steps (months, business
    days) and no dates."""
    if freq is None:
        return None
    try:
        step = pd.Timedelta(to_offset(freq))
    except (TypeError, ValueError):
        return None
    return step if step > pd.Timedelta(0) else None


def grid_steps(index: pd.Index, freq: str | None = None) -> np.ndarray:
    """Each row's position on the time grid of the series, ``(T,)`` int64.

    With dates and a fixed step, the whole steps since 1970-01-01 00:00 (wall-clock time), so a
    position taken modulo a cycle is a calendar phase (the hour of the day for hourly data and a
    cycle of 24) whichever rows a window comes from. Without dates (or with a calendar step such
    as months) the integer labels of the index, else the row numbers.

    >>> idx = pd.date_range("2016-07-01 05:00", periods=3, freq="h")
    >>> (grid_steps(idx, "h") % 24).tolist()
    [5, 6, 7]
    >>> grid_steps(pd.RangeIndex(10, 13)).tolist()
    [10, 11, 12]
    """
    step = _fixed_step(freq or infer_freq(index))
    if isinstance(index, pd.DatetimeIndex) and step is not None:
        wall = index.tz_localize(None) if index.tz is not None else index
        return np.asarray(wall.as_unit("ns").asi8 // step.value, dtype=np.int64)
    if pd.api.types.is_integer_dtype(index.dtype):
        return index.to_numpy(dtype=np.int64, copy=True)
    return np.arange(len(index), dtype=np.int64)


def daily_cycle(freq: str | None) -> int:
    """Steps in the series' main cycle: one day for steps that divide a day (24 for hourly, 96
    for 15-minute, 144 for 10-minute data), one week (7) for daily data, 0 otherwise.

    >>> [daily_cycle(freq) for freq in ("h", "15min", "10min", "D", "MS", None)]
    [24, 96, 144, 7, 0, 0]
    """
    step, day = _fixed_step(freq), pd.Timedelta(days=1)
    if step is None:
        return 0
    if step == day:
        return 7
    if step < day and day.value % step.value == 0:
        return day.value // step.value
    return 0


def cycle_lengths(freq: str | None) -> tuple[int, ...]:
    """The cycles a series of step ``freq`` may follow, shortest first: a day and a week for
    steps that divide a day (24 and 168 for hourly data), a week (7) for daily data, none
    otherwise. ``MTGNNConfig.cycle_length="auto"`` chooses among them
    (:func:`tsattn.train.recipe.resolve_model_options`).

    >>> [cycle_lengths(freq) for freq in ("h", "15min", "D", "MS", None)]
    [(24, 168), (96, 672), (7,), (), ()]
    """
    day = daily_cycle(freq)
    if not day:
        return ()
    return (day, 7 * day) if _fixed_step(freq) < pd.Timedelta(days=1) else (day,)


def span(freq: str | None, steps: int) -> pd.Timedelta | None:
    """The time ``steps`` steps of ``freq`` cover, calendar steps included (``None`` without
    dates); the recipe keeps the calendar marks where a forecast spans a week
    (:func:`tsattn.train.recipe.resolve_time_features`).

    >>> [str(span(freq, 96)) for freq in ("h", "15min", "10min")]
    ['4 days 00:00:00', '1 days 00:00:00', '0 days 16:00:00']
    >>> span("MS", 1) >= pd.Timedelta(days=28), span(None, 96)
    (True, None)
    """
    if freq is None:
        return None
    try:
        offset = to_offset(freq)
    except (TypeError, ValueError):
        return None
    start = pd.Timestamp("2000-01-03")  # a Monday at midnight
    return (start + steps * offset) - start


def _offset_features(freq: str):
    offset = to_offset(freq)
    name = type(offset).__name__
    if name not in _BY_OFFSET:
        raise ValueError(
            f"no calendar features for frequency {freq!r} ({name}); pass "
            "use_time_features=False or a standard pandas frequency (h, 15min, D, W, MS, ...)"
        )
    return _BY_OFFSET[name]


def time_features(index: pd.Index, freq: str | None = None) -> np.ndarray:
    """Calendar features of ``index`` as a ``(T, F)`` float32 array with values in [-0.5, 0.5].

    ``freq=None`` infers the step from the index. Without dates ``F = 0``.

    >>> import pandas as pd
    >>> time_features(pd.RangeIndex(4)).shape
    (4, 0)
    """
    if not isinstance(index, pd.DatetimeIndex):
        return np.zeros((len(index), 0), dtype=np.float32)
    freq = freq or infer_freq(index)
    if freq is None:
        return np.zeros((len(index), 0), dtype=np.float32)
    columns = [feature(index) for feature in _offset_features(freq)]
    if not columns:
        return np.zeros((len(index), 0), dtype=np.float32)
    return np.stack(columns, axis=1).astype(np.float32)


def future_index(index: pd.Index, horizon: int) -> pd.Index:
    """The ``horizon`` timestamps (or integer steps) that follow ``index``.

    >>> import pandas as pd
    >>> future_index(pd.RangeIndex(5), 3)
    RangeIndex(start=5, stop=8, step=1)
    """
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    if isinstance(index, pd.DatetimeIndex):
        freq = infer_freq(index)
        if freq is None:
            raise ValueError(
                "cannot infer the step of the DatetimeIndex (fewer than 2 timestamps); "
                "give a longer history"
            )
        offset = to_offset(freq)
        return pd.date_range(index[-1] + offset, periods=horizon, freq=offset, name=index.name)
    if len(index) == 0:
        return pd.RangeIndex(horizon)
    if isinstance(index, pd.RangeIndex):
        step = index.step
    else:
        step = int(index[-1] - index[-2]) if len(index) > 1 else 1
    start = int(index[-1]) + step
    return pd.RangeIndex(start, start + step * horizon, step, name=index.name)
