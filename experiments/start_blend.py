"""Validation MSE of the trained model blended with its own closed-form start, the blend's
weight chosen on windows other than those it is scored on.

``experiments/seed_ensemble.py`` averages each member with its start at equal weights. Here the
weight ``alpha`` of the forecast ``(1 - alpha) * start + alpha * trained`` is read off the first
half of the validation windows (in time order, on a grid of tenths) and scored on the later
half, less the ``horizon - 1`` windows whose targets overlap the first half's
(:func:`selection_holdout.split_validation`), beside the start and the trained model alone: a
blend the trainer could choose per fit would have to win there. One fit per cell, the
recipe's default (seed 0), which picks its best checkpoint on all validation windows (so the
later half favours the trained model, if anything); the test split is never read::

    python experiments/start_blend.py --cells ETTh2:336,ETTh2:720,ETTh1:336,ETTh1:96
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))

from bench_speed import markdown, write_report  # noqa: E402
from selection_holdout import split_validation  # noqa: E402

from tsattn.train.checkpoint import load_checkpoint  # noqa: E402
from tsattn.train.config import RunConfig  # noqa: E402
from tsattn.train.trainer import build_datamodule, fit_config  # noqa: E402

DEFAULT_OUT = ROOT / "experiments/results/ensemble_search/start_blend.md"
ALPHAS = [i / 10 for i in range(11)]


def forecasts(module, loader, checkpoint: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """``(forecasts, targets)`` of ``checkpoint``'s weights over ``loader``, in scaled units."""
    module.load_state_dict(load_checkpoint(checkpoint)["state_dict"])
    module.eval()
    outputs, targets = [], []
    with torch.no_grad():
        for x, y, marks, step in loader:
            outputs.append(module.model(x, marks, step))
            targets.append(y)
    return torch.cat(outputs), torch.cat(targets)


def cell(dataset: str, horizon: int, runs: Path) -> list[str]:
    """One row: the blend's weight chosen on the first half and the later half's MSE."""
    config = RunConfig().with_overrides(
        [f"data.data={dataset}", f"data.horizon={horizon}", "train.progress_bar=false"]
    )
    datamodule = build_datamodule(config.data)
    run_dir = runs / f"{dataset}-h{horizon}-seed0"
    shutil.rmtree(run_dir, ignore_errors=True)  # a fresh fit, not a resumed one
    result = fit_config(config, datamodule, run_dir, test=False)
    loader = datamodule.val_dataloader()
    start, targets = forecasts(result.module, loader, run_dir / "checkpoints/start.ckpt")
    trained, _ = forecasts(result.module, loader, run_dir / "checkpoints/best.ckpt")
    kept = result.kept_start
    scores = blend_scores(start, trained, targets, horizon)
    return [dataset, str(horizon), "start" if kept else "trained", f"{scores['alpha']:.1f}",
            *(f"{scores[k]:.4f}" for k in ("start", "trained", "half", "blend"))]  # fmt: skip


def blend_scores(
    start: torch.Tensor, trained: torch.Tensor, targets: torch.Tensor, horizon: int
) -> dict[str, float]:
    """The weight ``alpha`` of ``ALPHAS`` whose blend ``(1 - alpha) * start + alpha * trained``
    scores the lowest MSE on the first half of the windows (ties: the larger ``alpha``), and the
    MSE on the later half of the start, the trained model, the equal blend and that blend."""
    chosen_on, scored_on = (list(r) for r in split_validation(len(targets), horizon, 0.5))

    def mse(alpha: float, windows: list[int]) -> float:
        blend = (1 - alpha) * start[windows] + alpha * trained[windows]
        return float(((blend - targets[windows]) ** 2).mean())

    alpha = min(ALPHAS, key=lambda a: (mse(a, chosen_on), -a))
    return {"alpha": alpha, "start": mse(0.0, scored_on), "trained": mse(1.0, scored_on),
            "half": mse(0.5, scored_on), "blend": mse(alpha, scored_on)}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default="ETTh2:336,ETTh2:720,ETTh1:336,ETTh1:96",
                        help="dataset:horizon, comma-separated")  # fmt: skip
    parser.add_argument("--runs", type=Path, default=ROOT / "experiments/results/runs/blend")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if not os.environ.get("TSATTN_DATA_DIR"):
        parser.error("set TSATTN_DATA_DIR to the folder holding the dataset files")
    rows = []
    for spec in args.cells.split(","):
        dataset, horizon = spec.split(":")
        rows.append(cell(dataset, int(horizon), args.runs))
        print(" | ".join(rows[-1]), flush=True)
    headers = ["dataset", "H", "the fit kept", "alpha chosen on the first half",
               "start", "trained", "blend 0.5", "blend, chosen alpha"]  # fmt: skip
    header = (
        f"cpu, torch {torch.__version__}; tslib protocol, L=96, recipe default, seed 0; MSE in "
        "scaled units of the later half of the validation windows (the blend's weight read off "
        "the first half; the fit's best checkpoint was picked on all of them); the test split "
        "is never read"
    )
    write_report("start_blend", header, [("Blend of the start and the trained model",
                                          markdown(headers, rows))], args.out)  # fmt: skip


if __name__ == "__main__":
    main()
