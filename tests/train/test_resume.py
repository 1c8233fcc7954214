"""Killing a fit mid-epoch and resuming from last.ckpt ends exactly like an uninterrupted fit."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from tests.train.conftest import TINY_MODEL
from tests.train.toy import ToyDataModule
from tsattn.train import EpochShuffleSampler, TrainConfig, fit_datamodule

KILL_AT = 23  # 16 batches per epoch: inside the second epoch, 2 steps after a checkpoint


class KilledError(RuntimeError):
    pass


class KillAt(pl.Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == KILL_AT:
            raise KilledError(f"killed at step {trainer.global_step}")


def _fit(run_dir, checks=1, ema=0.0, parts=1, **kwargs):
    cfg = TrainConfig(max_epochs=3, progress_bar=False, checkpoint_every_n_steps=3, patience=0,
                      val_checks_per_epoch=checks, ema_decay=ema,
                      keep_start_parts=parts)  # fmt: skip
    return fit_datamodule(ToyDataModule(), model={**TINY_MODEL, "dropout": 0.3}, train=cfg,
                          run_dir=run_dir, test=False, **kwargs)  # fmt: skip


# checks=2: validations inside the epochs too; ema: the weight average resumes with the run;
# parts=3: the start's score on each third of the validation windows resumes with it too
@pytest.mark.parametrize(("checks", "ema", "parts"), [(1, 0.0, 1), (2, 0.0, 1), (1, 0.9, 1),
                                                      (1, 0.0, 3)])  # fmt: skip
def test_resume_mid_epoch_matches_uninterrupted_run(tmp_path, checks, ema, parts):
    straight = _fit(tmp_path / "straight", checks, ema, parts)
    with pytest.raises(KilledError):
        _fit(tmp_path / "killed", checks, ema, parts, callbacks=[KillAt()])
    last = torch.load(tmp_path / "killed/checkpoints/last.ckpt", weights_only=True)
    assert last["global_step"] == 21  # the resume really starts mid-epoch
    resumed = _fit(tmp_path / "killed", checks, ema, parts, ckpt_path="last")
    assert resumed.trainer.global_step == straight.trainer.global_step == 48
    a, b = straight.module.state_dict(), resumed.module.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.metrics["val_loss"] == straight.metrics["val_loss"]
    # The start's validation score (keep_start) travels in the checkpoint.
    assert resumed.metrics["start_val_loss"] == straight.metrics["start_val_loss"]
    by_part = {k: v for k, v in straight.metrics.items() if "_part" in k}
    assert len(by_part) == (6 if parts == 3 else 0)  # trained and start, each third
    assert by_part == {k: v for k, v in resumed.metrics.items() if "_part" in k}
    assert Path(resumed.best_checkpoint).name == Path(straight.best_checkpoint).name


def test_sampler_order_is_a_function_of_seed_and_epoch():
    sampler = EpochShuffleSampler(50, seed=3)
    sampler.set_epoch(2)
    order = list(sampler)
    assert sorted(order) == list(range(50))
    assert list(EpochShuffleSampler(50, seed=3).__iter__()) != order  # epoch 0 differs
    again = EpochShuffleSampler(50, seed=3)
    again.set_epoch(2)
    again.skip = 20
    assert list(again) == order[20:]
    assert list(again) == order  # skip applies once
