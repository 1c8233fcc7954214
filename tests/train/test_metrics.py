"""MSE/MAE/RSE/CORR against a direct numpy computation of the PROTOCOLS.md formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tsattn.train.metrics import MetricAccumulator


def reference(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    p, y = pred.reshape(-1, pred.shape[-1]), true.reshape(-1, true.shape[-1])
    rse = np.sqrt(((p - y) ** 2).sum()) / np.sqrt(((y - y.mean()) ** 2).sum())
    sp, sy = p.std(0), y.std(0)
    corr = ((p - p.mean(0)) * (y - y.mean(0))).mean(0) / (sp * sy)
    return {
        "mse": float(((p - y) ** 2).mean()),
        "mae": float(np.abs(p - y).mean()),
        "rse": float(rse),
        "corr": float(corr[sy != 0].mean()),
    }


@pytest.fixture
def pair() -> tuple[np.ndarray, np.ndarray]:
    g = np.random.default_rng(1)
    true = 1000 + 50 * g.normal(size=(37, 5, 4)) + np.arange(4) * 300  # offsets, kW-like
    pred = true + g.normal(scale=30, size=true.shape)
    return pred, true


def test_metrics_match_numpy_formulas(pair):
    pred, true = pair
    acc = MetricAccumulator()
    acc.update(torch.tensor(pred), torch.tensor(true))
    got, want = acc.compute(), reference(pred, true)
    for name in want:
        assert got[name] == pytest.approx(want[name], rel=1e-9), name


def test_accumulating_batches_equals_whole_set(pair):
    pred, true = pair
    whole = MetricAccumulator()
    whole.update(torch.tensor(pred), torch.tensor(true))
    batched = MetricAccumulator()
    for lo in range(0, 37, 8):  # uneven batches, last one has 5 windows
        batched.update(torch.tensor(pred[lo : lo + 8]), torch.tensor(true[lo : lo + 8]))
    a, b = whole.compute(), batched.compute()
    for name in a:
        assert b[name] == pytest.approx(a[name], rel=1e-10), name
    # an average of batch MSEs differs from the exact value with an uneven last batch
    batch_means = [((pred[lo : lo + 8] - true[lo : lo + 8]) ** 2).mean() for lo in range(0, 37, 8)]
    assert not math.isclose(float(np.mean(batch_means)), a["mse"], rel_tol=1e-6)


def test_corr_leaves_out_variables_with_constant_truth(pair):
    pred, true = pair
    true = true.copy()
    true[..., 2] = 7.0
    acc = MetricAccumulator()
    acc.update(torch.tensor(pred), torch.tensor(true))
    keep = [0, 1, 3]
    want = reference(pred[..., keep], true[..., keep])["corr"]
    assert acc.compute()["corr"] == pytest.approx(want, rel=1e-9)


def test_empty_accumulator_gives_nan_and_shapes_must_match():
    assert all(math.isnan(v) for v in MetricAccumulator().compute().values())
    with pytest.raises(ValueError, match="pred has shape"):
        MetricAccumulator().update(torch.zeros(2, 3), torch.zeros(2, 4))
