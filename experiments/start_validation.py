"""Validation MSE of the recipe's closed-form start alone, before any training step.

The trainer starts the recipe's learned cycle at its phase means and its linear shortcut at a
least-squares fit (``tsattn.train.trainer.fit_start``); the gated TCN's head starts at zero, so
the untrained model forecasts with the closed-form parts alone. This script scores that start
on the validation windows (the test split is never read), per dataset, horizon and
``train.shortcut_init`` (``least_squares``: every window counts alike in RevIN's normalised
space; ``weighted_least_squares``: each weighted by its variance, the squared error of the
denormalised forecast), and puts the trained cells of a validation search beside it when they
exist (``--cells``: ``<search>/cells/<candidate>/<dataset>-h<H>-seed0.json``).

    python experiments/start_validation.py --datasets ETTh1,ETTh2,ETTm1 --horizons 96,720 \\
        --cells experiments/results/start_search
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))

from bench_speed import markdown, write_report  # noqa: E402

from tsattn import MTGNN, MTGNNConfig  # noqa: E402
from tsattn.data.datamodule import TimeSeriesDataModule  # noqa: E402
from tsattn.train.recipe import resolve_model_options  # noqa: E402
from tsattn.train.trainer import fit_start  # noqa: E402

STARTS = {"least_squares": "default", "weighted_least_squares": "wls"}  # -> search candidate


def start_val(dataset: str, horizon: int, weighted: bool, root: str | None) -> tuple[float, float]:
    """Validation MSE and MAE (scaled units, every window) of the recipe model right after its
    start; the MAE is the recipe's L1 ``val_loss``, which picks the best checkpoint."""
    dm = TimeSeriesDataModule(dataset, 96, horizon, batch_size=256, root=root)
    dm.setup()
    options = resolve_model_options("tslib", dm.num_nodes, horizon, {}, "auto", freq=dm.freq)
    torch.manual_seed(0)
    config = MTGNNConfig(num_nodes=dm.num_nodes, seq_len=96, horizon=horizon,
                         time_features=dm.n_time_features, **options)  # fmt: skip
    model = MTGNN(config).eval()
    fit_start(model, dm.train_dataloader(), weighted=weighted)
    squared, absolute, count = 0.0, 0.0, 0
    with torch.no_grad():
        for x, y, marks, step in dm.val_dataloader():
            error = model(x, marks, step) - y
            squared += (error**2).sum().item()
            absolute += error.abs().sum().item()
            count += y.numel()
    return squared / count, absolute / count


def trained(cells: Path | None, candidate: str, dataset: str, horizon: int) -> str:
    """``"MSE / MAE"`` of the search cell's best checkpoint on the validation windows."""
    path = cells / "cells" / candidate / f"{dataset}-h{horizon}-seed0.json" if cells else None
    if path is None or not path.exists():
        return ""
    cell = json.loads(path.read_text())
    return f"{cell['val_mse']:.4f} / {cell['val_mae']:.4f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="ETTh1,ETTh2,ETTm1")
    parser.add_argument("--horizons", default="96,720")
    parser.add_argument("--cells", type=Path, default=None, help="a validation search's --out")
    out = ROOT / "experiments/results/start_search/start_only.md"
    parser.add_argument("--out", type=Path, default=out)
    args = parser.parse_args(argv)
    root = os.environ.get("TSATTN_DATA_DIR")
    rows = []
    for dataset in args.datasets.split(","):
        for horizon in [int(h) for h in args.horizons.split(",")]:
            row = [dataset, str(horizon)]
            for start, candidate in STARTS.items():
                mse, mae = start_val(dataset, horizon, start == "weighted_least_squares", root)
                row += [f"{mse:.4f} / {mae:.4f}", trained(args.cells, candidate, dataset, horizon)]
            rows.append(row)
            print(" | ".join(row), flush=True)
    headers = ["dataset", "H", "least_squares start", "trained from it (default)",
               "weighted_least_squares start", "trained from it (wls)"]  # fmt: skip
    header = (
        f"cpu, torch {torch.__version__}; tslib protocol, L=96; validation MSE / MAE in scaled "
        "units, every validation window; start: the recipe model before any training step; "
        f"trained: the best checkpoint of the search cell ({args.cells or 'none given'})"
    )
    write_report("start_validation", header, [("Closed-form start alone", markdown(headers, rows))],
                 args.out)  # fmt: skip


if __name__ == "__main__":
    main()
