"""Speed and memory of the temporal core and of the whole model.

Prints three tables (and writes them to ``experiments/results/bench_speed.md``, or
``bench_speed_cuda.md`` with ``--device cuda``):

1. one MTGNN training step (forward, MSE, backward, Adam) of tsattn against the textbook
   re-implementation of the official model (``tests/reference_mtgnn.py``: eight convolutions
   per layer, per-hop concatenation then a 1x1 convolution, dense propagation, one skip
   convolution per layer) with the same weights, at the ETTh1-like and the electricity-like
   shape, with the ratio of the medians and the smallest and largest ratio of a single round
   (how far apart two runs can land); beside it, tsattn with the propagation forced dense and
   forced sparse (``MixHop.propagation``), with one convolution per gated layer
   (``GatedTemporalConv.split_taps = False``), and on CPUs both models timed again, round-robin
   inside ``tsattn.train.allocator.reuse_freed_memory`` (memory freed by a step kept for the
   next one), as every CPU fit of tsattn runs and the official training script does not;
2. fused vs textbook gated dilated inception: same weights, same inputs, forward + backward,
   the fused layer as one convolution (``GatedTemporalConv.split_taps = False``; on CPUs the
   default kernel set is convolved as two tap groups) and that one convolution alone (no
   gating, leaf weights): ``textbook / one convolution alone`` is the ceiling of any
   one-convolution form built on the library convolution;
3. one row per fusion (``tsattn.list_fusions()``) at both shapes: parameters, step time as a
   ratio to ``skip`` in the same run, peak memory.

Timing: every case is warmed up once, then the cases of a table are timed round-robin
``--repeats`` times and the median is kept, so a noisy neighbour slows all of them alike. In
the two whole-step tables every timed step follows an untimed step of the same case: a step
that follows another model's step finds the heap as that model left it (unprimed, tsattn's
step timed right after the textbook model's took 0.150 s in one run, and the same model with
PyTorch's Adam, timed after a tsattn step, 0.119 s).

Peak memory: on CUDA, ``torch.cuda.max_memory_allocated`` over one step. On CPU, each case runs
once in a fresh subprocess that resets the kernel's resident-set high-water mark
(``/proc/self/clear_refs``, Linux) and reports ``step peak = VmHWM after the step - VmRSS
before it`` (``ru_maxrss`` would not do: Linux carries the parent's high-water mark across
fork and exec), after a one-sample warm-up step that loads the
kernels and creates the optimizer state: the memory one step needs on top of the model, its
optimizer state, the inputs and the Python runtime, which are all in ``process peak``.

Usage::

    python experiments/bench_speed.py            # CPU, both shapes
    python experiments/bench_speed.py --quick    # fewer repeats, ETTh1-like shape only
    python experiments/bench_speed.py --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.nn.reference import textbook_gated_temporal_conv  # noqa: E402
from tests.reference_mtgnn import TextbookMTGNN  # noqa: E402
from tsattn import MTGNN, MTGNNConfig, list_fusions  # noqa: E402
from tsattn.nn.graph import MixHop  # noqa: E402
from tsattn.nn.temporal import GatedTemporalConv  # noqa: E402
from tsattn.train.allocator import reuse_freed_memory  # noqa: E402
from tsattn.train.module import adam  # noqa: E402

# name -> (batch size, model config): the shapes named in the foundation issue
SHAPES: dict[str, tuple[int, dict]] = {
    "ETTh1-like (B=32, N=7, T=96, H=96)": (
        32,
        dict(num_nodes=7, seq_len=96, horizon=96),
    ),
    "electricity-like (B=16, N=321, T=168, H=24)": (
        16,
        dict(preset="single_step", num_nodes=321, seq_len=168, horizon=24),
    ),
}


def make_config(spec: dict, **overrides) -> MTGNNConfig:
    spec = {**spec, **overrides}
    preset = spec.pop("preset", None)
    return MTGNNConfig.preset(preset, **spec) if preset else MTGNNConfig(**spec)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_round_robin_samples(
    cases: dict[str, Callable[[], None]],
    repeats: int,
    device: torch.device,
    prime: bool = False,
) -> dict[str, list[float]]:
    """Seconds per call of every case, ``repeats`` samples each, timed round-robin.

    ``prime``: every timed call follows one untimed call of the same case, so that each case
    is timed in its own steady state (a training loop's step follows a step of the same model,
    whose freed buffers the allocator hands back) instead of in the state the previous case
    left.
    """
    for run in cases.values():  # warm-up
        run()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, run in cases.items():
            if prime:
                run()
            sync(device)
            start = time.perf_counter()
            run()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return times


def time_round_robin(
    cases: dict[str, Callable[[], None]],
    repeats: int,
    device: torch.device,
    prime: bool = False,
) -> dict[str, float]:
    """Median seconds per call of every case, timed round-robin (``prime``: see
    :func:`time_round_robin_samples`)."""
    samples = time_round_robin_samples(cases, repeats, device, prime)
    return {name: statistics.median(values) for name, values in samples.items()}


def paired_ratios(samples: dict[str, list[float]], slow: str, fast: str) -> list[float]:
    """``slow / fast`` of each round: both were timed back to back, so a noisy moment of the
    machine slows both alike and the spread of these ratios shows how far one run can be from
    another."""
    return [a / b for a, b in zip(samples[slow], samples[fast], strict=True)]


def gated_conv_case(shape: tuple[int, dict], device: torch.device):
    """The first gated layer of the model at ``shape``: its input and a module."""
    batch, spec = shape
    cfg = make_config(spec)
    length = max(cfg.seq_len, cfg.receptive_field)
    module = GatedTemporalConv(cfg.residual_channels, cfg.conv_channels, cfg.kernel_set).to(device)
    x = torch.randn(batch, cfg.residual_channels, cfg.num_nodes, length, device=device)
    return module, x.requires_grad_()


def model_step(
    cfg: MTGNNConfig,
    batch: int,
    device: torch.device,
    textbook: bool = False,
    torch_adam: bool = False,
) -> tuple[Callable, int]:
    """``step(rows=None)``: one training step on the first ``rows`` samples (all by default);
    ``step.model`` is the model it trains.

    ``textbook``: the same step on the textbook re-implementation of the official model
    (``tests/reference_mtgnn.py``) with the same weights, and the official code's optimiser,
    PyTorch's default Adam; tsattn's steps use the Adam tsattn trains with
    (:func:`tsattn.train.module.adam`, fused on CPUs) unless ``torch_adam``.
    """
    model = MTGNN(cfg).to(device)
    if textbook:
        model = TextbookMTGNN.from_model(model)
    if textbook or torch_adam:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    else:
        optimizer = adam(model.parameters(), lr=1e-3)
    x = torch.randn(batch, cfg.seq_len, cfg.num_nodes, device=device)
    y = torch.randn(batch, cfg.horizon, cfg.num_nodes, device=device)
    # the phase of each window's first step, for a model with a learned cycle
    phase = torch.randint(cfg.cycle_length, (batch,), device=device) if cfg.cycle_length else None

    def step(rows: int | None = None) -> None:
        optimizer.zero_grad(set_to_none=True)
        inputs = (x[:rows],) if phase is None else (x[:rows], None, phase[:rows])
        F.mse_loss(model(*inputs), y[:rows]).backward()
        optimizer.step()

    step.model = model
    return step, sum(p.numel() for p in model.parameters())


def _status_bytes(field: str) -> int:
    """``VmRSS`` or ``VmHWM`` of this process, from ``/proc/self/status``."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def measure_memory_here(case: dict) -> dict:
    """Run one case once in this process; return its step peak and process peak in bytes."""
    device = torch.device(case["device"])
    batch, spec = SHAPES[case["shape"]]
    if case["kind"] == "model":
        run, _ = model_step(make_config(spec, **case.get("overrides", {})), batch, device)
    else:
        module, x = gated_conv_case(SHAPES[case["shape"]], device)
        forward = module if case["kind"] == "fused" else None

        def run(rows: int | None = None) -> None:
            inputs = x[:rows]
            out = forward(inputs) if forward else textbook_gated_temporal_conv(module, inputs)
            out.sum().backward()

    # a one-sample warm-up loads the kernels and creates optimizer state, so the measured
    # full-batch step shows the memory of activations and gradients
    run(1)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        run()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
        return {"step": peak - base, "process": peak}
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # reset VmHWM to the current RSS
    before = _status_bytes("VmRSS")
    run()
    peak = _status_bytes("VmHWM")
    return {"step": peak - before, "process": peak}


def measure_memory(case: dict) -> dict:
    """``measure_memory_here`` in a fresh interpreter, so earlier cases do not mask the peak."""
    if case["device"] == "cuda":
        return measure_memory_here(case)
    case = {**case, "threads": torch.get_num_threads()}
    out = subprocess.run(
        [sys.executable, __file__, "--memory-case", json.dumps(case)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def gib(n: float) -> str:
    return f"{n / 2**30:.2f}"


def markdown(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def write_report(name: str, header: str, sections: list[tuple[str, str]], out: Path) -> None:
    """Print the ``(title, table)`` sections and write them, under ``# name`` and ``header``."""
    text = [f"# {name}\n\n{header}\n"]
    for title, table in sections:
        print(f"\n## {title}\n\n{table}", flush=True)
        text.append(f"## {title}\n\n{table}\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(text))
    print(f"\nwritten to {out}")


def bench_gated_conv(shapes: list[str], repeats: int, device: torch.device) -> str:
    rows = []
    for name in shapes:
        module, x = gated_conv_case(SHAPES[name], device)
        with torch.no_grad():
            err = (module(x) - textbook_gated_temporal_conv(module, x)).abs().max().item()

        def fused(module=module, x=x) -> None:
            module(x).sum().backward()

        def textbook(module=module, x=x) -> None:
            textbook_gated_temporal_conv(module, x).sum().backward()

        def one_convolution(module=module, x=x) -> None:
            with switched(split_taps=False):
                module(x).sum().backward()

        # the one dense convolution alone, without gating: no one-convolution form beats it
        w_filter, b_filter = module.filter.fused_weight()
        w_gate, b_gate = module.gate.fused_weight()
        weight = torch.cat([w_filter, w_gate]).detach().requires_grad_()
        bias = torch.cat([b_filter, b_gate]).detach().requires_grad_()

        def conv_alone(x=x, weight=weight, bias=bias, dilation=module.filter.dilation) -> None:
            x = x.contiguous(memory_format=torch.channels_last)
            F.conv2d(x, weight, bias, dilation=(1, dilation)).sum().backward()

        cases = {
            "fused": fused,
            "textbook": textbook,
            "one convolution": one_convolution,
            "conv alone": conv_alone,
        }
        samples = time_round_robin_samples(cases, repeats, device)
        times = {case: statistics.median(values) for case, values in samples.items()}
        ratios = sorted(paired_ratios(samples, "textbook", "fused"))
        mem = {
            kind: measure_memory({"kind": kind, "shape": name, "device": device.type})
            for kind in ("fused", "textbook")
        }
        rows.append(
            [
                name,
                f"{tuple(x.shape)}",
                f"{times['textbook'] * 1e3:.1f}",
                f"{times['fused'] * 1e3:.1f}",
                f"**{times['textbook'] / times['fused']:.2f}x**",
                f"{ratios[0]:.2f}-{ratios[-1]:.2f}x",
                f"{times['one convolution'] * 1e3:.1f} "
                f"({times['one convolution'] / times['fused']:.2f}x)",
                f"{times['conv alone'] * 1e3:.1f}",
                f"{times['textbook'] / times['conv alone']:.2f}x",
                gib(mem["textbook"]["step"]),
                gib(mem["fused"]["step"]),
                f"{err:.1e}",
            ]
        )
    headers = ["shape", "input (B, C, N, T)", "textbook ms", "fused ms", "speed-up",
               "speed-up per round (min-max)", "fused as one convolution ms (it / fused)",
               "one convolution alone ms", "textbook / one convolution alone",
               "textbook step GiB", "fused step GiB", "max |diff|"]  # fmt: skip
    return markdown(headers, rows)


SWITCH_OWNERS = {"propagation": MixHop, "split_taps": GatedTemporalConv}


@contextmanager
def switched(**switches):
    """Class-level switches set for the block (``MixHop.propagation``,
    ``GatedTemporalConv.split_taps``), restored after it."""
    saved = {name: getattr(SWITCH_OWNERS[name], name) for name in switches}
    for name, value in switches.items():
        setattr(SWITCH_OWNERS[name], name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(SWITCH_OWNERS[name], name, value)


def with_switches(step: Callable, **switches) -> Callable:
    """``step`` run with class-level switches set (:func:`switched`)."""

    def run(rows: int | None = None) -> None:
        with switched(**switches):
            step(rows)

    return run


def bench_whole_model(shapes: list[str], repeats: int, device: torch.device) -> str:
    """tsattn against the textbook official model, whole training step, same weights."""
    rows = []
    for name in shapes:
        batch, spec = SHAPES[name]
        cfg = make_config(spec, revin=False)  # the official model has no RevIN
        step, params = model_step(cfg, batch, device)
        textbook, textbook_params = model_step(cfg, batch, device, textbook=True)
        cases = {"tsattn": step, "textbook": textbook,
                 "PyTorch's Adam": model_step(cfg, batch, device, torch_adam=True)[0],
                 "dense propagation": with_switches(step, propagation="dense"),
                 "sparse propagation": with_switches(step, propagation="sparse"),
                 "one convolution": with_switches(step, split_taps=False)}  # fmt: skip
        samples = time_round_robin_samples(cases, repeats, device, prime=True)
        t = {case: statistics.median(values) for case, values in samples.items()}
        if device.type == "cpu":
            # both again as every CPU fit of tsattn runs: freed memory kept for the next step
            with reuse_freed_memory():
                kept = time_round_robin({"tsattn": step, "textbook": textbook}, repeats, device,
                                        prime=True)  # fmt: skip
            t.update({f"{case}, freed memory kept": value for case, value in kept.items()})
        ratios = sorted(paired_ratios(samples, "textbook", "tsattn"))
        extra = [
            f"{t[case]:.3f} ({t['tsattn'] / t[case]:.2f}x)" if case in t else "-"
            for case in (
                "PyTorch's Adam",
                "dense propagation",
                "sparse propagation",
                "one convolution",
            )
        ]
        freed = ["-", "-"]
        if "tsattn, freed memory kept" in t:
            fit, reference = t["tsattn, freed memory kept"], t["textbook, freed memory kept"]
            freed = [f"{fit:.3f} (**{t['textbook'] / fit:.2f}x**)",
                     f"{reference:.3f} ({reference / fit:.2f}x)"]  # fmt: skip
        rows.append([name, f"{params:,} / {textbook_params:,}", f"{t['textbook']:.3f}",
                     f"{t['tsattn']:.3f}", f"**{t['textbook'] / t['tsattn']:.2f}x**",
                     f"{ratios[0]:.2f}-{ratios[-1]:.2f}x", *extra, *freed])  # fmt: skip
    headers = ["shape", "parameters (tsattn / textbook)", "textbook s", "tsattn s",
               "speed-up", "speed-up per round (min-max)",
               "tsattn, PyTorch's default Adam s (tsattn / it)",
               "tsattn, dense propagation s (tsattn / it)",
               "tsattn, sparse propagation s (tsattn / it)",
               "tsattn, one convolution per gated layer s (tsattn / it)",
               "tsattn as CPU fits run it, freed memory kept s (textbook / it)",
               "textbook, freed memory kept s (it / tsattn kept)"]  # fmt: skip
    return markdown(headers, rows)


def bench_fusions(shapes: list[str], repeats: int, device: torch.device) -> str:
    rows = []
    for name in shapes:
        batch, spec = SHAPES[name]
        steps, params = {}, {}
        for fusion in list_fusions():
            steps[fusion], params[fusion] = model_step(
                make_config(spec, fusion=fusion), batch, device
            )
        times = time_round_robin(steps, repeats, device, prime=True)
        for fusion in list_fusions():
            mem = measure_memory(
                {
                    "kind": "model",
                    "shape": name,
                    "device": device.type,
                    "overrides": {"fusion": fusion},
                }
            )
            rows.append(
                [
                    name,
                    fusion,
                    f"{params[fusion]:,}",
                    f"{times[fusion]:.3f}",
                    f"{times[fusion] / times['skip']:.2f}",
                    gib(mem["step"]),
                    gib(mem["process"]),
                ]
            )
    headers = ["shape", "fusion", "parameters", "step s", "time / skip",
               "step peak GiB", "process peak GiB"]  # fmt: skip
    return markdown(headers, rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 repeats, ETTh1-like shape only")
    parser.add_argument("--threads", type=int, help="intra-op threads (default: PyTorch's)")
    parser.add_argument("--out", type=Path, help="default: experiments/results/bench_speed.md")
    parser.add_argument(
        "--tables", default="model,gated,fusions", help="comma-separated: model, gated, fusions"
    )
    parser.add_argument("--memory-case", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_case:
        case = json.loads(args.memory_case)
        torch.set_num_threads(case.pop("threads"))
        print(json.dumps(measure_memory_here(case)))
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    shapes = list(SHAPES)[:1] if args.quick else list(SHAPES)
    repeats = 2 if args.quick else args.repeats
    header = (
        f"device: {torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}, "
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"median of {repeats} round-robin repeats, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}"
    )
    print(header, flush=True)
    tables = {
        "model": ("MTGNN training step against the textbook official model "
                  "(forward, MSE, backward, Adam; no RevIN)", bench_whole_model),
        "gated": ("Fused vs textbook gated dilated inception (forward + backward)",
                  bench_gated_conv),
        "fusions": ("MTGNN training step per fusion (forward, MSE, backward, Adam)",
                    bench_fusions),
    }  # fmt: skip
    sections = [
        (title, bench(shapes, repeats, device))
        for key, (title, bench) in tables.items()
        if key in args.tables.split(",")
    ]
    suffix = "" if device.type == "cpu" else f"_{device.type}"
    out = args.out or ROOT / f"experiments/results/bench_speed{suffix}.md"
    write_report("bench_speed", header, sections, out)


if __name__ == "__main__":
    main()
