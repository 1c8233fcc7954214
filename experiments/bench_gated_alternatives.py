"""Other ways to compute the gated dilated inception, timed against tsattn's fused forms.

The foundation issue asks the fused form to be at least 2x faster than the textbook form
(forward + backward) at both shapes of ``bench_speed.py``. On the 2-core development CPU the
fused form on the library convolution is far past that at the electricity-like shape and short
of it at the ETTh1-like one. This script times, in one run and round-robin, the forms that were
considered, so that the reasons can be checked on any machine. (A compiled CPU kernel that
multiplied only the taps each branch owns was 2.5x faster on this layer but made the whole
training step no faster; it was removed, see README.md.)

1. ``conv passes``: the one dense convolution of the fused form, split into its three passes
   (forward, backward to the input, backward to the weight), with the throughput of each.
   ``dense GFLOP/s`` counts every multiply-add of the zero-padded kernel; ``useful GFLOP/s``
   counts only the taps the branches own (for kernel set 2, 3, 6, 7 that is 18 of 28, so 36%
   of the dense work multiplies zeros).
2. ``gated layer``: forward + backward of the whole layer, same weights, same input:

   * ``textbook``: one convolution per kernel, filter and gate apart (8 convolutions);
   * ``fused``: tsattn's ``GatedTemporalConv`` as one dense convolution, hand-written
     backward (``split_taps = False``);
   * ``tap-set split``: the same module with one convolution per group of branches, each with
     its group's largest kernel and only the input steps it reaches: kernel 7 for branches
     {6, 7}, kernel 3 for {2, 3}; 29% fewer multiply-adds than the dense form, same gating and
     backward (``split_taps = True``, what the automatic choice takes on CPUs for this
     kernel set);
   * ``fft``: the one convolution as a product along frequency (``rfft`` over time, zero
     padded to a length ``2^a 3^b``; the circular wrap-around lands only in the steps the
     valid convolution drops), autograd backward.

   Gradients are set to ``None`` before every step, as optimizers do.

3. ``weight gradient``: the library's backward to the weight vs one matrix product per tap
   that skips the zero rows (rows ordered by kernel size, so each tap's non-zero rows are a
   prefix), on the gradient laid out on the full time grid (building that layout is not
   timed).

Usage::

    python experiments/bench_gated_alternatives.py           # both shapes
    python experiments/bench_gated_alternatives.py --quick   # ETTh1-like shape, fewer repeats

Writes ``experiments/results/bench_gated_alternatives.md``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_speed import (
    ROOT,
    SHAPES,
    gated_conv_case,
    markdown,
    paired_ratios,
    time_round_robin,
    time_round_robin_samples,
    write_report,
)

from tests.nn.reference import textbook_gated_temporal_conv
from tsattn.nn.temporal import GatedTemporalConv, _stack_padded

CPU = torch.device("cpu")


def with_split(module: GatedTemporalConv, split: bool):
    """``module(x)`` with ``split_taps`` set for the call."""

    def run(x: torch.Tensor) -> torch.Tensor:
        before = module.split_taps
        module.split_taps = split
        try:
            return module(x)
        finally:
            module.split_taps = before

    return run


def fft_gated(module: GatedTemporalConv, x: torch.Tensor) -> torch.Tensor:
    params = module.branch_parameters()
    k_max, dilation = module.filter.k_max, module.filter.dilation
    weight = _stack_padded(params[0::2], k_max)[:, :, 0]  # (2 c_out, c_in, k_max)
    bias = torch.cat(params[1::2])
    steps = x.size(3)
    n = _fast_length(steps)  # zero padding to n >= steps keeps the valid steps exact
    span = dilation * (k_max - 1)
    # as a causal convolution: tap j (oldest first) sits at lag span - j * dilation
    kernel = x.new_zeros(weight.size(0), weight.size(1), n)
    kernel[..., : span + 1 : dilation] = weight.flip(-1)
    spectrum = torch.einsum(
        "bcnf,ocf->bonf", torch.fft.rfft(x, n=n, dim=-1), torch.fft.rfft(kernel, dim=-1)
    )
    z = torch.fft.irfft(spectrum, n=n, dim=-1)[..., span:steps] + bias.view(1, -1, 1, 1)
    filt, gate = z.split(module.c_out, dim=1)
    return torch.tanh(filt) * torch.sigmoid(gate)


def _fast_length(steps: int) -> int:
    """The smallest ``2^a 3^b >= steps``: FFT lengths with large prime factors are slow."""
    best = 1 << (steps - 1).bit_length()
    power3 = 1
    while power3 < steps:
        length = power3
        while length < steps:
            length *= 2
        best = min(best, length)
        power3 *= 3
    return best


def bench_conv_passes(module: GatedTemporalConv, x: torch.Tensor, repeats: int) -> list[str]:
    weight = torch.cat([module.filter.fused_weight()[0], module.gate.fused_weight()[0]]).detach()
    bias = torch.zeros(weight.size(0))
    x = x.detach().contiguous(memory_format=torch.channels_last)
    grad = torch.randn_like(F.conv2d(x, weight, bias))

    def backward(mask: list[bool]):
        return lambda: torch.ops.aten.convolution_backward(
            grad, x, weight, [weight.size(0)], [1, 1], [0, 0], [1, 1], False, [0, 0], 1, mask
        )

    cases = {
        "forward": lambda: F.conv2d(x, weight, bias),
        "backward to input": backward([True, False, False]),
        "backward to weight": backward([False, True, True]),
    }
    times = time_round_robin(cases, repeats, CPU)
    positions = grad.numel() // grad.size(1)  # B * N * T_out
    dense = 2 * positions * weight.numel()
    rows_per_branch = 2 * module.c_out // len(module.filter.kernel_set)  # filter + gate
    useful = 2 * positions * x.size(1) * rows_per_branch * sum(module.filter.kernel_set)
    return [
        [name, f"{t * 1e3:.2f}", f"{dense / t / 1e9:.0f}", f"{useful / t / 1e9:.0f}"]
        for name, t in times.items()
    ]


def bench_layer(module: GatedTemporalConv, x: torch.Tensor, repeats: int) -> list[list[str]]:
    forms = {
        "textbook": lambda: textbook_gated_temporal_conv(module, x),
        "fused": lambda: with_split(module, False)(x),
        "tap-set split": lambda: with_split(module, True)(x),
        "fft": lambda: fft_gated(module, x),
    }
    grad_y = torch.randn_like(forms["textbook"]())
    params = [x, *module.parameters()]

    def gradients(form) -> list[torch.Tensor]:
        return torch.autograd.grad(form(), params, grad_y)

    reference = gradients(forms["textbook"])
    with torch.no_grad():
        expected = forms["textbook"]()
        out_diff = {name: (form() - expected).abs().max().item() for name, form in forms.items()}
    grad_diff = {
        name: max(
            ((g - r).abs().max() / r.abs().max()).item()
            for g, r in zip(gradients(form), reference, strict=True)
        )
        for name, form in forms.items()
    }

    def step(form):
        def run() -> None:
            x.grad = None
            module.zero_grad(set_to_none=True)
            form().backward(grad_y)

        return run

    samples = time_round_robin_samples(
        {name: step(form) for name, form in forms.items()}, repeats, CPU
    )
    median = {name: statistics.median(values) for name, values in samples.items()}
    rows = []
    for name in forms:
        ratios = sorted(paired_ratios(samples, "textbook", name))
        rows.append(
            [
                name,
                f"{median[name] * 1e3:.2f}",
                f"**{median['textbook'] / median[name]:.2f}x**",
                f"{ratios[0]:.2f}-{ratios[-1]:.2f}x",
                f"{out_diff[name]:.1e}",
                f"{grad_diff[name]:.1e}",
            ]
        )
    return rows


def bench_weight_gradient(module: GatedTemporalConv, x: torch.Tensor, repeats: int) -> list[str]:
    kernel_set, k_max = module.filter.kernel_set, module.filter.k_max
    if module.filter.dilation != 1:
        raise ValueError("the per-tap products assume dilation 1")
    # rows ordered by kernel size, largest first: filter and gate rows of a branch together
    order = sorted(range(len(kernel_set)), key=lambda i: -kernel_set[i])
    blocks = [(block, i) for i in order for block in (module.filter, module.gate)]
    weight = _stack_padded([block.branches[i].weight for block, i in blocks], k_max).detach()
    rows_per_branch = 2 * module.c_out // len(kernel_set)
    prefix = [
        rows_per_branch * sum(kernel_set[i] >= k_max - j for i in order) for j in range(k_max)
    ]
    x = x.detach().contiguous(memory_format=torch.channels_last)
    grad = torch.randn_like(F.conv2d(x, weight))  # (B, O, N, T_out), channels-last
    batch, channels, nodes, steps = x.shape
    flat_x = x.permute(0, 2, 3, 1).reshape(-1, channels)  # (B N T, C), a view
    full = x.new_zeros(batch, nodes, steps, weight.size(0))  # gradient on the full time grid
    full[:, :, k_max - 1 :] = grad.permute(0, 2, 3, 1)
    flat_grad = full.view(-1, weight.size(0))  # (B N T, O)
    length = flat_x.size(0)

    def per_tap() -> list[torch.Tensor]:
        # output step tau reads input step tau - (k_max - 1) + j through tap j
        shift = k_max - 1
        return [
            flat_grad[shift - j :, : prefix[j]].T @ flat_x[: length - shift + j]
            for j in range(k_max)
        ]

    def library() -> torch.Tensor:
        return torch.ops.aten.convolution_backward(
            grad, x, weight, None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1, [False, True, False]
        )[1]

    expected = library()
    diff = max(
        ((tap - expected[: prefix[j], :, 0, j]).abs().max() / expected.abs().max()).item()
        for j, tap in enumerate(per_tap())
    )
    times = time_round_robin({"library": library, "per-tap products": per_tap}, repeats, CPU)
    return [
        ["library", f"{times['library'] * 1e3:.2f}", "1.00x", "reference"],
        [
            "per-tap products",
            f"{times['per-tap products'] * 1e3:.2f}",
            f"{times['library'] / times['per-tap products']:.2f}x",
            f"{diff:.1e}",
        ],
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="3 repeats, ETTh1-like shape only")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "experiments/results/bench_gated_alternatives.md"
    )
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    shapes = list(SHAPES)[:1] if args.quick else list(SHAPES)
    repeats = 3 if args.quick else args.repeats
    header = (
        f"device: cpu, torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"median of {repeats} round-robin repeats"
    )
    print(header, flush=True)
    conv_rows, layer_rows, weight_rows = [], [], []
    for name in shapes:
        module, x = gated_conv_case(SHAPES[name], CPU)
        label = f"{name} {tuple(x.shape)}"
        conv_rows += [[label, *row] for row in bench_conv_passes(module, x, repeats)]
        layer_rows += [[label, *row] for row in bench_layer(module, x, repeats)]
        weight_rows += [[label, *row] for row in bench_weight_gradient(module, x, repeats)]
    sections = [
        ("Passes of the dense fused convolution",
         markdown(["shape", "pass", "ms", "dense GFLOP/s", "useful GFLOP/s"], conv_rows)),
        ("Gated layer, forward + backward (same weights, same input)",
         markdown(["shape", "form", "ms", "textbook / form", "per round (min-max)",
                   "max |diff| out", "max rel diff grads"], layer_rows)),
        ("Weight gradient of the fused convolution",
         markdown(["shape", "form", "ms", "speed-up", "max rel diff"], weight_rows)),
    ]  # fmt: skip
    write_report("bench_gated_alternatives", header, sections, args.out)


if __name__ == "__main__":
    main()
