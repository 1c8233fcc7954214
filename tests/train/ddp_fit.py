"""Fit the toy model with DDP on 2 CPU processes (gloo); each rank writes its results.

Run by ``test_ddp.py`` as ``python tests/train/ddp_fit.py OUT_DIR [NUM_NODES]``. With one
node (the default) Lightning relaunches this script for rank 1 (``devices=2``). With
``NUM_NODES=2`` each process is one "machine" with one device, started by the test the way
several machines are: by hand with ``MASTER_ADDR``/``MASTER_PORT``/``NODE_RANK``, or by
``torchrun --nnodes 2``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.train.conftest import TINY_MODEL
from tests.train.toy import ToyDataModule
from tsattn.train import TrainConfig, fit_datamodule


def main(out: Path, num_nodes: int = 1) -> None:
    torch.set_num_threads(1)
    cfg = TrainConfig(
        max_epochs=1, accelerator="cpu", devices=2 // num_nodes, num_nodes=num_nodes,
        strategy="ddp", progress_bar=False, patience=0,
    )  # fmt: skip
    result = fit_datamodule(ToyDataModule(), model=TINY_MODEL, train=cfg, run_dir=out / "run")
    rank = result.trainer.global_rank
    weights = b"".join(
        v.detach().cpu().numpy().tobytes() for v in result.module.state_dict().values()
    )
    payload = {
        "rank": rank,
        "world_size": result.trainer.world_size,
        "node_rank": result.trainer.node_rank,
        "environment": type(result.trainer.strategy.cluster_environment).__name__,
        "train_batches": result.trainer.num_training_batches,
        "metrics": {k: v for k, v in result.metrics.items() if k.startswith("test_")},
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
    }
    (out / f"rank{rank}.json").write_text(json.dumps(payload))


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 1)
