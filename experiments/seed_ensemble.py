"""Validation MSE of a seed ensemble of the recipe, against its members alone.

Trains the default recipe (``tsattn fit``'s model under the ``tslib`` protocol) once per seed
on each dataset and horizon, and scores on every validation window (scaled units; the test
split is never read):

- each member: the best checkpoint of one seed, as the benchmark keeps it;
- the ensemble: the mean of the members' forecasts (N-BEATS's seed ensembles, Oreshkin et
  al., ICLR 2020). For the squared error its MSE is the members' mean MSE less the spread of
  their forecasts around the mean forecast, so it can only gain by as much as the seeds
  disagree;
- start + best: each member's forecast averaged with its own closed-form start (the model
  before any training step, ``checkpoints/start.ckpt``), a free two-member ensemble.

Each member's validation forecasts are kept under ``<out>/runs/`` (git-ignored), so a stopped
run continues with the next member; a finished cell is written to ``<out>/cells/`` and skipped
when rerun::

    python experiments/seed_ensemble.py --datasets ETTh1,ETTh2 --horizons 96,720 --seeds 3
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))

from bench_speed import markdown, write_report  # noqa: E402

from tsattn import MTGNN  # noqa: E402
from tsattn.train.checkpoint import load_checkpoint  # noqa: E402
from tsattn.train.config import RunConfig  # noqa: E402
from tsattn.train.evaluation import forecast_windows  # noqa: E402
from tsattn.train.trainer import (  # noqa: E402
    StartCheckpoint,
    TrainResult,
    build_datamodule,
    fit_config,
)

DEFAULT_OUT = ROOT / "experiments/results/ensemble_search"


def val_forecasts(model: MTGNN, dataset: torch.utils.data.Dataset) -> tuple[torch.Tensor, ...]:
    """``(pred, y)`` over every validation window, ``(W, H, N)`` each, scaled units."""
    pairs = [(pred, y) for _, pred, y in forecast_windows(model, dataset)]
    return torch.cat([p for p, _ in pairs]), torch.cat([y for _, y in pairs])


def start_model(result: TrainResult) -> MTGNN:
    """The closed-form start the fit saved (:class:`~tsattn.train.trainer.StartCheckpoint`),
    loaded into a copy of the trained module as the trainer reloads its own checkpoints."""
    module = copy.deepcopy(result.module)
    module.load_state_dict(load_checkpoint(StartCheckpoint.path(result.trainer))["state_dict"])
    return module.model


def member(dataset: str, horizon: int, seed: int, runs: Path) -> dict[str, torch.Tensor]:
    """One seed's validation forecasts (best checkpoint and closed-form start) and targets,
    trained once and kept in ``runs``."""
    path = runs / f"{dataset}-h{horizon}-seed{seed}.pt"
    if path.exists():
        return torch.load(path)
    cfg = RunConfig().with_overrides(
        [f"data.data={dataset}", f"data.horizon={horizon}", f"train.seed={seed}"]
    )
    datamodule = build_datamodule(cfg.data)
    run_dir = runs / path.stem
    result = fit_config(cfg, datamodule, run_dir, test=False)
    best, target = val_forecasts(result.module.model, datamodule.datasets["val"])
    start = val_forecasts(start_model(result), datamodule.datasets["val"])[0]
    out = {"best": best, "start": start, "y": target, "epochs": len(result.epoch_seconds)}
    tmp = path.with_suffix(".tmp")
    torch.save(out, tmp)
    os.replace(tmp, path)
    shutil.rmtree(run_dir, ignore_errors=True)
    return out


def mse(pred: torch.Tensor, target: torch.Tensor) -> float:
    return float(((pred.double() - target.double()) ** 2).mean())


def cell(dataset: str, horizon: int, seeds: int, out: Path) -> dict:
    """Scores of every member, their ensemble and the start + best blends of one cell."""
    path = out / "cells" / f"{dataset}-h{horizon}-seeds{seeds}.json"
    if path.exists():
        return json.loads(path.read_text())
    runs = out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    members = [member(dataset, horizon, seed, runs) for seed in range(seeds)]
    target = members[0]["y"]
    row = {
        "dataset": dataset,
        "horizon": horizon,
        "members": [mse(m["best"], target) for m in members],
        "epochs": [m["epochs"] for m in members],
        "ensemble": mse(torch.stack([m["best"] for m in members]).mean(0), target),
        "start": mse(members[0]["start"], target),
        "start_best": [mse((m["best"] + m["start"]) / 2, target) for m in members],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(row, indent=1))
    for seed in range(seeds):
        (runs / f"{dataset}-h{horizon}-seed{seed}.pt").unlink(missing_ok=True)
    return row


def table_row(row: dict) -> list[str]:
    members = row["members"]
    mean = sum(members) / len(members)
    blend = sum(row["start_best"]) / len(members)
    return [
        row["dataset"],
        str(row["horizon"]),
        " / ".join(f"{m:.4f}" for m in members),
        f"{mean:.4f}",
        f"{row['ensemble']:.4f}",
        f"{row['ensemble'] / mean:.4f}",
        f"{row['start']:.4f}",
        f"{blend:.4f}",
        f"{blend / mean:.4f}",
    ]


def finished_cells(out: Path) -> list[dict]:
    """Every cell written to ``out`` so far, by dataset and horizon (the table shows them all,
    whichever cells this run asked for)."""
    rows = [json.loads(path.read_text()) for path in (out / "cells").glob("*.json")]
    return sorted(rows, key=lambda row: (row["dataset"], row["horizon"], len(row["members"])))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="ETTh1,ETTh2")
    parser.add_argument("--horizons", default="96,720")
    parser.add_argument("--seeds", type=int, default=3, help="members per ensemble")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.seeds < 2:
        parser.error(f"--seeds={args.seeds}: an ensemble needs at least 2 members.")
    torch.set_num_threads(args.threads)
    for dataset in args.datasets.split(","):
        for horizon in [int(h) for h in args.horizons.split(",")]:
            print(" | ".join(table_row(cell(dataset, horizon, args.seeds, args.out))), flush=True)
    rows = [table_row(row) for row in finished_cells(args.out)]
    header = (
        f"cpu, torch {torch.__version__}; tslib protocol, L=96; the default recipe trained "
        "once per seed (seeds 0, 1, ...), validation MSE in scaled units over every validation "
        "window (the test split is never read); ensemble: the mean of the members' forecasts; "
        "start + best: each member averaged with its own closed-form start"
    )
    headers = ["dataset", "H", "members (seed 0 / 1 / ...)", "members' mean", "ensemble",
               "ensemble / mean", "start", "start + best (mean)",
               "start + best / mean"]  # fmt: skip
    write_report("seed_ensemble", header, [("Seed ensemble on validation",
                 markdown(headers, rows))], args.out / "ensemble.md")  # fmt: skip


if __name__ == "__main__":
    main()
