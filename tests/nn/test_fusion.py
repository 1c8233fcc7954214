"""Temporal-pyramid fusions: registry, shapes, gradients, node handling, ASFF weights, the model."""

from __future__ import annotations

import pytest
import torch

from tests.nn.knockout import forecast_with_level_zeroed
from tsattn import MTGNN, MTGNNConfig, create_fusion, list_fusions
from tsattn.nn.fusion import ASFFFusion, FPNFusion, PANetFusion, resize_time

FUSIONS = list_fusions()


# (channels per level, lengths per level), finest first: 1 to 6 levels, arbitrary length ratios.
PYRAMIDS = [
    ([5], [181]),
    ([1, 6], [90, 84]),
    ([2, 4, 4], [181, 169, 145]),
    ([1, 4, 4, 6], [90, 84, 72, 48]),
    ([3, 4, 4, 4, 5], [90, 84, 72, 48, 1]),
    ([1, 4, 4, 4, 4, 6], [187, 181, 169, 145, 97, 1]),
]


def levels_for(channels, lengths, batch=2, nodes=3, requires_grad=False):
    return [
        torch.randn(batch, c, nodes, t, requires_grad=requires_grad)
        for c, t in zip(channels, lengths, strict=True)
    ]


def test_registry_names_every_fusion_skip_first():
    assert list_fusions() == ["skip", "fpn", "panet", "asff"]


def test_unknown_fusion_names_the_valid_choices():
    with pytest.raises(
        ValueError, match="unknown fusion 'bifpn': choose one of skip, fpn, panet, asff"
    ):
        create_fusion("bifpn", [4], [8])


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("fpn", dict(output="middle"), "output='middle': choose one of finest, all"),
        ("fpn", dict(kernel_size=2), "kernel_size=2: pass an odd int"),
        ("panet", dict(width=0), "width=0: pass an int >= 1"),
        ("asff", dict(target_level=2), r"target_level=2: pass a level index in 0\.\.1"),
        ("asff", dict(weight_channels=0), "weight_channels=0"),
        ("skip", dict(out_channels=0), "out_channels=0"),
        ("panet", dict(output="finest"), "does not take output; it accepts: out_channels, width"),
    ],
)
def test_bad_arguments_raise_value_error(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        create_fusion(name, [4, 4], [8, 6], **kwargs)


def test_every_fusion_builds_from_channels_lengths_and_out_channels_alone():
    for name in FUSIONS:
        fusion = create_fusion(name, [1, 8, 8], [24, 18, 12], out_channels=5)
        assert fusion.out_channels == 5


@pytest.mark.parametrize("name", FUSIONS)
def test_wrong_levels_are_rejected(name):
    fusion = create_fusion(name, [4, 6], [10, 7], out_channels=3)
    with pytest.raises(ValueError, match="expected \\(B, 6, N, 7\\)"):
        fusion([torch.randn(1, 4, 2, 10), torch.randn(1, 6, 2, 8)])
    with pytest.raises(ValueError, match="same batch B and nodes N"):
        fusion([torch.randn(1, 4, 2, 10), torch.randn(1, 6, 3, 7)])


@pytest.mark.parametrize(("channels", "lengths"), PYRAMIDS, ids=lambda p: str(p))
@pytest.mark.parametrize("name", FUSIONS)
def test_fusion_output_shape_and_gradient_reaching_every_level_and_parameter(
    name, channels, lengths
):
    fusion = create_fusion(name, channels, lengths, out_channels=7)
    levels = levels_for(channels, lengths, requires_grad=True)
    out = fusion(levels)
    assert out.shape == (2, 7, 3, fusion.out_length)
    assert fusion.out_length in (1, lengths[0])
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    for i, level in enumerate(levels):
        assert level.grad is not None and level.grad.abs().sum() > 0, f"level {i} gets no gradient"
    for pname, param in fusion.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), pname
        assert param.grad.abs().sum() > 0, f"{pname} gets no gradient"


@pytest.mark.parametrize("name", FUSIONS)
def test_fusion_is_equivariant_to_node_order(name):
    channels, lengths = [1, 4, 4, 6], [90, 84, 72, 48]
    fusion = create_fusion(name, channels, lengths, out_channels=4)
    levels = levels_for(channels, lengths, nodes=5)
    perm = torch.tensor([3, 0, 4, 1, 2])
    out = fusion(levels)
    out_permuted = fusion([level[:, :, perm] for level in levels])
    torch.testing.assert_close(out_permuted, out[:, :, perm])


@pytest.mark.parametrize(("length", "target"), [(7, 19), (19, 7), (97, 1), (1, 187), (12, 12)])
def test_resize_time_resamples_each_node_on_its_own(length, target):
    node_values = torch.tensor([1.0, -2.0, 5.0, 0.5])
    x = node_values.view(1, 1, 4, 1).expand(2, 3, 4, length).contiguous()
    out = resize_time(x, target)
    assert out.shape == (2, 3, 4, target)
    torch.testing.assert_close(out, node_values.view(1, 1, 4, 1).expand(2, 3, 4, target))


def test_resize_time_interpolates_up_and_averages_down():
    ramp = torch.arange(4.0).view(1, 1, 1, 4)
    torch.testing.assert_close(resize_time(ramp, 2), torch.tensor([0.5, 2.5]).view(1, 1, 1, 2))
    up = resize_time(ramp, 8).flatten()
    torch.testing.assert_close(up, torch.tensor([0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3]))


@pytest.mark.parametrize(("channels", "lengths"), PYRAMIDS[1:], ids=lambda p: str(p))
def test_asff_weights_are_a_softmax_over_levels(channels, lengths):
    fusion = ASFFFusion(channels, lengths, out_channels=4, target_level=len(lengths) - 1)
    levels = levels_for(channels, lengths)
    weights = fusion.level_weights(levels)
    assert weights.shape == (2, len(lengths), 3, lengths[-1])
    assert (weights >= 0).all()
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(2, 3, lengths[-1]))
    # The weights depend on the input, position by position.
    assert weights.std(dim=(0, 2, 3)).max() > 1e-4


def test_asff_output_is_the_weighted_sum_of_resized_levels():
    channels, lengths = [1, 4, 6], [24, 18, 6]
    fusion = ASFFFusion(channels, lengths, out_channels=4)
    levels = levels_for(channels, lengths)
    weights = fusion.level_weights(levels)
    resized = [
        resize_time(proj(level), 24) for proj, level in zip(fusion.projections, levels, strict=True)
    ]
    expected = fusion.smooth(sum(weights[:, i : i + 1] * x for i, x in enumerate(resized)))
    torch.testing.assert_close(fusion(levels), expected)


def test_single_level_reduces_every_fusion_to_a_transform_of_that_level():
    x = torch.randn(2, 5, 3, 16)
    fpn = FPNFusion([5], [16], out_channels=4)
    torch.testing.assert_close(fpn([x]), fpn.smooths[0](fpn.laterals[0](x)))
    panet = PANetFusion([5], [16], out_channels=4)
    assert len(panet.downs) == 0 and len(panet.fuses) == 0
    expected = panet.collapse.convs[0](panet.smooths[0](panet.laterals[0](x)))
    torch.testing.assert_close(panet([x]), expected)
    asff = ASFFFusion([5], [16], out_channels=4)
    torch.testing.assert_close(asff.level_weights([x]), torch.ones(2, 1, 3, 16))
    torch.testing.assert_close(asff([x]), asff.smooth(asff.projections[0](x)))
    skip = create_fusion("skip", [5], [16], out_channels=4)
    torch.testing.assert_close(skip([x]), skip.convs[0](x))


def test_panet_bottom_up_path_has_its_own_parameters_and_changes_the_output():
    channels, lengths = [1, 4, 4, 6], [90, 84, 72, 48]
    fpn = FPNFusion(channels, lengths, out_channels=4, output="all")
    panet = PANetFusion(channels, lengths, out_channels=4)
    missing, unexpected = panet.load_state_dict(fpn.state_dict(), strict=False)
    assert not unexpected
    assert missing and all(k.startswith(("downs.", "fuses.")) for k in missing)
    assert len(panet.downs) == len(panet.fuses) == len(lengths) - 1
    levels = levels_for(channels, lengths)
    assert not torch.allclose(panet(levels), fpn(levels), atol=1e-4)
    # The FPN part is shared: identical top-down maps.
    for p_fpn, p_panet in zip(fpn.top_down(levels), panet.top_down(levels), strict=True):
        torch.testing.assert_close(p_fpn, p_panet)
    # And the default FPN (finest level to the head) differs in what it hands on.
    assert create_fusion("fpn", channels, lengths).out_length == 90
    assert create_fusion("panet", channels, lengths).out_length == 1


def tiny_config(**overrides) -> MTGNNConfig:
    base = dict(
        num_nodes=4, seq_len=24, horizon=6, layers=3, conv_channels=8, residual_channels=8,
        skip_channels=8, end_channels=16, node_dim=4, top_k=2,
    )  # fmt: skip
    return MTGNNConfig(**{**base, **overrides})


def test_default_fusion_is_mtgnn_skip():
    assert MTGNNConfig(num_nodes=3).fusion == "skip"
    model = MTGNN(tiny_config())
    assert type(model.fusion).__name__ == "SkipFusion"


@pytest.mark.parametrize(
    "overrides",
    [
        dict(layers=1),
        dict(layers=1, seq_len=3),  # shorter than the receptive field: left-padded
        dict(
            layers=4, dilation_exponential=2, seq_len=60
        ),  # lengths 60, 54, 42, 18, 1 (RF 46 < 60)
    ],
    ids=["shallow", "shallow-short-input", "deep"],
)
@pytest.mark.parametrize("name", FUSIONS)
def test_model_with_each_fusion_forecasts_the_horizon_and_trains_the_fusion(name, overrides):
    cfg = tiny_config(fusion=name, **overrides)
    model = MTGNN(cfg)
    assert len(model.fusion.lengths) == cfg.layers + 2
    x = torch.randn(2, cfg.seq_len, cfg.num_nodes)
    out = model(x)
    assert out.shape == (2, cfg.horizon, cfg.num_nodes)
    out.square().mean().backward()
    for pname, param in model.fusion.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", FUSIONS)
def test_model_forecast_changes_when_any_pyramid_level_is_zeroed_before_the_fusion(name):
    model = MTGNN(tiny_config(fusion=name, dropout=0.0)).eval()
    x = torch.randn(2, 24, 4)
    with torch.no_grad():
        forecast = model(x)
    for level in range(len(model.fusion.lengths)):
        change = (forecast - forecast_with_level_zeroed(model, x, level)).abs().max()
        assert change > 1e-4, f"{name}: level {level} does not reach the forecast"


@pytest.mark.parametrize("name", FUSIONS)
def test_model_forecast_differs_from_skip_sharing_every_weight_outside_the_fusion(name):
    torch.manual_seed(0)
    skip = MTGNN(tiny_config(fusion="skip")).eval()
    model = MTGNN(tiny_config(fusion=name)).eval()
    assert type(model.fusion) is type(create_fusion(name, [4], [8]))
    shared = {k: v for k, v in skip.state_dict().items() if not k.startswith(("fusion.", "head."))}
    model.load_state_dict(shared, strict=False)
    if name == "skip":  # the control: the same fusion with the same weights forecasts the same
        model.fusion.load_state_dict(skip.fusion.state_dict())
        model.head.load_state_dict(skip.head.state_dict())
    x = torch.randn(2, 24, 4)
    with torch.no_grad():
        change = (model(x) - skip(x)).abs().max()
    assert change == 0 if name == "skip" else change > 1e-4


def test_fusion_kwargs_reach_the_fusion_and_round_trip():
    cfg = tiny_config(fusion="fpn", fusion_kwargs=dict(output="all", width=6, kernel_size=5))
    model = MTGNN(MTGNNConfig.from_dict(cfg.to_dict()))
    assert model.fusion.output == "all" and model.fusion.width == 6
    assert model(torch.randn(1, 24, 4)).shape == (1, 6, 4)
    with pytest.raises(ValueError, match="fusion 'asff' does not take output"):
        MTGNN(tiny_config(fusion="asff", fusion_kwargs=dict(output="all")))


@pytest.mark.parametrize(("length", "target"), [(1, 97), (97, 145), (6, 24), (187, 1), (24, 7)])
def test_resize_time_equals_f_interpolate(length, target):
    x = torch.randn(2, 3, 4, length)
    mode = dict(mode="linear", align_corners=False) if target > length else dict(mode="area")
    expected = torch.nn.functional.interpolate(x.reshape(2, 12, length), size=target, **mode)
    torch.testing.assert_close(resize_time(x, target), expected.reshape(2, 3, 4, target))
