"""The long-horizon switches of MTGNNConfig: channel independence, the linear shortcut (and its
least-squares start) and the learned cycle."""

import numpy as np
import pytest
import torch

from tsattn.models.mtgnn import MTGNN, MTGNNConfig
from tsattn.nn.cycle import ResidualCycle
from tsattn.nn.shortcut import LinearShortcut, moving_average, phase_block

SMALL = dict(num_nodes=4, seq_len=24, horizon=6, layers=2, conv_channels=8, residual_channels=8,
             skip_channels=8, end_channels=8)  # fmt: skip


def test_channel_independent_output_of_a_variable_ignores_the_others():
    torch.manual_seed(0)
    model = MTGNN(MTGNNConfig(**SMALL, graph=False, channel_independent=True)).eval()
    x = torch.randn(3, 24, 4)
    changed = x.clone()
    changed[..., 1:] = torch.randn(3, 24, 3) * 10  # every variable but the first
    out, out_changed = model(x), model(changed)
    torch.testing.assert_close(out[..., 0], out_changed[..., 0])
    assert not torch.allclose(out[..., 1:], out_changed[..., 1:])


def test_channel_independent_equals_the_model_run_on_each_variable_alone():
    torch.manual_seed(0)
    cfg = MTGNNConfig(**SMALL, graph=False, channel_independent=True, time_features=2)
    model = MTGNN(cfg).eval()
    single = MTGNN(MTGNNConfig(**{**SMALL, "num_nodes": 1}, graph=False, time_features=2)).eval()
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("revin")}
    single.load_state_dict({**single.state_dict(), **state})
    x, marks = torch.randn(2, 24, 4), torch.randn(2, 24, 2)
    out = model(x, marks)
    for node in range(4):
        alone = single.revin.__class__(1, affine=True)
        alone.weight.data, alone.bias.data = (model.revin.weight.data[[node]],
                                              model.revin.bias.data[[node]])  # fmt: skip
        single.revin = alone
        torch.testing.assert_close(single(x[..., [node]], marks)[..., 0], out[..., node])


def test_linear_shortcut_model_starts_as_the_linear_forecast():
    torch.manual_seed(0)
    model = MTGNN(MTGNNConfig(**SMALL, graph=False, channel_independent=True,
                              linear_shortcut="linear")).eval()  # fmt: skip
    x = torch.randn(5, 24, 4) * 3 + 2
    mean, std = x.mean(1, keepdim=True), x.std(1, keepdim=True, unbiased=False)
    expected = model.shortcut((x - mean) / torch.sqrt(std**2 + 1e-5))
    expected = expected * torch.sqrt(std**2 + 1e-5) + mean
    torch.testing.assert_close(model(x), expected, rtol=1e-4, atol=1e-4)


def test_linear_shortcut_trains_both_paths():
    torch.manual_seed(0)
    model = MTGNN(MTGNNConfig(**SMALL, linear_shortcut="dlinear"))
    model(torch.randn(4, 24, 4)).pow(2).mean().backward()
    assert model.shortcut.linear.weight.grad.abs().sum() > 0
    assert model.shortcut.trend.weight.grad.abs().sum() > 0
    assert model.head[-1].weight.grad.abs().sum() > 0  # the zero-initialised deep head learns


def test_moving_average_matches_a_loop_with_replicated_edges():
    x = torch.randn(2, 11, 3)
    padded = torch.cat([x[:, :1].expand(-1, 2, -1), x, x[:, -1:].expand(-1, 2, -1)], dim=1)
    expected = torch.stack([padded[:, t : t + 5].mean(1) for t in range(11)], dim=1)
    torch.testing.assert_close(moving_average(x, 5), expected)


def test_dlinear_shortcut_is_trend_map_plus_remainder_map():
    torch.manual_seed(0)
    shortcut = LinearShortcut("dlinear", seq_len=24, horizon=6, kernel_size=5)
    x = torch.randn(3, 24, 2)
    trend = moving_average(x, 5)
    expected = shortcut.trend(trend.transpose(1, 2)) + shortcut.linear((x - trend).transpose(1, 2))
    torch.testing.assert_close(shortcut(x), expected.transpose(1, 2))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(linear_shortcut="cubic"), "linear_shortcut must be one of none, linear, dlinear"),
        (dict(decomposition_kernel=24), "decomposition_kernel must be an odd size"),
        (dict(channel_independent=True), "channel_independent=True .* needs graph=False"),
        (dict(cycle_length=-1), "cycle_length must be an int >= 0"),
        (dict(cycle_length="auto"), "cycle_length must be an int >= 0 .*'auto' is for the trainer"),
        (dict(head_stride=0), "head_stride must be an int >= 1"),
        (dict(input_scales=(4,)), "input_scales must hold odd ints >= 3"),
        (dict(input_scales=(1,)), "input_scales must hold odd ints >= 3"),
    ],
)
def test_bad_switches_raise_value_errors_naming_the_setting(options, message):
    with pytest.raises(ValueError, match=message):
        MTGNNConfig(**SMALL, **options)


def test_head_stride_forecasts_knots_and_interpolates_linearly_between_them():
    """With ``head_stride`` s the deep path's head has ceil((H - 1) / s) + 1 outputs, read as the
    forecast at steps 0, s, 2 s, ... of the horizon; the steps between are on the straight line
    between their two knots (N-HiTS' hierarchical interpolation)."""
    torch.manual_seed(0)
    options = dict(SMALL, horizon=10, graph=False, revin=False, dropout=0.0)
    model = MTGNN(MTGNNConfig(**options, head_stride=4)).eval()
    assert model.head[-1].out_channels == 4  # knots at steps 0, 4, 8 and 12 (cropped to 10)
    seen = []
    model.head.register_forward_hook(lambda module, args, output: seen.append(output))
    out = model(torch.randn(3, 24, 4))  # (3, 10, 4)
    knots = seen[0].squeeze(3)  # (3, 4 knots, 4 variables)
    for step in range(10):
        left, frac = divmod(step, 4)
        expected = knots[:, left] + (knots[:, left + 1] - knots[:, left]) * frac / 4
        torch.testing.assert_close(out[:, step], expected)
    plain = MTGNN(MTGNNConfig(**options)).eval()
    assert plain.head[-1].out_channels == 10 and MTGNNConfig(**options).head_stride == 1


def test_head_stride_at_least_the_horizon_keeps_the_first_and_last_step_as_knots():
    model = MTGNN(MTGNNConfig(**SMALL, graph=False, head_stride=50))
    assert model.head[-1].out_channels == 2
    assert model(torch.randn(2, 24, 4)).shape == (2, 6, 4)


def test_input_scales_feed_the_moving_averages_between_the_series_and_the_marks():
    """Each of ``input_scales`` adds an input channel after the series and before the calendar
    marks: the series' centred moving average over that many steps."""
    torch.manual_seed(0)
    options = dict(SMALL, graph=False, revin=False, dropout=0.0, time_features=2)
    model = MTGNN(MTGNNConfig(**options, input_scales=(5, 9))).eval()
    assert model.start_conv.in_channels == 1 + 2 + 2
    seen = []
    model.start_conv.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    x, marks = torch.randn(3, 24, 4), torch.randn(3, 24, 2)
    out = model(x, marks)
    h = seen[0]  # (B, 1 + S + F, N, T)
    torch.testing.assert_close(h[:, 0], x.transpose(1, 2))
    torch.testing.assert_close(h[:, 1], moving_average(x, 5).transpose(1, 2))
    torch.testing.assert_close(h[:, 2], moving_average(x, 9).transpose(1, 2))
    torch.testing.assert_close(h[:, 3:], marks.transpose(1, 2).unsqueeze(2).expand(-1, -1, 4, -1))

    # With the averages' weights at zero it is the plain model: nothing else reads them.
    plain = MTGNN(MTGNNConfig(**options)).eval()
    kept = [0, 3, 4]  # the series and the marks
    state = model.state_dict()
    for name in ("start_conv.weight", "fusion.convs.0.weight"):
        model.state_dict()[name][:, 1:3] = 0.0
        state[name] = state[name][:, kept]
    plain.load_state_dict(state)
    torch.testing.assert_close(model(x, marks), plain(x, marks))
    assert not torch.allclose(out, plain(x, marks))


def test_input_scales_round_trip_and_run_channel_independent():
    cfg = MTGNNConfig(**SMALL, graph=False, channel_independent=True, input_scales=[5, 25])
    assert cfg.input_scales == (5, 25) and cfg.to_dict()["input_scales"] == [5, 25]
    assert MTGNNConfig.from_dict(cfg.to_dict()) == cfg
    assert MTGNN(cfg)(torch.randn(2, 24, 4)).shape == (2, 6, 4)


def test_cycle_is_read_at_each_windows_phase():
    cycle = ResidualCycle(cycle_length=5, num_nodes=2)
    with torch.no_grad():
        cycle.values.copy_(torch.arange(10.0).reshape(5, 2))
    out = cycle(torch.tensor([0, 3, 8]), offset=4, length=3)  # (3, 3, 2)
    for b, start in enumerate([0, 3, 8]):
        rows = [(start + 4 + t) % 5 for t in range(3)]
        torch.testing.assert_close(out[b], cycle.values[rows])


def test_cycle_model_starts_as_the_model_without_and_depends_only_on_the_phase():
    torch.manual_seed(0)
    plain = MTGNN(MTGNNConfig(**SMALL, graph=False)).eval()
    torch.manual_seed(0)
    model = MTGNN(MTGNNConfig(**SMALL, graph=False, cycle_length=24)).eval()
    x, step = torch.randn(3, 24, 4), torch.tensor([0, 5, 30])
    torch.testing.assert_close(model(x, step=step), plain(x))  # the cycle starts at zero
    with torch.no_grad():
        model.cycle.values.normal_()
    torch.testing.assert_close(model(x, step=step), model(x, step=step + 48))  # whole cycles
    assert not torch.allclose(model(x, step=step), model(x, step=step + 1))
    with pytest.raises(ValueError, match=r"cycle_length=24 and needs each window's grid position"):
        model(x)


def test_cycle_is_removed_from_the_input_and_added_to_the_forecast():
    """A series that is exactly the learned cycle leaves the backbone a zero input (no RevIN),
    so the forecast is the cycle continued."""
    torch.manual_seed(0)
    cfg = MTGNNConfig(**SMALL, graph=False, cycle_length=6, revin=False)
    model = MTGNN(cfg).eval()
    with torch.no_grad():
        model.cycle.values.normal_()
    zero = MTGNN(MTGNNConfig(**SMALL, graph=False, revin=False)).eval()
    zero.load_state_dict({k: v for k, v in model.state_dict().items() if "cycle" not in k})
    step = torch.tensor([2])
    series = model.cycle(step, 0, 24)  # (1, 24, 4)
    expected = zero(torch.zeros(1, 24, 4)) + model.cycle(step, 24, 6)
    torch.testing.assert_close(model(series, step=step), expected)


def test_least_squares_start_equals_a_numpy_fit_for_both_shortcuts():
    torch.manual_seed(0)
    x, y = torch.randn(40, 24, 3), torch.randn(40, 6, 3)
    for kind in ("linear", "dlinear"):
        shortcut = LinearShortcut(kind, seq_len=24, horizon=6, kernel_size=5)
        pairs = [(x[:25], y[:25]), (x[25:], y[25:])]
        assert shortcut.fit_least_squares(pairs, ridge=1e-9) == 120  # DLinear: collinear parts
        # DLinear's two maps together are one linear map of the window: the same forecasts.
        feats = x.double().transpose(1, 2).reshape(-1, 24).numpy()
        design = np.concatenate([feats, np.ones((len(feats), 1))], 1)
        target = y.double().transpose(1, 2).reshape(-1, 6).numpy()
        solution = np.linalg.lstsq(design, target, rcond=None)[0]
        expected = torch.from_numpy(design @ solution).float().reshape(40, 3, 6).transpose(1, 2)
        torch.testing.assert_close(shortcut(x), expected, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="got no windows"):
        shortcut.fit_least_squares([])


def test_weighted_least_squares_start_equals_a_numpy_weighted_fit():
    """A sample of weight w counts as its row scaled by sqrt(w); weights of one change nothing."""
    torch.manual_seed(0)
    x, y = torch.randn(40, 24, 3), torch.randn(40, 6, 3)
    weight = torch.rand(40, 3) * 4 + 0.01  # (B, N)
    shortcut = LinearShortcut("linear", seq_len=24, horizon=6)
    pairs = [(x[:25], y[:25], weight[:25]), (x[25:], y[25:], weight[25:])]
    assert shortcut.fit_least_squares(pairs, ridge=0.0) == 120
    feats = x.double().transpose(1, 2).reshape(-1, 24).numpy()
    design = np.concatenate([feats, np.ones((len(feats), 1))], 1)
    target = y.double().transpose(1, 2).reshape(-1, 6).numpy()
    root = np.sqrt(weight.double().reshape(-1, 1).numpy())  # (B*N, 1), the samples' order
    solution = np.linalg.lstsq(design * root, target * root, rcond=None)[0]
    expected = torch.from_numpy(design @ solution).float().reshape(40, 3, 6).transpose(1, 2)
    torch.testing.assert_close(shortcut(x), expected, atol=1e-4, rtol=1e-4)
    plain = LinearShortcut("linear", seq_len=24, horizon=6)
    plain.fit_least_squares([(x, y)], ridge=0.0)
    shortcut.fit_least_squares([(x, y, torch.ones(40, 3))], ridge=0.0)
    torch.testing.assert_close(shortcut(x), plain(x), atol=1e-5, rtol=1e-5)


def _numpy_fit(x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor) -> np.ndarray:
    """Weighted least squares with an intercept: rows ``(B, L)`` -> targets ``(B, H)``."""
    design = np.concatenate([x.double().numpy(), np.ones((len(x), 1))], 1)
    root = np.sqrt(weight.double().numpy())[:, None]
    solution = np.linalg.lstsq(design * root, y.double().numpy() * root, rcond=None)[0]
    return design @ solution  # (B, H), the fitted forecasts


def test_per_variable_start_fits_each_variable_on_its_own_windows():
    """Each variable's map is the weighted fit of that variable's samples alone, for both
    shortcuts (DLinear's two maps together are one linear map of the window)."""
    torch.manual_seed(0)
    x, y = torch.randn(60, 24, 3), torch.randn(60, 6, 3)
    y[..., 1] += 2.0 * x[:, -6:, 1]  # the variables follow different maps
    weight = torch.rand(60, 3) * 4 + 0.01  # (B, N)
    for kind in ("linear", "dlinear"):
        shortcut = LinearShortcut(kind, seq_len=24, horizon=6, kernel_size=5, num_nodes=3)
        pairs = [(x[:25], y[:25], weight[:25]), (x[25:], y[25:], weight[25:])]
        assert shortcut.fit_least_squares(pairs, ridge=1e-9) == 180
        out = shortcut(x)  # (B, H, N)
        for node in range(3):
            expected = _numpy_fit(x[..., node], y[..., node], weight[:, node])
            torch.testing.assert_close(out[..., node], torch.from_numpy(expected).float(),
                                       atol=1e-4, rtol=1e-4)  # fmt: skip


def test_shrinking_pulls_the_maps_per_variable_to_the_shared_fit():
    torch.manual_seed(0)
    x, y = torch.randn(60, 24, 3), torch.randn(60, 6, 3)
    y[..., 1] += 2.0 * x[:, -6:, 1]
    shared = LinearShortcut("linear", seq_len=24, horizon=6)
    shared.fit_least_squares([(x, y)])
    alone = LinearShortcut("linear", seq_len=24, horizon=6, num_nodes=3)
    alone.fit_least_squares([(x, y)])
    shrunk = LinearShortcut("linear", seq_len=24, horizon=6, num_nodes=3)
    shrunk.fit_least_squares([(x, y)], shrink=1e9)  # weights and intercept: the shared fit
    torch.testing.assert_close(shrunk(x), shared(x), atol=1e-4, rtol=1e-4)
    shrunk.fit_least_squares([(x, y)], shrink=1.0)
    gap_alone = (alone(x) - shared(x)).abs().mean()
    gap_shrunk = (shrunk(x) - shared(x)).abs().mean()
    assert 0 < gap_shrunk < gap_alone
    with pytest.raises(ValueError, match=r"shrink=-1\.0 must both be >= 0"):
        shrunk.fit_least_squares([(x, y)], shrink=-1.0)


def test_a_variable_without_a_finite_sample_gets_the_shared_fit():
    torch.manual_seed(0)
    x, y = torch.randn(60, 24, 3), torch.randn(60, 6, 3)
    x[..., 2] = float("nan")
    shared = LinearShortcut("linear", seq_len=24, horizon=6)
    assert shared.fit_least_squares([(x, y)]) == 120
    per_variable = LinearShortcut("linear", seq_len=24, horizon=6, num_nodes=3)
    assert per_variable.fit_least_squares([(x, y)]) == 120
    torch.testing.assert_close(per_variable.linear.weight[2], shared.linear.weight)
    torch.testing.assert_close(per_variable.linear.bias[2], shared.linear.bias)
    with pytest.raises(ValueError, match="windows of 3 variables for maps of 4"):
        LinearShortcut("linear", 24, 6, num_nodes=4).fit_least_squares([(x, y)])


def test_model_with_maps_per_variable_forecasts_each_variable_with_its_own_map():
    cfg = MTGNNConfig(**SMALL, graph=False, channel_independent=True, linear_shortcut="linear",
                      shortcut_per_variable=True)  # fmt: skip
    model = MTGNN(cfg).eval()
    assert tuple(model.shortcut.linear.weight.shape) == (4, 6, 24)  # (N, H, L)
    x = torch.randn(2, 24, 4)
    before = model(x)
    with torch.no_grad():
        model.shortcut.linear.weight[1] += torch.randn(6, 24)  # (H, L)
    after = model(x)
    changed = (after - before).abs().amax(dim=(0, 1))  # (N,)
    assert changed[1] > 1e-3
    torch.testing.assert_close(changed[[0, 2, 3]], torch.zeros(3))
    assert MTGNNConfig.from_dict(cfg.to_dict()) == cfg


def test_cross_variable_maps_read_every_variables_look_back():
    """Each forecast variable's map covers every variable's window: a change in one variable's
    input moves every variable's forecast, as the explicit sum over variables says."""
    torch.manual_seed(0)
    shortcut = LinearShortcut("linear", seq_len=24, horizon=6, num_nodes=3, cross_variable=True)
    weight = shortcut.linear.weight.view(3, 6, 3, 24)  # (N out, H, N in, L)
    x = torch.randn(5, 24, 3)
    expected = torch.einsum("bln,mhnl->bhm", x, weight) + shortcut.linear.bias.T  # (B, H, N)
    torch.testing.assert_close(shortcut(x), expected, atol=1e-5, rtol=1e-5)
    changed = x.clone()
    changed[..., 2] += 1.0
    assert ((shortcut(changed) - shortcut(x)).abs().amax(dim=(0, 1)) > 1e-3).all()


def test_cross_variable_start_recovers_a_relation_between_variables():
    """The closed-form fit of cross-variable maps finds a forecast that reads another
    variable (variable 0 repeats variable 1 three steps later), which a map of the variable's
    own window cannot; by default it is the fit with the penalty CROSS_RIDGE."""
    from tsattn.nn.shortcut import CROSS_RIDGE

    torch.manual_seed(0)
    x, y = torch.randn(200, 24, 2), torch.randn(200, 6, 2)
    y[:, :3, 0] = x[:, -3:, 1]  # variable 0's next 3 steps repeat variable 1's last 3
    cross = LinearShortcut("linear", seq_len=24, horizon=6, num_nodes=2, cross_variable=True)
    cross.fit_least_squares([(x, y)], ridge=0.0)
    own = LinearShortcut("linear", seq_len=24, horizon=6, num_nodes=2)
    own.fit_least_squares([(x, y)], ridge=0.0)
    # the first 3 steps of variable 0 follow from variable 1's last inputs
    torch.testing.assert_close(cross(x)[:, :3, 0], y[:, :3, 0], atol=1e-4, rtol=1e-4)
    assert (own(x)[:, :3, 0] - y[:, :3, 0]).abs().mean() > 0.3
    default = LinearShortcut("linear", seq_len=24, horizon=6, num_nodes=2, cross_variable=True)
    default.fit_least_squares([(x, y)])
    cross.fit_least_squares([(x, y)], ridge=CROSS_RIDGE)
    torch.testing.assert_close(default(x), cross(x))
    with pytest.raises(ValueError, match="no shared map to shrink towards"):
        cross.fit_least_squares([(x, y)], shrink=1.0)


def test_model_with_cross_variable_maps_mixes_variables_only_in_the_shortcut():
    """A channel-independent network beside cross-variable maps: with the maps at zero the
    forecast of a variable ignores the others, with them it does not; the config round-trips
    and the model trains."""
    cfg = MTGNNConfig(**SMALL, graph=False, channel_independent=True, linear_shortcut="linear",
                      shortcut_cross_variable=True)  # fmt: skip
    assert MTGNNConfig.from_dict(cfg.to_dict()) == cfg
    torch.manual_seed(0)
    model = MTGNN(cfg).eval()
    assert tuple(model.shortcut.linear.weight.shape) == (4, 6, 4 * 24)  # (N, H, N * L)
    x = torch.randn(2, 24, 4)
    changed = x.clone()
    changed[..., 1:] += torch.randn(2, 24, 3)
    assert not torch.allclose(model(x)[..., 0], model(changed)[..., 0])
    with torch.no_grad():
        model.shortcut.linear.weight.zero_()
    torch.testing.assert_close(model(x)[..., 0], model(changed)[..., 0])
    model.train()
    loss = model(x).pow(2).mean()
    loss.backward()
    assert model.shortcut.linear.weight.grad.abs().sum() > 0


def test_per_phase_maps_map_each_window_by_its_blocks_map():
    """Each window's forecast is the map of its own phase block, the same for every variable,
    as the explicit per-window product says; the shortcut needs the blocks, and only it."""
    torch.manual_seed(0)
    shortcut = LinearShortcut("linear", seq_len=24, horizon=6, phases=4)
    weight, bias = shortcut.linear.weight, shortcut.linear.bias  # (P, H, L), (P, H)
    assert tuple(weight.shape) == (4, 6, 24)
    x, phase = torch.randn(5, 24, 3), torch.tensor([0, 3, 1, 3, 2])
    expected = torch.stack([
        torch.einsum("ln,hl->hn", x[i], weight[p]) + bias[p][:, None]
        for i, p in enumerate(phase.tolist())
    ])  # (B, H, N)  # fmt: skip
    torch.testing.assert_close(shortcut(x, phase), expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="phase missing"):
        shortcut(x)
    with pytest.raises(ValueError, match="phase given"):
        LinearShortcut("linear", seq_len=24, horizon=6)(x, phase)
    # blocks of consecutive positions: 96 positions in 24 blocks of 4, 7 in 7 blocks of 1
    assert phase_block(torch.tensor([0, 3, 4, 95, 96, 100]), 96).tolist() == [0, 0, 1, 23, 0, 1]
    assert phase_block(torch.arange(8), 7).tolist() == [0, 1, 2, 3, 4, 5, 6, 0]


def test_per_phase_start_recovers_a_relation_that_changes_with_the_phase():
    """Windows of block 0 continue their last value, those of block 1 its opposite: maps per
    block fitted alone recover both, the shared map neither; by default each block is pulled
    towards the shared fit by PHASE_SHRINK, and a large pull gives the shared fit back."""
    from tsattn.nn.shortcut import PHASE_SHRINK

    torch.manual_seed(0)
    x, phase = torch.randn(400, 24, 3), torch.arange(400) % 2
    sign = torch.where(phase == 0, 1.0, -1.0)[:, None, None]
    y = sign * x[:, -1:, :].expand(-1, 6, -1)  # (B, H, N)
    per_phase = LinearShortcut("linear", seq_len=24, horizon=6, phases=2)
    per_phase.fit_least_squares([(x, y, None, phase)], ridge=0.0, shrink=0.0)
    torch.testing.assert_close(per_phase(x, phase), y, atol=1e-4, rtol=1e-4)
    shared = LinearShortcut("linear", seq_len=24, horizon=6)
    shared.fit_least_squares([(x, y)], ridge=0.0)
    assert (shared(x) - y).abs().mean() > 0.5
    default = LinearShortcut("linear", seq_len=24, horizon=6, phases=2)
    default.fit_least_squares([(x, y, None, phase)])
    per_phase.fit_least_squares([(x, y, None, phase)], shrink=PHASE_SHRINK)
    torch.testing.assert_close(default(x, phase), per_phase(x, phase))
    per_phase.fit_least_squares([(x, y, None, phase)], shrink=1e6)
    torch.testing.assert_close(per_phase(x, phase), shared(x), atol=1e-3, rtol=1e-3)
    with pytest.raises(ValueError, match="need each window's block"):
        per_phase.fit_least_squares([(x, y)])


def test_model_with_per_phase_maps_reads_the_block_of_the_first_forecast_step():
    """The model maps each window by the block of its first forecast step (``step + seq_len``
    on the cycle): changing one block's map moves only the windows of that block; the config
    round-trips and the maps train."""
    cfg = MTGNNConfig(**SMALL, graph=False, channel_independent=True, linear_shortcut="linear",
                      cycle_length=48, shortcut_per_phase=True)  # fmt: skip
    assert MTGNNConfig.from_dict(cfg.to_dict()) == cfg
    torch.manual_seed(0)
    model = MTGNN(cfg).eval()
    assert tuple(model.shortcut.linear.weight.shape) == (24, 6, 24)  # (P, H, L): 24 blocks of 2
    step = torch.tensor([0, 1, 2, 30])  # first forecast steps 24, 25, 26, 54: blocks 12, 12, 13, 3
    assert model.shortcut_phase(step).tolist() == [12, 12, 13, 3]
    x = torch.randn(4, 24, 4)
    before = model(x, step=step)
    with torch.no_grad():
        model.shortcut.linear.weight[12] += torch.randn(6, 24)
    moved = (model(x, step=step) - before).abs().amax(dim=(1, 2))  # (B,)
    assert (moved[:2] > 1e-3).all()
    torch.testing.assert_close(moved[2:], torch.zeros(2))
    model.train()
    model(x, step=step).pow(2).mean().backward()
    grad = model.shortcut.linear.weight.grad.abs().sum(dim=(1, 2))  # (P,)
    assert (grad[[12, 13, 3]] > 0).all() and grad.sum() == grad[[12, 13, 3]].sum()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(shortcut_cross_variable=True), "shortcut_cross_variable=True .* needs linear_sh"),
        (dict(linear_shortcut="dlinear", shortcut_cross_variable=True),
         "shortcut_cross_variable=True .* needs linear_shortcut='linear'"),
        (dict(linear_shortcut="linear", shortcut_cross_variable=True,
              shortcut_per_variable=True), "shortcut_cross_variable=True already gives"),
        (dict(linear_shortcut="linear", shortcut_cross_variable="auto"),
         "shortcut_cross_variable must be true or false"),
    ],
)  # fmt: skip
def test_bad_cross_variable_settings_raise_value_errors_naming_the_setting(options, message):
    with pytest.raises(ValueError, match=message):
        MTGNNConfig(**SMALL, **options)
    with pytest.raises(ValueError, match="need kind='linear' and the number of variables"):
        LinearShortcut("dlinear", 24, 6, num_nodes=4, cross_variable=True)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(cycle_length=24, shortcut_per_phase=True),
         "shortcut_per_phase=True .* needs linear_shortcut='linear'"),
        (dict(linear_shortcut="dlinear", cycle_length=24, shortcut_per_phase=True),
         "shortcut_per_phase=True .* needs linear_shortcut='linear'"),
        (dict(linear_shortcut="linear", shortcut_per_phase=True),
         "shortcut_per_phase=True .* needs cycle_length > 0"),
        (dict(linear_shortcut="linear", cycle_length=24, shortcut_per_phase=True,
              shortcut_per_variable=True), "shortcut_per_phase=True shares each block's map"),
        (dict(linear_shortcut="linear", cycle_length=24, shortcut_per_phase="auto"),
         "shortcut_per_phase must be true or false"),
    ],
)  # fmt: skip
def test_bad_per_phase_settings_raise_value_errors_naming_the_setting(options, message):
    with pytest.raises(ValueError, match=message):
        MTGNNConfig(**SMALL, **options)
    for bad in (dict(kind="dlinear", phases=4), dict(kind="linear", phases=0),
                dict(kind="linear", phases=4, num_nodes=3)):  # fmt: skip
        with pytest.raises(ValueError, match=r"phases=.*maps per phase block need"):
            LinearShortcut(seq_len=24, horizon=6, **bad)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(shortcut_per_variable=True), "shortcut_per_variable=True .* needs linear_shortcut"),
        (dict(linear_shortcut="linear", shortcut_per_variable="yes"),
         "shortcut_per_variable must be true or false"),
    ],
)  # fmt: skip
def test_bad_per_variable_settings_raise_value_errors_naming_the_setting(options, message):
    with pytest.raises(ValueError, match=message):
        MTGNNConfig(**SMALL, **options)


def test_level_offset_is_one_more_input_of_the_linear_map():
    """With ``shortcut_level`` the map reads the look-back and then the level offset; a weight
    of 1 on the offset alone forecasts the training level itself at every step."""
    torch.manual_seed(0)
    model = MTGNN(MTGNNConfig(**SMALL, graph=False, channel_independent=True,
                              linear_shortcut="linear", shortcut_level=True)).eval()  # fmt: skip
    assert model.shortcut.linear.in_features == SMALL["seq_len"] + 1
    model.level.copy_(torch.tensor([5.0, -1.0, 0.0, 2.0]))
    with torch.no_grad():
        model.shortcut.linear.weight.zero_()
        model.shortcut.linear.bias.zero_()
        model.shortcut.linear.weight[:, -1] = 1.0
    x = torch.randn(3, SMALL["seq_len"], 4) * 2 + 7
    out = model(x)
    torch.testing.assert_close(out, model.level.expand_as(out), rtol=0, atol=1e-4)
    with torch.no_grad():
        model.shortcut.linear.weight[:, -1] = 0.25  # a quarter of the way to the level
    mean = x.mean(1, keepdim=True)
    torch.testing.assert_close(model(x), (mean + 0.25 * (model.level - mean)).expand_as(out),
                               rtol=0, atol=1e-4)  # fmt: skip
    assert "level" in model.state_dict()  # saved with the model


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(shortcut_level=True), "shortcut_level=True .* needs linear_shortcut='linear'"),
        (dict(linear_shortcut="dlinear", shortcut_level=True),
         "shortcut_level=True .* needs linear_shortcut='linear'"),
        (dict(linear_shortcut="linear", revin=False, shortcut_level=True),
         "shortcut_level=True .* and revin=True"),
        (dict(linear_shortcut="linear", shortcut_level="auto"),
         "shortcut_level must be true or false"),
    ],
)  # fmt: skip
def test_bad_level_settings_raise_value_errors_naming_the_setting(options, message):
    with pytest.raises(ValueError, match=message):
        MTGNNConfig(**SMALL, **options)
