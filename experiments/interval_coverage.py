"""Empirical coverage of tsattn's prediction intervals on every ETTh1 test window.

Run: ``python experiments/interval_coverage.py`` (ETTh1 ships with tsattn; a copy in
``$TSATTN_DATA_DIR`` is used first). Options: ``--seeds``, ``--max-steps``, ``--horizon``.

A :class:`tsattn.Forecaster` is fitted on ETTh1 under the Time-Series-Library protocol
(L = 96, train rows [0, 8640), validation [8640, 11520)) with the one-call defaults of
``tsattn.forecast`` (``FORECAST_DEFAULTS``: a small model, CPU-friendly) and ``--max-steps``
optimiser steps. Its split conformal intervals are calibrated on the validation windows; the
coverage is the share of the true values (every test window x horizon step x variable) inside
the 80 % and 95 % intervals, the width their mean width in original units. For comparison the
script also scores plain split conformal intervals (absolute errors not divided by the input
spread, the same validation windows), computed here beside the library's.
Writes ``experiments/results/interval_coverage.md``.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch

from tsattn.api import FORECAST_DEFAULTS, Forecaster
from tsattn.data import TimeSeriesDataModule, load_dataset
from tsattn.train.evaluation import forecast_windows

RESULTS = Path(__file__).parent / "results" / "interval_coverage.md"
LEVELS = (80.0, 95.0)


def splits(seq_len: int, horizon: int) -> TimeSeriesDataModule:
    dm = TimeSeriesDataModule("ETTh1", seq_len, horizon, protocol="tslib")
    dm.setup()
    return dm


def test_rows(dm: TimeSeriesDataModule):
    """The ETTh1 rows that the tslib test windows read."""
    starts = dm.datasets["test"].starts
    rows = dm.frame.iloc[starts.start : starts.stop - 1 + dm.plan.geometry.span]
    return rows, len(starts)


def plain_conformal_coverage(model: Forecaster, dm: TimeSeriesDataModule) -> dict[float, float]:
    """Coverage on the test windows of ``yhat +- q``, ``q`` the conformal quantile of the plain
    absolute errors of the validation windows, per step and variable."""

    def errors(split: str) -> torch.Tensor:
        parts = [(p - y).abs() for _, p, y in forecast_windows(model.model, dm.datasets[split])]
        return torch.cat(parts)  # (windows, H, N), standardised units

    val, test = errors("val").sort(dim=0).values, errors("test")
    n = val.shape[0]
    return {
        lv: float((test <= val[math.ceil((n + 1) * lv / 100) - 1]).float().mean()) for lv in LEVELS
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--max-steps", type=int, default=1000)
    parser.add_argument("--horizon", type=int, default=96)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    load_dataset("ETTh1")  # fail early when the data is missing
    options = {**FORECAST_DEFAULTS, "protocol": "tslib", "max_steps": args.max_steps,
               "progress_bar": False}  # fmt: skip
    dm = splits(options["seq_len"], args.horizon)
    rows, n_test = test_rows(dm)
    lines = []
    for seed in range(args.seeds):
        start = time.perf_counter()
        model = Forecaster(horizon=args.horizon, seed=seed, **options).fit("ETTh1")
        scores = model.evaluate(rows, level=list(LEVELS))
        assert scores["windows"] == n_test
        for lv, value in plain_conformal_coverage(model, dm).items():
            scores[f"plain_{lv:g}"] = value
        seconds = time.perf_counter() - start
        lines.append((seed, model.calibration_.windows, scores, seconds))
        print(f"seed {seed}: " + ", ".join(f"{k} {v:.4g}" for k, v in scores.items()))

    cols = " | ".join(f"coverage {lv:g} % | width {lv:g} %" for lv in LEVELS)
    plain = " | ".join(f"plain {lv:g} %" for lv in LEVELS)
    table = [
        f"| seed | calibration windows | test windows | test MSE | {cols} | {plain} | "
        "fit + score (s) |",
        "|---" * (5 + 3 * len(LEVELS)) + "|",
    ]
    for seed, n_cal, scores, seconds in lines:
        cells = " | ".join(
            f"{100 * scores[f'coverage_{lv:g}']:.1f} | {scores[f'width_{lv:g}']:.2f}"
            for lv in LEVELS
        )
        plain_cells = " | ".join(f"{100 * scores[f'plain_{lv:g}']:.1f}" for lv in LEVELS)
        table.append(
            f"| {seed} | {n_cal} | {scores['windows']} | {scores['mse']:.3f} | {cells} | "
            f"{plain_cells} | {seconds:.0f} |"
        )
    means = " | ".join(
        f"{100 * sum(s[f'coverage_{lv:g}'] for _, _, s, _ in lines) / len(lines):.1f} | "
        f"{sum(s[f'width_{lv:g}'] for _, _, s, _ in lines) / len(lines):.2f}"
        for lv in LEVELS
    )
    plain_means = " | ".join(
        f"{100 * sum(s[f'plain_{lv:g}'] for _, _, s, _ in lines) / len(lines):.1f}" for lv in LEVELS
    )
    mse = sum(s["mse"] for _, _, s, _ in lines) / len(lines)
    table.append(f"| mean | | | {mse:.3f} | {means} | {plain_means} | |")
    text = (
        "# Prediction interval coverage, ETTh1 test windows\n\n"
        f"Generated by `python experiments/interval_coverage.py --seeds {args.seeds} "
        f"--max-steps {args.max_steps} --horizon {args.horizon}` (CPU). Split conformal "
        "intervals per horizon step and variable, calibrated on the validation windows; "
        f"coverage over every test window x {args.horizon} steps x 7 variables (tslib "
        "protocol, L = 96, FORECAST_DEFAULTS model); widths in original units, MSE on the "
        "standardised values. `plain`: coverage of split conformal intervals on plain "
        "absolute errors (not divided by the input spread), for comparison.\n\n"
        + "\n".join(table)
        + "\n"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
