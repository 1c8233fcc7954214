"""The ``tsattn`` console script.

::

    tsattn fit --data ETTh1 --horizon 96                  # train + test, writes runs/<name>-<time>/
    tsattn fit --config cfg.yaml --set model.mixer=eca --set train.lr=1e-3
    tsattn fit --resume runs/ETTh1-h96-identity-20250101-120000   # continue a killed run
    tsattn test --run runs/ETTh1-h96-identity-20250101-120000
    tsattn forecast --data my.csv --horizon 24 --out pred.csv [--model runs/.../model.pt]
    tsattn forecast --data my.csv --horizon 24 --level 80 --level 95   # prediction intervals
    tsattn backtest --data my.csv --horizon 24 --n-windows 5 --step-size 24 --out bt/
    tsattn ablate --data ETTh1 --horizon 96 --mixers identity,se,eca --seeds 3
    tsattn ablate --data ETTh1 --horizon 96 --fusions all --seeds 3   # skip, fpn, panet, asff
    tsattn datasets list | download ETTh1 | verify ETTh1

Configuration is a :class:`~tsattn.train.config.RunConfig` (the same dataclasses as the
Python API): defaults, then ``--config`` YAML, then the explicit flags, then ``--set key=value``.
Each ``fit`` writes one folder with ``config.yaml`` (resolved), ``metrics.json`` (final),
``metrics.csv`` (per-step log), ``model.pt`` (:meth:`tsattn.Forecaster.load`),
``checkpoints/`` (``best.ckpt``, ``last.ckpt``, and ``start.ckpt``: the closed-form start,
the model when no epoch beats it, ``train.keep_start``) and, for a graph model, ``graph.csv`` and
``graph.png`` (the learned graph, :meth:`tsattn.Forecaster.graph`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tsattn.train.checkpoint import run_file
from tsattn.train.config import RunConfig

__all__ = ["build_parser", "main"]

# OpenMP threads that spin while they wait turn a shared CPU into a 4-40x slowdown when another
# process computes on the same cores, and passive waiting costs a quiet machine 10-45 % at small
# shapes (experiments/bench_contention.py). A computing command that starts on a shared machine
# therefore waits passively unless the user chose a policy; OpenMP reads the setting when torch
# loads, which the tsattn package has already done here, so main() restarts the command once
# with it set (children, such as DDP workers, inherit it). On a quiet machine the threads keep
# spinning, and every CPU fit's OversubscriptionGuard moves training to one thread if other
# work arrives later (tsattn/train/oversubscription.py).
_USER_WAIT_POLICY = "OMP_WAIT_POLICY" in os.environ
_COMPUTING_COMMANDS = ("fit", "test", "forecast", "ablate")


def _passive_restart(command: str | None, argv: list[str] | None) -> list[str] | None:
    """The command line that reruns this command with the passive policy in effect, or None."""
    if argv is not None or _USER_WAIT_POLICY or command not in _COMPUTING_COMMANDS:
        return None  # called from Python, the user's own policy, or nothing to compute
    if os.name != "posix":
        return None
    from tsattn.train.oversubscription import cores_shared

    threads = os.environ.get("OMP_NUM_THREADS", "")
    if not cores_shared(int(threads) if threads.isdigit() else None):
        return None  # a quiet machine: spinning threads are the fastest
    return [sys.executable, "-m", "tsattn.cli", *sys.argv[1:]]


# flag -> config key, for the explicit flags shared by fit / test / forecast / ablate
_FLAGS: dict[str, tuple[str, type]] = {
    "data": ("data.data", str),
    "horizon": ("data.horizon", int),
    "seq_len": ("data.seq_len", int),
    "protocol": ("data.protocol", str),
    "batch_size": ("data.batch_size", int),
    "mixer": ("model.mixer", str),
    "fusion": ("model.fusion", str),
    "max_epochs": ("train.max_epochs", int),
    "max_steps": ("train.max_steps", int),
    "lr": ("train.lr", float),
    "seed": ("train.seed", int),
    "accelerator": ("train.accelerator", str),
    "devices": ("train.devices", str),
    "precision": ("train.precision", str),
    "name": ("name", str),
    "output_dir": ("output_dir", str),
}


def _add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML file with data/model/train sections")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one setting, e.g. --set model.mixer=eca --set train.lr=1e-3",
    )
    for flag, (key, kind) in _FLAGS.items():
        parser.add_argument(f"--{flag.replace('_', '-')}", type=kind, help=f"sets {key}")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or banners")


def _add_level_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--level",
        type=float,
        action="append",
        help="prediction interval level in percent, repeatable: --level 80 --level 95",
    )


def _resolve(args: argparse.Namespace, base: RunConfig | None = None) -> RunConfig:
    cfg = RunConfig.from_yaml(args.config) if args.config else (base or RunConfig())
    overrides = []
    for flag, (key, _) in _FLAGS.items():
        value = getattr(args, flag, None)
        if value is not None:
            overrides.append(f"{key}={value}")
    if getattr(args, "quiet", False):
        overrides.append("train.progress_bar=false")
    return cfg.with_overrides([*overrides, *args.overrides])


def _default_name(cfg: RunConfig) -> str:
    data = Path(str(cfg.data.data)).stem if cfg.data.data else "data"
    return f"{data}-h{cfg.data.horizon}-{cfg.model.get('mixer', 'identity')}"


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    clean = {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v)
        for k, v in payload.items()
    }
    path.write_text(json.dumps(clean, indent=2) + "\n")


def _format_metric(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _print_metrics(metrics: dict[str, Any]) -> None:
    """One line per metric; the scores on the parts of the validation windows
    (``best_val_loss_part1`` ... ``_partN``) share one line, ``best_val_loss_parts``, in part
    order, so that the summary stays short whatever ``keep_start_parts`` is. metrics.json keeps
    every key."""
    lines: dict[str, str] = {}
    parts: dict[str, list[tuple[int, Any]]] = {}
    for key, value in metrics.items():
        stem, sep, index = key.rpartition("_part")
        if sep and index.isdigit():
            parts.setdefault(f"{stem}_parts", []).append((int(index), value))
        else:
            lines[key] = _format_metric(value)
    for key, values in parts.items():
        lines[key] = " / ".join(_format_metric(value) for _, value in sorted(values))
    for key in sorted(lines):
        print(f"  {key:>16}: {lines[key]}")


def _require_data(data: str) -> None:
    """Find (or download) ``data`` before anything is written, so that a run whose data
    cannot be found leaves no empty run folder behind."""
    from tsattn.data.loader import dataset_file, resolve_spec

    spec = resolve_spec(data)
    if spec is not None:
        dataset_file(spec.name)
    elif not Path(data).expanduser().is_file():
        from tsattn.data import list_datasets

        raise FileNotFoundError(
            f"--data {data}: no such file, and not a registered dataset "
            f"({', '.join(list_datasets())}): give a CSV path or one of those names."
        )


def _launched_rank() -> int:
    """This process's rank as set by a multi-process launcher (torchrun: ``RANK``; SLURM:
    ``SLURM_PROCID``; Lightning's own launch: ``NODE_RANK`` and ``LOCAL_RANK``), 0 alone.

    Every process of a DDP run executes the same ``tsattn fit``; only rank 0 writes the run
    folder (Lightning sends rank 0's checkpoint folder to the others)."""
    for key in ("RANK", "SLURM_PROCID"):
        if os.environ.get(key, "").isdigit():
            return int(os.environ[key])
    node, local = os.environ.get("NODE_RANK", "0"), os.environ.get("LOCAL_RANK", "0")
    return int(node) + int(local) if node.isdigit() and local.isdigit() else 0


def _cmd_fit(args: argparse.Namespace) -> int:
    from tsattn.api import Forecaster

    if _launched_rank() != 0:
        return _fit_secondary_rank(args)
    if args.resume:
        run_dir = Path(args.resume)
        cfg = RunConfig.from_yaml(run_file(run_dir / "config.yaml", run_dir))
        ckpt = run_dir / "checkpoints" / "last.ckpt"
        if not ckpt.is_file():
            raise ValueError(f"{ckpt} does not exist: nothing to resume in {run_dir}.")
        ckpt_path: str | None = str(ckpt)  # checked inside the fit
    else:
        cfg = _resolve(args)
        if cfg.data.data is None:
            raise ValueError("no data: pass --data NAME_OR_CSV (or data.data in --config).")
        _require_data(cfg.data.data)
        cfg.name = cfg.name or _default_name(cfg)
        run_dir = Path(cfg.output_dir) / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        run_dir.mkdir(parents=True, exist_ok=False)
        cfg.to_yaml(run_dir / "config.yaml")
        ckpt_path = None
    print(f"run folder: {run_dir}", flush=True)
    started = time.perf_counter()
    forecaster = Forecaster.from_config(cfg).fit(
        cfg.data.data, run_dir=run_dir, ckpt_path=ckpt_path
    )
    forecaster.save(run_file(run_dir / "model.pt", run_dir))
    graph_files = _write_graph(forecaster, run_dir)
    counts = forecaster.window_counts_
    metrics = {
        **forecaster.metrics_,
        "params": sum(p.numel() for p in forecaster.model.parameters()),
        "epochs": len(forecaster.epoch_seconds_),
        "sec_per_epoch": (
            sum(forecaster.epoch_seconds_) / len(forecaster.epoch_seconds_)
            if forecaster.epoch_seconds_
            else None
        ),
        "wall_seconds": time.perf_counter() - started,
    }
    _write_json(run_file(run_dir / "metrics.json", run_dir), metrics)
    device = forecaster.result_.trainer.strategy.root_device
    print(
        f"trained {metrics['params']:,} parameters on {device.type} for {metrics['epochs']} "
        f"epoch(s) in {metrics['wall_seconds']:.1f} s; windows train / val / test: "
        f"{counts.get('train', 0)} / {counts.get('val', 0)} / {counts.get('test', 0)}"
    )
    print(_model_line(forecaster.kept_start_, forecaster.config.train.keep_start_parts))
    print(f"wrote config.yaml, metrics.json, metrics.csv, model.pt{graph_files}")
    print("metrics:")
    _print_metrics(metrics)
    return 0


def _model_line(kept_start: bool | None, parts: int) -> str:
    """Which model the fit kept: the trained network, or the closed-form start it began from."""
    if not kept_start:
        return "model: the trained network"
    where = "on the validation windows" if parts <= 1 else f"on each of {parts} validation parts"
    return (
        "model: the closed-form start the fit began from; the best epoch did not beat it "
        f"{where} (train.keep_start)"
    )


def _fit_secondary_rank(args: argparse.Namespace) -> int:
    """A DDP process other than rank 0: train its share, write and print nothing."""
    from tsattn.api import Forecaster

    if args.resume:
        cfg = RunConfig.from_yaml(Path(args.resume) / "config.yaml")
        ckpt_path: str | None = str(Path(args.resume) / "checkpoints" / "last.ckpt")
    else:
        cfg, ckpt_path = _resolve(args), None
    with tempfile.TemporaryDirectory(prefix="tsattn-rank-") as scratch:
        Forecaster.from_config(cfg).fit(cfg.data.data, run_dir=scratch, ckpt_path=ckpt_path)
    return 0


def _write_graph(forecaster: Any, run_dir: Path) -> str:
    """``graph.csv`` and ``graph.png`` for a graph model; the names written, for the log."""
    if not forecaster.model.config.graph:
        return ""
    graph = forecaster.graph()
    graph.to_csv(run_dir / "graph.csv")
    written = ", graph.csv"
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        return written + " (no graph.png: pip install 'tsattn[plot]')"
    fig = forecaster.plot_graph()
    fig.savefig(run_dir / "graph.png", dpi=120)
    plt.close(fig)
    return written + ", graph.png"


def _load_model(args: argparse.Namespace):
    from tsattn.api import Forecaster

    if args.run:
        path = run_file(Path(args.run) / "model.pt", args.run)
    elif args.model:
        path = Path(args.model)
    else:
        raise ValueError("pass --run RUN_FOLDER or --model model.pt.")
    if not path.is_file():
        raise ValueError(f"{path} does not exist: give a run folder written by `tsattn fit`.")
    return Forecaster.load(path, map_location=args.map_location)


def _cmd_test(args: argparse.Namespace) -> int:
    forecaster = _load_model(args)
    metrics = forecaster.test(args.data)
    if args.run:
        _write_json(run_file(Path(args.run) / "test_metrics.json", args.run), metrics)
    print("metrics:")
    _print_metrics(metrics)
    return 0


def _cmd_forecast(args: argparse.Namespace) -> int:
    from tsattn.api import FORECAST_DEFAULTS, Forecaster

    if args.data is None:
        raise ValueError("pass --data (a CSV path or dataset name) with the history.")
    if args.model:
        forecaster = Forecaster.load(args.model, map_location=args.map_location)
        prediction = forecaster.predict(args.data, horizon=args.horizon, level=args.level)
    else:
        if args.horizon is None:
            raise ValueError("pass --horizon (steps to forecast) or --model.")
        base = Forecaster(horizon=args.horizon, **FORECAST_DEFAULTS).config
        cfg = _resolve(args, base=base)
        prediction = Forecaster.from_config(cfg).fit(args.data).predict(level=args.level)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        prediction.to_csv(args.out)
        print(f"wrote {len(prediction)} x {prediction.shape[1]} forecast to {args.out}")
    else:
        print(prediction.to_csv(), end="")
    return 0


def _cmd_backtest(args: argparse.Namespace) -> int:
    from tsattn.api import FORECAST_DEFAULTS, Forecaster

    if args.data is None:
        raise ValueError("pass --data (a CSV path or dataset name) to backtest on.")
    _require_data(args.data)
    cfg = _resolve(args, base=Forecaster(**FORECAST_DEFAULTS).config)
    refit = int(args.refit)
    result = Forecaster.from_config(cfg).cross_validation(
        cfg.data.data, args.n_windows, args.step_size, refit=refit, level=args.level
    )
    out = Path(args.out or "backtest")
    out.mkdir(parents=True, exist_ok=True)
    result.forecasts.to_csv(out / "backtest.csv", index=False)
    result.metrics.to_csv(out / "backtest_metrics.csv")
    import matplotlib.pyplot as plt

    fig = result.plot()
    fig.savefig(out / "backtest.png", dpi=120)
    plt.close(fig)
    print(result.metrics.to_string(float_format=lambda v: f"{v:.6g}"))
    print(f"wrote {out / 'backtest.csv'}, {out / 'backtest_metrics.csv'}, {out / 'backtest.png'}")
    return 0


def _cmd_ablate(args: argparse.Namespace) -> int:
    from tsattn.train.ablation import ablatable, run_ablation

    cfg = _resolve(args)
    if cfg.data.data is None:
        raise ValueError("no data: pass --data NAME_OR_CSV (or data.data in --config).")
    by, chosen = ("fusion", args.fusions) if args.fusions else ("mixer", args.mixers)
    values = ablatable()[by] if chosen == "all" else [v.strip() for v in chosen.split(",")]
    folder = "ablate-" + ("fusion-" if by == "fusion" else "")
    out = Path(args.out or Path(cfg.output_dir) / (folder + _default_name(cfg).rsplit("-", 1)[0]))
    table = run_ablation(
        cfg,
        values,
        args.seeds,
        out,
        by=by,
        keep_start=args.keep_start,
        keep_checkpoints=args.keep_checkpoints,
    )
    print((out / "ablation.md").read_text())
    print(f"table: {out / 'ablation.csv'}, {out / 'ablation.md'}, {out / 'ablation.png'}")
    return 0 if len(table) == len(values) else 1


def _cmd_datasets(args: argparse.Namespace) -> int:
    from tsattn.data import (
        dataset_status,
        download_dataset,
        get_spec,
        list_datasets,
    )
    from tsattn.data.registry import shipped_file

    if args.action == "list":
        print(f"{'name':<16} {'file':<22} {'sha256':<7} found at")
        for row in dataset_status(args.root):
            shipped = shipped_file(get_spec(str(row["name"])))
            found = row["path"] or (f"shipped with tsattn: {shipped}" if shipped else "-")
            print(
                f"{row['name']:<16} {row['file']:<22} {'yes' if row['pinned'] else 'no':<7} {found}"
            )
        return 0
    names = args.names or (list_datasets() if args.all else [])
    if not names:
        raise ValueError(
            f"name the datasets to {args.action} (or --all): {', '.join(list_datasets())}."
        )
    failed = 0
    for name in names:
        try:
            if args.action == "download":
                path = download_dataset(name, root=args.root, force=args.force)
                print(f"{name}: {path}")
            else:
                path = _verify(name, args.root)
                print(f"{name}: OK {path}")
        except (FileNotFoundError, ValueError) as error:
            failed += 1
            print(f"{name}: FAILED\n{error}", file=sys.stderr)
    return 1 if failed else 0


def _verify(name: str, root: str | None) -> Path:
    """Re-hash the local copy of ``name``; without one, the copy shipped with tsattn."""
    from tsattn.data import verify_dataset
    from tsattn.data.loader import dataset_file

    try:
        return verify_dataset(name, root=root)
    except FileNotFoundError:
        return dataset_file(name, root=root, download=False)  # checks the shipped copy


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of the ``tsattn`` command."""
    parser = argparse.ArgumentParser(prog="tsattn", description="tsattn forecasting toolkit")
    sub = parser.add_subparsers(dest="command")

    fit = sub.add_parser("fit", help="train, reload the best checkpoint, test; writes a run folder")
    _add_config_args(fit)
    fit.add_argument("--resume", metavar="RUN_FOLDER", help="continue a killed run from last.ckpt")
    fit.set_defaults(func=_cmd_fit)

    test = sub.add_parser("test", help="test metrics of a trained model on its data's test split")
    test.add_argument("--run", help="run folder written by `tsattn fit`")
    test.add_argument("--model", help="a model.pt file (instead of --run)")
    test.add_argument("--data", help="dataset name or CSV (default: the one it was trained on)")
    test.add_argument("--map-location", default=None, help="device for the model (default cpu)")
    test.set_defaults(func=_cmd_test)

    fc = sub.add_parser("forecast", help="fit on a history (or load --model) and forecast")
    _add_config_args(fc)
    fc.add_argument("--model", help="a model.pt file: forecast with it instead of fitting")
    fc.add_argument("--map-location", default=None, help="device for --model (default cpu)")
    fc.add_argument("--out", help="CSV file for the forecast (default: print it)")
    _add_level_arg(fc)
    fc.set_defaults(func=_cmd_forecast)

    bt = sub.add_parser(
        "backtest", help="forecast from several past cutoffs; CSV of forecasts, metrics, plot"
    )
    _add_config_args(bt)
    bt.add_argument("--n-windows", type=int, default=3, help="cutoffs to forecast from")
    bt.add_argument("--step-size", type=int, help="steps between cutoffs (default: horizon)")
    bt.add_argument("--refit", type=int, default=0, help="fit again every N windows (0: fit once)")
    bt.add_argument("--out", help="output folder (default: ./backtest)")
    _add_level_arg(bt)
    bt.set_defaults(func=_cmd_backtest)

    ab = sub.add_parser(
        "ablate", help="train every mixer (or fusion) x seed with all else fixed; paired table"
    )
    _add_config_args(ab)
    switch = ab.add_mutually_exclusive_group()
    switch.add_argument("--mixers", default="identity,se,eca", help="comma-separated, or 'all'")
    switch.add_argument(
        "--fusions", help="ablate the fusion instead: comma-separated (skip,fpn,...), or 'all'"
    )
    ab.add_argument("--seeds", type=int, default=3, help="seeds per value (train.seed + 0..n-1)")
    ab.add_argument(
        "--out",
        help="output folder (default: <output_dir>/ablate-<data>-h<H>, ablate-fusion-... for "
        "--fusions)",
    )
    ab.add_argument(
        "--keep-start",
        action="store_true",
        help="let each run keep the closed-form start where it validates lower (train.keep_start); "
        "off by default: the trained network, which the mixer or fusion changes, is tested",
    )
    ab.add_argument("--keep-checkpoints", action="store_true", help="keep each run's checkpoints")
    ab.set_defaults(func=_cmd_ablate)

    ds = sub.add_parser("datasets", help="list, download or verify the registered datasets")
    ds.add_argument("action", choices=("list", "download", "verify"))
    ds.add_argument("names", nargs="*", help="dataset names (download / verify)")
    ds.add_argument("--all", action="store_true", help="every registered dataset")
    ds.add_argument("--root", help="folder to look in / download into")
    ds.add_argument("--force", action="store_true", help="download again even if present")
    ds.set_defaults(func=_cmd_datasets)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``tsattn`` command; returns the exit status (errors print one clear line, 2)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    restart = _passive_restart(args.command, argv)
    if restart is not None:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # read by OpenMP in the restarted process
        sys.stdout.flush()
        os.execv(restart[0], restart)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"tsattn {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
