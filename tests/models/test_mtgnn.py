from __future__ import annotations

import pytest
import torch

from tsattn import MTGNN, MTGNNConfig
from tsattn.models.mtgnn import _dropout, _last_steps, _random_int16


def tiny(**overrides) -> MTGNNConfig:
    base = dict(
        num_nodes=3, seq_len=24, horizon=6, layers=2, conv_channels=8, residual_channels=8,
        skip_channels=8, end_channels=16, node_dim=4, top_k=2,
    )  # fmt: skip
    return MTGNNConfig(**{**base, **overrides})


@pytest.mark.parametrize(
    ("overrides", "batch"),
    [
        (dict(num_nodes=1), 2),
        (dict(num_nodes=7), 2),
        (dict(num_nodes=321, top_k=20), 1),
        (dict(seq_len=5), 2),  # shorter than the receptive field (13): left-padded
        (dict(seq_len=60, layers=3, dilation_exponential=2), 2),
        (dict(horizon=1), 2),
        (dict(horizon=720, seq_len=96), 1),
        (dict(graph=False), 2),
        (dict(revin=False), 2),
        (dict(time_features=4), 2),
    ],
)
def test_forward_shapes(overrides, batch):
    cfg = tiny(**overrides)
    model = MTGNN(cfg)
    x = torch.randn(batch, cfg.seq_len, cfg.num_nodes)
    marks = torch.randn(batch, cfg.seq_len, cfg.time_features) if cfg.time_features else None
    out = model(x, marks)
    assert out.shape == (batch, cfg.horizon, cfg.num_nodes)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("graph", [True, False])
def test_gradients_reach_every_parameter(graph):
    cfg = tiny(num_nodes=5, graph=graph, time_features=2, dropout=0.0)
    model = MTGNN(cfg)
    x = torch.randn(4, cfg.seq_len, cfg.num_nodes)
    marks = torch.randn(4, cfg.seq_len, 2)
    model(x, marks).square().mean().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(param.grad).all(), f"{name} has a non-finite gradient"
        assert param.grad.abs().sum() > 0, f"{name} has an all-zero gradient"


def test_same_seed_gives_bit_identical_output():
    cfg = tiny(num_nodes=6)
    outputs = []
    for _ in range(2):
        torch.manual_seed(123)
        model = MTGNN(cfg)
        x = torch.randn(3, cfg.seq_len, cfg.num_nodes)
        model.train()
        torch.manual_seed(7)
        outputs.append(model(x))
    assert torch.equal(outputs[0], outputs[1])


def test_eval_output_is_repeatable():
    model = MTGNN(tiny(num_nodes=6)).eval()
    x = torch.randn(2, 24, 6)
    assert torch.equal(model(x), model(x))


def test_input_shorter_than_receptive_field_is_left_padded_with_zeros():
    cfg = tiny(seq_len=5, revin=False, dropout=0.0)
    model = MTGNN(cfg).eval()
    assert model.input_length == cfg.receptive_field == 13
    x = torch.randn(2, 5, 3)
    # the first conv sees a zero-padded series of receptive-field length
    seen = {}

    def keep_input(module, inputs, output):
        seen["in"] = inputs[0]

    model.start_conv.register_forward_hook(keep_input)
    model(x)
    padded = seen["in"]
    assert padded.shape == (2, 1, 3, 13)
    assert torch.equal(padded[..., :8], torch.zeros(2, 1, 3, 8))
    assert torch.equal(padded[..., 8:], x.transpose(1, 2).unsqueeze(1))


def test_adjacency_is_readable_and_top_k_sparse():
    model = MTGNN(tiny(num_nodes=8, top_k=3))
    adj = model.adjacency()
    assert adj.shape == (8, 8) and not adj.requires_grad
    assert int((adj > 0).sum(dim=1).max()) <= 3
    with pytest.raises(ValueError, match="graph=False"):
        MTGNN(tiny(graph=False)).adjacency()


def test_config_round_trips_through_dict_and_yaml():
    yaml = pytest.importorskip("yaml")
    cfg = tiny(mixer="identity", mixer_kwargs={}, kernel_set=(2, 3), conv_channels=8)
    assert MTGNNConfig.from_dict(cfg.to_dict()) == cfg
    assert MTGNNConfig.from_dict(yaml.safe_load(yaml.safe_dump(cfg.to_dict()))) == cfg


def test_config_from_dict_rejects_unknown_fields():
    with pytest.raises(ValueError, match=r"unknown MTGNNConfig field\(s\) colour"):
        MTGNNConfig.from_dict({"num_nodes": 3, "colour": "red"})


@pytest.mark.parametrize(("overrides", "match"), [
    (dict(layers=0), "layers must be >= 1"),
    (dict(kernel_set=()), "kernel_set must hold at least one kernel size"),
    (dict(horizon=0), "horizon must be >= 1"),
    (dict(horizon=-3), "horizon must be >= 1"),
    (dict(num_nodes=0), "num_nodes must be >= 1"),
    (dict(conv_channels=10), r"conv_channels must be a multiple of len\(kernel_set\)=4"),
    (dict(dropout=1.0), r"dropout must lie in \[0, 1\)"),
])  # fmt: skip
def test_bad_configs_raise(overrides, match):
    with pytest.raises(ValueError, match=match):
        tiny(**overrides)


def test_num_nodes_mismatch_raises():
    model = MTGNN(tiny(num_nodes=3))
    with pytest.raises(ValueError, match=r"x has 5 variables .* built for num_nodes=3"):
        model(torch.randn(2, 24, 5))


def test_seq_len_mismatch_and_missing_marks_raise():
    model = MTGNN(tiny(time_features=2))
    with pytest.raises(ValueError, match=r"x has 20 time steps"):
        model(torch.randn(2, 20, 3), torch.randn(2, 20, 2))
    with pytest.raises(ValueError, match=r"x_mark has shape None"):
        model(torch.randn(2, 24, 3))


def test_presets_reproduce_the_paper_configurations():
    single = MTGNNConfig.preset("single_step", num_nodes=321)
    assert single.receptive_field == 187
    assert (single.layers, single.conv_channels, single.skip_channels, single.end_channels) == (
        5, 16, 32, 64,
    )  # fmt: skip
    multi = MTGNNConfig.preset("multi_step", num_nodes=207)
    assert multi.receptive_field == 19
    assert (multi.conv_channels, multi.residual_channels, multi.skip_channels) == (32, 32, 64)
    model = MTGNN(MTGNNConfig.preset("single_step", num_nodes=8, top_k=8, seq_len=168))
    assert model(torch.randn(1, 168, 8)).shape == (1, 1, 8)
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        MTGNNConfig.preset("huge", num_nodes=3)


def test_cpu_dropout_draws_a_scaled_bernoulli_mask():
    torch.manual_seed(0)
    x = torch.ones(200_000, requires_grad=True)
    out = _dropout(x, 0.3, training=True)
    kept = out != 0
    assert abs(kept.float().mean().item() - 0.7) < 0.01  # 0.7 +- 4.7 standard errors
    keep_probability = 1 - round(0.3 * 2**16) / 2**16  # p rounded to a multiple of 2**-16
    assert abs(keep_probability - 0.7) < 1e-5
    torch.testing.assert_close(out[kept], torch.full_like(out[kept], 1 / keep_probability))
    out.sum().backward()
    torch.testing.assert_close(x.grad, out.detach())  # d(x * mask / keep)/dx = mask / keep
    assert _dropout(x, 0.3, training=False) is x
    assert _dropout(x, 0.0, training=True) is x
    torch.manual_seed(1)
    first = _dropout(x, 0.5, training=True)
    torch.manual_seed(1)
    assert torch.equal(first, _dropout(x, 0.5, training=True))
    # p too close to 0 or 1 for 16 bits: F.dropout's own mask
    assert _dropout(x, 1e-6, training=True).shape == x.shape
    assert (_dropout(x, 1 - 1e-6, training=True) != 0).sum() < 10


def test_cpu_dropout_keeps_the_layout_and_handles_strided_inputs():
    torch.manual_seed(0)
    x = torch.randn(8, 16, 7, 30).contiguous(memory_format=torch.channels_last)
    out = _dropout(x, 0.3, training=True)
    assert out.is_contiguous(memory_format=torch.channels_last)
    kept = out != 0
    torch.testing.assert_close(out[kept], x[kept] / (1 - round(0.3 * 2**16) / 2**16))
    strided = torch.randn(300, 400)[:, ::2]  # not dense: the mask is drawn contiguous
    out = _dropout(strided, 0.5, training=True)
    assert out.shape == strided.shape and abs((out != 0).float().mean().item() - 0.5) < 0.01


def test_random_int16_lanes_are_uniform_over_all_16_bits():
    torch.manual_seed(0)
    bits = _random_int16(torch.empty(400_000)).view(-1, 4)  # the four lanes of each 64-bit draw
    for lane in bits.unbind(1):
        assert lane.min() < -32_000 and lane.max() > 32_000  # the sign bit is random too
        for bit in range(16):
            ones = (lane.int() >> bit & 1).float().mean().item()
            assert abs(ones - 0.5) < 0.01, (bit, ones)  # 0.5 +- 6.3 standard errors


@pytest.mark.parametrize("channels_last", [False, True])
def test_last_steps_is_the_slice_with_its_gradient_in_the_input_layout(channels_last):
    x = torch.randn(2, 3, 4, 9)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    out = _last_steps(x, 5)
    torch.testing.assert_close(out, x[..., 4:], atol=0, rtol=0)
    grad = torch.randn(2, 3, 4, 5)
    (got,) = torch.autograd.grad(out, x, grad)
    (expected,) = torch.autograd.grad(x[..., 4:], x, grad)
    torch.testing.assert_close(got, expected, atol=0, rtol=0)
    assert got.is_contiguous(memory_format=torch.channels_last) == channels_last
    assert _last_steps(x, 9) is x
    # composed (torch.func transforms): autograd's own slice
    assert type(_last_steps(x, 5, composed=True).grad_fn).__name__.startswith("Slice")


def test_torch_func_grad_through_the_composed_model(monkeypatch):
    from tsattn.nn.temporal import GatedTemporalConv

    monkeypatch.setattr(GatedTemporalConv, "composed", True)
    cfg = MTGNNConfig(num_nodes=5, seq_len=24, horizon=3, layers=2, conv_channels=8,
                      residual_channels=8, skip_channels=8, end_channels=8)  # fmt: skip
    model = MTGNN(cfg).eval()  # no dropout: both gradients of the same function
    params = dict(model.named_parameters())
    x = torch.randn(2, 24, 5)

    def loss(p):
        return torch.func.functional_call(model, p, (x,)).square().sum()

    grads = torch.func.grad(loss)(params)
    model(x).square().sum().backward()
    for name, param in model.named_parameters():
        torch.testing.assert_close(grads[name], param.grad, atol=1e-5, rtol=1e-4, msg=name)
