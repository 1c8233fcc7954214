"""Ablations: the same data, model and training for each mixer (or fusion) and seed; one table.

:func:`run_ablation` trains every ``(value, seed)`` pair of the switch ablated (``by``: the
``mixer``, or the multi-resolution ``fusion``) with everything else fixed, writes each run's
result to ``<out>/runs/<value>-seed<k>/result.json`` as soon as it finishes, and skips pairs
whose result exists, so an interrupted ablation resumes where it stopped (a run killed half-way
restarts from its own ``last.ckpt``; a run trained with other settings is refused, not mixed
in). The summary lands in ``<out>/ablation.csv``,
``<out>/ablation.md`` and ``<out>/ablation.png``: mean +- std over seeds of test MSE and MAE,
parameter count, training seconds per epoch (validation excluded), and each value's test MSE
minus the control's (the registry's first name: ``identity``, ``skip``) paired by seed, with a
paired t-test's verdict (better / worse / within seed noise; a value with one seed paired is
named as not judged, since one difference has no spread to test against). With several values
tested, the table also says how often chance alone would give one of them a verdict: each test
errs 5 % of the time, so a table of nine errs somewhere in up to 45 % of ablations where no
mixer matters.

The table functions take the switch ablated as ``by`` too: ``summarize(runs, by="fusion",
reference="skip")`` gives the paired table of runs trained elsewhere
(``experiments/benchmark.py`` writes one for candidates that differ by mixer or by fusion alone).
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

from tsattn.nn.fusion import list_fusions
from tsattn.nn.mixers import list_mixers
from tsattn.train.config import RunConfig
from tsattn.train.trainer import build_datamodule, fit_config

__all__ = ["ablatable", "paired_difference", "run_ablation", "summarize", "write_table"]


def ablatable() -> dict[str, list[str]]:
    """The model switches an ablation varies, each with its registry's names; the first name is
    the control every other value is paired with (``identity``: no mixer; ``skip``: MTGNN's skip
    connections)."""
    return {"mixer": list_mixers(), "fusion": list_fusions()}


def _run_one(cfg: RunConfig, run_dir: Path, by: str) -> dict:
    last = run_dir / "checkpoints" / "last.ckpt"
    started = time.perf_counter()
    result = fit_config(
        cfg, build_datamodule(cfg.data), run_dir, ckpt_path=str(last) if last.is_file() else None
    )
    metrics = result.metrics
    if "test_mse" not in metrics:
        raise ValueError(
            f"run {run_dir.name} produced no test metrics: the ablation needs a test split "
            "(set data.test_fraction > 0 for user data)."
        )
    return {
        by: cfg.model.get(by, ablatable()[by][0]),
        "seed": cfg.train.seed,
        "test_mse": metrics["test_mse"],
        "test_mae": metrics["test_mae"],
        "test_rse": metrics.get("test_rse"),
        "test_corr": metrics.get("test_corr"),
        "best_val_loss": metrics.get("best_val_loss"),
        "kept_start": bool(result.kept_start),
        "params": sum(p.numel() for p in result.module.model.parameters()),
        "epochs": len(result.epoch_seconds),
        "sec_per_epoch": float(np.mean(result.epoch_seconds)) if result.epoch_seconds else None,
        "wall_seconds": time.perf_counter() - started,
    }


def run_ablation(
    base: RunConfig,
    values: Sequence[str],
    seeds: int | Sequence[int],
    out_dir: str | Path,
    *,
    by: str = "mixer",
    keep_start: bool = False,
    keep_checkpoints: bool = False,
) -> pd.DataFrame:
    """Train each value of the switch ``by`` (``mixer`` or ``fusion``, see :func:`ablatable`)
    for each seed, skip finished runs, write and return the summary table.

    ``seeds``: a count (seeds ``base.train.seed + 0 .. n-1``) or explicit seeds.
    ``keep_start``: the value of ``train.keep_start`` in every run. Off by default, so that the
    trained network, which the switch changes, is what gets tested: a run that keeps the
    closed-form start forecasts the same whatever the switch (the table counts such runs).
    """
    switches = ablatable()
    if by not in switches:
        raise ValueError(f"by={by!r} cannot be ablated: choose from {', '.join(switches)}.")
    names = switches[by]
    unknown = [v for v in values if v not in names]
    if unknown or not values:
        raise ValueError(
            f"{by}s {unknown or list(values)} are not valid: choose from {', '.join(names)}."
        )
    seed_list = (
        [base.train.seed + k for k in range(seeds)] if isinstance(seeds, int) else list(seeds)
    )
    base = dataclasses.replace(base, train=dataclasses.replace(base.train, keep_start=keep_start))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    base.to_yaml(out_dir / "base_config.yaml")
    rows = []
    total = len(values) * len(seed_list)
    for k, (value, seed) in enumerate(((v, s) for v in values for s in seed_list), 1):
        run_dir = out_dir / "runs" / f"{value}-seed{seed}"
        result_file = run_dir / "result.json"
        cfg = dataclasses.replace(
            base,
            model={**base.model, by: value},
            train=dataclasses.replace(base.train, seed=seed),
        )
        if result_file.is_file() or (run_dir / "checkpoints" / "last.ckpt").is_file():
            _check_same_settings(run_dir, cfg)  # finished, or to be resumed from its checkpoint
        if result_file.is_file():
            rows.append(json.loads(result_file.read_text()))
            print(f"[{k}/{total}] {value} seed {seed}: done before, skipped", flush=True)
            continue
        print(f"[{k}/{total}] {value} seed {seed}: training", flush=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg.to_yaml(run_dir / "config.yaml")
        row = _run_one(cfg, run_dir, by)
        result_file.write_text(json.dumps(row, indent=2))
        if not keep_checkpoints:
            shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
        print(
            f"[{k}/{total}] {value} seed {seed}: test MSE {row['test_mse']:.4f} "
            f"MAE {row['test_mae']:.4f}",
            flush=True,
        )
        rows.append(row)
    table = summarize(pd.DataFrame(rows), order=list(values), by=by, reference=names[0])
    write_table(table, out_dir, title=_title(base))
    return table


# Settings that say where and how visibly a run trains, not what it learns: a finished run
# trained with other values of these still belongs in the table.
_WHERE = {"name", "output_dir", "train.accelerator", "train.devices", "train.strategy",
          "train.num_nodes", "train.progress_bar", "train.checkpoint_every_n_steps"}  # fmt: skip


def _settings(cfg: RunConfig) -> dict:
    """Every setting of ``cfg`` by its ``--set`` key (``train.lr``, ``model.mixer``, ``name``)."""
    raw = cfg.to_dict()
    flat = {k: v for k, v in raw.items() if k not in ("data", "model", "train")}
    for section in ("data", "model", "train"):
        flat.update({f"{section}.{k}": v for k, v in raw[section].items()})
    return flat


def _check_same_settings(run_dir: Path, cfg: RunConfig) -> None:
    """Refuse to reuse or resume a run trained with other settings than the ablation's now: the
    table would compare runs of different configurations as if only the switch differed."""
    config_file = run_dir / "config.yaml"
    if not config_file.is_file():
        return
    before = _settings(RunConfig.from_yaml(config_file))
    now = _settings(cfg)
    changed = sorted(k for k in before.keys() | now.keys()
                     if k not in _WHERE and before.get(k) != now.get(k))  # fmt: skip
    if changed:
        listed = ", ".join(f"{k}: {before.get(k)!r} then, {now.get(k)!r} now" for k in changed)
        raise ValueError(
            f"{run_dir} was trained with other settings than this ablation's ({listed}): rerun "
            "with the same settings to use it, or pass another output folder."
        )


def _title(cfg: RunConfig) -> str:
    data = Path(cfg.data.data).name if cfg.data.data else "data"
    protocol = build_datamodule(cfg.data).protocol  # "auto" resolved, nothing loaded
    return (
        f"{data}, L={cfg.data.seq_len}, H={cfg.data.horizon}, {protocol} protocol, "
        f"{cfg.train.max_epochs} epochs max, lr {cfg.train.lr}, "
        + (
            "closed-form start kept where it validates lower"
            if cfg.train.keep_start
            else "trained network"
        )
    )


# Two-sided 95 % quantiles of Student's t by degrees of freedom (1..30). Beyond 30 the 30-degree
# value is kept (2.042 against 1.960 at infinity): the interval is slightly wider, never narrower.
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042)  # fmt: skip


def paired_difference(
    runs: pd.DataFrame, reference: str = "identity", by: str = "mixer"
) -> pd.DataFrame:
    """Per value of ``by`` (the switch ablated: ``mixer``, or ``fusion`` with ``reference``
    ``skip``): test MSE minus the reference's test MSE of the same seed, mean and spread.

    ``verdict`` reads a paired t-test at 95 %: ``better`` or ``worse`` when the interval
    ``mean +- t * std / sqrt(n)`` of the per-seed differences excludes 0, ``within noise``
    otherwise, and ``one seed`` when no spread can be measured. Seeds the reference lacks are
    left out.
    """
    if reference not in set(runs[by]):
        return pd.DataFrame()
    base = runs[runs[by] == reference].set_index("seed")["test_mse"]
    rows = {}
    for value, part in runs.groupby(by, sort=False):
        diff = (part.set_index("seed")["test_mse"] - base).dropna()  # paired by seed
        n = len(diff)
        mean = float(diff.mean()) if n else float("nan")
        std = float(diff.std(ddof=1)) if n > 1 else float("nan")
        if value == reference:
            verdict = "reference"
        elif n < 2:
            verdict = "one seed"
        else:
            half = _T95[min(n - 1, len(_T95)) - 1] * std / np.sqrt(n)
            verdict = (
                "better" if mean + half < 0 else "worse" if mean - half > 0 else "within noise"
            )
        rows[value] = {"paired_seeds": n, "d_mse_mean": mean, "d_mse_std": std, "verdict": verdict}
    return pd.DataFrame.from_dict(rows, orient="index")


def summarize(
    runs: pd.DataFrame,
    order: Sequence[str] | None = None,
    by: str = "mixer",
    reference: str = "identity",
) -> pd.DataFrame:
    """One row per mixer (per value of ``by``): runs, mean/std of test MSE and MAE, params,
    seconds per epoch, and the difference to ``reference`` paired by seed
    (:func:`paired_difference`) when it ran. The index is named after ``by``."""
    grouped = runs.groupby(by, sort=False)
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
    if "kept_start" in runs.columns:  # runs that tested the closed-form start, not the network
        kept = runs["kept_start"].fillna(False).astype(bool).groupby(runs[by], sort=False).sum()
        table["kept_start"] = kept.astype(int)
    paired = paired_difference(runs, reference=reference, by=by)
    if not paired.empty:
        table = table.join(paired)
    if order is not None:
        table = table.reindex([m for m in order if m in table.index])
    table.index.name = by
    return table


def _spread(mean: float, std: float, runs: int) -> str:
    """``mean +- std``; a single run has no spread to show."""
    return f"{mean:.4f}" if runs < 2 else f"{mean:.4f} +- {std:.4f}"


def write_table(table: pd.DataFrame, out_dir: str | Path, title: str = "") -> None:
    """``ablation.csv``, ``ablation.md`` and ``ablation.png`` (bars with +-1 std) in ``out_dir``.

    The table is :func:`summarize`'s: its index name says what was ablated (``mixer``,
    ``fusion``) and its ``reference`` row what the others were paired with."""
    from matplotlib.figure import Figure

    out_dir = Path(out_dir)
    table.to_csv(out_dir / "ablation.csv", float_format="%.6g")
    by = table.index.name or "mixer"
    verdicts = table["verdict"] if "verdict" in table.columns else pd.Series(dtype=object)
    reference = next((m for m, v in verdicts.items() if v == "reference"), None)
    paired = reference is not None
    heading = f"{by.capitalize()} ablation"
    lines = [
        f"{heading}: {title}" if title else heading,
        "",
        f"| {by} | runs | MSE | MAE | params | s/epoch |"
        + (f" MSE - {reference} (paired by seed) | vs {reference} |" if paired else ""),
        "|---|---|---|---|---|---|" + ("---|---|" if paired else ""),
    ]
    for r in table.itertuples():
        line = (
            f"| {r.Index} | {r.runs} | {_spread(r.mse_mean, r.mse_std, r.runs)} | "
            f"{_spread(r.mae_mean, r.mae_std, r.runs)} | {r.params:,} | {r.sec_per_epoch:.1f} |"
        )
        if paired:
            spread = "" if pd.isna(r.d_mse_std) else f" +- {r.d_mse_std:.4f}"
            diff = "" if pd.isna(r.d_mse_mean) else f"{r.d_mse_mean:+.4f}{spread}"
            line += f" {diff} | {r.verdict} |"
        lines.append(line)
    notes = []
    if paired:
        better = [m for m, v in verdicts.items() if v == "better"]
        unjudged = [m for m, v in verdicts.items() if v == "one seed"]
        tested = int(verdicts.isin(["better", "worse", "within noise"]).sum())
        if tested:
            notes.append(
                f"Beyond seed noise (paired t-test over seeds, 95 %), better than {reference}: "
                + (", ".join(better) if better else "none")
                + "."
            )
        if tested > 1:
            # each test errs 5 % of the time when nothing differs; over several, the chance
            # that one of them errs grows up to their sum (the union bound)
            notes.append(
                f"{tested} {by}s tested, each at 95 %: were none of them different from "
                f"{reference}, a false better or worse verdict would still appear in up to "
                f"{min(100, 5 * tested)} % of such tables."
            )
        if unjudged:
            notes.append(
                "Not judged (one paired seed, no spread to test against): "
                + ", ".join(unjudged)
                + "."
            )
    kept = int(table["kept_start"].sum()) if "kept_start" in table.columns else 0
    if kept:
        notes.append(
            f"In {kept} of {int(table['runs'].sum())} runs the closed-form start validated lower "
            f"than the trained network and was tested in its place (train.keep_start): those "
            f"runs' forecasts do not depend on the {by}."
        )
    for note in notes:
        lines += ["", note]
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
