"""Dense against sparse mix-hop propagation: where the automatic choice should switch.

One ``MixHop`` (depth 2, 16 -> 16 channels, ``B=16, T=96``) forward + backward, with the
adjacency's gradient, on a top-k graph of ``N`` nodes keeping ``k`` neighbours per row (plus
the self loop), timed round-robin in one run. ``dense / sparse`` above 1 means the sparse
propagation is faster. :data:`tsattn.nn.graph.SPARSE_MIN_NODES` and
:data:`~tsattn.nn.graph.SPARSE_MAX_DENSITY` are read off this table.

    python experiments/bench_graph.py               # CPU
    python experiments/bench_graph.py --device cuda
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))

from bench_speed import markdown, time_round_robin_samples, write_report  # noqa: E402

from tsattn.nn.graph import SPARSE_MAX_DENSITY, SPARSE_MIN_NODES, GraphSupport, MixHop  # noqa: E402

CASES = [(16, 4), (32, 8), (64, 8), (64, 20), (128, 20), (128, 40), (321, 20), (321, 80),
         (321, 160)]  # fmt: skip


def hop_case(nodes: int, k: int, mode: str, device: torch.device, batch=16, steps=96, width=16):
    hop = MixHop(width, width, depth=2).to(device)
    hop.propagation = mode
    scores = torch.rand(nodes, nodes, device=device)
    keep = scores.topk(k, dim=1).indices
    adj = torch.zeros_like(scores).scatter_(1, keep, scores.gather(1, keep)).requires_grad_()
    support = GraphSupport.from_neighbours(keep)
    x = torch.randn(batch, width, nodes, steps, device=device)
    x = x.contiguous(memory_format=torch.channels_last).requires_grad_()

    def run() -> None:
        hop(x, adj, support).sum().backward()

    return run, support


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    suffix = "" if device.type == "cpu" else f"_{device.type}"
    out = args.out or ROOT / f"experiments/results/bench_graph{suffix}.md"
    rows = []
    for nodes, k in CASES:
        dense, support = hop_case(nodes, k, "dense", device)
        sparse, _ = hop_case(nodes, k, "sparse", device)
        density = support.density
        samples = time_round_robin_samples({"dense": dense, "sparse": sparse}, args.repeats, device)
        t = {name: statistics.median(v) for name, v in samples.items()}
        x, adj = (
            torch.empty(1, 1, nodes, 1, device=device),
            torch.empty(nodes, nodes, device=device),
        )
        auto = MixHop(1, 1).uses_sparse(x, adj, support)
        rows.append([str(nodes), str(k), f"{density:.3f}", f"{t['dense'] * 1e3:.1f}",
                     f"{t['sparse'] * 1e3:.1f}", f"**{t['dense'] / t['sparse']:.2f}x**",
                     "sparse" if auto else "dense"])  # fmt: skip
        print(" | ".join(rows[-1]), flush=True)
    headers = ["N", "k", "kept share", "dense ms", "sparse ms", "dense / sparse", "auto picks"]
    header = (
        f"device: {torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}, torch "
        f"{torch.__version__}, threads {torch.get_num_threads()}, median of {args.repeats} "
        f"round-robin repeats, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}; "
        "MixHop(16, 16, depth 2) forward + backward, B=16, T=96; auto: "
        f"sparse on CPUs from N >= {SPARSE_MIN_NODES} at a kept share <= {SPARSE_MAX_DENSITY}"
    )
    write_report("bench_graph", header, [("Mix-hop propagation", markdown(headers, rows))], out)


if __name__ == "__main__":
    main()
