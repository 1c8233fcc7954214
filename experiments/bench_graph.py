"""Dense, sparse and operator mix-hop propagation: where the automatic choice should switch.

Two tables, each timed round-robin in one run, forward + backward with the adjacency's
gradient:

1. one ``MixHop`` (depth 2, 16 -> 16 channels, ``B=16, T=96``) on a top-k graph of ``N`` nodes
   keeping ``k`` neighbours per row (plus the self loop). ``dense / sparse`` above 1 means the
   sparse propagation is faster. :data:`tsattn.nn.graph.SPARSE_MIN_NODES` and
   :data:`~tsattn.nn.graph.SPARSE_MAX_DENSITY` are read off this table;
2. the model's pair of mix-hops (``A`` and ``A^T``, :func:`tsattn.nn.graph.mix_hop_pair`;
   depth 2, 32 -> 32 channels as in the default model, ``B=32, T=90``) on small graphs, each
   direction propagated densely against the pair as one (node, channel) operator.
   ``dense / operator`` above 1 means the operator is faster;
   :data:`~tsattn.nn.graph.OPERATOR_MAX_NODES` is read off this table.

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

from tsattn.nn.graph import (  # noqa: E402
    OPERATOR_MAX_NODES,
    SPARSE_MAX_DENSITY,
    SPARSE_MIN_NODES,
    GraphSupport,
    MixHop,
    mix_hop_pair,
)

CASES = [(16, 4), (32, 8), (64, 8), (64, 20), (128, 20), (128, 40), (321, 20), (321, 80),
         (321, 160)]  # fmt: skip
PAIR_NODES = [4, 7, 10, 14, 16, 21, 24, 32, 48]


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


def pair_case(nodes: int, mode: str, device: torch.device, batch=32, steps=90, width=32):
    """The model's graph convolution: both directions, a learner-like graph (top 20 + loops)."""
    hops = torch.nn.ModuleList(MixHop(width, width, depth=2) for _ in range(2)).to(device)
    scores = torch.rand(nodes, nodes, device=device)
    keep = scores.topk(min(20, nodes), dim=1).indices
    adj = torch.zeros_like(scores).scatter_(1, keep, scores.gather(1, keep)).requires_grad_()
    x = torch.randn(batch, width, nodes, steps, device=device)
    x = x.contiguous(memory_format=torch.channels_last).requires_grad_()

    def run() -> None:
        saved = MixHop.propagation
        MixHop.propagation = mode
        try:
            mix_hop_pair(hops, x, adj).sum().backward()
        finally:
            MixHop.propagation = saved

    return run, MixHop(1, 1).mode(x, adj, None)


def bench_pairs(device: torch.device, repeats: int) -> str:
    rows = []
    for nodes in PAIR_NODES:
        dense, auto = pair_case(nodes, "dense", device)
        operator, _ = pair_case(nodes, "operator", device)
        samples = time_round_robin_samples({"dense": dense, "operator": operator}, repeats, device)
        t = {name: statistics.median(v) for name, v in samples.items()}
        rows.append([str(nodes), f"{t['dense'] * 1e3:.1f}", f"{t['operator'] * 1e3:.1f}",
                     f"**{t['dense'] / t['operator']:.2f}x**", auto])  # fmt: skip
        print(" | ".join(rows[-1]), flush=True)
    headers = ["N", "dense pair ms", "operator ms", "dense / operator", "auto picks"]
    return markdown(headers, rows)


def bench_sparse(device: torch.device, repeats: int) -> str:
    rows = []
    for nodes, k in CASES:
        dense, support = hop_case(nodes, k, "dense", device)
        sparse, _ = hop_case(nodes, k, "sparse", device)
        samples = time_round_robin_samples({"dense": dense, "sparse": sparse}, repeats, device)
        t = {name: statistics.median(v) for name, v in samples.items()}
        x, adj = (
            torch.empty(1, 1, nodes, 1, device=device),
            torch.empty(nodes, nodes, device=device),
        )
        rows.append([str(nodes), str(k), f"{support.density:.3f}", f"{t['dense'] * 1e3:.1f}",
                     f"{t['sparse'] * 1e3:.1f}", f"**{t['dense'] / t['sparse']:.2f}x**",
                     MixHop(1, 1).mode(x, adj, support)])  # fmt: skip
        print(" | ".join(rows[-1]), flush=True)
    headers = ["N", "k", "kept share", "dense ms", "sparse ms", "dense / sparse", "auto picks"]
    return markdown(headers, rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    suffix = "" if device.type == "cpu" else f"_{device.type}"
    out = args.out or ROOT / f"experiments/results/bench_graph{suffix}.md"
    header = (
        f"device: {torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}, torch "
        f"{torch.__version__}, threads {torch.get_num_threads()}, median of {args.repeats} "
        f"round-robin repeats, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}; "
        f"auto: on CPUs the operator up to N = {OPERATOR_MAX_NODES}, sparse from N >= "
        f"{SPARSE_MIN_NODES} at a kept share <= {SPARSE_MAX_DENSITY}, dense otherwise"
    )
    sections = [
        ("Mix-hop propagation: MixHop(16, 16, depth 2) forward + backward, B=16, T=96",
         bench_sparse(device, args.repeats)),
        ("Mix-hop pair (A and A^T) as one operator: two MixHop(32, 32, depth 2) forward + "
         "backward, B=32, T=90", bench_pairs(device, args.repeats)),
    ]  # fmt: skip
    write_report("bench_graph", header, sections, out)


if __name__ == "__main__":
    main()
