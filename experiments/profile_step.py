"""Where one MTGNN training step spends its time, per operator (``torch.profiler``).

Uses the shapes of ``bench_speed.py``. Prints the operators that take the most self time
(CUDA time on a GPU, CPU time otherwise)::

    python experiments/profile_step.py --shape electricity --fusion fpn --device cuda
    python experiments/profile_step.py --shape etth1 --mixer eca --rows 20
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_speed import SHAPES, make_config, model_step, sync

SHAPE_KEYS = {"etth1": 0, "electricity": 1}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=list(SHAPE_KEYS), default="etth1")
    parser.add_argument("--fusion", default="skip")
    parser.add_argument("--mixer", default="identity")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--steps", type=int, default=3, help="profiled steps after a warm-up")
    parser.add_argument("--rows", type=int, default=15)
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    batch, spec = SHAPES[list(SHAPES)[SHAPE_KEYS[args.shape]]]
    cfg = make_config(spec, fusion=args.fusion, mixer=args.mixer)
    step, params = model_step(cfg, batch, device)
    step()  # warm-up: kernel selection, optimizer state
    sync(device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(args.steps):
            step()
        sync(device)
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(f"{args.shape}, fusion={args.fusion}, mixer={args.mixer}, {params:,} parameters, "
          f"{args.steps} steps on {device}")  # fmt: skip
    print(prof.key_averages().table(sort_by=sort, row_limit=args.rows, max_name_column_width=60))


if __name__ == "__main__":
    main()
