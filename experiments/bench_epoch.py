"""One tslib-protocol training epoch on a generated electricity-shaped file, timed.

The file has electricity's shape (26304 rows x 321 variables, ``make_like("electricity")``);
the data module applies the tslib protocol (L=96, H=96, StandardScaler on the train rows,
18,221 shuffled training windows, batch 32, the last partial batch kept). Three models, one row
each (``--models``):

- ``default``: the default ``MTGNNConfig`` (learned graph over the 321 variables, RevIN,
  affine LayerNorms), trained with MSE at MTGNN's learning rate;
- ``recipe``: what ``tsattn fit --data electricity`` trains under the tslib protocol, the
  long-horizon recipe's model (:func:`tsattn.train.recipe.resolve_model_options`: on 321
  variables the learned graph, ``GRAPH_FROM``; narrow layers, linear shortcut, daily cycle)
  with the recipe's loss and learning rate, its shortcut one map shared by every hour;
- ``recipe-phase``: the same with the shortcut's maps per block of the cycle, one per hour of
  the day (``shortcut_per_phase=True``), which the fit trains instead where their closed-form
  start validates lower (``shortcut_per_phase="auto"``, the recipe's setting). The two rows
  tell what the maps cost in time, measured in one run.

Every step is a full training step (forward, loss, backward, Adam), as ``tsattn fit`` runs it
without Lightning's bookkeeping. Each model runs twice: with freed memory kept for the next step
(:func:`tsattn.train.allocator.reuse_freed_memory`, what every CPU fit does) and with malloc's
defaults, which unmap large freed buffers and map them again on the next step.

``--steps S`` times the first ``S`` steps after one warm-up step and extrapolates to the
epoch's steps (said so in the table); ``--steps 0`` times the whole epoch.

Beside the time, the arithmetic an epoch cannot do without: the floating-point operations of
one step's matrix products and convolutions, forward and backward
(``torch.utils.flop_counter.FlopCounterMode``; element-wise work and the sparse propagation's
row gathers are not counted), times the epoch's steps, divided by the fastest float32 matrix
product this machine runs in the same process (``matmul_rate``). No implementation of that
model runs an epoch faster on this machine than that floor.

    python experiments/bench_epoch.py --steps 20
    python experiments/bench_epoch.py --steps 0 --models recipe,recipe-phase
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))

from bench_speed import markdown, write_report  # noqa: E402

from tsattn import MTGNN, MTGNNConfig  # noqa: E402
from tsattn.data.datamodule import TimeSeriesDataModule  # noqa: E402
from tsattn.data.synthetic import make_like  # noqa: E402
from tsattn.train.allocator import reuse_freed_memory  # noqa: E402
from tsattn.train.module import adam  # noqa: E402
from tsattn.train.recipe import resolve_loss, resolve_lr, resolve_model_options  # noqa: E402

MODELS = ("default", "recipe", "recipe-phase")
#: the explicit model settings of each row, overlaid on the recipe's (none for ``default``)
SETTINGS = {"default": {}, "recipe": {"shortcut_per_phase": False},
            "recipe-phase": {"shortcut_per_phase": True}}  # fmt: skip
LOSSES = {"mse": F.mse_loss, "l1": F.l1_loss}


def build(name: str, dm: TimeSeriesDataModule) -> tuple[MTGNN, str, float]:
    """The model ``name`` for ``dm``'s data, its training loss and learning rate."""
    recipe = "none" if name == "default" else "auto"
    options = resolve_model_options("tslib", dm.num_nodes, 96, SETTINGS[name], recipe,
                                    freq=dm.freq)  # fmt: skip
    model = MTGNN(MTGNNConfig(num_nodes=dm.num_nodes, seq_len=96, horizon=96, **options))
    return model, resolve_loss("tslib", "auto", recipe), resolve_lr("tslib", "auto", recipe)


def make_step(model: MTGNN, loss_name: str, lr: float) -> Callable[[tuple], None]:
    """``step(batch)``: one training step as ``tsattn fit`` runs it (forward, loss, backward,
    the Adam tsattn trains with)."""
    optimizer = adam(model.parameters(), lr=lr)
    loss_fn = LOSSES[loss_name]

    def step(batch) -> None:
        x, y, _, grid = batch  # no time features in either model
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x, None, grid), y).backward()
        optimizer.step()

    return step


def time_epoch(step, loader, steps) -> tuple[list[float], float, float, float]:
    """Step times of the first ``steps`` steps after a warm-up step (``0``: the whole
    epoch), the wall time of the timed loop, and per step the process's seconds in the kernel
    (every thread) and its minor page faults (pages mapped and zero-filled on first touch)."""
    batches = iter(loader)
    step(next(batches))  # warm-up: allocators, optimizer state
    limit = len(loader) - 1 if steps <= 0 else min(steps, len(loader) - 1)
    times = []
    usage = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    for _, batch in zip(range(limit), batches, strict=False):
        t0 = time.perf_counter()
        step(batch)
        times.append(time.perf_counter() - t0)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    kernel = (after.ru_stime - usage.ru_stime) / len(times)
    return times, wall, kernel, (after.ru_minflt - usage.ru_minflt) / len(times)


def step_flops(run: Callable[[], None]) -> int:
    """Floating-point operations of the matrix products and convolutions of one ``run()``,
    forward and backward, as ``FlopCounterMode`` counts them (a multiply-add is 2)."""
    with FlopCounterMode(display=False) as counter:
        run()
    return counter.get_total_flops()


def matmul_rate(size: int = 2048, repeats: int = 5) -> float:
    """The fastest of ``repeats`` float32 ``size`` x ``size`` matrix products on this machine,
    in FLOP/s: the best rate any step's products could reach here (an upper bound)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="0: the whole epoch")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--models", default=",".join(MODELS), help="comma-separated: " + ", ".join(MODELS)
    )
    parser.add_argument("--out", type=Path, default=ROOT / "experiments/results/bench_epoch.md")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.models.split(",") if name.strip()]
    unknown = sorted(set(names) - set(MODELS))
    if unknown or not names:
        parser.error(f"--models {args.models!r}: choose from {', '.join(MODELS)}")
    load_before = os.getloadavg()[0]  # other work on the machine shows here
    workdir = Path(tempfile.mkdtemp(prefix="tsattn-epoch-"))
    make_like("electricity", workdir / "electricity.csv", seed=1)
    dm = TimeSeriesDataModule("electricity", 96, 96, batch_size=args.batch_size, root=workdir)
    dm.setup()
    loader = dm.train_dataloader()
    total_steps = len(loader)
    rate = matmul_rate()
    rows, flops_of = [], {}
    for name, kept in itertools.product(names, (False, True)):  # malloc as it starts first
        torch.manual_seed(0)
        model, loss_name, lr = build(name, dm)
        params = sum(p.numel() for p in model.parameters())
        step = make_step(model, loss_name, lr)
        with reuse_freed_memory() if kept else contextlib.nullcontext():
            times, wall, kernel, faults = time_epoch(step, loader, args.steps)
        if name not in flops_of:  # the same model either way: count its step once
            flops_of[name] = step_flops(lambda step=step: step(next(iter(loader))))
        flops = flops_of[name]
        floor_min = flops * total_steps / rate / 60
        if args.steps <= 0:
            epoch_min, how = (wall + times[0]) / 60, f"measured, all {total_steps} steps"
        else:
            epoch_min = statistics.mean(times) * total_steps / 60
            how = f"extrapolated from the mean of {len(times)} steps x {total_steps} steps"
        freed = "kept (as fit)" if kept else "unmapped (malloc's defaults)"
        rows.append([name, freed, f"{len(dm.frame)} x {dm.num_nodes}",
                     str(dm.window_counts["train"]), str(args.batch_size), f"{params:,}",
                     f"{loss_name}, lr {lr:g}",
                     f"{statistics.median(times):.2f}", f"{statistics.mean(times):.2f}",
                     f"**{epoch_min:.1f}**", how, f"{kernel:.2f}", f"{faults:,.0f}",
                     f"{flops / 1e9:.1f}", f"{floor_min:.1f}"])  # fmt: skip
    headers = ["model", "freed memory", "file (generated)", "train windows", "batch",
               "parameters", "training",
               "median step s", "mean step s", "epoch min", "how",
               "kernel s per step", "page faults per step",
               "GFLOP per step (products, convolutions)",
               f"floor min at {rate / 1e9:.0f} GFLOP/s"]  # fmt: skip
    header = (
        f"cpu, torch {torch.__version__}, threads {torch.get_num_threads()}; tslib protocol, "
        "L=96, H=96; default: MTGNNConfig's defaults; recipe: the model `tsattn fit` trains "
        "under the tslib protocol, its shortcut one shared map; recipe-phase: the same with "
        "the shortcut's maps per hour of the day, which the fit trains where their start "
        "validates lower; target: under 30 minutes; floor: the step's products and "
        "convolutions times the epoch's steps at the fastest float32 matrix product measured "
        f"in this run ({rate / 1e9:.0f} GFLOP/s); load average before / "
        f"after: {load_before:.1f} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    table = markdown(headers, rows)
    write_report("bench_epoch", header, [("One training epoch", table)], args.out)


if __name__ == "__main__":
    main()
