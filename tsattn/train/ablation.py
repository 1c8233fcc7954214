"""Mixer ablations: the same data, model and training for each mixer and seed; one table.

:func:`run_ablation` trains every ``(mixer, seed)`` pair with everything else fixed, writes each
run's result to ``<out>/runs/<mixer>-seed<k>/result.json`` as soon as it finishes, and skips
pairs whose result exists, so an interrupted ablation resumes where it stopped (a run killed
half-way restarts from its own ``last.ckpt``). The summary lands in ``<out>/ablation.csv``,
``<out>/ablation.md`` and ``<out>/ablation.png``: mean +- std over seeds of test MSE and MAE,
parameter count and training seconds per epoch (validation excluded).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from tsattn.nn.mixers import list_mixers
from tsattn.train.config import RunConfig
from tsattn.train.trainer import build_datamodule, fit_datamodule

__all__ = ["run_ablation", "summarize", "write_table"]


def _run_one(cfg: RunConfig, run_dir: Path) -> dict:
    last = run_dir / "checkpoints" / "last.ckpt"
    started = time.perf_counter()
    result = fit_datamodule(
        build_datamodule(cfg.data),
        model=cfg.model,
        train=cfg.train,
        use_time_features=cfg.data.use_time_features,
        run_dir=run_dir,
        ckpt_path=str(last) if last.is_file() else None,
    )
    metrics = result.metrics
    if "test_mse" not in metrics:
        raise ValueError(
            f"run {run_dir.name} produced no test metrics: the ablation needs a test split "
            "(set data.test_fraction > 0 for user data)."
        )
    return {
        "mixer": cfg.model.get("mixer", "identity"),
        "seed": cfg.train.seed,
        "test_mse": metrics["test_mse"],
        "test_mae": metrics["test_mae"],
        "test_rse": metrics.get("test_rse"),
        "test_corr": metrics.get("test_corr"),
        "best_val_loss": metrics.get("best_val_loss"),
        "params": sum(p.numel() for p in result.module.model.parameters()),
        "epochs": len(result.epoch_seconds),
        "sec_per_epoch": float(np.mean(result.epoch_seconds)) if result.epoch_seconds else None,
        "wall_seconds": time.perf_counter() - started,
    }


def run_ablation(
    base: RunConfig,
    mixers: Sequence[str],
    seeds: int | Sequence[int],
    out_dir: str | Path,
    *,
    keep_checkpoints: bool = False,
) -> pd.DataFrame:
    """Train each mixer for each seed, skip finished runs, write and return the summary table.

    ``seeds``: a count (seeds ``base.train.seed + 0 .. n-1``) or explicit seeds.
    """
    unknown = [m for m in mixers if m not in list_mixers()]
    if unknown or not mixers:
        raise ValueError(
            f"mixers {unknown or list(mixers)} are not valid: "
            f"choose from {', '.join(list_mixers())}."
        )
    seed_list = (
        [base.train.seed + k for k in range(seeds)] if isinstance(seeds, int) else list(seeds)
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    base.to_yaml(out_dir / "base_config.yaml")
    rows = []
    total = len(mixers) * len(seed_list)
    for k, (mixer, seed) in enumerate(((m, s) for m in mixers for s in seed_list), 1):
        run_dir = out_dir / "runs" / f"{mixer}-seed{seed}"
        result_file = run_dir / "result.json"
        if result_file.is_file():
            rows.append(json.loads(result_file.read_text()))
            print(f"[{k}/{total}] {mixer} seed {seed}: done before, skipped", flush=True)
            continue
        cfg = dataclasses.replace(
            base,
            model={**base.model, "mixer": mixer},
            train=dataclasses.replace(base.train, seed=seed),
        )
        print(f"[{k}/{total}] {mixer} seed {seed}: training", flush=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg.to_yaml(run_dir / "config.yaml")
        row = _run_one(cfg, run_dir)
        result_file.write_text(json.dumps(row, indent=2))
        if not keep_checkpoints:
            shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
        print(
            f"[{k}/{total}] {mixer} seed {seed}: test MSE {row['test_mse']:.4f} "
            f"MAE {row['test_mae']:.4f}",
            flush=True,
        )
        rows.append(row)
    table = summarize(pd.DataFrame(rows), order=list(mixers))
    write_table(table, out_dir, title=_title(base))
    return table


def _title(cfg: RunConfig) -> str:
    data = Path(cfg.data.data).name if cfg.data.data else "data"
    protocol = build_datamodule(cfg.data).protocol  # "auto" resolved, nothing loaded
    return (
        f"{data}, L={cfg.data.seq_len}, H={cfg.data.horizon}, {protocol} protocol, "
        f"{cfg.train.max_epochs} epochs max, lr {cfg.train.lr:g}"
    )


def summarize(runs: pd.DataFrame, order: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per mixer: runs, mean/std of test MSE and MAE, params, seconds per epoch."""
    grouped = runs.groupby("mixer", sort=False)
    table = pd.DataFrame(
        {
            "runs": grouped.size(),
            "mse_mean": grouped["test_mse"].mean(),
            "mse_std": grouped["test_mse"].std(ddof=1).fillna(0.0),
            "mae_mean": grouped["test_mae"].mean(),
            "mae_std": grouped["test_mae"].std(ddof=1).fillna(0.0),
            "params": grouped["params"].first().astype(int),
            "sec_per_epoch": grouped["sec_per_epoch"].mean(),
        }
    )
    if order is not None:
        table = table.reindex([m for m in order if m in table.index])
    table.index.name = "mixer"
    return table


def write_table(table: pd.DataFrame, out_dir: str | Path, title: str = "") -> None:
    """``ablation.csv``, ``ablation.md`` and ``ablation.png`` (bars with +-1 std) in ``out_dir``."""
    from matplotlib.figure import Figure

    out_dir = Path(out_dir)
    table.to_csv(out_dir / "ablation.csv", float_format="%.6g")
    lines = [
        f"Mixer ablation: {title}" if title else "Mixer ablation",
        "",
        "| mixer | runs | MSE | MAE | params | s/epoch |",
        "|---|---|---|---|---|---|",
    ]
    for r in table.itertuples():
        lines.append(
            f"| {r.Index} | {r.runs} | {r.mse_mean:.4f} +- {r.mse_std:.4f} | "
            f"{r.mae_mean:.4f} +- {r.mae_std:.4f} | {r.params:,} | {r.sec_per_epoch:.1f} |"
        )
    (out_dir / "ablation.md").write_text("\n".join(lines) + "\n")

    fig = Figure(figsize=(max(5, 1.1 * len(table)) * 2, 3.5))
    for k, metric in enumerate(("mse", "mae")):
        ax = fig.add_subplot(1, 2, k + 1)
        ax.bar(table.index, table[f"{metric}_mean"], yerr=table[f"{metric}_std"], capsize=4,
               color=[f"C{i}" for i in range(len(table))])  # fmt: skip
        low = float((table[f"{metric}_mean"] - 2 * table[f"{metric}_std"]).min())
        high = float((table[f"{metric}_mean"] + 2 * table[f"{metric}_std"]).max())
        pad = 0.1 * max(high - low, 1e-6)
        ax.set_ylim(max(0.0, low - pad), high + pad)
        ax.set_title(f"test {metric.upper()} (mean +- std)")
        ax.tick_params(axis="x", rotation=30)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out_dir / "ablation.png", dpi=120)
