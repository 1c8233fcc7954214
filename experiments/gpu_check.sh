#!/usr/bin/env bash
# One prepared check for a lent GPU machine: it has PyTorch and Lightning but no internet and no
# ../shared, so ETTh1.csv must sit in the git-ignored ./datasets/ folder (or $TSATTN_DATA_DIR).
#
#   bash experiments/gpu_check.sh             # GPU: install, fit ETTh1 H=96 1 epoch bf16-mixed, bench
#   bash experiments/gpu_check.sh --cpu-only  # no CUDA parts, tiny fit (what the test runs)
#
# Environment: GPU_CHECK_CPU_ONLY=1 (same as --cpu-only), GPU_CHECK_OUT (results folder;
# default $OUT/gpu_check when $OUT is set, else runs/gpu_check), GPU_CHECK_EPOCHS (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."

cpu_only=${GPU_CHECK_CPU_ONLY:-0}
for arg in "$@"; do
    case "$arg" in
        --cpu-only) cpu_only=1 ;;
        *) echo "gpu_check: unknown argument $arg (use --cpu-only)" >&2; exit 2 ;;
    esac
done
results=${GPU_CHECK_OUT:-${OUT:-runs}/gpu_check}
mkdir -p "$results"
export TSATTN_DATA_DIR=${TSATTN_DATA_DIR:-$PWD/datasets}
if [[ ! -f "$TSATTN_DATA_DIR/ETTh1.csv" ]]; then
    echo "gpu_check: $TSATTN_DATA_DIR/ETTh1.csv is missing: copy ETTh1.csv into ./datasets/" >&2
    exit 2
fi

# Install the project without dependencies, unless this checkout is already the one imported.
here=$(python -c "import pathlib, tsattn; print(pathlib.Path(tsattn.__file__).resolve().parents[1])" 2>/dev/null || true)
if [[ "$here" != "$PWD" ]]; then
    python -m pip install -q --no-deps --no-build-isolation -e .
fi
# the console script, or the same entry point when pip's script folder is not on PATH
if command -v tsattn >/dev/null; then tsattn=(tsattn); else tsattn=(python -m tsattn.cli); fi

if [[ "$cpu_only" == 1 ]]; then
    fit_args=(--accelerator cpu --precision 32-true --max-steps 2 --seq-len 24 --horizon 6
              --set data.batch_size=16 --set train.limit_val_batches=2 --set train.limit_test_batches=2
              --set model.layers=1 --set model.conv_channels=4 --set model.residual_channels=4
              --set model.skip_channels=8 --set model.end_channels=8 --set model.node_dim=4)
else
    fit_args=(--accelerator gpu --devices 1 --precision bf16-mixed --horizon 96
              --max-epochs "${GPU_CHECK_EPOCHS:-1}")
fi
if [[ "$cpu_only" != 1 ]]; then
    python -c "import torch; print('torch', torch.__version__, '|', torch.cuda.get_device_name(0))"
fi
if [[ "$cpu_only" != 1 ]]; then
    # on the GPU: the hand-written backward of GatedTemporalConv against the textbook form,
    # sparse against dense mix-hop propagation, and the whole model against the textbook
    # official model (both propagations); the CUDA cases are the ones named [...-cuda]
    echo "== parity on CUDA: temporal core, sparse vs dense propagation, whole model vs textbook"
    log="$results/parity_cuda.log"
    if ! python -m pytest -q -p no:cacheprovider -rA tests/nn/test_temporal.py \
        tests/nn/test_graph.py tests/models/test_reference_parity.py >"$log" 2>&1; then
        tail -n 80 "$log"
        echo "gpu_check: PARITY ON CUDA FAILED (full log: $log)" >&2
        exit 1
    fi
    echo "gpu_check: parity passed, $(grep -c '^PASSED .*cuda' "$log" || true) CUDA cases passed; $(tail -n 1 "$log")"
fi
echo "== fit ETTh1 (${fit_args[*]})"
start=$(date +%s)
"${tsattn[@]}" fit --data ETTh1 --quiet --name gpu_check --output-dir "$results/runs" "${fit_args[@]}"
echo "fit wall seconds: $(( $(date +%s) - start ))"
run=$(ls -d "$results"/runs/gpu_check-* | tail -n 1)
echo "== fit metrics ($run/metrics.json)"
cat "$run/metrics.json"

if [[ "$cpu_only" == 1 ]]; then
    echo "== speed benchmark on CUDA: skipped (--cpu-only)"
else
    echo "== speed benchmark on CUDA (copy to experiments/results/bench_speed_cuda.md)"
    python experiments/bench_speed.py --device cuda --out "$results/bench_speed_cuda.md"
    echo "== dense vs sparse propagation on CUDA (experiments/results/bench_graph_cuda.md)"
    python experiments/bench_graph.py --device cuda --out "$results/bench_graph_cuda.md"
fi
echo "gpu_check: done, results in $results"
