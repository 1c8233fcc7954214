"""One tslib-protocol training epoch on a generated electricity-shaped file, timed.

The file has electricity's shape (26304 rows x 321 variables, ``make_like("electricity")``);
the data module applies the tslib protocol (L=96, H=96, StandardScaler on the train rows,
18,221 shuffled training windows, batch 32, the last partial batch kept). The model is the
default ``MTGNNConfig`` (RevIN, affine LayerNorms) and every step is a full training step
(forward, MSE, backward, Adam), as ``tsattn fit`` runs it without Lightning's bookkeeping.

``--steps S`` times the first ``S`` steps after one warm-up step and extrapolates to the
epoch's steps (said so in the table); ``--steps 0`` times the whole epoch.

    python experiments/bench_epoch.py --steps 20
    python experiments/bench_epoch.py --steps 0
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))

from bench_speed import markdown, write_report  # noqa: E402

from tsattn import MTGNN, MTGNNConfig  # noqa: E402
from tsattn.data.datamodule import TimeSeriesDataModule  # noqa: E402
from tsattn.data.synthetic import make_like  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="0: the whole epoch")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", type=Path, default=ROOT / "experiments/results/bench_epoch.md")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    load_before = os.getloadavg()[0]  # other work on the machine shows here
    workdir = Path(tempfile.mkdtemp(prefix="tsattn-epoch-"))
    make_like("electricity", workdir / "electricity.csv", seed=1)
    dm = TimeSeriesDataModule("electricity", 96, 96, batch_size=args.batch_size, root=workdir)
    dm.setup()
    loader = dm.train_dataloader()
    total_steps = len(loader)
    model = MTGNN(MTGNNConfig(num_nodes=dm.num_nodes, seq_len=96, horizon=96))
    params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(batch) -> None:
        x, y = batch[0], batch[1]
        optimizer.zero_grad(set_to_none=True)
        F.mse_loss(model(x), y).backward()
        optimizer.step()

    batches = iter(loader)
    step(next(batches))  # warm-up: allocators, optimizer state
    limit = total_steps - 1 if args.steps <= 0 else min(args.steps, total_steps - 1)
    times = []
    start = time.perf_counter()
    for _, batch in zip(range(limit), batches, strict=False):
        t0 = time.perf_counter()
        step(batch)
        times.append(time.perf_counter() - t0)
    wall = time.perf_counter() - start
    if args.steps <= 0:
        epoch_min, how = (wall + times[0]) / 60, f"measured, all {total_steps} steps"
    else:
        epoch_min = statistics.mean(times) * total_steps / 60
        how = f"extrapolated from the mean of {len(times)} steps x {total_steps} steps"
    row = [f"{len(dm.frame)} x {dm.num_nodes}", str(dm.window_counts["train"]),
           str(args.batch_size), f"{params:,}", f"{statistics.median(times):.2f}",
           f"{statistics.mean(times):.2f}", f"**{epoch_min:.1f}**", how]  # fmt: skip
    headers = ["file (generated)", "train windows", "batch", "parameters", "median step s",
               "mean step s", "epoch min", "how"]  # fmt: skip
    header = (
        f"cpu, torch {torch.__version__}, threads {torch.get_num_threads()}; tslib protocol, "
        "L=96, H=96, default MTGNNConfig; target: under 30 minutes; load average before / "
        f"after: {load_before:.1f} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    table = markdown(headers, [row])
    write_report("bench_epoch", header, [("One training epoch", table)], args.out)


if __name__ == "__main__":
    main()
