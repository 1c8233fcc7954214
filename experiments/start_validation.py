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

``--cycles`` scores instead what ``model.cycle_length="auto"`` chooses from (a day and a week of
the data's step), each as the trainer scores it
(:func:`tsattn.train.trainer.choose_cycle_length`: the recipe's start with that cycle, its
``val_loss``, the recipe's L1, and its MSE), the start without a cycle beside them, and which
cycle the trainer keeps:

    python experiments/start_validation.py --cycles \\
        --datasets ETTh1,ETTh2,ETTm1,weather,exchange_rate --horizons 96,192,336,720

``--variants`` scores other fits of the weighted start's shortcut (a larger ridge penalty;
iteratively reweighted least squares towards the L1 error the recipe trains on; recent windows
weighted more; a map of reduced rank; the cycle fitted jointly with the map, alternating; one
map per variable, DLinear's ``individual=True``; gross outliers left out of the start,
``train.start_trim``, with the number of window variables left out; a map that reads only the
last steps of the look-back; a map pulled towards the random walk, the naive last-value
forecast, instead of towards zero; a map per forecast variable that reads every variable's
look-back; a map per block of the cycle, the hour of the day a window's forecast starts at,
pulled towards the shared map), all of them or those named by ``--variant``:

    python experiments/start_validation.py --variants --datasets ETTh1,ETTh2 --horizons 96,720
    python experiments/start_validation.py --variants --variant "per variable" \\
        --datasets ETTh1,ETTh2,ETTm1,weather --horizons 96,192,336,720 \\
        --out experiments/results/start_search/per_variable.md
    python experiments/start_validation.py --variants --variant "trim 10" --variant "trim 5" \\
        --datasets ETTh1,ETTh2,ETTm1,weather --horizons 96,192,336,720 \\
        --out experiments/results/trim_search/start_only.md
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))

from bench_speed import markdown, write_report  # noqa: E402

from tsattn import MTGNN, MTGNNConfig  # noqa: E402
from tsattn.data.datamodule import TimeSeriesDataModule  # noqa: E402
from tsattn.data.timefeatures import cycle_lengths  # noqa: E402
from tsattn.train import TrainConfig  # noqa: E402
from tsattn.train.module import ForecastModule  # noqa: E402
from tsattn.train.recipe import resolve_loss, resolve_model_options  # noqa: E402
from tsattn.train.trainer import choose_cycle_length, fit_start  # noqa: E402

DEFAULT_OUT = ROOT / "experiments/results/start_search/start_only.md"
STARTS = {"least_squares": "default", "weighted_least_squares": "wls"}  # -> search candidate


def started(
    dataset: str,
    horizon: int,
    weighted: bool,
    root: str | None,
    per_variable: bool = False,
    shrink: float = 0.0,
    trim: float = 0.0,
    cross: bool = False,
    per_phase: bool = False,
):
    """The data, the recipe model right after its closed-form start (seed 0) and what
    :func:`fit_start` fitted (values per part, ``trimmed``: window variables left out); with
    ``per_variable``, one shortcut map per variable (``MTGNNConfig.shortcut_per_variable``),
    shrunk towards the shared fit by ``shrink`` (``TrainConfig.shortcut_shrink``); ``trim``
    leaves gross outliers out of the start (``TrainConfig.start_trim``); with ``cross``, maps
    that read every variable's look-back (``MTGNNConfig.shortcut_cross_variable``); with
    ``per_phase``, one map per block of the cycle (``MTGNNConfig.shortcut_per_phase``)."""
    dm = TimeSeriesDataModule(dataset, 96, horizon, batch_size=256, root=root)
    dm.setup()
    maps = dict(shortcut_per_variable=per_variable, shortcut_cross_variable=cross,
                shortcut_per_phase=per_phase)  # fmt: skip
    options = resolve_model_options("tslib", dm.num_nodes, horizon, maps, "auto", freq=dm.freq)
    torch.manual_seed(0)
    config = MTGNNConfig(num_nodes=dm.num_nodes, seq_len=96, horizon=horizon,
                         time_features=dm.n_time_features, **options)  # fmt: skip
    model = MTGNN(config).eval()
    fitted = fit_start(model, dm.train_dataloader(), weighted=weighted, shrink=shrink,
                       trim=trim)  # fmt: skip
    return dm, model, fitted


def scores(
    model: torch.nn.Module,
    dm: TimeSeriesDataModule,
    loader: torch.utils.data.DataLoader | None = None,
) -> tuple[float, float]:
    """Validation MSE and MAE (scaled units, every window; those of ``loader`` instead when
    given) of ``model(x, marks, step)``; the MAE is the recipe's L1 ``val_loss``, which picks
    the best checkpoint."""
    squared, absolute, count = 0.0, 0.0, 0
    with torch.no_grad():
        for x, y, marks, step in loader or dm.val_dataloader():
            error = model(x, marks, step) - y
            squared += (error**2).sum().item()
            absolute += error.abs().sum().item()
            count += y.numel()
    return squared / count, absolute / count


def start_val(dataset: str, horizon: int, weighted: bool, root: str | None) -> tuple[float, float]:
    """Validation MSE and MAE of the recipe model right after its start."""
    dm, model, _ = started(dataset, horizon, weighted, root)
    return scores(model, dm)


def in_order(dm: TimeSeriesDataModule) -> torch.utils.data.DataLoader:
    """The training windows in time order (the loader's own shuffling left alone)."""
    loader = dm.train_dataloader()
    return torch.utils.data.DataLoader(loader.dataset, batch_size=256,
                                       collate_fn=loader.collate_fn)  # fmt: skip


def refit(
    model: MTGNN,
    dm: TimeSeriesDataModule,
    ridge: float = 1e-4,
    robust: bool = False,
    decay: float | None = None,
    lookback: int | None = None,
    towards_last: bool = False,
    shrink: float | None = None,
) -> None:
    """Refit the shortcut to what the cycle leaves of the training windows, weighted as
    ``weighted_least_squares`` weights them (each window's RevIN variance), with relative
    penalty ``ridge``; ``robust`` weights each window's variable by its RevIN scale over its
    mean absolute residual under the current shortcut instead: one step of iteratively
    reweighted least squares towards the L1 error of the denormalised forecast, the loss the
    recipe trains on. ``decay`` also weights each window by ``exp(-age / decay)``, ``age`` its
    distance before the last training window as a fraction of the training span: recent
    windows count more, for data whose relation drifts towards the validation period.
    ``lookback`` lets the map read only the last ``lookback`` steps of the window (the others'
    weights are zero), a shorter memory with fewer weights. ``towards_last`` pulls the map
    towards the random walk instead of towards zero (``ridge`` then sets how hard): the fit
    is that of the targets less the last value of the window, repeated, and that map is added
    back, so a large ``ridge`` forecasts the last value, as the naive forecast does.
    ``shrink``: the pull of maps per phase block towards their shared fit (by default
    ``PHASE_SHRINK``)."""
    ordered = in_order(dm)
    seq_len, horizon = model.config.seq_len, model.config.horizon
    if decay is not None:  # the training span, for the windows' ages
        steps = torch.cat([step for *_, step in ordered]).double()
        first, span = steps.min(), (steps.max() - steps.min()).clamp(min=1.0)

    def windows():
        for x, y, _, step in ordered:
            xn, stats = model.revin.normalize(x)
            yn = model.revin.normalize_target(y, stats)
            xr = xn - model.cycle(step, 0, seq_len)
            yr = yn - model.cycle(step, seq_len, horizon)
            if lookback is not None:  # zero regressors get zero weights
                xr = torch.cat([torch.zeros_like(xr[:, :-lookback]), xr[:, -lookback:]], 1)
            if towards_last:
                yr = yr - xr[:, -1:]
            scale = stats.std.squeeze(1)  # (B, N)
            if robust:
                residual = (model.shortcut(xr) - yr).abs().mean(1)  # (B, N)
                weight = scale / residual.clamp(min=1e-3)
            else:
                weight = scale**2
            if decay is not None:
                age = 1.0 - (step.double() - first) / span  # (B,): 0 the newest, 1 the oldest
                weight = weight * torch.exp(-age / decay).to(weight.dtype)[:, None]
            phase = model.shortcut_phase(step)
            yield (xr, yr, weight) if phase is None else (xr, yr, weight, phase)

    with torch.no_grad():
        model.shortcut.fit_least_squares(windows(), ridge=ridge, shrink=shrink)
        if towards_last:
            model.shortcut.linear.weight[:, -1] += 1.0


def reduce_rank(model: MTGNN, dm: TimeSeriesDataModule, rank: int) -> None:
    """Project the shortcut's map onto the ``rank`` leading directions of its weighted fitted
    values over the training windows (reduced-rank regression: the least-squares fit of rank
    ``rank`` of the same weighted problem)."""
    ordered = in_order(dm)
    seq_len = model.config.seq_len
    moment = 0.0
    with torch.no_grad():
        for x, _, _, step in ordered:
            xn, stats = model.revin.normalize(x)
            fitted = model.shortcut(xn - model.cycle(step, 0, seq_len)).double()  # (B, H, N)
            weighted = fitted * stats.std.double()  # the variance weights, as square roots
            moment = moment + torch.einsum("bhn,bgn->hg", weighted, weighted)  # (H, H)
        directions = torch.linalg.eigh(moment).eigenvectors[:, -rank:]  # (H, rank)
        project = (directions @ directions.T).float()  # (H, H)
        linear = model.shortcut.linear
        linear.weight.copy_(project @ linear.weight)
        linear.bias.copy_(project @ linear.bias)


def refit_cycle(model: MTGNN, dm: TimeSeriesDataModule) -> None:
    """Refit the cycle jointly with the shortcut as it stands: with the map ``W`` and bias ``b``
    fixed, a window of phase ``p`` forecasts ``W x + b + (C_out(p) - W C_in(p)) c`` (``C_in``,
    ``C_out`` pick the cycle's values at its input and forecast steps), linear in each
    variable's cycle ``c``, whose weighted least-squares fit (each window weighted by its RevIN
    variance, as ``weighted_least_squares`` weights it) is solved in closed form from sums per
    phase. Alternating it with :func:`refit` fits cycle and map together instead of the cycle
    at its phase means first."""
    cycle, linear = model.cycle, model.shortcut.linear
    length, nodes = cycle.values.shape
    seq_len, horizon = model.config.seq_len, model.config.horizon
    weight, bias = linear.weight.double(), linear.bias.double()  # (H, L), (H,)
    eye = torch.eye(length, dtype=torch.float64)
    phase = torch.arange(length)[:, None]
    c_in = eye[(phase + torch.arange(seq_len)) % length]  # (W, L, W)
    c_out = eye[(phase + seq_len + torch.arange(horizon)) % length]  # (W, H, W)
    design = c_out - torch.einsum("hl,plw->phw", weight, c_in)  # (W, H, W)
    mass = torch.zeros(length, nodes, dtype=torch.float64)  # (W, N): summed window weights
    residual = torch.zeros(length, horizon, nodes, dtype=torch.float64)  # (W, H, N)
    with torch.no_grad():
        for x, y, _, step in in_order(dm):
            xn, stats = model.revin.normalize(x)
            yn = model.revin.normalize_target(y, stats).double()  # (B, H, N)
            variance = stats.std.squeeze(1).double() ** 2  # (B, N)
            left = yn - torch.einsum("hl,bln->bhn", weight, xn.double()) - bias[:, None]
            first = step.long() % length  # (B,)
            mass.index_add_(0, first, variance)
            residual.index_add_(0, first, left * variance[:, None, :])
        gram = torch.einsum("phw,phv->pwv", design, design)  # (W, W, W)
        values = torch.empty(length, nodes, dtype=torch.float64)
        for node in range(nodes):
            normal = torch.einsum("p,pwv->wv", mass[:, node], gram)  # (W, W)
            normal += 1e-6 * normal.diagonal().mean() * eye  # phases never seen stay solvable
            values[:, node] = torch.linalg.solve(
                normal, torch.einsum("phw,ph->w", design, residual[:, :, node])
            )
        cycle.values.copy_(values.to(cycle.values))


# name -> the refits applied in turn to the weighted start (keyword arguments of refit, or
# {"rank": r} for reduce_rank, or {"cycle": True}: refit_cycle, then refit), or
# {"per_variable": True, "shrink": s}: the weighted start of the model with one map per variable;
# {"trim": t}: the weighted start with gross outliers left out (train.start_trim), its count beside;
# {"cross": True}: the weighted start with maps that read every variable's look-back
# (MTGNNConfig.shortcut_cross_variable; its own ridge, CROSS_RIDGE, unless a refit follows);
# {"per_phase": True}: the weighted start with one map per block of the cycle
# (MTGNNConfig.shortcut_per_phase; shrunk by PHASE_SHRINK unless a refit with "shrink" follows)
VARIANTS: dict[str, list[dict]] = {
    "weighted_least_squares (ridge 1e-4)": [],
    "ridge 0.1": [{"ridge": 0.1}],
    "ridge 1": [{"ridge": 1.0}],
    "robust, 1 step": [{"robust": True}],
    "robust, 3 steps": [{"robust": True}] * 3,
    "recent, decay 1": [{"decay": 1.0}],
    "recent, decay 0.25": [{"decay": 0.25}],
    "rank 8": [{"rank": 8}],
    "rank 32": [{"rank": 32}],
    "joint cycle, 3 rounds": [{"cycle": True}] * 3,
    "per variable": [{"per_variable": True}],
    "per variable, shrunk 1": [{"per_variable": True, "shrink": 1.0}],
    "per variable, shrunk 10": [{"per_variable": True, "shrink": 10.0}],
    "per variable, shrunk 100": [{"per_variable": True, "shrink": 100.0}],
    "trim 10": [{"trim": 10.0}],
    "trim 5": [{"trim": 5.0}],
    "look-back 48": [{"lookback": 48}],
    "look-back 24": [{"lookback": 24}],
    "towards last value, ridge 1": [{"towards_last": True, "ridge": 1.0}],
    "towards last value, ridge 10": [{"towards_last": True, "ridge": 10.0}],
    "cross-variable, ridge 0.1": [{"cross": True}, {"ridge": 0.1}],
    "cross-variable, ridge 1": [{"cross": True}],
    "cross-variable, ridge 10": [{"cross": True}, {"ridge": 10.0}],
    "per phase, shrunk 0.1": [{"per_phase": True}, {"shrink": 0.1}],
    "per phase, shrunk 1": [{"per_phase": True}],
    "per phase, shrunk 3": [{"per_phase": True}, {"shrink": 3.0}],
    "per phase, shrunk 10": [{"per_phase": True}, {"shrink": 10.0}],
}


def variants(
    dataset: str, horizon: int, root: str | None, names: list[str] | None = None
) -> list[str]:
    """One row: validation MSE / MAE of the start refitted each way of ``VARIANTS`` (those in
    ``names``, all by default)."""
    row = [dataset, str(horizon)]
    for steps in (VARIANTS[name] for name in names or VARIANTS):
        kinds = {"per_variable", "trim", "cross", "per_phase"}
        own = next((step for step in steps if kinds & step.keys()), {})
        dm, model, fitted = started(
            dataset, horizon, True, root, per_variable=own.get("per_variable", False),
            shrink=own.get("shrink", 0.0), trim=own.get("trim", 0.0),
            cross=own.get("cross", False), per_phase=own.get("per_phase", False),
        )  # fmt: skip
        for step in steps:
            if "rank" in step:
                reduce_rank(model, dm, step["rank"])
            elif "cycle" in step:
                refit_cycle(model, dm)
                refit(model, dm)
            elif step is own:
                continue  # a start of its own (above)
            else:
                refit(model, dm, **step)
        mse, mae = scores(model, dm)
        left_out = f" ({fitted['trimmed']} left out)" if "trimmed" in fitted else ""
        row.append(f"{mse:.4f} / {mae:.4f}{left_out}")
    return row


def cycle_choice(dataset: str, horizon: int, root: str | None) -> list[str]:
    """One row: the ``val_loss`` (and MSE) of the recipe's start with each cycle that
    ``cycle_length="auto"`` chooses from and without a cycle, and the one it keeps."""
    dm = TimeSeriesDataModule(dataset, 96, horizon, protocol="tslib", batch_size=256, root=root)
    dm.setup()
    options = resolve_model_options("tslib", dm.num_nodes, horizon, {}, "auto")  # cycle set below
    train = TrainConfig(loss=resolve_loss("tslib", "auto")).to_dict()

    def make_module(length: int) -> ForecastModule:
        config = MTGNNConfig(num_nodes=dm.num_nodes, seq_len=96, horizon=horizon,
                             time_features=dm.n_time_features,
                             **{**options, "cycle_length": length})  # fmt: skip
        return ForecastModule(config.to_dict(), train)

    lengths = cycle_lengths(dm.freq)
    chosen, val_loss = 0, {}  # no known step: no cycle
    if lengths:
        chosen, val_loss = choose_cycle_length(make_module, lengths, dm.train_dataloader(),
                                               dm.val_dataloader(), weighted=True)  # fmt: skip

    def start(length: int) -> tuple[float, float]:
        """MSE and MAE (the recipe's L1 ``val_loss``) of the start with that cycle."""
        model = make_module(length).model
        fit_start(model, dm.train_dataloader(), weighted=True)
        return scores(model.eval(), dm)

    row = [dataset, str(horizon)]
    for length in lengths:
        if length not in val_loss:
            row.append("not a candidate")
            continue
        row.append(f"{length}: {val_loss[length]:.4f} / {start(length)[0]:.4f}")
    row += [""] * (4 - len(row))  # blank cycle cells where the step allows fewer than two
    mse, mae = start(0)  # no cycle
    return [*row, f"{mae:.4f} / {mse:.4f}", str(chosen)]


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
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--cycles", action="store_true", help="score the cycles auto chooses from")
    parser.add_argument("--variants", action="store_true", help="score other fits of the start")
    parser.add_argument("--variant", action="append", choices=list(VARIANTS),
                        help="with --variants: score only these (repeatable); the weighted "
                        "start is always scored beside them")  # fmt: skip
    args = parser.parse_args(argv)
    root = os.environ.get("TSATTN_DATA_DIR")
    if args.cycles:
        cycles(args, root)
        return
    if args.variants:
        other_fits(args, root)
        return

    def row(dataset: str, horizon: int) -> list[str]:
        cells = [dataset, str(horizon)]
        for start, candidate in STARTS.items():
            mse, mae = start_val(dataset, horizon, start == "weighted_least_squares", root)
            cells += [f"{mse:.4f} / {mae:.4f}", trained(args.cells, candidate, dataset, horizon)]
        return cells

    header = (
        f"cpu, torch {torch.__version__}; tslib protocol, L=96; validation MSE / MAE in scaled "
        "units, every validation window; start: the recipe model before any training step; "
        f"trained: the best checkpoint of the search cell ({args.cells or 'none given'})"
    )
    report(args, row, "start_validation", "Closed-form start alone",
           ["dataset", "H", "least_squares start", "trained from it (default)",
            "weighted_least_squares start", "trained from it (wls)"], header,
           DEFAULT_OUT)  # fmt: skip


def report(args: argparse.Namespace, row: Callable[[str, int], list[str]], name: str,
           section: str, headers: list[str], header: str, default: Path) -> None:  # fmt: skip
    """One ``row(dataset, horizon)`` per dataset and horizon of ``args``, printed as they come
    and written as the report ``name`` (to ``--out`` when given, else to ``default``)."""
    rows = []
    for dataset in args.datasets.split(","):
        for horizon in [int(h) for h in args.horizons.split(",")]:
            rows.append(row(dataset, horizon))
            print(" | ".join(rows[-1]), flush=True)
    out = args.out if args.out != DEFAULT_OUT else default
    write_report(name, header, [(section, markdown(headers, rows))], out)


def cycles(args: argparse.Namespace, root: str | None) -> None:
    header = (
        f"cpu, torch {torch.__version__}; tslib protocol, L=96; the recipe's closed-form start "
        "with each cycle that model.cycle_length=auto chooses from (a day and a week of the "
        "data's step) and without a cycle, scored on every validation window in scaled units: "
        "val_loss (L1, what the choice reads) / MSE; chosen: the cycle the trainer keeps"
    )
    report(args, lambda dataset, horizon: cycle_choice(dataset, horizon, root), "cycle_choice",
           "Cycle chosen on validation",
           ["dataset", "H", "day: val_loss / MSE", "week: val_loss / MSE",
            "no cycle: val_loss / MSE", "chosen"], header,
           ROOT / "experiments/results/cycle_choice.md")  # fmt: skip


def other_fits(args: argparse.Namespace, root: str | None) -> None:
    header = (
        f"cpu, torch {torch.__version__}; tslib protocol, L=96; validation MSE / MAE in scaled "
        "units, every validation window, of the recipe's closed-form start (daily cycle at its "
        "phase means, shortcut fitted to what it leaves) with the shortcut fitted each way (the "
        "trims refit the cycle too); none of these fits became the default"
    )
    first = next(iter(VARIANTS))
    names = [first, *(v for v in args.variant or VARIANTS if v != first)]
    report(args, lambda dataset, horizon: variants(dataset, horizon, root, names), "start_fits",
           "Fits of the shortcut", ["dataset", "H", *names], header,
           ROOT / "experiments/results/start_search/fits.md")  # fmt: skip


if __name__ == "__main__":
    main()
