"""The arithmetic and resumption of ``experiments/seed_ensemble.py`` (its members are trained
models, too long for tests: the members here are given forecasts)."""

from __future__ import annotations

import json

import pytest
import torch

from tests.experiment_scripts import load_experiment


@pytest.fixture(scope="module")
def script():
    return load_experiment("seed_ensemble")


def fake_members(seeds: int, shape=(5, 4, 3)) -> list[dict]:
    generator = torch.Generator().manual_seed(0)
    target = torch.randn(shape, generator=generator)
    start = target + torch.randn(shape, generator=generator)
    return [
        {"best": target + 0.5 * torch.randn(shape, generator=generator), "start": start,
         "y": target, "epochs": 3 + seed}
        for seed in range(seeds)
    ]  # fmt: skip


def test_ensemble_gains_exactly_the_spread_of_the_members(script, tmp_path, monkeypatch):
    members = fake_members(3)
    monkeypatch.setattr(script, "member", lambda dataset, horizon, seed, runs: members[seed])
    row = script.cell("toy", 4, 3, tmp_path)
    mean_forecast = torch.stack([m["best"] for m in members]).mean(0)
    spread = sum(float(((m["best"] - mean_forecast) ** 2).mean()) for m in members) / 3
    assert row["ensemble"] == pytest.approx(sum(row["members"]) / 3 - spread, rel=1e-6)
    assert row["ensemble"] < min(row["members"])  # independent errors: the mean beats each
    blend = (members[1]["best"] + members[1]["start"]) / 2
    assert row["start_best"][1] == pytest.approx(float(((blend - members[1]["y"]) ** 2).mean()))
    assert row["epochs"] == [3, 4, 5]


def test_a_finished_cell_is_read_back_not_trained_again(script, tmp_path, monkeypatch):
    members = fake_members(2)
    monkeypatch.setattr(script, "member", lambda dataset, horizon, seed, runs: members[seed])
    first = script.cell("toy", 4, 2, tmp_path)
    saved = json.loads((tmp_path / "cells" / "toy-h4-seeds2.json").read_text())
    assert saved == first

    def never(*args):
        raise AssertionError("a finished cell trained again")

    monkeypatch.setattr(script, "member", never)
    assert script.cell("toy", 4, 2, tmp_path) == first


def test_table_row_puts_the_ensemble_beside_the_members_mean(script):
    row = {"dataset": "toy", "horizon": 4, "members": [1.0, 3.0], "ensemble": 1.8,
           "start": 2.5, "start_best": [1.0, 2.0]}  # fmt: skip
    cells = script.table_row(row)
    assert cells[:6] == ["toy", "4", "1.0000 / 3.0000", "2.0000", "1.8000", "0.9000"]
    assert cells[6:] == ["2.5000", "1.5000", "0.7500"]


def test_an_ensemble_of_one_is_refused(script):
    with pytest.raises(SystemExit):
        script.main(["--seeds", "1"])


def test_the_table_holds_every_finished_cell_not_only_this_runs(script, tmp_path, monkeypatch):
    members = fake_members(2)
    monkeypatch.setattr(script, "member", lambda dataset, horizon, seed, runs: members[seed])
    for dataset, horizon in (("b", 720), ("a", 720), ("a", 96)):  # e.g. three separate runs
        script.cell(dataset, horizon, 2, tmp_path)
    cells = script.finished_cells(tmp_path)
    assert [(c["dataset"], c["horizon"]) for c in cells] == [("a", 96), ("a", 720), ("b", 720)]


def test_start_model_is_the_closed_form_start_the_fit_saved(script, tmp_path):
    from tests.train.conftest import TINY_MODEL
    from tests.train.toy import ToyDataModule
    from tsattn.train import RunConfig, TrainConfig, fit_config

    # all validation windows together (one part): an epoch of this toy fit beats the start there
    train = TrainConfig(max_steps=3, progress_bar=False, patience=0, keep_start_parts=1)
    result = fit_config(RunConfig(model=TINY_MODEL, train=train), ToyDataModule(), tmp_path)
    trained = {k: v.clone() for k, v in result.module.model.state_dict().items()}
    start = script.start_model(result)
    assert start is not result.module.model
    # beside the closed-form shortcut the deep path starts at zero, the shortcut at its fit
    assert start.head[-1].weight.abs().max() == 0
    assert result.module.model.head[-1].weight.abs().max() > 0  # an epoch beat it: trained
    assert start.shortcut.linear.weight.abs().max() > 0
    for key, value in result.module.model.state_dict().items():  # the fitted model untouched
        torch.testing.assert_close(value, trained[key])
