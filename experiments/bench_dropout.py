"""CPU dropout masks: ``F.dropout`` (``bernoulli_``), ``rand_like(x) >= p`` (a float per
element, tsattn's mask before) and tsattn's (16-bit random integers, four per 64-bit draw).

Times, in one run and round-robin, (1) one dropout call on the first layer's gated output and
(2) one MTGNN training step with each dropout, at the shapes of ``bench_speed.py``; prints the
ratios and writes ``experiments/results/bench_dropout.md``::

    python experiments/bench_dropout.py             # both shapes
    python experiments/bench_dropout.py --quick     # ETTh1-like shape, fewer repeats
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_speed import ROOT, SHAPES, make_config, markdown, model_step, time_round_robin

import tsattn.models.mtgnn as mtgnn_module

tsattn_dropout = mtgnn_module._dropout


def torch_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    return F.dropout(x, p, training)


def rand_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    keep = torch.rand_like(x).ge_(p)  # 1.0 with probability 1 - p, else 0.0
    return x * keep.mul_(1.0 / (1.0 - p))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--quick", action="store_true", help="3 repeats, ETTh1-like shape only")
    parser.add_argument("--out", type=Path, default=ROOT / "experiments/results/bench_dropout.md")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    cpu = torch.device("cpu")
    shapes = list(SHAPES)[:1] if args.quick else list(SHAPES)
    repeats = 3 if args.quick else args.repeats
    rows = []
    for name in shapes:
        batch, spec = SHAPES[name]
        cfg = make_config(spec)
        length = max(cfg.seq_len, cfg.receptive_field) - (max(cfg.kernel_set) - 1)
        h = torch.randn(batch, cfg.conv_channels, cfg.num_nodes, length)  # first gated output
        step, _ = model_step(cfg, batch, cpu)

        def with_dropout(fn, step=step):
            def run() -> None:
                mtgnn_module._dropout = fn
                step()

            return run

        try:
            times = time_round_robin(
                {
                    "mask F.dropout": lambda h=h, p=cfg.dropout: torch_dropout(h, p, True),
                    "mask rand_like": lambda h=h, p=cfg.dropout: rand_dropout(h, p, True),
                    "mask tsattn": lambda h=h, p=cfg.dropout: tsattn_dropout(h, p, True),
                    "step F.dropout": with_dropout(torch_dropout),
                    "step rand_like": with_dropout(rand_dropout),
                    "step tsattn": with_dropout(tsattn_dropout),
                },
                repeats,
                cpu,
            )
        finally:
            mtgnn_module._dropout = tsattn_dropout
        rows.append(
            [
                name,
                f"{tuple(h.shape)}",
                f"{times['mask F.dropout'] * 1e3:.2f}",
                f"{times['mask rand_like'] * 1e3:.2f}",
                f"{times['mask tsattn'] * 1e3:.2f}",
                f"{times['mask F.dropout'] / times['mask tsattn']:.2f}x",
                f"{times['mask rand_like'] / times['mask tsattn']:.2f}x",
                f"{times['step F.dropout']:.3f}",
                f"{times['step rand_like']:.3f}",
                f"{times['step tsattn']:.3f}",
                f"{times['step F.dropout'] / times['step tsattn']:.2f}x",
                f"{times['step rand_like'] / times['step tsattn']:.2f}x",
            ]
        )
    header = (
        f"device: cpu, torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"median of {repeats} round-robin repeats"
    )
    headers = ["shape", "dropout input", "F.dropout ms", "rand_like ms", "tsattn ms",
               "speed-up (F.dropout / tsattn)", "speed-up (rand_like / tsattn)",
               "step s (F.dropout)", "step s (rand_like)", "step s (tsattn)",
               "step speed-up (F.dropout / tsattn)",
               "step speed-up (rand_like / tsattn)"]  # fmt: skip
    table = markdown(headers, rows)
    print(f"{header}\n\n{table}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(f"# bench_dropout\n\n{header}\n\n{table}\n")
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
