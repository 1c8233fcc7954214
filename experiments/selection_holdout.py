"""Validation MSE of candidates that differ in how they select, scored on windows none of them
selected on.

A candidate that changes what picks the checkpoint (``train.monitor=mse``, say) cannot be
compared with the others on the validation windows it selected on: it minimised that very
score there, so it wins by construction. Here every fit sees only the first part of the
validation windows (``--select-fraction``, in time order): the best checkpoint, early
stopping, ``keep_start`` and the recipe's choices of cycle and maps read those. The windows
after them (less the ``horizon - 1`` windows whose targets overlap the selection windows'
targets) are scored afterwards, once per cell, by every candidate alike, and so is the
closed-form start each fit began from (``<candidate>, closed-form start`` in the table): whether
what training gained on the selection windows carries over to later ones. The test split is
never read::

    python experiments/selection_holdout.py \\
        --candidates experiments/candidates/monitor_search.yaml \\
        --datasets ETTh1,ETTh2 --horizons 96,720 --seeds 1 --reference default

Each finished cell is a JSON file under ``<out>/cells/<candidate>/`` and is skipped when rerun,
so a stopped run continues with the next cell; ``--lock FILE`` holds that file's flock around
each cell (one CPU-heavy job at a time on a shared machine). ``<out>/summary.md`` holds the
scored windows' table and, beside it, the same table over the selection windows (see
:func:`summary`); ``--summary-only`` rewrites it from the finished cells.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))

from benchmark import locked, summarize_search  # noqa: E402

from tsattn.train.checkpoint import load_checkpoint  # noqa: E402
from tsattn.train.config import RunConfig  # noqa: E402
from tsattn.train.trainer import (  # noqa: E402
    StartCheckpoint,
    build_datamodule,
    fit_config,
    quiet_lightning,
)

DEFAULT_OUT = ROOT / "experiments/results/selection_holdout"


def split_validation(count: int, horizon: int, fraction: float) -> tuple[range, range]:
    """The validation windows (``count`` of them, in time order) a fit selects on, and those
    scored afterwards: the first ``fraction``, then the rest less the ``horizon - 1`` windows
    whose targets overlap the last selection window's.

    >>> split_validation(100, 10, 0.5)
    (range(0, 50), range(59, 100))
    """
    if not 0 < fraction < 1:
        raise ValueError(f"--select-fraction={fraction} must lie strictly between 0 and 1.")
    select = int(count * fraction)
    scored = range(select + horizon - 1, count)
    if select < 1 or len(scored) < 1:
        raise ValueError(
            f"{count} validation windows at horizon {horizon} leave none to select on or to "
            f"score at --select-fraction={fraction}."
        )
    return range(select), scored


def cell_path(out: Path, candidate: str, dataset: str, horizon: int, seed: int) -> Path:
    return out / "cells" / candidate / f"{dataset}-h{horizon}-seed{seed}.json"


def run_cell(candidate: dict, dataset: str, horizon: int, seed: int, args: Any) -> dict:
    """Fit one candidate selecting on the first validation windows, score the later ones."""
    path = cell_path(Path(args.out), candidate["name"], dataset, horizon, seed)
    if path.exists():
        return json.loads(path.read_text())
    overrides = [f"data.data={dataset}", f"data.horizon={horizon}", f"train.seed={seed}",
                 "train.progress_bar=false", *candidate["set"]]  # fmt: skip
    cfg = RunConfig().with_overrides(overrides)
    datamodule = build_datamodule(cfg.data)
    datamodule.setup()
    full = datamodule.datasets["val"]
    select, scored = split_validation(len(full), horizon, args.select_fraction)
    datamodule.datasets["val"] = torch.utils.data.Subset(full, select)  # what the fit sees
    run_dir = Path(args.runs_dir or Path(args.out) / "runs") / candidate["name"] / path.stem
    result = fit_config(cfg, datamodule, run_dir, test=False)
    models = {"": result.module}
    start_path = StartCheckpoint.path(result.trainer)
    if start_path.exists():  # the closed-form start, scored on the same windows
        models["start_"] = copy.deepcopy(result.module)
        models["start_"].load_state_dict(load_checkpoint(start_path)["state_dict"])
    scores = {}
    for name, windows in (("select", select), ("scored", scored)):
        datamodule.datasets["val"] = torch.utils.data.Subset(full, windows)
        for prefix, module in models.items():
            with quiet_lightning():
                scores[prefix + name] = result.trainer.validate(
                    module, dataloaders=datamodule.val_dataloader(), verbose=False
                )[0]
    datamodule.datasets["val"] = full
    row = {
        "candidate": candidate["name"],
        "dataset": dataset,
        "horizon": horizon,
        "seed": seed,
        "select_windows": len(select),
        "scored_windows": len(scored),
        "select_mse": float(scores["select"]["val_mse"]),
        "scored_mse": float(scores["scored"]["val_mse"]),
        "scored_mae": float(scores["scored"]["val_mae"]),
        "epochs": len(result.epoch_seconds),
        "kept_start": result.kept_start,
        # the scores on the selection windows' parts that decided it (train.keep_start_parts),
        # so that another keep-start rule can be judged on these cells without training again
        "parts": {k: float(v) for k, v in result.metrics.items() if "_val_loss_part" in k},
        # the closed-form start the fit began from (None without one), on the same windows
        **{
            f"start_{part}_mse": float(scores[f"start_{part}"]["val_mse"])
            if "start_" in models
            else None
            for part in ("select", "scored")
        },
        "overrides": overrides,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(row, indent=1))
    os.replace(tmp, path)
    shutil.rmtree(run_dir, ignore_errors=True)
    return row


def summary(rows: list[dict], reference: str, fraction: float) -> str:
    """The search table of ``benchmark.py`` (:func:`benchmark.summarize_search`: per cell the
    mean over the seeds run, and each candidate's mean ratio to ``reference`` paired by seed)
    over the scored windows' MSE, then the same table over the selection windows' MSE.

    The second table is optimistic (each fit chose its checkpoint on those windows), and shown
    so that a candidate that scores lower than ``reference`` on the later windows and higher on
    the earlier ones, cell after cell, is seen to trade one period for the other: whether the
    test split, later still, follows the later windows is not settled by either table.
    """
    seeds = sorted({row["seed"] for row in rows})
    title = (
        f"Selection on the first {fraction:.0%} of the validation windows, MSE of the later ones "
        f"(scaled units; seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}; "
        "the test split is never read)"
    )
    _, scored = summarize_search(_scores(rows, "scored_mse"), reference)
    _, selected = summarize_search(_scores(rows, "select_mse"), reference)
    return (
        title + "\n\n" + "\n".join(scored) + "\n\n"
        "MSE of the selection windows themselves (the first part, where each fit chose its "
        "checkpoint: optimistic, shown beside the scored windows)\n\n" + "\n".join(selected) + "\n"
    )


def _scores(rows: list[dict], column: str) -> pd.DataFrame:
    """Each cell's ``column`` (``scored_mse`` or ``select_mse``) as ``val_mse``, and the same of
    the closed-form start it began from as a candidate of its own."""
    starts = [
        {**row, "candidate": f"{row['candidate']}, closed-form start",
         column: row[f"start_{column}"]}
        for row in rows
        if row.get(f"start_{column}") is not None
    ]  # fmt: skip
    return pd.DataFrame(rows + starts).rename(columns={column: "val_mse"})


def load_rows(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / "cells").glob("*/*.json"))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", help="YAML: a list of {name, set}")
    parser.add_argument("--datasets", default="ETTh1,ETTh2")
    parser.add_argument("--horizons", default="96,720")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--select-fraction", type=float, default=0.5)
    parser.add_argument("--reference", default="default")
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--runs-dir", default=None)
    parser.add_argument("--lock", default=None)
    parser.add_argument(
        "--summary-only", action="store_true", help="rewrite summary.md from the finished cells"
    )
    args = parser.parse_args(argv)
    if args.summary_only:
        write_summary(Path(args.out), args.reference, args.select_fraction)
        return
    if not args.candidates:
        parser.error("--candidates is required (except with --summary-only)")
    loaded = yaml.safe_load(Path(args.candidates).read_text())["candidates"]
    candidates = [
        {"name": c["name"], "set": [f"{k}={json.dumps(v)}" for k, v in c.get("set", {}).items()]}
        for c in loaded
    ]
    for dataset in args.datasets.split(","):
        for horizon in (int(h) for h in args.horizons.split(",")):
            for seed in range(args.seeds):
                for candidate in candidates:
                    path = cell_path(Path(args.out), candidate["name"], dataset, horizon, seed)
                    if path.exists():
                        continue
                    with locked(args.lock):
                        row = run_cell(candidate, dataset, horizon, seed, args)
                    print(
                        f"{candidate['name']} {dataset} H={horizon} seed {seed}: scored MSE "
                        f"{row['scored_mse']:.4f} ({row['epochs']} epochs)",
                        flush=True,
                    )
    write_summary(Path(args.out), args.reference, args.select_fraction)


def write_summary(out: Path, reference: str, fraction: float) -> None:
    text = summary(load_rows(out), reference, fraction)
    (out / "summary.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
