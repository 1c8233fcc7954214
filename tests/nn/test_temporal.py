from __future__ import annotations

import pytest
import torch

from tests.nn.reference import textbook_dilated_inception, textbook_gated_temporal_conv
from tsattn.nn.temporal import (
    MIN_TAP_SAVING,
    DilatedInception,
    GatedTemporalConv,
    receptive_field,
    tap_groups,
    tap_saving,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture
def no_tf32():
    """Full FP32 convolutions on CUDA, so parity holds to 1e-5 there too."""
    before = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32 = before


@pytest.mark.parametrize(
    ("kernel_set", "layers", "exponent", "expected"),
    [
        ((2, 3, 6, 7), 5, 2, 187),
        ((2, 3, 6, 7), 3, 1, 19),
        ((2, 3, 6, 7), 1, 1, 7),
        ((3,), 4, 2, 31),
        ((2, 5), 2, 3, 17),
    ],
)
def test_receptive_field_matches_mtgnn(kernel_set, layers, exponent, expected):
    assert receptive_field(kernel_set, layers, exponent) == expected


@pytest.mark.parametrize(
    ("kernel_set", "dilation", "c_out"),
    [
        ((2, 3, 6, 7), 1, 16),
        ((2, 3, 6, 7), 2, 32),
        ((2, 3, 6, 7), 4, 8),
        ((3, 5), 3, 6),
        ((1,), 1, 5),
        ((7, 2, 4), 2, 9),  # unsorted kernel set: branches keep the given order
    ],
)
def test_fused_gated_conv_equals_textbook_form(kernel_set, dilation, c_out):
    module = GatedTemporalConv(5, c_out, kernel_set, dilation)
    x = torch.randn(3, 5, 4, 40)
    expected = textbook_gated_temporal_conv(module, x)
    actual = module(x)
    assert actual.shape == expected.shape
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("kernel_set", "dilation", "c_out"),
    [((2, 3, 6, 7), 2, 8), ((2, 3, 6, 7), 1, 16), ((3, 5), 3, 6), ((1,), 1, 5), ((7, 2, 4), 2, 9)],
)
@pytest.mark.parametrize("device", DEVICES)
def test_fused_gradients_equal_textbook_gradients(kernel_set, dilation, c_out, device, no_tf32):
    module = GatedTemporalConv(4, c_out, kernel_set, dilation=dilation).to(device)
    x = torch.randn(2, 4, 3, 30, device=device, requires_grad=True)
    module(x).square().sum().backward()
    fused = [p.grad.clone() for p in module.parameters()] + [x.grad.clone()]
    module.zero_grad()
    x.grad = None
    textbook_gated_temporal_conv(module, x).square().sum().backward()
    textbook = [p.grad for p in module.parameters()] + [x.grad]
    for got, want in zip(fused, textbook, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("kernel_set", "groups", "saving"),
    [
        ((2, 3, 6, 7), ((0, 1), (2, 3)), 8 / 28),
        ((7, 2, 4), ((0,), (1, 2)), 6 / 21),  # runs of consecutive branches, given order
        ((3, 5), ((0,), (1,)), 2 / 10),
        ((1,), ((0,),), 0.0),
        ((2, 2, 2), ((0, 1, 2),), 0.0),  # nothing to save: one group
    ],
)
def test_tap_groups_minimise_the_zero_taps(kernel_set, groups, saving):
    assert tap_groups(kernel_set) == groups
    assert tap_saving(kernel_set) == pytest.approx(saving)


def test_split_taps_choice_automatic_and_overridable():
    module = GatedTemporalConv(4, 8, (2, 3, 6, 7))
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert tap_saving((2, 3, 6, 7)) >= MIN_TAP_SAVING
    assert module.tap_groups(cpu) == ((0, 1), (2, 3))
    assert module.tap_groups(cuda) == ((0, 1, 2, 3),)  # measured on CPUs only
    assert GatedTemporalConv(4, 6, (3, 5)).tap_groups(cpu) == ((0, 1),)  # saves 20%
    module.split_taps = False
    assert module.tap_groups(cpu) == ((0, 1, 2, 3),)
    module.split_taps = True
    assert module.tap_groups(cuda) == ((0, 1), (2, 3))


@pytest.mark.parametrize(
    ("kernel_set", "dilation", "c_out"),
    [((2, 3, 6, 7), 1, 8), ((2, 3, 6, 7), 4, 16), ((7, 2, 4), 2, 9), ((3, 5), 3, 6)],
)
def test_split_and_one_convolution_agree(kernel_set, dilation, c_out):
    torch.manual_seed(0)
    module = GatedTemporalConv(5, c_out, kernel_set, dilation)
    x = torch.randn(2, 5, 3, 40, requires_grad=True)
    results = []
    for split in (False, True):
        module.split_taps = split
        out = module(x)
        grads = torch.autograd.grad(out.square().sum(), [x, *module.parameters()])
        results.append((out, grads))
    (one, one_grads), (split, split_grads) = results
    torch.testing.assert_close(split, one, atol=1e-6, rtol=0)
    for got, want in zip(split_grads, one_grads, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("split", [False, True])
def test_both_forms_pass_gradcheck(split):
    torch.manual_seed(0)
    module = GatedTemporalConv(3, 8, (2, 3, 6, 7), dilation=2).double()
    module.split_taps = split
    x = torch.randn(2, 3, 2, 16, dtype=torch.float64, requires_grad=True)
    params = tuple(module.parameters())

    def run(x, *values):
        return torch.func.functional_call(
            module, dict(zip(dict(module.named_parameters()), values, strict=True)), (x,)
        )

    assert torch.autograd.gradcheck(run, (x, *params))


def test_gradients_only_for_what_requires_them():
    module = GatedTemporalConv(4, 8)
    for conv in module.gate.branches:
        conv.requires_grad_(False)
    x = torch.randn(2, 4, 3, 20)  # no grad for the input
    module(x).sum().backward()
    assert all(conv.weight.grad is None for conv in module.gate.branches)
    assert all(conv.weight.grad is not None for conv in module.filter.branches)
    expected = torch.autograd.grad(
        textbook_gated_temporal_conv(module, x).sum(),
        [conv.weight for conv in module.filter.branches],
    )
    for conv, want in zip(module.filter.branches, expected, strict=True):
        torch.testing.assert_close(conv.weight.grad, want, atol=1e-5, rtol=1e-5)


def test_autocast_takes_the_composed_path():
    module = GatedTemporalConv(4, 8)
    x = torch.randn(2, 4, 3, 20, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = module(x)
    assert out.dtype == torch.bfloat16
    out.float().sum().backward()
    assert x.grad is not None and x.grad.dtype == torch.float32
    torch.testing.assert_close(out.float(), module(x), atol=2e-2, rtol=0)


def test_double_backward_raises_clearly_and_works_when_composed():
    module = GatedTemporalConv(4, 8)
    x = torch.randn(2, 4, 3, 20, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"cannot be differentiated again.*composed = True"):
        torch.autograd.grad(module(x).square().sum(), x, create_graph=True)
    module.composed = True
    (grad,) = torch.autograd.grad(module(x).square().sum(), x, create_graph=True)
    (second,) = torch.autograd.grad(grad.square().sum(), x)
    assert second.shape == x.shape and torch.isfinite(second).all() and second.abs().sum() > 0


def test_composed_path_equals_hand_written_path():
    module = GatedTemporalConv(4, 8, dilation=2)
    x = torch.randn(2, 4, 3, 30, requires_grad=True)
    fast = module(x)
    (grad_fast,) = torch.autograd.grad(fast.square().sum(), x)
    composed = module._composed_forward(x)
    (grad_composed,) = torch.autograd.grad(composed.square().sum(), x)
    torch.testing.assert_close(fast, composed, atol=1e-6, rtol=0)
    torch.testing.assert_close(grad_fast, grad_composed, atol=1e-5, rtol=1e-5)


def test_dilated_inception_equals_textbook_and_keeps_recent_steps():
    module = DilatedInception(3, 8, (2, 3, 6, 7), dilation=3)
    x = torch.randn(2, 3, 5, 50)
    out = module(x)
    assert out.shape == (2, 8, 5, 50 - 3 * 6)
    torch.testing.assert_close(out, textbook_dilated_inception(module, x), atol=1e-5, rtol=0)
    # the last output step depends only on the last input steps: changing the oldest
    # input step that the shortest branch cannot see must leave the k=2 branch unchanged
    x2 = x.clone()
    x2[..., 0] += 100.0
    first_branch = slice(0, 2)
    torch.testing.assert_close(module(x2)[:, first_branch], out[:, first_branch])


def test_output_length_formula():
    for dilation in (1, 2, 5):
        module = GatedTemporalConv(2, 4, (2, 3, 6, 7), dilation)
        assert module(torch.randn(1, 2, 1, 40)).size(3) == 40 - dilation * 6
        assert module.output_length(40) == 40 - dilation * 6


def test_parameters_are_stored_per_branch():
    module = DilatedInception(16, 32, (2, 3, 6, 7))
    n_params = sum(p.numel() for p in module.parameters())
    assert n_params == sum(8 * 16 * k + 8 for k in (2, 3, 6, 7))


def test_c_out_not_divisible_by_branches_raises():
    with pytest.raises(ValueError, match=r"c_out=10 is not divisible by the 4 branches"):
        DilatedInception(4, 10)


def test_empty_kernel_set_raises():
    with pytest.raises(ValueError, match="kernel_set is empty"):
        GatedTemporalConv(4, 8, kernel_set=())


def test_bad_dilation_raises():
    with pytest.raises(ValueError, match="dilation=0"):
        DilatedInception(4, 8, dilation=0)
