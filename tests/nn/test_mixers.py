"""Mixers: the (B, C, N, T) contract, gradients, each paper's behaviour, and argument errors."""

from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.nn.knockout import forecast_with_identity_mixers
from tsattn import MTGNN, MTGNNConfig, create_mixer, list_mixers
from tsattn.nn.mixers.coord import CoordinateAttention
from tsattn.nn.mixers.cot import ContextualTransformer
from tsattn.nn.mixers.danet import DualAttention
from tsattn.nn.mixers.eca import eca_kernel_size
from tsattn.nn.mixers.mhsa import MultiHeadSelfAttention
from tsattn.nn.mixers.se import SqueezeExcite
from tsattn.nn.mixers.sk import SelectiveKernel
from tsattn.nn.mixers.triplet import TripletAttention

NAMES = ["identity", "se", "eca", "cbam", "coord", "triplet", "danet", "cot", "sk", "mhsa"]

# (B, C, N, T): together they cover C in {1, 2, 4, 32, 64}, N in {1, 7, 321} (small B),
# T in {1, 12, 96}, and the all-ones corner where a training batch norm sees one value.
SHAPES = [
    (1, 1, 1, 1),
    (3, 2, 7, 12),
    (2, 4, 1, 96),
    (2, 32, 7, 96),
    (2, 64, 7, 1),
    (1, 32, 321, 12),
    (1, 4, 321, 96),
]

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def test_list_mixers_names_every_mixer_identity_first() -> None:
    assert list_mixers() == NAMES


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_mixer_keeps_shape_and_stays_finite_in_training(name: str, shape: tuple) -> None:
    mixer = create_mixer(name, shape[1]).train()
    x = torch.randn(*shape)
    out = mixer(x)
    assert out.shape == x.shape
    assert out.dtype == x.dtype
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("device", DEVICES)
def test_mixer_keeps_dtype_and_device(name: str, device: str) -> None:
    mixer = create_mixer(name, 8).to(device=device, dtype=torch.float64).eval()
    x = torch.randn(2, 8, 5, 12, dtype=torch.float64, device=device)
    out = mixer(x)
    assert out.shape == x.shape
    assert out.dtype == torch.float64
    assert out.device == x.device


MIXER_VARIANTS = [(name, {}) for name in NAMES[1:]] + [
    ("danet", {"position": "full"}),
    ("mhsa", {"axis": "node"}),
    ("mhsa", {"axis": "both"}),
    ("cot", {"kernel_size": (3, 3)}),
]


@pytest.mark.parametrize(
    ("name", "kwargs"), MIXER_VARIANTS, ids=[f"{n}-{kw}" for n, kw in MIXER_VARIANTS]
)
def test_every_parameter_gets_finite_nonzero_gradient(name: str, kwargs: dict) -> None:
    mixer = create_mixer(name, 8, **kwargs).train()
    if name == "danet":
        # Both gammas start at 0, which zeroes the gradient reaching query, key and value at
        # initialisation (that is the design: the mixer starts as the identity). Move them off
        # 0 so that every other parameter's gradient can be checked.
        with torch.no_grad():
            mixer.gamma_pos.fill_(0.5)
            mixer.gamma_chan.fill_(0.5)
    x = torch.randn(3, 8, 5, 12, requires_grad=True)
    target = torch.randn(3, 8, 5, 12)
    F.mse_loss(mixer(x), target).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for pname, param in mixer.named_parameters():
        assert param.grad is not None, pname
        assert torch.isfinite(param.grad).all(), pname
        assert param.grad.abs().sum() > 0, pname


def test_danet_gammas_start_at_zero_and_still_receive_gradient() -> None:
    mixer = DualAttention(8)
    x = torch.randn(2, 8, 5, 12)
    F.mse_loss(mixer(x), torch.randn_like(x)).backward()
    assert mixer.gamma_pos.grad.abs().item() > 0
    assert mixer.gamma_chan.grad.abs().item() > 0


def test_identity_mixer_returns_its_input_unchanged() -> None:
    x = torch.randn(2, 3, 4, 5)
    assert create_mixer("identity", 3)(x) is x


def _active(mixer: nn.Module) -> nn.Module:
    """DANet starts as the identity (both gammas 0, by design); move it to where training goes."""
    if isinstance(mixer, DualAttention):
        _with_gammas(mixer, 0.5, 0.5)
    return mixer


@pytest.mark.parametrize(
    ("name", "kwargs"), MIXER_VARIANTS, ids=[f"{n}-{kw}" for n, kw in MIXER_VARIANTS]
)
def test_mixer_changes_its_input_unlike_identity(name: str, kwargs: dict) -> None:
    mixer = _active(create_mixer(name, 8, **kwargs)).eval()
    x = torch.randn(2, 8, 5, 12)
    assert (mixer(x) - x).abs().max() > 1e-3


def _tiny_model(mixer: str) -> MTGNN:
    config = MTGNNConfig(
        num_nodes=5, seq_len=24, horizon=6, layers=2, conv_channels=8, residual_channels=8,
        skip_channels=8, end_channels=8, node_dim=4, top_k=2, dropout=0.0, mixer=mixer,
    )  # fmt: skip
    return MTGNN(config).eval()


@pytest.mark.parametrize("name", NAMES)
def test_model_forecast_changes_when_its_mixers_become_identity_unless_identity(name: str) -> None:
    model = _tiny_model(name)
    for mixer in model.mixers:
        assert type(mixer) is type(create_mixer(name, 8))
        _active(mixer)
    x = torch.randn(2, 24, 5)
    with torch.no_grad():
        forecast = model(x)
    without = forecast_with_identity_mixers(model, x)
    if name == "identity":
        assert torch.equal(forecast, without)
    else:
        assert (forecast - without).abs().max() > 1e-4


@pytest.mark.parametrize("position", ["axial", "full"])
def test_danet_at_initialisation_equals_its_input(position: str) -> None:
    x = torch.randn(2, 16, 7, 12)
    assert torch.equal(DualAttention(16, position=position)(x), x)


def _with_gammas(mixer: DualAttention, pos: float, chan: float) -> DualAttention:
    with torch.no_grad():
        mixer.gamma_pos.fill_(pos)
        mixer.gamma_chan.fill_(chan)
    return mixer


def test_danet_full_matches_official_position_and_channel_modules() -> None:
    mixer = _with_gammas(DualAttention(16, position="full"), 0.7, -0.3)
    x = torch.randn(2, 16, 5, 6)
    b, c, n, t = x.shape
    # PAM_Module.forward of the official code, with bmm and an explicit (N T)^2 softmax.
    q = mixer.query(x).view(b, -1, n * t).permute(0, 2, 1)
    k = mixer.key(x).view(b, -1, n * t)
    attention = torch.softmax(torch.bmm(q, k), dim=-1)
    v = mixer.value(x).view(b, -1, n * t)
    pam = torch.bmm(v, attention.permute(0, 2, 1)).view(b, c, n, t)
    # CAM_Module.forward of the official code.
    flat = x.view(b, c, -1)
    energy = torch.bmm(flat, flat.permute(0, 2, 1))
    energy_new = torch.max(energy, -1, keepdim=True)[0].expand_as(energy) - energy
    cam = torch.bmm(torch.softmax(energy_new, dim=-1), flat).view(b, c, n, t)
    expected = x + 0.7 * pam + (-0.3) * cam
    torch.testing.assert_close(mixer(x), expected, rtol=1e-4, atol=1e-5)


def test_danet_axial_attends_over_time_then_nodes() -> None:
    mixer = _with_gammas(DualAttention(8, position="axial"), 1.0, 0.0)
    x = torch.randn(2, 8, 4, 6)
    q = torch.einsum("bcnt->bntc", mixer.query(x))
    k = torch.einsum("bcnt->bntc", mixer.key(x))
    v = torch.einsum("bcnt->bntc", mixer.value(x))
    # Unscaled softmax along T inside each node, then along N at each time step.
    att_t = torch.softmax(torch.einsum("bntc,bnsc->bnts", q, k), dim=-1)
    h = torch.einsum("bnts,bnsc->bntc", att_t, v)
    att_n = torch.softmax(torch.einsum("bntc,bmtc->btnm", q, k), dim=-1)
    out = torch.einsum("btnm,bmtc->bcnt", att_n, h)
    torch.testing.assert_close(mixer(x), x + out, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("channels", "kernel"), [(1, 1), (8, 3), (64, 3), (512, 5), (2048, 7)])
def test_eca_kernel_follows_channel_rule(channels: int, kernel: int) -> None:
    # t = int(|(log2 C + 1) / 2|), then the next odd number.
    t = int(abs((math.log2(channels) + 1) / 2))
    assert kernel == (t if t % 2 else t + 1)
    assert eca_kernel_size(channels) == kernel
    assert create_mixer("eca", channels).conv.kernel_size == (kernel,)


def test_eca_explicit_kernel_overrides_rule_and_gates_channels() -> None:
    mixer = create_mixer("eca", 64, kernel_size=9)
    assert mixer.conv.kernel_size == (9,)
    x = torch.randn(2, 64, 3, 5)
    gate = mixer(x) / x
    # One gate per (sample, channel): constant over nodes and time, strictly inside (0, 1).
    torch.testing.assert_close(gate, gate[:, :, :1, :1].expand_as(gate))
    assert ((gate > 0) & (gate < 1)).all()


def test_coord_gate_factorises_into_node_and_time_factors() -> None:
    mixer = CoordinateAttention(16).train()
    x = torch.rand(2, 16, 5, 7) + 0.5
    gate = mixer(x) / x  # (B, C, N, T)
    # Rank one in (N, T) for every (b, c): g[n, t] g[n', t'] == g[n, t'] g[n', t].
    lhs = torch.einsum("bcnt,bcms->bcnmts", gate, gate)
    rhs = torch.einsum("bcns,bcmt->bcnmts", gate, gate)
    torch.testing.assert_close(lhs, rhs)
    a_node, a_time = mixer.gates(x)
    assert a_node.shape == (2, 16, 5, 1) and a_time.shape == (2, 16, 1, 7)
    torch.testing.assert_close(gate, a_node * a_time)
    # mip = max(8, C // 32)
    assert mixer.squeeze[0].out_channels == 8
    assert CoordinateAttention(512).squeeze[0].out_channels == 16


def test_se_with_few_channels_has_learnable_input_dependent_gate() -> None:
    mixer = SqueezeExcite(8)  # C // 16 == 0: the hidden width must still be 1
    assert mixer.fc1.out_channels == 1
    x = torch.randn(1, 8, 4, 6)
    gates = torch.stack([mixer(x + s) / (x + s) for s in (-2.0, 2.0)])  # (2, 1, 8, 4, 6)
    assert not torch.allclose(gates[0], gates[1], atol=1e-4)
    # With one hidden unit, ReLU is off for one of the two shifts; the other one still trains.
    (mixer(x - 2.0).sum() + mixer(x + 2.0).sum()).backward()
    assert mixer.fc1.weight.grad.abs().sum() > 0
    assert SqueezeExcite(64).fc1.out_channels == 4


def _plain_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(Q K^T / sqrt(d)) V over the last two dims."""
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.size(-1))
    return torch.softmax(scores, dim=-1) @ v


def _reference_axis_attention(layer: nn.Module, x: torch.Tensor, axis: str) -> torch.Tensor:
    b, c, n, t = x.shape
    h = layer.heads
    qkv = torch.einsum("oc,bcnt->bont", layer.qkv.weight[:, :, 0, 0], x)
    qkv = qkv + layer.qkv.bias.view(1, -1, 1, 1)
    q, k, v = (part.reshape(b, h, c // h, n, t) for part in qkv.split(c, dim=1))
    pattern = "bhdnt->bnhtd" if axis == "time" else "bhdnt->bthnd"
    q, k, v = (torch.einsum(pattern, part) for part in (q, k, v))
    out = _plain_attention(q, k, v)
    back = "bnhtd->bhdnt" if axis == "time" else "bthnd->bhdnt"
    out = torch.einsum(back, out).reshape(b, c, n, t)
    return x + layer.proj(out)


@pytest.mark.parametrize("axis", ["time", "node", "both"])
def test_mhsa_matches_plain_softmax_attention(axis: str) -> None:
    mixer = MultiHeadSelfAttention(8, heads=2, axis=axis)
    x = torch.randn(2, 8, 3, 5)
    expected = x
    axes = ["time", "node"] if axis == "both" else [axis]
    for layer, layer_axis in zip(mixer.layers, axes, strict=True):
        expected = _reference_axis_attention(layer, expected, layer_axis)
    torch.testing.assert_close(mixer(x), expected, rtol=1e-4, atol=1e-5)


def test_mhsa_time_axis_never_mixes_nodes() -> None:
    mixer = MultiHeadSelfAttention(8, axis="time")
    x = torch.randn(1, 8, 4, 6)
    y = x.clone()
    y[:, :, 2] += 1.0  # change node 2 only
    diff = (mixer(x) - mixer(y)).abs().sum(dim=(0, 1, 3))
    assert diff[2] > 0
    assert torch.equal(diff[[0, 1, 3]], torch.zeros(3))


def test_cot_local_aggregation_is_a_per_position_window_sum() -> None:
    mixer = ContextualTransformer(8, kernel_size=(3, 3), share_planes=4)
    g = mixer.weight_groups  # 2
    value = torch.randn(2, 8, 4, 5)
    weight = torch.randn(2, g * 9, 4, 5)
    padded = F.pad(value, (1, 1, 1, 1))
    expected = torch.zeros_like(value)
    for c in range(8):
        for j in range(9):
            dn, dt = divmod(j, 3)
            w = weight[:, (c % g) * 9 + j]  # (B, N, T)
            expected[:, c] += w * padded[:, c, dn : dn + 4, dt : dt + 5]
    torch.testing.assert_close(mixer.local_aggregate(value, weight), expected)


def test_cot_window_is_local_along_time() -> None:
    mixer = ContextualTransformer(8).eval()  # (1, 3) window
    x = torch.randn(1, 8, 1, 200)
    y = x.clone()
    y[..., 0] += 1.0  # change the first time step
    diff = (mixer(x) - mixer(y)).abs().sum(dim=(0, 1, 2))
    # Step 0 reaches outputs 0 and 1 through the static context and the dynamic window. Only
    # the fusion's pooled weights (a mean over all 200 steps) reach further, and only faintly.
    assert diff[:2].min() > 10 * diff[2:].max()


def test_sk_selects_between_branches_with_softmax() -> None:
    mixer = SelectiveKernel(8, dilations=(1, 2, 3)).eval()
    x = torch.randn(2, 8, 3, 10)
    feats = torch.stack([branch(x) for branch in mixer.branches], dim=1)  # (B, M, C, N, T)
    out = mixer(x)
    # Per (sample, channel) the output is a convex combination of the branches.
    weights = torch.softmax(
        mixer.select(mixer.squeeze(feats.sum(1).mean(dim=(2, 3), keepdim=True))).view(2, 3, 8),
        dim=1,
    )
    torch.testing.assert_close(weights.sum(1), torch.ones(2, 8))
    torch.testing.assert_close(out, torch.einsum("bmcnt,bmc->bcnt", feats, weights))
    single = SelectiveKernel(8, dilations=(1,)).eval()
    torch.testing.assert_close(single(x), single.branches[0](x))


def test_triplet_equals_official_rotations() -> None:
    mixer = TripletAttention(4, kernel_size=(3, 5), channel_kernel_size=3).train()
    x = torch.randn(2, 4, 6, 9)

    def official_gate(conv: nn.Module, rotated: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([rotated.max(1, keepdim=True)[0], rotated.mean(1, keepdim=True)], dim=1)
        return rotated * torch.sigmoid(conv(pooled))

    out_ct = official_gate(mixer.gate_ct[1], x.permute(0, 2, 1, 3)).permute(0, 2, 1, 3)
    out_nc = official_gate(mixer.gate_nc[1], x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    out_nt = official_gate(mixer.gate_nt[1], x)
    torch.testing.assert_close(mixer(x), (out_ct + out_nc + out_nt) / 3)


def test_cbam_gates_channels_then_positions() -> None:
    mixer = create_mixer("cbam", 8, kernel_size=(3, 5)).eval()
    x = torch.randn(2, 8, 4, 6)
    avg, mx = x.mean((2, 3), keepdim=True), x.amax((2, 3), keepdim=True)
    x1 = x * torch.sigmoid(mixer.mlp(avg) + mixer.mlp(mx))
    maps = torch.cat([x1.amax(1, keepdim=True), x1.mean(1, keepdim=True)], dim=1)
    expected = x1 * torch.sigmoid(mixer.spatial(maps))
    torch.testing.assert_close(mixer(x), expected)
    assert mixer.spatial[0].kernel_size == (3, 5)
    assert create_mixer("cbam", 8).spatial[0].kernel_size == (1, 7)


def test_batch_norm_mixers_train_with_batch_size_one() -> None:
    for name in ["cbam", "coord", "triplet", "cot", "sk"]:
        mixer = create_mixer(name, 8).train()
        x = torch.randn(1, 8, 1, 1, requires_grad=True)
        mixer(x).sum().backward()
        assert torch.isfinite(x.grad).all(), name


# ---------------------------------------------------------------------------- argument errors


def test_unknown_mixer_name_lists_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown mixer 'nope': choose one of identity, se, eca"):
        create_mixer("nope", 8)


def test_unknown_keyword_lists_accepted_ones() -> None:
    with pytest.raises(ValueError, match=r"mixer 'eca' does not take reduction; it accepts: "):
        create_mixer("eca", 8, reduction=4)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("channels", [0, -3])
def test_channels_below_one_raise(name: str, channels: int) -> None:
    with pytest.raises(ValueError, match=re.escape(f"channels={channels}: pass the number")):
        create_mixer(name, channels)


@pytest.mark.parametrize(
    "cls",
    [SqueezeExcite, CoordinateAttention, DualAttention, ContextualTransformer, TripletAttention],
)
def test_direct_construction_checks_channels_too(cls: type[nn.Module]) -> None:
    with pytest.raises(ValueError, match=r"channels=0: pass the number of input channels"):
        cls(0)


BAD_ARGUMENTS = [
    ("se", {"reduction": 0}, "reduction=0: pass a number > 0"),
    ("se", {"rd_channels": 0}, "rd_channels=0: pass an int > 0"),
    ("se", {"act_layer": "swishy"}, "act_layer='swishy': pass one of relu, hardswish"),
    ("cbam", {"reduction": -1}, "reduction=-1: pass a number > 0"),
    ("coord", {"reduction": 0}, "reduction=0: pass a number > 0"),
    ("sk", {"reduction": 0}, "reduction=0: pass a number > 0"),
    ("danet", {"reduction": 0}, "reduction=0: pass a number > 0"),
    ("cot", {"reduction": 0}, "reduction=0: pass a number > 0"),
    ("eca", {"kernel_size": 4}, "kernel_size=4: pass an odd int >= 1"),
    ("eca", {"gamma": 0}, "gamma=0: pass a number > 0"),
    ("cbam", {"kernel_size": (1, 6)}, "kernel_size[1]=6: pass an odd int >= 1"),
    ("cbam", {"kernel_size": (1, 3, 5)}, "pass an odd int or a pair (k_n, k_t)"),
    ("triplet", {"kernel_size": (2, 7)}, "kernel_size[0]=2: pass an odd int >= 1"),
    ("triplet", {"channel_kernel_size": 2}, "channel_kernel_size=2: pass an odd int >= 1"),
    ("cot", {"kernel_size": 4}, "kernel_size[0]=4: pass an odd int >= 1"),
    ("cot", {"groups": 3}, "groups=3 does not divide channels=32: pass a divisor of 32"),
    ("cot", {"share_planes": 5}, "share_planes=5 does not divide channels=32"),
    ("sk", {"kernel_size": (1, 2)}, "kernel_size[1]=2: pass an odd int >= 1"),
    ("sk", {"dilations": ()}, "dilations=(): pass one dilation per branch"),
    ("sk", {"dilations": (1, 0)}, "dilations[i]=0: pass an int > 0"),
    ("sk", {"groups": 5}, "groups=5 does not divide channels=32"),
    ("mhsa", {"axis": "space"}, "axis='space': pass one of 'time', 'node', 'both'"),
    ("mhsa", {"heads": 3}, "heads=3 does not divide channels=32: pass a divisor of 32"),
    ("mhsa", {"heads": 0}, "heads=0: pass an int > 0"),
    ("danet", {"position": "global"}, "position='global': pass one of 'axial', 'full'"),
]


@pytest.mark.parametrize(
    ("name", "kwargs", "message"), BAD_ARGUMENTS, ids=[f"{n}-{kw}" for n, kw, _ in BAD_ARGUMENTS]
)
def test_invalid_argument_raises_with_what_to_pass(name: str, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        create_mixer(name, 32, **kwargs)
