"""A fit from Python prints one progress bar and nothing else; warnings a user can act on show.

The fits run in a fresh interpreter, as in a user's script or notebook kernel: pytest's own
warning filters and output capture would otherwise hide what a user sees.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import lightning.pytorch as pl
import pytest

from tests.train.conftest import TINY_MODEL
from tests.train.toy import ToyDataModule
from tsattn.train import TrainConfig, fit_datamodule

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import sys
import numpy as np, pandas as pd
import tsattn

idx = pd.date_range("2024-01-01", periods=300, freq="h")
df = pd.DataFrame({"a": np.sin(np.arange(300) / 8), "b": np.cos(np.arange(300) / 8)}, index=idx)
options = dict(seq_len=24, max_steps=3, layers=1, conv_channels=4, residual_channels=4,
               skip_channels=8, end_channels=8, node_dim=2)
quiet = tsattn.forecast(df, 6, progress_bar=False, **options)
sys.stdout.write("QUIET-DONE\\n"); sys.stdout.flush()
sys.stderr.write("QUIET-DONE\\n"); sys.stderr.flush()
model = tsattn.Forecaster(horizon=6, test_fraction=0.2, **options).fit(df)
print("SHAPE", quiet.shape, model.predict().shape)
"""

NOISE = ("GPU available", "TPU available", "Tip", "litlogger", "Params", "Trainable",
         "LeafSpec", "Warning", "configured so", "max_steps", "Validation", "Testing",
         "test_mse", "DataLoader")  # fmt: skip


@pytest.fixture(scope="module")
def output() -> tuple[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout, proc.stderr


def test_fit_without_progress_bar_prints_nothing(output):
    stdout, stderr = output
    assert stdout.split("QUIET-DONE\n")[0] == ""
    assert stderr.split("QUIET-DONE\n")[0] == ""


def test_fit_prints_one_training_bar_and_no_lightning_noise(output):
    stdout, stderr = output
    fit_out = stdout.split("QUIET-DONE\n")[1]
    fit_err = stderr.split("QUIET-DONE\n")[1]
    assert "Epoch 0" in fit_out  # the one bar
    assert fit_err == ""
    for noise in NOISE:
        assert noise not in fit_out, noise
    bar, result = fit_out.rsplit("\n", 2)[:2]
    assert result == "SHAPE (6, 2) (6, 2)"
    assert "val_loss=" in bar  # validation reports inside the training bar


class _Warner(pl.Callback):
    """Raises, mid-training, a warning that the user could act on."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        warnings.warn("your data has a gap at row 12", UserWarning, stacklevel=1)


def test_warnings_a_user_can_act_on_still_show(tmp_path):
    cfg = TrainConfig(max_steps=1, accelerator="cpu", progress_bar=False, patience=0)
    with pytest.warns(UserWarning, match="gap at row 12"):
        fit_datamodule(
            ToyDataModule(), model=TINY_MODEL, train=cfg, run_dir=tmp_path, callbacks=[_Warner()]
        )


def test_quiet_lightning_hides_what_a_many_core_gpu_machine_adds(caplog):
    """A re-validation after the fit (``experiments/benchmark.py``) runs under the same filter:
    on a machine with many cores Lightning asks for loader workers, and on a GPU it logs the
    visible devices; neither is something a tsattn user can act on."""
    from lightning.fabric.utilities.warnings import PossibleUserWarning
    from lightning.pytorch.utilities import rank_zero_warn

    from tsattn.train.trainer import quiet_lightning

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")  # below quiet_lightning's filters, as in a script
        with quiet_lightning():
            rank_zero_warn(
                "The 'val_dataloader' does not have many workers which may be a bottleneck.",
                category=PossibleUserWarning,
            )
            with caplog.at_level(logging.INFO):
                logging.getLogger("lightning.pytorch.accelerators.cuda").info("LOCAL_RANK: 0")
            warnings.warn("your data has a gap at row 12", UserWarning, stacklevel=1)
    assert [str(w.message) for w in seen] == ["your data has a gap at row 12"]
    assert "LOCAL_RANK" not in caplog.text
