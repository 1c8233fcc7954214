"""Checkpoints load no code, and nothing read from a run folder points outside it."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch

from tests.train.conftest import TINY_MODEL
from tests.train.toy import ToyDataModule
from tsattn import Forecaster
from tsattn.train import TrainConfig, fit_datamodule
from tsattn.train.checkpoint import check_resume_checkpoint, load_checkpoint, run_file


class MakesFolder:
    """Unpickling this calls ``os.mkdir(path)``: a stand-in for any code a tampered file runs."""

    def __init__(self, path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def _fit(run_dir, **kwargs):
    # keep_start off: the resumed model must be the saved one, not a start that validated better
    cfg = TrainConfig(max_epochs=1, progress_bar=False, checkpoint_every_n_steps=4, patience=0,
                      keep_start=False)  # fmt: skip
    return fit_datamodule(ToyDataModule(), model=TINY_MODEL, train=cfg, run_dir=run_dir,
                          test=False, **kwargs)  # fmt: skip


@pytest.fixture
def trained_run(tmp_path):
    run_dir = tmp_path / "run"
    _fit(run_dir)
    return run_dir


def _model_checkpoint_state(checkpoint: dict) -> dict:
    (key,) = [k for k in checkpoint["callbacks"] if "'monitor': 'val_loss'" in k and "Model" in k]
    return checkpoint["callbacks"][key]


def test_fit_checkpoints_load_with_torch_weights_only(trained_run):
    for name in ("best.ckpt", "last.ckpt"):
        checkpoint = torch.load(trained_run / "checkpoints" / name, weights_only=True)
        assert checkpoint["state_dict"] and isinstance(checkpoint["hyper_parameters"], dict)
        assert check_resume_checkpoint(trained_run / "checkpoints" / name, trained_run)


def test_untampered_run_resumes_with_the_saved_weights(trained_run):
    saved = torch.load(trained_run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    result = _fit(trained_run, ckpt_path="last")
    assert result.trainer.global_step == 16  # one epoch, already finished: nothing redone
    weights = result.module.state_dict()
    assert all(torch.equal(weights[k], saved[k]) for k in saved)


def test_resume_from_checkpoint_that_would_run_code_is_refused(trained_run, tmp_path):
    marker = tmp_path / "code-ran"
    last = trained_run / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, weights_only=True)
    checkpoint["hyper_parameters"]["extra"] = MakesFolder(marker)
    torch.save(checkpoint, last)
    with pytest.raises(ValueError, match=r"last\.ckpt was refused: loading it would run code"):
        _fit(trained_run, ckpt_path="last")
    assert not marker.exists()
    torch.load(last, weights_only=False)  # the payload is live: a pickle load runs it
    assert marker.is_dir()


def test_resume_checkpoint_naming_a_best_file_outside_the_run_is_refused(trained_run, tmp_path):
    elsewhere = tmp_path / "elsewhere.ckpt"
    shutil.copy(trained_run / "checkpoints" / "best.ckpt", elsewhere)
    last = trained_run / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, weights_only=True)
    _model_checkpoint_state(checkpoint)["best_model_path"] = str(elsewhere)
    torch.save(checkpoint, last)
    with pytest.raises(ValueError, match=r"elsewhere\.ckpt resolves to .* outside the run folder"):
        _fit(trained_run, ckpt_path="last")


def test_resume_in_a_moved_run_folder_is_refused(trained_run, tmp_path):
    moved = shutil.move(trained_run, tmp_path / "moved")
    with pytest.raises(ValueError, match=r"checkpoints resolves to .*/run/checkpoints, outside"):
        _fit(moved, ckpt_path="last")


def test_resume_checkpoint_linked_from_outside_the_run_is_refused(trained_run, tmp_path):
    outside = tmp_path / "outside.ckpt"
    last = trained_run / "checkpoints" / "last.ckpt"
    shutil.move(last, outside)
    last.symlink_to(outside)
    with pytest.raises(
        ValueError, match=r"last\.ckpt resolves to .*outside\.ckpt, outside the run"
    ):
        _fit(trained_run, ckpt_path="last")


def test_run_file_accepts_inside_and_refuses_parent_escape(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    assert run_file(run / "checkpoints" / "best.ckpt", run) == (run / "checkpoints/best.ckpt")
    with pytest.raises(ValueError, match="outside the run folder"):
        run_file(run / "checkpoints" / ".." / ".." / "best.ckpt", run)


def test_forecaster_load_refuses_a_model_file_that_would_run_code(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "model.pt"
    torch.save({"format": "tsattn-forecaster", "options": MakesFolder(marker)}, path)
    with pytest.raises(
        ValueError, match=r"model\.pt was refused: loading it would run code .*GLOBAL .*mkdir"
    ):
        Forecaster.load(path)
    assert not marker.exists()


def test_numpy_scalar_labels_load_through_the_allow_list(tmp_path):
    labels = {"index_name": np.int64(5), "column": np.str_("OT"), "freq": np.float32(0.5)}
    torch.save(labels, tmp_path / "labels.pt")
    with pytest.raises(Exception, match="weights_only"):
        torch.load(tmp_path / "labels.pt", weights_only=True)  # torch alone refuses them
    assert load_checkpoint(tmp_path / "labels.pt") == labels
