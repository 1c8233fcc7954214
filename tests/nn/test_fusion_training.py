"""A short training run on real data lowers the loss with every fusion and two mixers, and the
trained model still draws on every pyramid level and on its mixer."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

import tsattn
from tests.nn.knockout import forecast_with_identity_mixers, forecast_with_level_zeroed
from tsattn import MTGNN, MTGNNConfig

SEQ_LEN, HORIZON, STEPS = 24, 12, 30


def mixers_to_train() -> list:
    second = "se"
    reason = f"mixer {second!r} is not registered yet (list_mixers() = {tsattn.list_mixers()})"
    skip_second = pytest.mark.skipif(second not in tsattn.list_mixers(), reason=reason)
    return ["identity", pytest.param(second, marks=skip_second)]


@pytest.fixture(scope="module")
def etth1_windows(data_dir) -> tuple[torch.Tensor, torch.Tensor]:
    frame = pd.read_csv(data_dir / "ETTh1.csv", index_col="date", nrows=1200)
    values = torch.tensor(frame.to_numpy(), dtype=torch.float32)  # (T, N)
    train = values[:960]
    values = (values - train.mean(0)) / train.std(0)  # standardized on the train part
    windows = values.unfold(0, SEQ_LEN + HORIZON, 12)  # (T, N) -> (W, N, L + H)
    windows = windows.permute(0, 2, 1)  # (W, N, L + H) -> (W, L + H, N)
    return windows[:, :SEQ_LEN], windows[:, SEQ_LEN:]  # (W, L, N), (W, H, N)


@pytest.mark.data
@pytest.mark.parametrize("mixer", mixers_to_train())
@pytest.mark.parametrize("fusion", tsattn.list_fusions())
def test_short_training_lowers_the_loss_and_every_level_and_the_mixer_shape_the_forecast(
    etth1_windows, fusion, mixer
):
    x, y = etth1_windows
    cfg = MTGNNConfig(
        num_nodes=x.size(2), seq_len=SEQ_LEN, horizon=HORIZON, layers=3, conv_channels=8,
        residual_channels=8, skip_channels=16, end_channels=16, node_dim=4, top_k=3,
        dropout=0.0, mixer=mixer, fusion=fusion,
    )  # fmt: skip
    model = MTGNN(cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    fixed_x, fixed_y = x[:32], y[:32]
    generator = torch.Generator().manual_seed(0)

    def fixed_loss() -> float:
        model.eval()
        with torch.no_grad():
            return F.mse_loss(model(fixed_x), fixed_y).item()

    before = fixed_loss()
    model.train()
    for _ in range(STEPS):
        idx = torch.randint(0, x.size(0), (16,), generator=generator)
        loss = F.mse_loss(model(x[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = fixed_loss()
    assert after < 0.95 * before, f"{fusion}/{mixer}: loss {before:.4f} -> {after:.4f}"
    with torch.no_grad():
        forecast = model(fixed_x)
    for level in range(len(model.fusion.lengths)):
        change = (forecast - forecast_with_level_zeroed(model, fixed_x, level)).abs().max()
        assert change > 1e-3, f"{fusion}/{mixer}: level {level} moves the forecast by {change}"
    change = (forecast - forecast_with_identity_mixers(model, fixed_x)).abs().max()
    assert change == 0 if mixer == "identity" else change > 1e-3, f"{mixer}: {change}"
