"""Benchmark split protocols (``PROTOCOLS.md``) as row ranges and one window geometry.

A window reads ``input_length`` rows starting at ``s``, skips ``gap`` rows, then reads
``target_length`` target rows. Both protocols are this one shape:

- ``tslib``: ``input_length = L``, ``gap = 0``, ``target_length = H``. Splits: the ETT month
  borders (``ett_hour``: train ``[0, 8640)``, val ``[8640, 11520)``, test ``[11520, 14400)``;
  ``ett_minute``: x4) or ``ratio`` (``int(0.7 n)`` train, ``int(0.2 n)`` test, the rest val).
  Val and test slices begin ``L`` rows before their split.
- ``mtgnn``: ``input_length = P``, ``gap = h - 1``, ``target_length = 1``: target row ``i``
  with inputs ``[i-h-P+1, i-h]``. Targets: train ``[P+h-1, int(0.6 n))``, val
  ``[int(0.6 n), int(0.8 n))``, test ``[int(0.8 n), n)``.
- ``holdout`` (user data): like ``tslib`` with chronological fractions
  ``n_test = int(test_fraction n)``, ``n_val = int(val_fraction n)``, train the rest.

Each split is the row slice ``[lo, hi)`` its windows live in; window starts run over
``range(lo, hi - span + 1)`` with ``span = input_length + gap + target_length``.

>>> plan = plan_splits(17420, 96, 96, "tslib", split="ett_hour")
>>> {k: len(v) for k, v in plan.starts.items()}
{'train': 8449, 'val': 2785, 'test': 2785}
>>> plan = plan_splits(7588, 168, 3, "mtgnn")
>>> {k: len(v) for k, v in plan.starts.items()}
{'train': 4382, 'val': 1518, 'test': 1518}
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PROTOCOLS", "SplitPlan", "WindowGeometry", "plan_splits"]

PROTOCOLS = ("tslib", "mtgnn", "holdout")
_ETT_HOUR = (12 * 30 * 24, 4 * 30 * 24, 4 * 30 * 24)  # train, val, test rows (30-day months)


@dataclass(frozen=True)
class WindowGeometry:
    """Input rows, skipped rows and target rows of one window."""

    input_length: int
    gap: int
    target_length: int

    @property
    def span(self) -> int:
        """Rows one window covers, from its first input row to its last target row."""
        return self.input_length + self.gap + self.target_length


@dataclass(frozen=True)
class SplitPlan:
    """Where each split's windows start, and which rows the scaler is fitted on."""

    protocol: str
    geometry: WindowGeometry
    slices: dict[str, tuple[int, int]]  # split -> row slice [lo, hi) its windows live in
    train_rows: tuple[int, int]  # rows the scaler is fitted on
    n_rows: int

    @property
    def starts(self) -> dict[str, range]:
        """Window start rows per split (empty ranges for disabled splits)."""
        span = self.geometry.span
        return {name: range(lo, max(lo, hi - span + 1)) for name, (lo, hi) in self.slices.items()}


def plan_splits(
    n_rows: int,
    seq_len: int,
    horizon: int,
    protocol: str,
    *,
    split: str = "ratio",
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    source: str = "data",
) -> SplitPlan:
    """Row slices, window geometry and scaler rows for ``protocol`` on ``n_rows`` rows.

    Raises ``ValueError`` naming the split and the rows it needs when a split that should
    hold windows holds none.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {list(PROTOCOLS)}, got {protocol!r}")
    if seq_len < 1 or horizon < 1:
        raise ValueError(f"seq_len and horizon must be >= 1, got {seq_len} and {horizon}")
    L = seq_len
    if protocol == "mtgnn":
        geometry = WindowGeometry(L, horizon - 1, 1)
        n_train, n_trval = int(0.6 * n_rows), int(0.8 * n_rows)
        back = geometry.span - 1  # rows before a target row that its window reads
        slices = {
            "train": (0, n_train),
            "val": (n_train - back, n_trval),
            "test": (n_trval - back, n_rows),
        }
        train_rows = (0, n_train)
    else:
        geometry = WindowGeometry(L, 0, horizon)
        if protocol == "tslib" and split in ("ett_hour", "ett_minute"):
            scale = 1 if split == "ett_hour" else 4
            n_train, n_val, n_test = (scale * r for r in _ETT_HOUR)
            if n_rows < n_train + n_val + n_test:
                raise ValueError(
                    f"{source}: the {split} borders need {n_train + n_val + n_test} rows, the "
                    f"data has {n_rows}; is this the ETT file?"
                )
        elif protocol == "tslib":
            if split != "ratio":
                raise ValueError(
                    f"split must be 'ett_hour', 'ett_minute' or 'ratio', got {split!r}"
                )
            n_train, n_test = int(0.7 * n_rows), int(0.2 * n_rows)
            n_val = n_rows - n_train - n_test
        else:
            for label, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
                if not 0.0 <= value < 1.0:
                    raise ValueError(f"{label} must be in [0, 1), got {value}")
            n_test, n_val = int(test_fraction * n_rows), int(val_fraction * n_rows)
            n_train = n_rows - n_val - n_test
        val_end = n_train + n_val
        slices = {
            "train": (0, n_train),
            "val": (n_train - L, val_end) if n_val > 0 else (n_train, n_train),
            "test": (val_end - L, val_end + n_test) if n_test > 0 else (val_end, val_end),
        }
        train_rows = (0, n_train)
    plan = SplitPlan(protocol, geometry, slices, train_rows, n_rows)
    for name, (lo, hi) in slices.items():
        if hi > lo and len(plan.starts[name]) == 0:
            need = geometry.span - (hi - lo)
            raise ValueError(
                f"{source}: the {name} split (rows {lo}..{hi}, {hi - lo} rows) holds no window "
                f"of seq_len={seq_len} and horizon={horizon} under the {protocol!r} protocol: it "
                f"needs {geometry.span} rows, {need} more. {n_rows} rows in total; use a "
                "shorter seq_len or horizon, or more data"
                + (" (or other val/test fractions)." if protocol == "holdout" else ".")
            )
    return plan
