"""The arithmetic floor of ``experiments/bench_epoch.py`` (its epoch is too long for tests)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from tests.experiment_scripts import load_experiment
from tsattn.nn.temporal import GatedTemporalConv


@pytest.fixture(scope="module")
def bench():
    return load_experiment("bench_epoch")


def test_step_flops_count_forward_and_both_backward_products(bench):
    layer, x = nn.Linear(8, 4), torch.randn(16, 8, requires_grad=True)
    flops = bench.step_flops(lambda: layer(x).sum().backward())
    # forward x W^T, then the gradients of x and of W: three products of 16 x 8 x 4 multiply-adds
    assert flops == 3 * 2 * 16 * 8 * 4


def test_step_flops_see_the_hand_written_backward_of_the_gated_convolution(bench):
    """GatedTemporalConv calls the convolution's backward itself; the floor must count it."""
    batch, c_in, c_out, nodes, steps = 2, 4, 8, 3, 20
    conv = GatedTemporalConv(c_in, c_out, kernel_set=(2, 3, 6, 7))
    x = torch.randn(batch, c_in, nodes, steps, requires_grad=True)
    out_steps = steps - 6  # the largest kernel, 7, without dilation
    conv.split_taps = False
    flops = bench.step_flops(lambda: conv(x).sum().backward())
    one_pass = 2 * batch * nodes * out_steps * (2 * c_out) * c_in * 7  # filter and gate at once
    assert flops == 3 * one_pass  # forward, gradient of the input, gradient of the weight
    conv.split_taps = True  # kernels 2, 3 as one of size 3; 6, 7 as one of size 7
    flops = bench.step_flops(lambda: conv(x).sum().backward())
    # half the rows each; the size-3 group runs over the whole input: 4 more output steps
    one_pass = 2 * batch * nodes * c_out * c_in * (3 * (out_steps + 4) + 7 * out_steps)
    assert flops == 3 * one_pass


def test_matmul_rate_is_a_rate_in_flop_per_second(bench):
    rate = bench.matmul_rate(size=64, repeats=2)
    assert 1e6 < rate < 1e15  # between a megaflop and a petaflop per second


def test_recipe_rows_time_the_shared_map_and_the_maps_per_block_the_fit_chooses_between(bench):
    """The recipe trains whichever of the two maps validates lower, so both are timed."""
    data = SimpleNamespace(num_nodes=7, freq="h")
    shared, loss, lr = bench.build("recipe", data)
    per_phase, loss_phase, lr_phase = bench.build("recipe-phase", data)
    assert shared.config.shortcut_per_phase is False
    assert per_phase.config.shortcut_per_phase is True
    assert per_phase.config.cycle_length == shared.config.cycle_length == 24
    assert (loss, lr) == (loss_phase, lr_phase)
    n_params = [sum(p.numel() for p in m.parameters()) for m in (shared, per_phase)]
    assert n_params[1] > n_params[0]  # one map per hour of the day instead of one
    default, *_ = bench.build("default", data)
    assert default.config.linear_shortcut == "none"
