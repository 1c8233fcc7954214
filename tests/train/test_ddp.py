"""DDP on CPU (gloo): two processes of one machine, and two "machines" (``num_nodes=2``)
started as a cluster starts them, both finishing with the same weights and metrics."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = str(ROOT / "tests/train/ddp_fit.py")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE",
                        "RANK", "GROUP_RANK")}  # fmt: skip
    return {**env, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), **extra}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _check_ranks(out: Path) -> list[dict]:
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert ranks[0]["train_batches"] == 8  # 128 windows / 2 ranks / batch 8
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]
    assert ranks[0]["metrics"] == ranks[1]["metrics"]
    assert set(ranks[0]["metrics"]) >= {"test_mse", "test_mae", "test_rse", "test_corr"}
    return ranks


def test_ddp_two_cpu_ranks_finish_and_agree(tmp_path):
    proc = subprocess.run(
        [sys.executable, SCRIPT, str(tmp_path)],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = _check_ranks(tmp_path)
    assert [r["node_rank"] for r in ranks] == [0, 0]


@pytest.mark.parametrize("launcher", ["lightning", "torchrun"])
def test_two_nodes_started_like_separate_machines_train_together(tmp_path, launcher):
    """One process per "machine": Lightning's own multi-node launch (the same command on each
    machine with MASTER_ADDR, MASTER_PORT, NODE_RANK) or torchrun's static rendezvous."""
    port = str(_free_port())
    procs = []
    for node in (0, 1):
        if launcher == "lightning":
            command = [sys.executable, SCRIPT, str(tmp_path), "2"]
            env = _env(MASTER_ADDR="127.0.0.1", MASTER_PORT=port, NODE_RANK=str(node))
        else:
            command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2",
                       "--nproc-per-node", "1", "--node-rank", str(node), "--master-addr",
                       "127.0.0.1", "--master-port", port, SCRIPT, str(tmp_path), "2"]  # fmt: skip
            env = _env()
        procs.append(subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        ))  # fmt: skip
    outputs = [proc.communicate(timeout=240) for proc in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-3000:]
    ranks = _check_ranks(tmp_path)
    assert [r["node_rank"] for r in ranks] == [0, 1]
    expected = "LightningEnvironment" if launcher == "lightning" else "TorchElasticEnvironment"
    assert {r["environment"] for r in ranks} == {expected}


def test_cli_fit_on_two_torchrun_nodes_writes_one_run_folder(tmp_path, data_dir):
    """The README's multi-machine command, on 2 simulated machines: rank 0 writes the run
    folder, rank 1 trains its share and writes nothing."""
    import tsattn

    tsattn.load_dataset(data_dir / "ETTh1.csv").iloc[:500].to_csv(tmp_path / "small.csv")
    port = str(_free_port())
    fit = ["fit", "--data", str(tmp_path / "small.csv"), "--horizon", "6", "--seq-len", "24",
           "--max-steps", "3", "--quiet", "--output-dir", str(tmp_path / "runs"),
           "--set", "model.layers=1", "--set", "model.conv_channels=4",
           "--set", "model.residual_channels=4", "--set", "model.skip_channels=8",
           "--set", "model.end_channels=8", "--set", "model.node_dim=4",
           "--set", "model.graph=true",
           "--set", "train.accelerator=cpu", "--set", "train.strategy=ddp",
           "--set", "train.devices=1", "--set", "train.num_nodes=2"]  # fmt: skip
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2",
                "--nproc-per-node", "1", "--master-addr", "127.0.0.1",
                "--master-port", port]  # fmt: skip
    procs = []
    for node in (0, 1):
        command = [*torchrun, "--node-rank", str(node), "-m", "tsattn.cli", *fit]
        procs.append(subprocess.Popen(
            command, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        ))  # fmt: skip
    outputs = [proc.communicate(timeout=240) for proc in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-3000:]
    (run,) = (tmp_path / "runs").iterdir()
    assert (run / "model.pt").is_file() and (run / "graph.csv").is_file()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test_mse"] > 0
    assert "run folder:" in outputs[0][0] and outputs[1][0] == ""
