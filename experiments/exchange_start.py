"""Validation error of a closed-form autoregressive start on exchange_rate, single-step protocol.

The single-step ``mtgnn`` protocol predicts one row ``h`` steps after a look-back of ``P = 168``
rows. Exchange rates move like random walks, and a linear map of the look-back (LSTNet's
autoregressive highway, Lai et al., SIGIR 2018) is a strong forecaster there. This script
builds the model of a candidate of ``experiments/candidates/exchange_single_step.yaml`` (by
default ``mtgnn-paper-ar``: the MTGNN paper's network with RevIN and
``model.linear_shortcut=linear``), starts its shortcut at the least-squares fit to the training
windows, weighted as the trainer's default ``train.shortcut_init="weighted_least_squares"``
weights them (:func:`tsattn.train.trainer.fit_start`; the network's head starts at zero, so the
untrained model forecasts with the map alone), and scores it on the validation windows, beside
the same start without RevIN (``model.revin=false``), the last observed value (persistence)
and the trained cells of ``--cells`` (their best checkpoint's validation MSE). The test split
is never read. MSE and RSE in original units, as the protocol's metrics are taken::

    TSATTN_DATA_DIR=../shared/datasets python experiments/exchange_start.py
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import pandas as pd
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))

from bench_speed import markdown, write_report  # noqa: E402

from tsattn import MTGNN, MTGNNConfig  # noqa: E402
from tsattn.data.datamodule import TimeSeriesDataModule  # noqa: E402
from tsattn.train.evaluation import score_last_value, score_windows  # noqa: E402
from tsattn.train.trainer import fit_start  # noqa: E402

CANDIDATES = ROOT / "experiments/candidates/exchange_single_step.yaml"
DEFAULT_OUT = ROOT / "experiments/results/exchange_rate/start_only.md"


def candidate_settings(name: str) -> dict[str, object]:
    """The ``set`` block of candidate ``name`` (YAML anchors resolved)."""
    for candidate in yaml.safe_load(CANDIDATES.read_text())["candidates"]:
        if candidate["name"] == name:
            return dict(candidate["set"])
    raise ValueError(f"no candidate {name!r} in {CANDIDATES}")


def started(
    settings: dict[str, object],
    horizon: int,
    root: str | None,
    data: str | pd.DataFrame = "exchange_rate",
):
    """The ``data`` and the candidate's model right after its closed-form start (seed 0)."""
    given = {k.split(".", 1)[1]: v for k, v in settings.items() if k.startswith("data.")}
    model = {k.split(".", 1)[1]: v for k, v in settings.items() if k.startswith("model.")}
    dm = TimeSeriesDataModule(
        data, int(given["seq_len"]), horizon, protocol=str(given["protocol"]),
        scaling=str(given["scaling"]), use_time_features=bool(given["use_time_features"]),
        batch_size=256, root=root,
    )  # fmt: skip
    dm.setup()
    torch.manual_seed(0)
    config = MTGNNConfig(num_nodes=dm.num_nodes, seq_len=dm.seq_len, horizon=dm.output_length,
                         time_features=dm.n_time_features, **model)  # fmt: skip
    net = MTGNN(config).eval()
    fit_start(net, dm.train_dataloader(), weighted=True)
    return dm, net


def errors(dm: TimeSeriesDataModule, model: MTGNN | None = None) -> tuple[float, float]:
    """Validation MSE and RSE in original units of ``model``, or of the last observed value
    (persistence) without one, scored as the trainer scores (:mod:`tsattn.train.evaluation`)."""
    val, units = dm.datasets["val"], dict(scaler=dm.scaler, original_units=True)
    scores = score_last_value(val, **units) if model is None else score_windows(model, val, **units)
    return scores["mse"], scores["rse"]


def trained_val_mse(cells: Path, candidate: str, horizon: int) -> list[float]:
    """The best checkpoints' validation MSE of ``candidate``'s trained cells, every seed."""
    found = sorted((cells / candidate).glob(f"exchange_rate-h{horizon}-seed*.json"))
    return [float(json.loads(path.read_text())["val_mse"]) for path in found]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidate", default="mtgnn-paper-ar")
    parser.add_argument("--trained", default="mtgnn-paper", help="cells to put beside the start")
    parser.add_argument("--horizons", default="3,6,12,24")
    parser.add_argument("--cells", type=Path, default=DEFAULT_OUT.parent / "cells")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    root = os.environ.get("TSATTN_DATA_DIR")
    settings = candidate_settings(args.candidate)
    rows = []
    for horizon in (int(h) for h in args.horizons.split(",")):
        dm, net = started(settings, horizon, root)
        start = errors(dm, net)
        plain = errors(*started({**settings, "model.revin": False}, horizon, root))
        last = errors(dm)  # persistence
        trained = trained_val_mse(args.cells, args.trained, horizon)
        mean = sum(trained) / len(trained) if trained else float("nan")
        rows.append([
            str(horizon), f"{start[0]:.3e} / {start[1]:.4f}",
            f"{plain[0]:.3e} / {plain[1]:.4f}", f"{last[0]:.3e} / {last[1]:.4f}",
            " / ".join(f"{v:.3e}" for v in trained) or "-",
            f"{start[0] / mean:.3f}" if trained else "-",
        ])  # fmt: skip
        print(rows[-1], flush=True)
    header = [
        "h", f"{args.candidate} start: val MSE / RSE", "the same without RevIN",
        "last value: val MSE / RSE", f"{args.trained} trained: val MSE per seed",
        "start / trained (mean)",
    ]  # fmt: skip
    note = (
        f"cpu, torch {torch.__version__}; exchange_rate, single-step mtgnn protocol (P=168), "
        "validation windows only, original units; start: the candidate's model before any "
        "training step (linear shortcut at its weighted least-squares fit, the network's head "
        "at zero); last value: persistence; trained: the best checkpoint of each seed's cell"
    )
    table = markdown(header, rows)
    write_report("exchange_start", note, [("Closed-form start on validation", table)], args.out)


if __name__ == "__main__":
    main()
