from __future__ import annotations

import pytest
import torch

from tsattn.nn.revin import RevIN


def test_revin_normalises_per_sample_and_variable():
    x = torch.randn(4, 50, 3) * torch.tensor([1.0, 10.0, 0.1]) + torch.tensor([5.0, -3.0, 0.0])
    z, stats = RevIN(3, affine=False).normalize(x)
    torch.testing.assert_close(z.mean(dim=1), torch.zeros(4, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.std(dim=1, unbiased=False), torch.ones(4, 3), atol=1e-3, rtol=0)
    torch.testing.assert_close(stats.mean, x.mean(dim=1, keepdim=True))
    assert stats.std.shape == (4, 1, 3)


@pytest.mark.parametrize("affine", [True, False])
def test_revin_round_trip_restores_units(affine):
    revin = RevIN(2, affine=affine)
    if affine:
        with torch.no_grad():
            revin.weight.copy_(torch.tensor([2.0, 0.5]))
            revin.bias.copy_(torch.tensor([1.0, -1.0]))
    x = torch.randn(3, 20, 2) * 7 + 4
    torch.testing.assert_close(revin.denormalize(*revin.normalize(x)), x, atol=1e-4, rtol=1e-4)


def test_revin_constant_series_stays_finite():
    revin = RevIN(1)
    z, stats = revin.normalize(torch.full((2, 10, 1), 3.0))
    assert torch.isfinite(z).all()
    torch.testing.assert_close(revin.denormalize(z, stats), torch.full((2, 10, 1), 3.0))


def test_revin_denormalises_with_the_statistics_it_is_given_not_the_last_call():
    revin = RevIN(2)
    a, b = torch.randn(1, 30, 2) + 100, torch.randn(1, 30, 2) * 50 - 7
    za, stats_a = revin.normalize(a)
    revin.normalize(b)  # a later call on other data must not leak into a's round trip
    torch.testing.assert_close(revin.denormalize(za, stats_a), a, atol=1e-4, rtol=1e-4)
    assert not any(isinstance(v, torch.Tensor) for v in vars(revin).values())
