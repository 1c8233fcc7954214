"""CycleNet/Linear trained as its own scripts train it, on tsattn's data pipeline.

A check of the pipeline, not a tsattn model: CycleNet/Linear (Lin et al., NeurIPS 2024,
https://arxiv.org/abs/2409.18479) is RevIN without affine weights, a learned cycle removed from
the look-back and added to the forecast, and one linear map of the look-back shared by the
variables, built here from tsattn's own parts (:class:`tsattn.nn.revin.RevIN`,
:class:`tsattn.nn.cycle.ResidualCycle`, :class:`tsattn.nn.shortcut.LinearShortcut`). Its scripts
(``scripts/CycleNet/Linear-Input-96``) train it with Adam at lr 0.01, batch 256, on MSE, the
learning rate constant for 3 epochs and then x0.9 per epoch, for up to 30 epochs with early
stopping at patience 5 on the validation MSE, the map at ``nn.Linear``'s draw and the cycle at
zero. The same model and training on tsattn's ``tslib`` windows (every test window, the last
partial batch kept, as CycleNet's loader keeps it) should land near CycleNet's published test
numbers (``PUBLISHED``, the mean of its five seeds at L=96); a gap would point at the data
pipeline. Departures: RevIN's variance is the biased one (CycleNet's ``torch.var`` is unbiased),
and the training windows are not dropped at the last partial batch.

    python experiments/reference_cyclenet.py --datasets ETTh1,ETTh2,ETTm1,weather \\
        --horizons 96,192,336,720

It prints and writes the validation and the test MSE / MAE of the epoch with the best
validation MSE, per dataset, horizon and seed.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
from pathlib import Path

import pandas as pd
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))

from bench_speed import markdown, write_report  # noqa: E402
from start_validation import scores  # noqa: E402

from tsattn.data.datamodule import TimeSeriesDataModule  # noqa: E402
from tsattn.data.timefeatures import cycle_lengths  # noqa: E402
from tsattn.nn.cycle import ResidualCycle  # noqa: E402
from tsattn.nn.revin import RevIN  # noqa: E402
from tsattn.nn.shortcut import LinearShortcut  # noqa: E402

DEFAULT_OUT = ROOT / "experiments/results/reference_cyclenet.md"
#: CycleNet/Linear at L=96, test MSE / MAE, mean of the five seeds of its repository's result.txt
PUBLISHED = {
    ("ETTh1", 96): (0.378, 0.391), ("ETTh1", 192): (0.427, 0.419),
    ("ETTh1", 336): (0.464, 0.439), ("ETTh1", 720): (0.462, 0.461),
    ("ETTh2", 96): (0.286, 0.335), ("ETTh2", 192): (0.373, 0.392),
    ("ETTh2", 336): (0.422, 0.433), ("ETTh2", 720): (0.454, 0.458),
    ("ETTm1", 96): (0.325, 0.364), ("ETTm1", 192): (0.366, 0.382),
    ("ETTm1", 336): (0.396, 0.402), ("ETTm1", 720): (0.457, 0.434),
    ("weather", 96): (0.170, 0.216), ("weather", 192): (0.222, 0.259),
    ("weather", 336): (0.276, 0.297), ("weather", 720): (0.350, 0.345),
}  # fmt: skip


class CycleLinear(nn.Module):
    """``forward(x (B, L, N), x_mark, step (B,)) -> (B, H, N)``: CycleNet/Linear (``x_mark``,
    the batch's time features, is not read; the signature is ``MTGNN``'s)."""

    def __init__(self, seq_len: int, horizon: int, num_nodes: int, cycle_length: int) -> None:
        super().__init__()
        self.seq_len, self.horizon = seq_len, horizon
        self.revin = RevIN(num_nodes, affine=False)
        self.cycle = ResidualCycle(cycle_length, num_nodes)
        self.linear = LinearShortcut("linear", seq_len, horizon)

    def forward(
        self, x: torch.Tensor, x_mark: torch.Tensor | None, step: torch.Tensor
    ) -> torch.Tensor:
        x, stats = self.revin.normalize(x)  # (B, L, N)
        x = x - self.cycle(step, 0, self.seq_len)  # (B, L, N)
        y = self.linear(x) + self.cycle(step, self.seq_len, self.horizon)  # (B, H, N)
        return self.revin.denormalize(y, stats)


def train(
    dataset: str | pd.DataFrame, horizon: int, seed: int, root: str | None
) -> dict[str, float]:
    """CycleNet's training on ``dataset`` (a registered name or a frame); the validation and
    test scores of its best validation epoch."""
    dm = TimeSeriesDataModule(dataset, 96, horizon, batch_size=256, root=root)
    dm.setup()
    torch.manual_seed(seed)
    model = CycleLinear(96, horizon, dm.num_nodes, cycle_lengths(dm.freq)[0])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    best, best_state, waited, epochs = float("inf"), None, 0, 0
    for epoch in range(30):
        for group in optimizer.param_groups:  # CycleNet's "type3" schedule
            group["lr"] = 0.01 if epoch < 3 else 0.01 * 0.9 ** (epoch - 3)
        for x, y, marks, step in dm.train_dataloader():
            optimizer.zero_grad()
            nn.functional.mse_loss(model(x, marks, step), y).backward()
            optimizer.step()
        epochs += 1
        val_mse, _ = scores(model, dm)
        if val_mse < best:
            best, best_state, waited = val_mse, copy.deepcopy(model.state_dict()), 0
        else:
            waited += 1
            if waited >= 5:
                break
    model.load_state_dict(best_state)
    val_mse, val_mae = scores(model, dm)
    test_mse, test_mae = scores(model, dm, dm.test_dataloader())
    return dict(val_mse=val_mse, val_mae=val_mae, test_mse=test_mse, test_mae=test_mae,
                epochs=epochs, test_windows=len(dm.test_dataloader().dataset))  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="ETTh1,ETTh2,ETTm1,weather")
    parser.add_argument("--horizons", default="96,192,336,720")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    root = os.environ.get("TSATTN_DATA_DIR")
    rows = []
    for dataset in args.datasets.split(","):
        for horizon in [int(h) for h in args.horizons.split(",")]:
            for seed in range(args.seeds):
                r = train(dataset, horizon, seed, root)
                published = PUBLISHED.get((dataset, horizon))
                rows.append([
                    dataset, str(horizon), str(seed), f"{r['val_mse']:.4f} / {r['val_mae']:.4f}",
                    f"{r['test_mse']:.3f} / {r['test_mae']:.3f}", str(r["test_windows"]),
                    str(r["epochs"]), "/".join(f"{v:.3f}" for v in published) if published else "",
                ])  # fmt: skip
                print(" | ".join(rows[-1]), flush=True)
    header = (
        f"cpu, torch {torch.__version__}; tslib protocol, L=96; CycleNet/Linear trained as its "
        "scripts train it (Adam lr 0.01, batch 256, MSE, type3 schedule, patience 5), scored at "
        "its best validation epoch on every validation and test window (scaled units)"
    )
    headers = ["dataset", "H", "seed", "val MSE / MAE", "test MSE / MAE", "test windows",
               "epochs", "published test MSE/MAE"]  # fmt: skip
    table = markdown(headers, rows)
    write_report("reference_cyclenet", header, [("CycleNet/Linear on tsattn's pipeline", table)],
                 args.out)  # fmt: skip


if __name__ == "__main__":
    main()
