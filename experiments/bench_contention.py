"""Training step on a shared CPU: alone, and beside one competing 2-thread process.

Each cell runs a model at the ETTh1-like shape (``B=32, N=7, T=96, H=96``, as
``bench_speed.py``; ``--model``: ``default``, ``MTGNNConfig``'s defaults, or ``recipe``, the
long-horizon recipe's model that ``tsattn fit`` trains under the tslib protocol, its daily cycle
fed random phases and its shortcut one shared map, or ``recipe-phase``, the same with the
shortcut's maps per hour of the day, which the fit trains where their start validates lower)
in a fresh interpreter whose OpenMP wait policy is set before torch
loads, and reports the median step time over ``--steps`` steps after six seconds of warm-up
steps (``--repeats``: the median cell of that many round-robin rounds). The
competitor is a second interpreter started by this script that multiplies 1024 x 1024
matrices on 2 threads with the default (spinning) OpenMP policy, as another user's job would;
it is started before the measured process and stopped after it. ``x quiet`` divides a cell
by the same policy alone, ``x default quiet`` by the default policy alone. Targets (issue 13):
at most 2.5x the quiet time beside the competitor, at most 5% slower quiet than the default
policy. Rows ``+ guard`` run :class:`tsattn.train.oversubscription.OversubscriptionGuard` after
every step, as every CPU fit does (looks from a background thread twice a second, acts after
a step): its last columns say what it did, alone and beside the competitor (how soon it moved
training to one thread).

    python experiments/bench_contention.py --repeats 3
    python experiments/bench_contention.py --model recipe --repeats 3 \
        --out experiments/results/bench_contention_recipe.md
    python experiments/bench_contention.py --policies "default (active spin),GOMP_SPINCOUNT=1000"
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))

GUARD = "TSATTN_BENCH_GUARD"  # set: the measured loop runs the fit's oversubscription guard

# name -> environment set before torch loads (None: removed, the OpenMP default)
POLICIES: dict[str, dict[str, str | None]] = {
    "default (active spin)": {"OMP_WAIT_POLICY": None, "GOMP_SPINCOUNT": None},
    "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": None},
    "GOMP_SPINCOUNT=10000": {"OMP_WAIT_POLICY": None, "GOMP_SPINCOUNT": "10000"},
    "GOMP_SPINCOUNT=1000": {"OMP_WAIT_POLICY": None, "GOMP_SPINCOUNT": "1000"},
    "PASSIVE + GOMP_SPINCOUNT=1000": {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "1000"},
    "GOMP_SPINCOUNT=30000": {"OMP_WAIT_POLICY": None, "GOMP_SPINCOUNT": "30000"},
    "GOMP_SPINCOUNT=100000": {"OMP_WAIT_POLICY": None, "GOMP_SPINCOUNT": "100000"},
    # One thread has no partner to wait for: no policy applies, and a small model may lose
    # little of its quiet speed.
    "OMP_NUM_THREADS=1": {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": None, "GOMP_SPINCOUNT": None},
    # The training loop's own answer (tsattn.train.oversubscription.OversubscriptionGuard, as
    # every CPU fit runs it): spin while quiet, one thread while the cores are shared.
    "default + guard": {"OMP_WAIT_POLICY": None, "GOMP_SPINCOUNT": None, GUARD: "1"},
    "OMP_WAIT_POLICY=PASSIVE + guard": {"OMP_WAIT_POLICY": "PASSIVE", GUARD: "1"},
}
# the rows run without --policies
DEFAULT_POLICIES = ("default (active spin)", "default + guard", "OMP_WAIT_POLICY=PASSIVE",
                    "OMP_WAIT_POLICY=PASSIVE + guard", "OMP_NUM_THREADS=1")  # fmt: skip

COMPETITOR = (
    "import torch\n"
    "torch.set_num_threads(2)\n"
    "a = torch.randn(1024, 1024)\n"
    "while True:\n"
    "    a = torch.tanh(a @ a)\n"
)


MODELS = ("default", "recipe", "recipe-phase")


def child(steps: int, model: str) -> None:
    """Runs in the measured interpreter: median seconds of ``steps`` training steps."""
    import torch
    from bench_speed import SHAPES, make_config, model_step

    from tsattn.train.recipe import resolve_model_options

    torch.manual_seed(0)
    batch, spec = SHAPES[next(iter(SHAPES))]
    if model != "default":
        maps = {"shortcut_per_phase": model == "recipe-phase"}
        spec = {**spec, **resolve_model_options("tslib", spec["num_nodes"], spec["horizon"], maps,
                                                 freq="h")}  # fmt: skip
    step, _ = model_step(make_config(spec), batch, torch.device("cpu"))
    for _ in range(2):
        step()
    # Imported by every cell, guarded or not, so that all cells load the same modules (the
    # guard's module loads Lightning, as every tsattn fit does).
    from tsattn.train.oversubscription import OversubscriptionGuard

    cell: dict = {"guarded": bool(os.environ.get(GUARD))}
    guard = None
    if cell["guarded"]:
        guard = OversubscriptionGuard()
        guard.start()  # as a CPU fit does: it looks from a thread of its own, acts after steps
    # Every cell runs the same timeline: ACT_WITHIN s of steps (a guard may act after each),
    # then `steps` timed steps.
    begin = start = time.perf_counter()
    while time.perf_counter() - start < ACT_WITHIN and not (guard and guard.shared):
        step()
        if guard is not None:
            guard.act()
    cell["acted_s"] = time.perf_counter() - start if guard and guard.shared else None
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        if guard is not None:
            guard.act()
            if guard.shared and cell["acted_s"] is None:  # acted after the warm-up
                cell["acted_s"] = time.perf_counter() - begin
        times.append(time.perf_counter() - start)
    cell.update(median=statistics.median(times), max=max(times), threads=torch.get_num_threads())
    if guard is not None:
        guard.stop()
    print(json.dumps(cell))


ACT_WITHIN = 6.0  # seconds of steps the guard is given to find the machine shared


def _acted(cell: dict) -> str:
    """What the guard did in a cell: how soon it moved to one thread, or that it kept them."""
    if not cell.get("guarded"):
        return "-"
    if cell.get("acted_s") is None:
        return f"kept {cell['threads']} threads"
    return f"{cell['threads']} thread after {cell['acted_s']:.1f} s"


def _middle(cells: list[dict]) -> dict:
    """The cell of median step time among a policy's rounds (its own guard record with it)."""
    return sorted(cells, key=lambda c: c["median"])[(len(cells) - 1) // 2]


def run_cell(policy: dict[str, str | None], steps: int, competing: bool, model: str) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.pop("OMP_NUM_THREADS", None)  # 2 threads, the machine's cores, unless a policy says
    for name, value in policy.items():
        env.pop(name, None)
        if value is not None:
            env[name] = value
    rival = None
    if competing:
        rival_env = {k: v for k, v in env.items() if k != "OMP_WAIT_POLICY"}
        rival = subprocess.Popen([sys.executable, "-c", COMPETITOR], env=rival_env)
        time.sleep(2.0)  # let it load torch and start computing
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--child", "--steps", str(steps), "--model", model],
            env=env, check=True, capture_output=True, text=True,
        )  # fmt: skip
    finally:
        if rival is not None:
            rival.kill()
            rival.wait()
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument(
        "--repeats", type=int, default=1,
        help="rounds over the policies; each cell reports the median over its rounds",
    )  # fmt: skip
    parser.add_argument(
        "--out", type=Path, default=ROOT / "experiments/results/bench_contention.md"
    )
    parser.add_argument(
        "--policies", help="comma-separated names of POLICIES (default: DEFAULT_POLICIES)"
    )
    parser.add_argument("--model", choices=MODELS, default="default")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.steps, args.model)
        return

    from bench_speed import markdown, write_report

    load_before = os.getloadavg()[0]  # other work on the machine shows here
    chosen = args.policies.split(",") if args.policies else list(DEFAULT_POLICIES)
    runs: dict[str, list[tuple[dict, dict]]] = {name: [] for name in chosen}
    for _ in range(args.repeats):  # round-robin: a drift of the machine touches every policy
        for name in chosen:
            alone = run_cell(POLICIES[name], args.steps, competing=False, model=args.model)
            shared = run_cell(POLICIES[name], args.steps, competing=True, model=args.model)
            runs[name].append((alone, shared))
            print(name, json.dumps(alone), json.dumps(shared), flush=True)
    rows = []
    base = _middle([a for a, _ in runs.get("default (active spin)", runs[chosen[0]])])
    for name in chosen:
        alone = _middle([a for a, _ in runs[name]])
        shared = _middle([b for _, b in runs[name]])
        rows.append([name, f"{alone['median'] * 1e3:.1f}",
                     f"{alone['median'] / base['median']:.2f}",
                     f"{shared['median'] * 1e3:.1f}",
                     f"**{shared['median'] / alone['median']:.2f}x**",
                     f"{shared['max'] * 1e3:.0f}",
                     _acted(alone), _acted(shared)])  # fmt: skip
        print(" | ".join(rows[-1]), flush=True)
    import torch

    header = (
        f"cpu, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} "
        f"threads per process unless the row sets OMP_NUM_THREADS; ETTh1-like {args.model} "
        f"model, median of {args.steps} steps per cell, median cell of {args.repeats} "
        "round-robin round(s); competitor: 2-thread matrix products, "
        "default OpenMP policy; load average before / after: "
        f"{load_before:.1f} / {os.getloadavg()[0]:.1f}"
    )
    headers = ["OpenMP wait policy", "quiet ms", "x default quiet",
               "beside competitor ms", "x quiet", "slowest step beside competitor ms",
               "guard, quiet", "guard, beside competitor"]  # fmt: skip
    write_report(
        "bench_contention", header, [("Training step, shared CPU", markdown(headers, rows))],
        args.out,
    )  # fmt: skip


if __name__ == "__main__":
    main()
