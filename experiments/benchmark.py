"""Resumable benchmark: candidates x datasets x horizons x seeds, one result file per cell.

Every cell trains one model under the dataset's protocol and writes
``<out>/cells/<candidate>/<dataset>-h<H>-seed<k>.json`` as soon as it finishes; a rerun skips the
cells whose file exists, so a benchmark that takes hours survives being stopped and continued
(commit the ``cells`` folder as it grows). The summary lands in ``<out>/benchmark.csv`` and
``<out>/benchmark.md`` with the published numbers of PROTOCOLS.md beside each row.

Two modes:

- test (default): the library's default recipe (plus ``--set`` overrides), test split scored
  once per cell; every cell records test MSE/MAE, the best checkpoint's validation MSE/MAE,
  epochs, seconds per training epoch and the number of test windows.
- ``--validation-only``: the recipe search. Candidates from a YAML file (``--candidates``),
  scored on the validation windows only (the test split is never evaluated); the table ranks
  the candidates by their validation MSE relative to the first candidate.

::

    # the README table: ETTh1, ETTh2, ETTm1 and weather with 3 seeds each
    python experiments/benchmark.py --datasets ETTh1,ETTh2,ETTm1,weather --seeds 3 \\
        --out experiments/results/benchmark
    # the recipe search (validation windows only)
    python experiments/benchmark.py --validation-only \\
        --candidates experiments/candidates/recipe_search.yaml \\
        --datasets ETTh1,ETTh2 --horizons 96,336 --out experiments/results/recipe_search

``--jobs N`` runs N cells at once in separate processes (for a machine with a GPU and many
cores; on a 2-core CPU keep 1, or the seconds per epoch are meaningless).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import multiprocessing as mp
import os
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

# Published MSE / MAE at L = 96 (PROTOCOLS.md): per horizon where the table gives it, and the
# average over the four horizons ("avg").
PUBLISHED: dict[str, dict[str, dict[str, tuple[float, float]]]] = {
    "ETTh1": {
        "96": {"TimeMixer": (0.375, 0.400), "iTransformer": (0.386, 0.405),
               "PatchTST": (0.414, 0.419), "DLinear": (0.386, 0.400)},
        "192": {"TimeMixer": (0.429, 0.421), "iTransformer": (0.441, 0.436),
                "PatchTST": (0.460, 0.445), "DLinear": (0.437, 0.432)},
        "336": {"TimeMixer": (0.484, 0.458), "iTransformer": (0.487, 0.458),
                "PatchTST": (0.501, 0.466), "DLinear": (0.481, 0.459)},
        "720": {"TimeMixer": (0.498, 0.482), "iTransformer": (0.503, 0.491),
                "PatchTST": (0.500, 0.488), "DLinear": (0.519, 0.516)},
        "avg": {"TimeMixer": (0.447, 0.440), "iTransformer": (0.454, 0.447),
                "PatchTST": (0.469, 0.454), "DLinear": (0.456, 0.452),
                "CycleNet": (0.432, 0.427), "MTGNN": (0.543, 0.514)},
    },
    "ETTh2": {
        "96": {"TimeMixer": (0.289, 0.341), "iTransformer": (0.297, 0.349),
               "PatchTST": (0.302, 0.348), "DLinear": (0.333, 0.387)},
        "avg": {"TimeMixer": (0.364, 0.395), "iTransformer": (0.383, 0.407),
                "PatchTST": (0.387, 0.407), "DLinear": (0.559, 0.515),
                "CycleNet": (0.383, 0.404), "MTGNN": (0.773, 0.633)},
    },
    "ETTm1": {
        "96": {"TimeMixer": (0.320, 0.357), "iTransformer": (0.334, 0.368),
               "PatchTST": (0.329, 0.367), "DLinear": (0.345, 0.372)},
        "avg": {"TimeMixer": (0.381, 0.395), "iTransformer": (0.407, 0.410),
                "PatchTST": (0.387, 0.400), "DLinear": (0.403, 0.407),
                "CycleNet": (0.386, 0.395), "MTGNN": (0.457, 0.462)},
    },
    "ETTm2": {
        "avg": {"TimeMixer": (0.275, 0.323), "iTransformer": (0.288, 0.332),
                "PatchTST": (0.281, 0.326), "DLinear": (0.350, 0.401),
                "CycleNet": (0.272, 0.315), "MTGNN": (0.570, 0.530)},
    },
    "weather": {
        "avg": {"TimeMixer": (0.240, 0.271), "iTransformer": (0.258, 0.278),
                "PatchTST": (0.259, 0.281), "DLinear": (0.265, 0.317),
                "CycleNet": (0.254, 0.279), "MTGNN": (0.249, 0.298)},
    },
    "electricity": {
        "96": {"TimeMixer": (0.153, 0.247), "iTransformer": (0.148, 0.240),
               "PatchTST": (0.181, 0.270), "DLinear": (0.197, 0.282)},
        "avg": {"TimeMixer": (0.182, 0.272), "iTransformer": (0.178, 0.270),
                "PatchTST": (0.205, 0.290), "DLinear": (0.212, 0.300),
                "CycleNet": (0.170, 0.260), "MTGNN": (0.243, 0.334)},
    },
}  # fmt: skip
ANCHORS = ("TimeMixer", "DLinear", "iTransformer", "CycleNet")
# Single-step protocol (PROTOCOLS.md section 2): published test RSE / CORR per horizon h.
PUBLISHED_SINGLE_STEP: dict[str, dict[str, dict[str, tuple[float, float]]]] = {
    "exchange_rate": {
        "3": {"MTGNN": (0.0194, 0.9786), "TPA-LSTM": (0.0174, 0.9790), "LSTNet": (0.0226, 0.9735)},
        "6": {"MTGNN": (0.0259, 0.9708), "TPA-LSTM": (0.0241, 0.9709), "LSTNet": (0.0280, 0.9658)},
        "12": {"MTGNN": (0.0349, 0.9551), "TPA-LSTM": (0.0341, 0.9564), "LSTNet": (0.0356, 0.9511)},
        "24": {"MTGNN": (0.0456, 0.9372), "TPA-LSTM": (0.0444, 0.9381), "LSTNet": (0.0449, 0.9354)},
    },
    "electricity": {
        "3": {"MTGNN": (0.0745, 0.9474), "TPA-LSTM": (0.0823, 0.9439)},
        "6": {"MTGNN": (0.0878, 0.9316), "TPA-LSTM": (0.0916, 0.9337)},
        "12": {"MTGNN": (0.0916, 0.9278), "TPA-LSTM": (0.0964, 0.9250)},
        "24": {"MTGNN": (0.0953, 0.9234), "TPA-LSTM": (0.1006, 0.9133)},
    },
}  # fmt: skip


def _cell_path(out: Path, candidate: str, dataset: str, horizon: int, seed: int) -> Path:
    return out / "cells" / candidate / f"{dataset}-h{horizon}-seed{seed}.json"


def run_cell(cell: dict[str, Any]) -> dict[str, Any]:
    """Train one cell and write its result file; returns the result (or the error)."""
    import torch

    from tsattn.train.config import RunConfig
    from tsattn.train.trainer import build_datamodule, fit_config, quiet_lightning

    torch.set_num_threads(cell["threads"])
    path = Path(cell["path"])
    run_dir = Path(cell["runs_dir"]) / cell["candidate"] / path.stem
    cfg = RunConfig().with_overrides(cell["overrides"])
    started = time.perf_counter()
    datamodule = build_datamodule(cfg.data)
    result = fit_config(cfg, datamodule, run_dir, test=not cell["validation_only"])
    # The best checkpoint's validation scores (training may have gone on past it), without
    # the notes Lightning adds on a machine with many cores or a GPU.
    with quiet_lightning():
        best = result.trainer.validate(
            result.module, dataloaders=datamodule.val_dataloader(), verbose=False
        )[0]
    counts = datamodule.window_counts
    metrics = result.metrics
    row = {
        "candidate": cell["candidate"],
        "dataset": cell["dataset"],
        "horizon": cell["horizon"],
        "seed": cell["seed"],
        "protocol": datamodule.protocol,
        "val_mse": float(best["val_mse"]),
        "val_mae": float(best["val_mae"]),
        "test_mse": metrics.get("test_mse"),
        "test_mae": metrics.get("test_mae"),
        "test_rse": metrics.get("test_rse"),
        "test_corr": metrics.get("test_corr"),
        "train_windows": counts["train"],
        "val_windows": counts["val"],
        "test_windows": counts["test"] if not cell["validation_only"] else None,
        "epochs": len(result.epoch_seconds),
        "sec_per_epoch": sum(result.epoch_seconds) / max(1, len(result.epoch_seconds)),
        "wall_seconds": time.perf_counter() - started,
        "params": sum(p.numel() for p in result.module.model.parameters()),
        "device": result.trainer.strategy.root_device.type,
        "start_val_loss": {k: v for k, v in metrics.items() if k.startswith("start_val_loss")},
        # the closed-form start is the model (train.keep_start), and the scores that decided it
        "kept_start": result.kept_start,
        # the window variables train.start_trim left out of the start
        "start_trimmed": int(metrics["start_trimmed"]) if "start_trimmed" in metrics else None,
        "best_val_loss": {k: v for k, v in metrics.items() if k.startswith("best_val_loss")},
        "model": result.module.model_config.to_dict(),
        "train": cfg.train.to_dict(),
        "overrides": cell["overrides"],
    }
    for key in ("model", "train"):  # plain values only
        row[key] = json.loads(json.dumps(row[key], default=str))
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(row, indent=1))
    os.replace(tmp, path)
    shutil.rmtree(run_dir, ignore_errors=True)
    return row


def _safe_run(cell: dict[str, Any]) -> dict[str, Any]:
    try:
        return run_cell(cell)
    except Exception:  # one broken cell must not stop the others; the error is shown
        return {"error": traceback.format_exc(), "cell": cell["path"]}


def plan_cells(args: argparse.Namespace) -> list[dict[str, Any]]:
    candidates = [{"name": "default", "set": []}]
    if args.candidates:
        loaded = yaml.safe_load(Path(args.candidates).read_text())
        candidates = [
            {
                "name": c["name"],
                "set": [f"{k}={json.dumps(v)}" for k, v in c.get("set", {}).items()],
            }
            for c in loaded["candidates"]
        ]
    if args.only:
        keep = set(args.only.split(","))
        candidates = [c for c in candidates if c["name"] in keep]
    out = Path(args.out)
    cells = []
    for candidate in candidates:
        for dataset in args.datasets.split(","):
            for horizon in (int(h) for h in args.horizons.split(",")):
                for seed in range(args.seeds):
                    overrides = [
                        f"data.data={dataset}",
                        f"data.horizon={horizon}",
                        f"train.seed={seed}",
                        "train.progress_bar=false",
                        f"train.accelerator={args.accelerator}",
                        *candidate["set"],
                        *args.overrides,
                    ]
                    path = _cell_path(out, candidate["name"], dataset, horizon, seed)
                    cells.append(dict(candidate=candidate["name"], dataset=dataset,
                                      horizon=horizon, seed=seed, overrides=overrides,
                                      path=str(path), threads=args.threads,
                                      runs_dir=args.runs_dir or str(out / "runs"),
                                      validation_only=args.validation_only))  # fmt: skip
    return cells


def load_results(out: Path) -> pd.DataFrame:
    """Every cell of ``out``; a cell's candidate is the folder it lies in (keep an old recipe's
    cells beside a new one's by renaming their folder). The ``default`` cells come first, so
    the tables open with the recipe's rows; the other candidates follow by name."""
    paths = (out / "cells").glob("*/*.json")
    rows = [
        {**json.loads(p.read_text()), "candidate": p.parent.name}
        for p in sorted(paths, key=lambda p: (p.parent.name != "default", p))
    ]
    return pd.DataFrame(rows)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _fmt(mean: float, std: float, digits: int = 3) -> str:
    if math.isnan(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _anchor_text(dataset: str, key: str) -> str:
    found = PUBLISHED.get(dataset, {}).get(key, {})
    return " · ".join(f"{m} {found[m][0]:.3f}/{found[m][1]:.3f}" for m in ANCHORS if m in found)


@functools.cache
def last_value_scores(
    dataset: str, protocol: str, horizon: int, seq_len: int = 96
) -> tuple[float, float] | None:
    """Test MSE / MAE of the last observed value repeated over the horizon (persistence, the
    naive forecast), on the cell's test windows with tsattn's own metrics; ``None`` where the
    data file is not on this machine (the summary is never a reason to download)."""
    from tsattn.train.config import RunConfig
    from tsattn.train.evaluation import score_last_value
    from tsattn.train.trainer import build_datamodule

    cfg = RunConfig().with_overrides(
        [f"data.data={dataset}", f"data.protocol={protocol}", f"data.horizon={horizon}",
         f"data.seq_len={seq_len}"]
    )  # fmt: skip
    datamodule = build_datamodule(cfg.data, download=False, progress=False)
    try:
        datamodule.setup("test")
    except FileNotFoundError:
        return None
    scores = score_last_value(datamodule.datasets["test"])
    return scores["mse"], scores["mae"]


def summarize_single_step(results: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Single-step protocol: test RSE / CORR in original units per horizon, mean over seeds;
    rows name their candidate when there are several."""
    table = (
        results.groupby(["candidate", "dataset", "horizon"], sort=False)
        .agg(
            seeds=("seed", "size"),
            rse=("test_rse", "mean"),
            rse_std=("test_rse", "std"),
            corr=("test_corr", "mean"),
            corr_std=("test_corr", "std"),
            test_windows=("test_windows", "first"),
            epochs=("epochs", "mean"),
            sec_per_epoch=("sec_per_epoch", "mean"),
            params=("params", "first"),
            device=("device", "first"),
        )
        .reset_index()
    )
    # candidates and datasets in the order they came, horizons in numeric order
    table = table.assign(_group=table.groupby(["candidate", "dataset"], sort=False).ngroup())
    table = table.sort_values(["_group", "horizon"]).drop(columns="_group").reset_index(drop=True)
    lines = [
        "| dataset | h | tsattn RSE | tsattn CORR | seeds | test windows | epochs | s/epoch "
        "| published RSE / CORR |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    several = table.candidate.nunique() > 1  # then each row names its candidate
    for r in table.itertuples():
        found = PUBLISHED_SINGLE_STEP.get(r.dataset, {}).get(str(r.horizon), {})
        anchors = " · ".join(f"{m} {v[0]:.4f}/{v[1]:.4f}" for m, v in found.items())
        name = f"{r.dataset} ({r.candidate})" if several else r.dataset
        lines.append(
            f"| {name} | {r.horizon} | {_fmt(r.rse, r.rse_std, 4)} | "
            f"{_fmt(r.corr, r.corr_std, 4)} | {r.seeds} | {int(r.test_windows)} | "
            f"{r.epochs:.0f} | {r.sec_per_epoch:.1f} | {anchors} |"
        )
    return table, lines


def _per_device(cells: pd.DataFrame) -> dict[str, str]:
    """The devices the cells ran on and their seconds per training epoch, one mean per device:
    an epoch on a GPU and one on a CPU are not averaged into one number; ``device`` counts
    the seeds that ran on each."""
    groups = cells.groupby("device", sort=True)
    if len(groups) == 1:
        ((device, part),) = groups
        return dict(device=str(device), sec_per_epoch=f"{part.sec_per_epoch.mean():.1f}")
    return dict(
        device=" · ".join(f"{device} {part.seed.nunique()}" for device, part in groups),
        sec_per_epoch=" · ".join(
            f"{device} {part.sec_per_epoch.mean():.1f}" for device, part in groups
        ),
    )


def _seq_len(cells: pd.DataFrame) -> int:
    """The look-back the cells' models read (96 where the cells do not record it)."""
    if "model" not in cells:
        return 96
    return int(cells["model"].iloc[0].get("seq_len", 96))


def _naive_columns(scores: list[tuple[float, float] | None]) -> dict[str, float]:
    """``last_value_mse`` / ``last_value_mae``: the mean of ``scores`` (one per horizon), NaN
    unless every horizon has one."""
    if not scores or any(s is None for s in scores):
        return dict(last_value_mse=math.nan, last_value_mae=math.nan)
    mse, mae = np.mean(scores, axis=0)
    return dict(last_value_mse=float(mse), last_value_mae=float(mae))


def summarize_test(
    results: pd.DataFrame,
    last_value: Callable[[str, str, int, int], tuple[float, float] | None] | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Per (candidate, dataset, horizon) and per dataset average: mean and std over seeds.

    ``last_value(dataset, protocol, horizon, seq_len)`` gives the naive forecast's test MSE /
    MAE (:func:`last_value_scores`) for the column beside tsattn's; ``None`` leaves it empty."""
    rows = []
    for (candidate, dataset), part in results.groupby(["candidate", "dataset"], sort=False):
        per_h = part.groupby("horizon")
        naive = {
            int(h): last_value(dataset, str(cell.protocol.iloc[0]), int(h), _seq_len(cell))
            if last_value
            else None
            for h, cell in per_h
        }
        for horizon, cell in sorted(per_h, key=lambda kv: kv[0]):
            rows.append(dict(candidate=candidate, dataset=dataset, horizon=str(horizon),
                             **_naive_columns([naive[int(horizon)]]),
                             seeds=len(cell), mse=cell.test_mse.mean(),
                             mse_std=cell.test_mse.std(ddof=1), mae=cell.test_mae.mean(),
                             mae_std=cell.test_mae.std(ddof=1), val_mse=cell.val_mse.mean(),
                             test_windows=int(cell.test_windows.iloc[0]),
                             epochs=cell.epochs.mean(), **_per_device(cell),
                             params=int(cell.params.iloc[0])))  # fmt: skip
        if part.horizon.nunique() == 4:
            # the average of the four horizons, per seed, then mean and spread over seeds
            per_seed = part.groupby("seed")[["test_mse", "test_mae", "val_mse"]].mean()
            complete = part.groupby("seed").horizon.nunique() == 4
            per_seed = per_seed[complete]
            rows.append(dict(candidate=candidate, dataset=dataset, horizon="avg",
                             **_naive_columns(list(naive.values())),
                             seeds=len(per_seed), mse=per_seed.test_mse.mean(),
                             mse_std=per_seed.test_mse.std(ddof=1), mae=per_seed.test_mae.mean(),
                             mae_std=per_seed.test_mae.std(ddof=1),
                             val_mse=per_seed.val_mse.mean(), test_windows=None,
                             epochs=part.epochs.mean(), **_per_device(part),
                             params=None))  # fmt: skip
    table = pd.DataFrame(rows)
    lines = [
        "| dataset | H | tsattn MSE | tsattn MAE | seeds | test windows | epochs | device "
        "| s/epoch | last value MSE/MAE | published MSE/MAE (L=96) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table.itertuples():
        name = r.dataset if r.candidate == "default" else f"{r.dataset} ({r.candidate})"
        windows = "" if r.test_windows is None or pd.isna(r.test_windows) else int(r.test_windows)
        mse, mae = _fmt(r.mse, r.mse_std), _fmt(r.mae, r.mae_std)
        if r.horizon == "avg":
            name, mse, mae = f"**{name}**", f"**{mse}**", f"**{mae}**"
        naive = (
            "" if pd.isna(r.last_value_mse) else f"{r.last_value_mse:.3f}/{r.last_value_mae:.3f}"
        )
        lines.append(
            f"| {name} | {r.horizon} | {mse} | {mae} | {r.seeds} | {windows} | "
            f"{r.epochs:.1f} | {r.device} | {r.sec_per_epoch} | {naive} | "
            f"{_anchor_text(r.dataset, r.horizon)} |"
        )
    return table, lines


def summarize_search(
    results: pd.DataFrame, reference: str | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """Validation MSE per candidate and (dataset, H), the mean over the seeds it has; score =
    mean ratio to ``reference`` (by default the candidate with the most cells) over the
    (dataset, H, seed) cells both have, so a candidate run on fewer seeds is compared seed by
    seed."""
    pivot = results.pivot_table(
        index="candidate",
        columns=["dataset", "horizon"],
        values="val_mse",
        aggfunc="mean",
        sort=False,
    )
    paired = results.pivot_table(
        index="candidate",
        columns=["dataset", "horizon", "seed"],
        values="val_mse",
        aggfunc="mean",
        sort=False,
    )
    if reference is None or reference not in pivot.index:
        reference = paired.notna().sum(axis=1).idxmax()  # the most complete candidate
    pivot = pivot.loc[[reference, *(c for c in pivot.index if c != reference)]]
    complete = paired.notna().all(axis=1)
    score = (paired / paired.loc[reference]).mean(axis=1).sort_values()
    header = " | ".join(f"{d} {h}" for d, h in pivot.columns)
    lines = [
        f"| candidate | {header} | val MSE / {pivot.index[0]} |",
        "|---" * (len(pivot.columns) + 2) + "|",
    ]
    for name in score.index:
        r = pivot.loc[name]
        cells = " | ".join("" if pd.isna(v) else f"{v:.4f}" for v in r)
        flag = "" if complete[name] else " (incomplete)"
        lines.append(f"| {name}{flag} | {cells} | {score[name]:.4f} |")
    table = pivot.copy()
    table.columns = [f"{d}-h{h}" for d, h in pivot.columns]
    table["score"] = score
    table["complete"] = complete
    table = table.loc[score.index]
    return table, lines


def write_ablations(out: Path, results: pd.DataFrame) -> None:
    """For candidates that differ by the mixer alone, or by the fusion alone: one ablation table
    per (dataset, horizon), written by the ablation runner's own summary
    (:mod:`tsattn.train.ablation`, paired by seed with the registry's control, its first name:
    ``identity``, ``skip``)."""
    from tsattn.train.ablation import ablatable, summarize, write_table

    if results["test_mse"].isna().any():
        return
    for switch, names in ablatable().items():
        reference = names[0]
        prefix = "ablation" if switch == "mixer" else f"{switch}_ablation"  # mixer: came first
        runs = results.assign(**{switch: [m.get(switch, reference) for m in results["model"]]})
        if runs[switch].nunique() < 2 or (runs.groupby(switch)["candidate"].nunique() > 1).any():
            continue  # not what the candidates vary, or not alone
        order = [m for m in names if m in set(runs[switch])]
        for (dataset, horizon), part in runs.groupby(["dataset", "horizon"]):
            folder = out / f"{prefix}_{dataset.lower()}_h{horizon}"
            folder.mkdir(exist_ok=True)
            title = (
                f"{dataset}, L=96, H={horizon}, {part.protocol.iloc[0]} protocol, default "
                f"recipe, up to {_count(part.seed.nunique(), 'seed')} (runs per {switch} below), "
                f"{part.device.iloc[0]}"
            )
            table = summarize(part, order=order, by=switch, reference=reference)
            write_table(table, folder, title=title)


def summary_title(out: Path, validation_only: bool) -> str:
    """The title of ``out``'s summary as it stands (a run continued or extended without
    ``--title`` keeps it), or the default one."""
    summary = out / ("search.md" if validation_only else "benchmark.md")
    if summary.is_file():
        first = summary.read_text().split("\n", 1)[0].strip()
        if first:
            return first
    return "Recipe search, validation windows only" if validation_only else "Benchmark"


def write_summary(
    out: Path, validation_only: bool, title: str, reference: str | None = None
) -> None:
    results = load_results(out)
    if results.empty:
        return
    if not validation_only:
        scored = results.filter(["test_mse", "test_rse"]).notna().any(axis=1)
        if not scored.all():
            raise SystemExit(
                f"{(~scored).sum()} of the {len(results)} cells in {out} have no test scores "
                "(a search scored on validation windows only): summarise them with "
                "--validation-only."
            )
        write_ablations(out, results)
    results.drop(columns=["model", "train", "overrides"]).to_csv(
        out / "cells.csv", index=False, float_format="%.6g"
    )
    if validation_only:
        table, lines = summarize_search(results, reference)
        table.to_csv(out / "search.csv", float_format="%.6g")
        (out / "search.md").write_text("\n".join([title, "", *lines]) + "\n")
    else:
        single = results["protocol"] == "mtgnn"
        parts = []
        if (~single).any():
            table, lines = summarize_test(results[~single], last_value_scores)
            parts.append((table, lines))
        if single.any():
            table, lines = summarize_single_step(results[single])
            parts.append((table, lines))
        pd.concat([t for t, _ in parts]).to_csv(
            out / "benchmark.csv", index=False, float_format="%.6g"
        )
        body = [line for _, lines in parts for line in [*lines, ""]]
        (out / "benchmark.md").write_text("\n".join([title, "", *body]).rstrip() + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="ETTh1,ETTh2,ETTm1,weather")
    parser.add_argument("--horizons", default="96,192,336,720")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default="experiments/results/benchmark")
    parser.add_argument("--candidates", help="YAML with a list of {name, set: {key: value}}")
    parser.add_argument("--only", help="comma-separated candidate names to run")
    parser.add_argument("--validation-only", action="store_true")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--accelerator", default="auto")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    parser.add_argument("--title", default="")
    parser.add_argument("--summary-only", action="store_true")
    parser.add_argument("--reference", help="search: the candidate the scores are divided by")
    parser.add_argument("--runs-dir", help="where the cells' run folders go (default <out>/runs)")
    parser.add_argument(
        "--lock", help="hold this file's flock around each cell (machines shared with others)"
    )
    args = parser.parse_args(argv)

    out = Path(args.out)
    title = args.title or summary_title(out, args.validation_only)
    if args.summary_only:
        write_summary(out, args.validation_only, title, args.reference)
        return
    cells = plan_cells(args)
    todo = [c for c in cells if not Path(c["path"]).is_file()]
    # Short horizons and every candidate first: a stopped run leaves comparable cells behind.
    horizons = [int(h) for h in args.horizons.split(",")]
    datasets = args.datasets.split(",")
    names = list(dict.fromkeys(c["candidate"] for c in cells))
    todo.sort(
        key=lambda c: (
            c["seed"],
            horizons.index(c["horizon"]),
            datasets.index(c["dataset"]),
            names.index(c["candidate"]),
        )
    )
    print(f"{len(cells)} cells, {len(cells) - len(todo)} done before, {len(todo)} to run",
          flush=True)  # fmt: skip
    for cell in todo:
        Path(cell["path"]).parent.mkdir(parents=True, exist_ok=True)
    failures = 0
    if args.jobs > 1:
        context = mp.get_context("spawn")
        with context.Pool(args.jobs) as pool:
            for k, row in enumerate(pool.imap_unordered(_safe_run, todo), 1):
                failures += _report(k, len(todo), row)
    else:
        for k, cell in enumerate(todo, 1):
            if Path(cell["path"]).is_file():  # finished meanwhile by another process
                continue
            with locked(args.lock):
                row = _safe_run(cell)
            failures += _report(k, len(todo), row)
    reference = args.reference or (cells[0]["candidate"] if cells else None)
    write_summary(out, args.validation_only, title, reference)
    if failures:
        sys.exit(f"{failures} cell(s) failed; rerun to retry them (finished cells are kept).")


@contextlib.contextmanager
def locked(path: str | None) -> Iterator[None]:
    """Hold ``path``'s flock (``--lock``): one CPU-heavy job at a time on a shared machine;
    ``None`` holds nothing."""
    if path is None:
        yield
        return
    import fcntl

    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _report(k: int, total: int, row: dict[str, Any]) -> int:
    if "error" in row:
        print(f"[{k}/{total}] FAILED {row['cell']}\n{row['error']}", flush=True)
        return 1
    test = f" test MSE {row['test_mse']:.4f}" if row["test_mse"] is not None else ""
    print(
        f"[{k}/{total}] {row['candidate']} {row['dataset']} H={row['horizon']} "
        f"seed {row['seed']}: val MSE {row['val_mse']:.4f}{test}, {row['epochs']} epochs, "
        f"{row['sec_per_epoch']:.1f} s/epoch",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    main()
