"""Cost of every mixer at forecasting shapes: parameters, forward+backward time, peak memory.

    python experiments/bench_mixers.py            # 5 timed repeats per mixer and shape
    python experiments/bench_mixers.py --quick    # 2 repeats, for a busy machine

Shapes ``(B, C, N, T)``: ETTh1-like ``(32, 32, 7, 96)`` and electricity-like
``(16, 32, 321, 96)``. Every mixer runs in training mode; one step is
``mixer(x).square().mean().backward()`` with ``x.requires_grad`` (so the input gradient is paid
for, as inside a network).

Time: all mixers of a shape are timed round-robin in this process after one warm-up step each;
the table gives the median and its ratio to ``identity`` measured in the same run (the
``identity`` step is the loss and its backward alone). Only ratios within one run mean anything
on a shared machine.

Memory: one fresh process per (mixer, shape), forked from a forkserver that has imported
tsattn and run nothing. It allocates the input and the module, resets
the kernel's resident-set high-water mark (``/proc/self/clear_refs``, Linux), runs one step, and
reports ``VmHWM - VmRSS before the step``: the peak resident memory the step added on top of its
input (the input itself, 63 MB at the electricity shape, is not counted). This is the operating
system's view, allocator caches included; it is not an estimate from tensor sizes.

The table is printed and written to ``experiments/results/bench_mixers.md`` (``--out``).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from tsattn import create_mixer, list_mixers

SHAPES: dict[str, tuple[int, int, int, int]] = {
    "ETTh1-like": (32, 32, 7, 96),
    "electricity-like": (16, 32, 321, 96),
}
MEMORY_LIMIT_MB = 4096
RESULTS = Path(__file__).resolve().parent / "results" / "bench_mixers.md"


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _step(mixer: torch.nn.Module, x: torch.Tensor) -> None:
    x.grad = None
    mixer(x).square().mean().backward()


def _build(name: str, shape: tuple[int, int, int, int]) -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    mixer = create_mixer(name, shape[1]).train()
    x = torch.randn(*shape, requires_grad=True)
    return mixer, x


def measure_memory(name: str, shape: tuple[int, int, int, int], threads: int) -> float:
    """Peak MB one step adds, measured in this (fresh) process."""
    torch.set_num_threads(threads)
    mixer, x = _build(name, shape)
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # reset VmHWM to the current RSS
    before = _rss_kib("VmRSS")
    _step(mixer, x)
    return (_rss_kib("VmHWM") - before) / 1024


def _memory_in_fresh_process(name: str, shape: tuple[int, int, int, int], threads: int) -> float:
    # A forkserver that has imported tsattn (slow: Lightning, pandas) but run nothing hands each
    # probe a fresh process with no allocator caches left over from another mixer.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tsattn"])
    with context.Pool(1, maxtasksperchild=1) as pool:
        return pool.apply(measure_memory, (name, shape, threads))


def bench_shape(
    shape: tuple[int, int, int, int], names: list[str], repeats: int, threads: int
) -> list[dict[str, Any]]:
    built = {name: _build(name, shape) for name in names}
    for mixer, x in built.values():
        _step(mixer, x)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(repeats):
        for name in names:
            mixer, x = built[name]
            start = time.perf_counter()
            _step(mixer, x)
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["identity"])
    rows = []
    for name in names:
        median = statistics.median(times[name])
        rows.append(
            {
                "mixer": name,
                "params": sum(p.numel() for p in built[name][0].parameters()),
                "ms": 1000 * median,
                "ratio": median / base,
                "peak_mb": _memory_in_fresh_process(name, shape, threads),
            }
        )
    return rows


def render(results: dict[str, list[dict[str, Any]]], header: str) -> str:
    lines = [header, ""]
    for label, rows in results.items():
        b, c, n, t = SHAPES[label]
        lines += [
            f"### {label} (B={b}, C={c}, N={n}, T={t})",
            "",
            "| mixer | params | fwd+bwd ms | x identity | peak MB (step) | < 4 GB |",
            "|---|---:|---:|---:|---:|:---:|",
        ]
        for r in rows:
            ok = "yes" if r["peak_mb"] < MEMORY_LIMIT_MB else "NO"
            lines.append(
                f"| {r['mixer']} | {r['params']:,} | {r['ms']:.1f} | {r['ratio']:.2f} | "
                f"{r['peak_mb']:.0f} | {ok} |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="2 timed repeats instead of 5")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--mixers", default=",".join(list_mixers()), help="comma-separated")
    parser.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated labels")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--memory-probe", nargs=2, metavar=("MIXER", "SHAPE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    names = ["identity"] + [m for m in args.mixers.split(",") if m != "identity"]
    repeats = 2 if args.quick else 5
    results = {}
    for label in args.shapes.split(","):
        print(f"benchmarking {label} {SHAPES[label]} ...", file=sys.stderr, flush=True)
        results[label] = bench_shape(SHAPES[label], names, repeats, args.threads)
    command = "python experiments/bench_mixers.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    header = "\n".join(
        [
            "## Mixer cost: forward + backward, training mode",
            "",
            f"`{command.strip()}` — torch {torch.__version__}, {platform.machine()}, "
            f"{args.threads} thread(s), {os.cpu_count()} CPUs, median of {repeats} timed repeats.",
            "Time ratio to `identity` within this run. Peak MB: resident-set high-water mark a "
            "step adds above its input, fresh process per mixer (`/proc/self/clear_refs` + "
            "`VmHWM`).",
        ]
    )
    text = render(results, header)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
