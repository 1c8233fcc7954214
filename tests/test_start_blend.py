"""The arithmetic of ``experiments/start_blend.py`` (its fits are too long for tests: the
forecasts here are given)."""

from __future__ import annotations

import pytest
import torch

from tests.experiment_scripts import load_experiment


@pytest.fixture(scope="module")
def script():
    return load_experiment("start_blend")


def test_the_weight_is_read_off_the_first_half_and_scored_on_the_later_one(script):
    targets = torch.zeros(20, 3, 2)
    start = torch.ones_like(targets)
    trained = torch.zeros_like(targets)
    trained[10:] = 3.0  # exact on the first half, three times the start's error on the later
    scores = script.blend_scores(start, trained, targets, horizon=3)
    assert scores["alpha"] == 1.0  # the first half says: the trained model alone
    assert scores["start"] == pytest.approx(1.0)
    assert scores["trained"] == pytest.approx(9.0)
    assert scores["half"] == pytest.approx(4.0)
    assert scores["blend"] == scores["trained"]  # what the first half chose, scored later


def test_an_interior_weight_when_the_errors_cancel(script):
    targets = torch.zeros(30, 2, 1)
    start, trained = targets - 1.0, targets + 1.0  # opposite errors: the equal blend is exact
    scores = script.blend_scores(start, trained, targets, horizon=2)
    assert scores["alpha"] == 0.5
    assert scores["blend"] == pytest.approx(0.0)
    assert scores["start"] == scores["trained"] == pytest.approx(1.0)
