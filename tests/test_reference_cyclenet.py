"""experiments/reference_cyclenet.py: the model it trains is CycleNet/Linear's forward pass."""

import numpy as np
import pandas as pd
import pytest
import torch

from tests.experiment_scripts import load_experiment


@pytest.fixture(scope="module")
def script():
    return load_experiment("reference_cyclenet")


def test_cycle_linear_is_cyclenets_forward(script):
    torch.manual_seed(0)
    model = script.CycleLinear(seq_len=12, horizon=5, num_nodes=3, cycle_length=4)
    with torch.no_grad():
        model.cycle.values.normal_()
    x, step = torch.randn(2, 12, 3), torch.tensor([1, 6])
    mean = x.mean(1, keepdim=True)
    std = torch.sqrt(x.var(1, keepdim=True, unbiased=False) + 1e-5)
    q = model.cycle.values  # (W, N)
    past = q[(step[:, None] + torch.arange(12)) % 4]  # (B, L, N)
    future = q[(step[:, None] + 12 + torch.arange(5)) % 4]  # (B, H, N)
    w, b = model.linear.linear.weight, model.linear.linear.bias  # (H, L), (H,)
    inner = torch.einsum("hl,bln->bhn", w, (x - mean) / std - past) + b[:, None]
    expected = (inner + future) * std + mean
    torch.testing.assert_close(model(x, None, step), expected, atol=1e-5, rtol=1e-5)


def test_train_returns_the_scores_of_its_best_validation_epoch(script):
    hours = np.arange(1500)
    noise = np.random.default_rng(0).normal(0, 0.3, (1500, 2))
    frame = pd.DataFrame(np.sin(2 * np.pi * hours / 24)[:, None] + noise,
                         index=pd.date_range("2024-01-01", periods=1500, freq="h"))  # fmt: skip
    result = script.train(frame, 12, seed=0, root=None)
    assert 1 <= result["epochs"] <= 30
    assert result["test_windows"] > 0
    # a daily sine under noise of 0.3: far better than the variance of the scaled series
    assert 0 < result["val_mse"] < 0.5 and 0 < result["test_mse"] < 0.5
