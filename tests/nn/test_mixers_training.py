"""Every mixer, wired into MTGNN through ``MTGNNConfig(mixer=...)``, learns on real ETTh1 data,
and the trained mixer shapes the forecast (knocking it out changes it; the identity control
changes nothing)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from tests.nn.knockout import forecast_with_identity_mixers
from tsattn import MTGNN, MTGNNConfig, list_mixers

SEQ_LEN, HORIZON, STEPS = 24, 12, 30


@pytest.fixture(scope="module")
def etth1_windows(data_dir: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows from the first 1000 hours of ETTh1, standardised on that slice.

    Read with pandas directly: this test checks the mixers, not the data package.
    """
    frame = pd.read_csv(data_dir / "ETTh1.csv", index_col="date")
    values = torch.tensor(frame.iloc[:1000].to_numpy(), dtype=torch.float32)  # (1000, 7)
    values = (values - values.mean(0)) / values.std(0)
    span = SEQ_LEN + HORIZON
    windows = values.unfold(0, span, 6).transpose(1, 2)  # (W, span, 7), stride 6 hours
    return windows[:, :SEQ_LEN], windows[:, SEQ_LEN:]  # (W, L, 7), (W, H, 7)


@pytest.mark.data
@pytest.mark.parametrize("name", list_mixers())
def test_short_training_lowers_the_loss_and_the_trained_mixer_shapes_the_forecast(
    name: str, etth1_windows: tuple[torch.Tensor, torch.Tensor]
) -> None:
    x, y = etth1_windows
    config = MTGNNConfig(
        num_nodes=7,
        seq_len=SEQ_LEN,
        horizon=HORIZON,
        layers=2,
        conv_channels=8,
        residual_channels=8,
        skip_channels=16,
        end_channels=16,
        node_dim=8,
        top_k=4,
        dropout=0.0,
        mixer=name,
    )
    model = MTGNN(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    eval_x, eval_y = x[:64], y[:64]  # a fixed batch, not the noisy last training loss

    def eval_loss() -> float:
        model.eval()
        with torch.no_grad():
            loss = F.mse_loss(model(eval_x), eval_y).item()
        model.train()
        return loss

    before = eval_loss()
    generator = torch.Generator().manual_seed(0)
    for _ in range(STEPS):
        idx = torch.randint(0, x.size(0), (32,), generator=generator)
        optimizer.zero_grad()
        F.mse_loss(model(x[idx]), y[idx]).backward()
        optimizer.step()
    after = eval_loss()
    assert after < before, f"{name}: loss {before:.4f} -> {after:.4f}"
    model.eval()
    with torch.no_grad():
        forecast = model(eval_x)
    change = (forecast - forecast_with_identity_mixers(model, eval_x)).abs().max().item()
    if name == "identity":
        assert change == 0.0
    else:
        assert change > 1e-3, f"{name}: knocking the trained mixer out moves the forecast {change}"
