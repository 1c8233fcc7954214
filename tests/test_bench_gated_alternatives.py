"""The forms timed by ``experiments/bench_gated_alternatives.py`` compute the gated layer."""

from __future__ import annotations

import pytest
import torch

from tests.experiment_scripts import load_experiment
from tests.nn.reference import textbook_gated_temporal_conv
from tsattn.nn.temporal import GatedTemporalConv


@pytest.fixture(scope="module")
def alt():
    return load_experiment("bench_gated_alternatives")


@pytest.mark.parametrize("form", ["fft_gated"])  # the tap-set split: tests/nn/test_temporal.py
@pytest.mark.parametrize("kernel_set,dilation", [((2, 3, 6, 7), 1), ((2, 3, 6, 7), 2), ((3, 5), 3)])
def test_alternative_forms_match_the_textbook(alt, form, kernel_set, dilation):
    torch.manual_seed(0)
    module = GatedTemporalConv(5, 4 * len(kernel_set), kernel_set, dilation).double()
    x = torch.randn(2, 5, 3, 40, dtype=torch.float64, requires_grad=True)
    params = [x, *module.parameters()]
    out = getattr(alt, form)(module, x)
    expected = textbook_gated_temporal_conv(module, x)
    torch.testing.assert_close(out, expected)
    grad_y = torch.randn_like(expected)
    for got, want in zip(
        torch.autograd.grad(out, params, grad_y),
        torch.autograd.grad(expected, params, grad_y),
        strict=True,
    ):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("steps,length", [(96, 96), (187, 192), (100, 108), (1, 1), (7, 8)])
def test_fast_fft_length_is_the_smallest_2a3b_not_below(alt, steps, length):
    assert alt._fast_length(steps) == length


def test_quick_run_writes_the_three_tables(alt, tmp_path):
    out = tmp_path / "alt.md"
    alt.main(["--quick", "--repeats", "1", "--out", str(out)])
    text = out.read_text()
    for title in ("Passes of the dense fused convolution", "Gated layer", "Weight gradient"):
        assert f"## {title}" in text
    for form in ("textbook", "fused", "tap-set split", "fft", "per-tap products"):
        assert f"| {form} |" in text
