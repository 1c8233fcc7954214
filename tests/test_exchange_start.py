"""experiments/exchange_start.py: the candidate it starts is the committed one, and its errors
are taken in original units, as the single-step protocol's metrics are."""

import numpy as np
import pandas as pd
import pytest
import torch

from tests.experiment_scripts import load_experiment


@pytest.fixture(scope="module")
def script():
    return load_experiment("exchange_start")


def _walks(rows: int = 700) -> pd.DataFrame:
    """Three random walks on very different scales (maxabs scaling differs per variable)."""
    steps = np.random.default_rng(0).normal(0, 0.01, (rows, 3))
    values = (1 + steps.cumsum(0)) * np.array([1.0, 100.0, 0.01])
    return pd.DataFrame(values, index=pd.date_range("2020-01-01", periods=rows, freq="D"))


def test_the_candidate_keeps_the_papers_settings_and_adds_the_highway(script):
    paper = script.candidate_settings("mtgnn-paper")
    highway = script.candidate_settings("mtgnn-paper-ar")
    assert highway.pop("model.linear_shortcut") == "linear"
    assert highway.pop("model.revin") is True
    paper.pop("model.revin")
    assert highway == paper
    with pytest.raises(ValueError, match="no candidate 'nope'"):
        script.candidate_settings("nope")


def test_errors_are_in_original_units(script):
    frame = _walks()
    settings = {**script.candidate_settings("mtgnn-paper-ar"), "data.seq_len": 24,
                "model.layers": 2, "model.dilation_exponential": 1}  # fmt: skip
    dm, model = script.started(settings, 3, None, data=frame)
    mse, rse = script.errors(dm)  # persistence
    raw = frame.to_numpy()
    rows = dm.target_index("val")  # the validation targets' dates
    at = frame.index.get_indexer(rows)
    truth, last = raw[at], raw[at - 3]  # the row h=3 steps after the look-back's last row
    np.testing.assert_allclose(mse, ((last - truth) ** 2).mean(), rtol=1e-4)
    expected = np.sqrt(((last - truth) ** 2).sum()) / np.sqrt(((truth - truth.mean()) ** 2).sum())
    np.testing.assert_allclose(rse, expected, rtol=1e-4)
    # the untrained model forecasts with its fitted shortcut alone (the network's head is zero)
    assert torch.count_nonzero(model.head[-1].weight) == 0
    start_mse, _ = script.errors(dm, model)
    assert start_mse < 1.5 * mse  # a least-squares map of random walks is close to persistence
