"""The ``tsattn`` console script.

::

    tsattn fit --data ETTh1 --horizon 96                  # train + test, writes runs/<name>-<time>/
    tsattn fit --config cfg.yaml --set model.mixer=eca --set train.lr=1e-3
    tsattn fit --resume runs/ETTh1-h96-identity-20250101-120000   # continue a killed run
    tsattn test --run runs/ETTh1-h96-identity-20250101-120000
    tsattn forecast --data my.csv --horizon 24 --out pred.csv [--model runs/.../model.pt]
    tsattn ablate --data ETTh1 --horizon 96 --mixers identity,se,eca --seeds 3
    tsattn datasets list | download ETTh1 | verify ETTh1

Configuration is a :class:`~tsattn.train.config.RunConfig` (the same dataclasses as the
Python API): defaults, then ``--config`` YAML, then the explicit flags, then ``--set key=value``.
Each ``fit`` writes one folder with ``config.yaml`` (resolved), ``metrics.json`` (final),
``metrics.csv`` (per-step log), ``model.pt`` (:meth:`tsattn.Forecaster.load`) and
``checkpoints/`` (``best.ckpt``, ``last.ckpt``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from tsattn.train.config import RunConfig

__all__ = ["build_parser", "main"]

# OpenMP threads that spin while they wait turn a shared CPU into a 4-40x slowdown when another
# process computes on the same cores (experiments/bench_contention.py). The tsattn command
# waits passively unless the user chose a policy; OpenMP reads the setting when torch loads,
# which the tsattn package has already done here, so main() restarts the computing commands
# once with it set (children, such as DDP workers, inherit it from here).
_USER_WAIT_POLICY = "OMP_WAIT_POLICY" in os.environ
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
_COMPUTING_COMMANDS = ("fit", "test", "forecast", "ablate")


def _passive_restart(command: str | None, argv: list[str] | None) -> list[str] | None:
    """The command line that reruns this command with the passive policy in effect, or None."""
    if argv is not None or _USER_WAIT_POLICY or command not in _COMPUTING_COMMANDS:
        return None  # called from Python, the user's own policy, or nothing to compute
    if os.name != "posix":
        return None
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


def _print_metrics(metrics: dict[str, Any]) -> None:
    for key in sorted(metrics):
        value = metrics[key]
        print(f"  {key:>16}: {value:.6g}" if isinstance(value, float) else f"  {key:>16}: {value}")


def _cmd_fit(args: argparse.Namespace) -> int:
    from tsattn.api import Forecaster

    if args.resume:
        run_dir = Path(args.resume)
        cfg = RunConfig.from_yaml(run_dir / "config.yaml")
        ckpt = run_dir / "checkpoints" / "last.ckpt"
        if not ckpt.is_file():
            raise ValueError(f"{ckpt} does not exist: nothing to resume in {run_dir}.")
        ckpt_path: str | None = str(ckpt)
    else:
        cfg = _resolve(args)
        if cfg.data.data is None:
            raise ValueError("no data: pass --data NAME_OR_CSV (or data.data in --config).")
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
    forecaster.save(run_dir / "model.pt")
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
    _write_json(run_dir / "metrics.json", metrics)
    print("metrics:")
    _print_metrics(metrics)
    return 0


def _load_model(args: argparse.Namespace):
    from tsattn.api import Forecaster

    if args.run:
        path = Path(args.run) / "model.pt"
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
        _write_json(Path(args.run) / "test_metrics.json", metrics)
    print("metrics:")
    _print_metrics(metrics)
    return 0


def _cmd_forecast(args: argparse.Namespace) -> int:
    from tsattn.api import FORECAST_DEFAULTS, Forecaster

    if args.data is None:
        raise ValueError("pass --data (a CSV path or dataset name) with the history.")
    if args.model:
        forecaster = Forecaster.load(args.model, map_location=args.map_location)
        prediction = forecaster.predict(args.data, horizon=args.horizon)
    else:
        if args.horizon is None:
            raise ValueError("pass --horizon (steps to forecast) or --model.")
        base = Forecaster(horizon=args.horizon, **FORECAST_DEFAULTS).config
        cfg = _resolve(args, base=base)
        prediction = Forecaster.from_config(cfg).fit(args.data).predict()
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        prediction.to_csv(args.out)
        print(f"wrote {len(prediction)} x {prediction.shape[1]} forecast to {args.out}")
    else:
        print(prediction.to_csv(), end="")
    return 0


def _cmd_ablate(args: argparse.Namespace) -> int:
    from tsattn.nn.mixers import list_mixers
    from tsattn.train.ablation import run_ablation

    cfg = _resolve(args)
    if cfg.data.data is None:
        raise ValueError("no data: pass --data NAME_OR_CSV (or data.data in --config).")
    mixers = list_mixers() if args.mixers == "all" else [m.strip() for m in args.mixers.split(",")]
    out = Path(args.out or Path(cfg.output_dir) / f"ablate-{_default_name(cfg).rsplit('-', 1)[0]}")
    table = run_ablation(cfg, mixers, args.seeds, out, keep_checkpoints=args.keep_checkpoints)
    print((out / "ablation.md").read_text())
    print(f"table: {out / 'ablation.csv'}, {out / 'ablation.md'}, {out / 'ablation.png'}")
    return 0 if len(table) == len(mixers) else 1


def _cmd_datasets(args: argparse.Namespace) -> int:
    from tsattn.data import dataset_status, download_dataset, list_datasets, verify_dataset

    if args.action == "list":
        print(f"{'name':<16} {'file':<22} {'sha256':<7} found at")
        for row in dataset_status(args.root):
            found = row["path"] or "-"
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
                path = verify_dataset(name, root=args.root)
                print(f"{name}: OK {path}")
        except (FileNotFoundError, ValueError) as error:
            failed += 1
            print(f"{name}: FAILED\n{error}", file=sys.stderr)
    return 1 if failed else 0


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
    fc.set_defaults(func=_cmd_forecast)

    ab = sub.add_parser("ablate", help="train every mixer x seed with all else fixed; table")
    _add_config_args(ab)
    ab.add_argument("--mixers", default="identity,se,eca", help="comma-separated, or 'all'")
    ab.add_argument("--seeds", type=int, default=3, help="seeds per mixer (train.seed + 0..n-1)")
    ab.add_argument("--out", help="output folder (default: <output_dir>/ablate-<data>-h<H>)")
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
        sys.stdout.flush()
        os.execv(restart[0], restart)
    # Lightning's own use of a deprecated torch pytree check: nothing a tsattn user can act on
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"tsattn {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
