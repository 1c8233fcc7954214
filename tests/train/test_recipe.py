"""The long-horizon recipe applies under multi-step protocols, and explicit settings win."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from tsattn.train import TrainConfig
from tsattn.train.config import RunConfig
from tsattn.train.recipe import long_horizon_recipe, resolve_model_options
from tsattn.train.trainer import split_loader


def test_recipe_fills_only_unset_model_fields():
    resolved = resolve_model_options("tslib", 7, 96, {"conv_channels": 32, "mixer": "eca"})
    assert resolved["conv_channels"] == 32 and resolved["mixer"] == "eca"
    assert resolved["channel_independent"] is True and resolved["graph"] is False
    assert resolved["residual_channels"] == long_horizon_recipe(7, 96)["residual_channels"]


def test_recipe_learns_the_daily_cycle_of_data_that_have_one():
    assert resolve_model_options("tslib", 7, 96, {}, freq="h")["cycle_length"] == 24
    assert resolve_model_options("tslib", 21, 96, {}, freq="10min")["cycle_length"] == 144
    assert resolve_model_options("holdout", 3, 24, {})["cycle_length"] == 0  # no calendar
    assert resolve_model_options("tslib", 7, 96, {"cycle_length": 0}, freq="h")["cycle_length"] == 0
    assert "cycle_length" not in resolve_model_options("mtgnn", 8, 3, {}, freq="h")


def test_recipe_leaves_the_single_step_protocol_and_recipe_none_alone():
    assert resolve_model_options("mtgnn", 8, 3, {"layers": 5}) == {"layers": 5}
    assert resolve_model_options("tslib", 7, 96, {"layers": 2}, recipe="none") == {"layers": 2}


def test_asking_for_the_graph_turns_channel_independence_off():
    resolved = resolve_model_options("holdout", 7, 24, {"graph": True})
    assert resolved["graph"] is True and resolved["channel_independent"] is False


def test_recipe_learns_the_graph_of_data_with_many_variables_only():
    from tsattn.train.recipe import GRAPH_FROM

    few = resolve_model_options("tslib", GRAPH_FROM - 1, 96, {}, freq="h")
    many = resolve_model_options("tslib", GRAPH_FROM, 96, {}, freq="h")
    assert few["graph"] is False and few["channel_independent"] is True
    assert many["graph"] is True and many["channel_independent"] is False
    assert resolve_model_options("tslib", 21, 720, {})["graph"] is True  # at every horizon


def test_turning_the_graph_off_on_many_variables_trains_them_each_on_their_own():
    for options in ({"graph": False}, {"channel_independent": True}):
        resolved = resolve_model_options("tslib", 21, 96, options)
        assert resolved["graph"] is False and resolved["channel_independent"] is True
    both = resolve_model_options("tslib", 21, 96, {"graph": False, "channel_independent": False})
    assert both["graph"] is False and both["channel_independent"] is False


def test_unknown_recipe_is_a_value_error_naming_the_setting():
    with pytest.raises(ValueError, match=r"train\.recipe='best' is not valid"):
        TrainConfig(recipe="best")


def test_auto_loss_is_l1_under_the_recipe_and_mse_elsewhere():
    from tsattn.train.recipe import resolve_loss

    assert resolve_loss("tslib", "auto") == "l1" and resolve_loss("holdout", "auto") == "l1"
    assert resolve_loss("mtgnn", "auto") == "mse"
    assert resolve_loss("tslib", "auto", recipe="none") == "mse"
    assert resolve_loss("tslib", "mse") == "mse"


def test_fit_trains_the_recipe_model_with_the_resolved_loss(tmp_path):
    from tests.train.conftest import TINY_MODEL
    from tests.train.toy import ToyDataModule
    from tsattn.train import fit_datamodule

    result = fit_datamodule(ToyDataModule(protocol="holdout"), model=TINY_MODEL,
                            train=TrainConfig(max_steps=1, progress_bar=False, patience=0),
                            run_dir=tmp_path)  # fmt: skip
    assert result.module.train_config.loss == "l1"
    assert result.module.model_config.channel_independent is True


def test_fit_learns_the_graph_of_data_with_many_variables(tmp_path):
    from tests.train.conftest import TINY_MODEL
    from tests.train.toy import ToyDataModule
    from tsattn.train import fit_datamodule
    from tsattn.train.recipe import GRAPH_FROM

    train = TrainConfig(max_steps=1, progress_bar=False, patience=0)
    data = ToyDataModule(protocol="holdout", num_nodes=GRAPH_FROM)
    result = fit_datamodule(data, model=TINY_MODEL, train=train, run_dir=tmp_path)
    config = result.module.model_config
    assert config.graph is True and config.channel_independent is False
    assert result.module.model.adjacency().shape == (GRAPH_FROM, GRAPH_FROM)


def test_fit_config_trains_with_the_runs_model_train_and_data_settings(tmp_path):
    from tests.train.conftest import TINY_MODEL
    from tests.train.toy import ToyDataModule
    from tsattn.train import RunConfig, fit_config

    train = TrainConfig(max_steps=1, progress_bar=False, patience=0, loss="mse", seed=3)
    config = RunConfig(model={**TINY_MODEL, "layers": 1}, train=train)
    result = fit_config(config, ToyDataModule(protocol="holdout"), tmp_path, test=False)
    assert result.module.model_config.layers == 1  # the run's model settings
    assert result.module.train_config.loss == "mse" and result.module.train_config.seed == 3
    assert "test_mse" not in result.metrics  # fit_datamodule's own keywords pass through


def test_auto_cycle_length_is_the_daily_cycle_of_the_data():
    assert (
        resolve_model_options("tslib", 7, 96, {"cycle_length": "auto"}, freq="h")["cycle_length"]
        == 24
    )
    assert (
        resolve_model_options("tslib", 7, 96, {"cycle_length": "auto"}, freq="10min")[
            "cycle_length"
        ]
        == 144
    )
    assert resolve_model_options("holdout", 7, 96, {"cycle_length": "auto"})["cycle_length"] == 0
    assert RunConfig.from_dict({"model": {"cycle_length": "auto"}}).model["cycle_length"] == "auto"
    with pytest.raises(ValueError, match=r"model\.cycle_length='daily' is not a number"):
        RunConfig.from_dict({"model": {"cycle_length": "daily"}})


def test_unknown_shortcut_init_is_a_value_error_naming_the_setting():
    with pytest.raises(ValueError, match=r"train\.shortcut_init='zeros' is not valid"):
        TrainConfig(shortcut_init="zeros")


def test_fit_starts_the_shortcut_at_the_least_squares_fit_of_the_training_windows(tmp_path):
    """With no optimiser step taken (lr ~ 0), the trained model is the closed-form fit."""
    from tests.train.conftest import TINY_MODEL
    from tests.train.toy import ToyDataModule
    from tsattn.train import fit_datamodule

    dm = ToyDataModule(protocol="holdout")
    train = TrainConfig(max_steps=1, progress_bar=False, patience=0, lr=1e-12, loss="mse",
                        shortcut_init="least_squares")  # fmt: skip
    result = fit_datamodule(dm, model=TINY_MODEL, train=train, run_dir=tmp_path, test=False)
    model = result.module.model
    x, y, _ = dm.sets["train"][:]
    xn, stats = model.revin.normalize(x)
    feats = xn.double().transpose(1, 2).reshape(-1, x.shape[1]).detach().numpy()
    design = np.concatenate([feats, np.ones((len(feats), 1))], 1)
    target = model.revin.normalize_target(y, stats).double().transpose(1, 2)
    target = target.reshape(len(feats), -1).detach().numpy()
    # The fit is ridge regression with a penalty of 1e-4 x the mean diagonal of X^T X (a
    # normalised window sums to zero: its regressors are collinear with the intercept).
    gram = design.T @ design
    size = gram.shape[0] - 1
    gram[range(size), range(size)] += 1e-4 * gram.diagonal()[:size].mean()
    expected = design @ np.linalg.solve(gram, design.T @ target)
    fitted = model.shortcut(xn).double().transpose(1, 2).reshape(len(feats), -1)
    np.testing.assert_allclose(fitted.detach().numpy(), expected, atol=2e-3)
    train = dataclasses.replace(train, shortcut_init="random")
    random = fit_datamodule(dm, model=TINY_MODEL, run_dir=tmp_path / "r", train=train, test=False)
    guess = random.module.model.shortcut(xn).double().transpose(1, 2).reshape(len(feats), -1)
    assert np.mean((guess.detach().numpy() - target) ** 2) > 1.5 * np.mean((expected - target) ** 2)


def test_a_cycle_under_a_protocol_with_a_gap_is_refused(tmp_path):
    from tests.train.conftest import TINY_MODEL
    from tsattn.data import TimeSeriesDataModule
    from tsattn.train import fit_datamodule

    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(400, 3)),
                         index=pd.date_range("2024-01-01", periods=400, freq="h"))  # fmt: skip
    dm = TimeSeriesDataModule(frame, 24, 3, protocol="mtgnn")
    with pytest.raises(ValueError, match=r"model.cycle_length=24 needs forecasts that follow"):
        fit_datamodule(dm, model={**TINY_MODEL, "cycle_length": "auto"}, run_dir=tmp_path,
                       train=TrainConfig(max_steps=1, progress_bar=False))  # fmt: skip


def test_auto_lr_is_the_recipes_under_the_recipe_and_mtgnns_elsewhere():
    from tsattn.train.recipe import DEFAULT_LR, RECIPE_LR, resolve_lr

    assert resolve_lr("tslib", "auto") == RECIPE_LR
    assert resolve_lr("tslib", "auto", recipe="none") == resolve_lr("mtgnn", "auto") == DEFAULT_LR
    assert resolve_lr("holdout", 5e-3) == 5e-3
    assert RunConfig().with_overrides(["train.lr=2e-4"]).train.lr == 2e-4
    assert RunConfig().with_overrides(["train.lr=auto"]).train.lr == "auto"
    with pytest.raises(ValueError, match=r"train\.lr='fast' is not a number or 'auto'"):
        TrainConfig(lr="fast")
    with pytest.raises(ValueError, match=r"train\.lr=-1\.0 must be > 0"):
        TrainConfig(lr=-1.0)


def test_unknown_cycle_init_is_a_value_error_naming_the_setting():
    with pytest.raises(ValueError, match=r"train\.cycle_init='ones' is not valid"):
        TrainConfig(cycle_init="ones")


def _daily_frame(rows: int = 600) -> pd.DataFrame:
    hours = np.arange(rows)
    g = np.random.default_rng(0)
    values = np.stack([np.sin(2 * np.pi * hours / 24) * 3 + g.normal(0, 0.3, rows),
                       np.cos(2 * np.pi * hours / 24) + 0.01 * hours], 1)  # fmt: skip
    return pd.DataFrame(values, index=pd.date_range("2024-01-01 05:00", periods=rows, freq="h"))


def _daily_start(tmp_path, shortcut_init: str):
    """A tiny recipe model with a daily cycle fitted on ``_daily_frame`` with no optimiser step
    taken (lr ~ 0), and its training windows normalised as the model sees them."""
    from tests.train.conftest import TINY_MODEL
    from tsattn.data import TimeSeriesDataModule
    from tsattn.train import fit_datamodule

    dm = TimeSeriesDataModule(_daily_frame(), 48, 12, protocol="tslib", batch_size=16)
    train = TrainConfig(max_steps=1, progress_bar=False, patience=0, lr=1e-12, loss="mse",
                        shortcut_init=shortcut_init)  # fmt: skip
    model_options = {**TINY_MODEL, "cycle_length": "auto"}
    result = fit_datamodule(dm, model=model_options, train=train, run_dir=tmp_path, test=False)
    model = result.module.model
    xs, ys, steps = zip(*[(x, y, step) for x, y, _, step in dm.train_dataloader()], strict=True)
    x, y, step = torch.cat(xs), torch.cat(ys), torch.cat(steps)
    with torch.no_grad():
        xn, stats = model.revin.normalize(x)
        yn = model.revin.normalize_target(y, stats)
    return dm, train, model_options, model, step, xn, yn, stats


def test_fit_starts_the_cycle_at_its_phase_means_and_the_shortcut_at_what_it_leaves(tmp_path):
    """With no optimiser step taken (lr ~ 0): each phase of the cycle is the mean of the
    normalised training inputs at that hour, and the shortcut is the least-squares fit of the
    inputs and targets with the cycle taken out."""
    from tsattn.nn.shortcut import LinearShortcut
    from tsattn.train import fit_datamodule

    dm, train, model_options, model, step, xn, yn, _ = _daily_start(tmp_path, "least_squares")
    phase = (step[:, None] + torch.arange(48)) % 24  # (B, L)
    expected = np.stack([xn.double()[phase == p].mean(0).numpy() for p in range(24)])
    np.testing.assert_allclose(model.cycle.values.detach().numpy(), expected, atol=1e-5)
    reference = LinearShortcut("linear", 48, 12)
    with torch.no_grad():
        reference.fit_least_squares(
            [(xn - model.cycle(step, 0, 48), yn - model.cycle(step, 48, 12))]
        )
        torch.testing.assert_close(model.shortcut(xn), reference(xn), atol=1e-4, rtol=1e-4)
    zero = fit_datamodule(dm, model=model_options, run_dir=tmp_path / "z", test=False,
                          train=dataclasses.replace(train, cycle_init="zero"))  # fmt: skip
    assert zero.module.model.cycle.values.abs().max() < 1e-9  # one step at lr 1e-12 from 0


def test_weighted_start_fits_the_shortcut_with_each_windows_variance_as_weight(tmp_path):
    """``shortcut_init=weighted_least_squares``: the shortcut is the least-squares fit of what
    the cycle leaves, each window's variable weighted by its RevIN variance, which is the
    squared error of the denormalised forecast; it differs from the unweighted fit."""
    from tsattn.nn.shortcut import LinearShortcut

    *_, model, step, xn, yn, stats = _daily_start(tmp_path, "weighted_least_squares")
    with torch.no_grad():
        xr, yr = xn - model.cycle(step, 0, 48), yn - model.cycle(step, 48, 12)
        weighted, plain = LinearShortcut("linear", 48, 12), LinearShortcut("linear", 48, 12)
        weighted.fit_least_squares([(xr, yr, stats.std.squeeze(1) ** 2)])
        plain.fit_least_squares([(xr, yr)])
        torch.testing.assert_close(model.shortcut(xr), weighted(xr), atol=1e-4, rtol=1e-4)
        assert (weighted(xr) - plain(xr)).abs().max() > 1e-3


def test_start_trim_leaves_the_window_variables_with_a_gross_outlier_out_of_the_start(tmp_path):
    """``start_trim=10``: a -9999 sentinel in one training row of variable 0 (about 20 training
    standard deviations from its mean) leaves every window whose input or target holds it out
    of variable 0's phase means and of the shortcut's fit; variable 1 and the other windows
    are fitted as before. Without the trim, the sentinel pulls variable 0's cycle towards
    itself."""
    from tests.train.conftest import TINY_MODEL
    from tsattn.data import TimeSeriesDataModule
    from tsattn.nn.shortcut import LinearShortcut
    from tsattn.train import fit_datamodule

    frame = _daily_frame()
    frame.iloc[100, 0] = -9999.0
    dm = TimeSeriesDataModule(frame, 48, 12, protocol="tslib", batch_size=16)
    train = TrainConfig(max_steps=1, progress_bar=False, patience=0, lr=1e-12, loss="mse",
                        shortcut_init="least_squares", start_trim=10.0)  # fmt: skip
    options = {**TINY_MODEL, "cycle_length": 24, "shortcut_per_phase": False}  # one map
    result = fit_datamodule(dm, model=options, train=train, run_dir=tmp_path, test=False)
    model = result.module.model
    xs, ys, steps = zip(*[(x, y, step) for x, y, _, step in dm.train_dataloader()], strict=True)
    x, y, step = torch.cat(xs), torch.cat(ys), torch.cat(steps)
    hit = (x[..., 0] < -10).any(1) | (y[..., 0] < -10).any(1)  # windows holding the sentinel
    assert 0 < int(hit.sum()) == result.metrics["start_trimmed"]
    with torch.no_grad():
        xn, stats = model.revin.normalize(x)
        yn = model.revin.normalize_target(y, stats)
    phase = (step[:, None] + torch.arange(48)) % 24  # (B, L)
    for node, keep in ((0, ~hit), (1, torch.ones_like(hit))):
        values, phases = xn[keep, :, node].double(), phase[keep]
        expected = [values[phases == p].mean().item() for p in range(24)]
        np.testing.assert_allclose(model.cycle.values[:, node].detach(), expected, atol=1e-5)
    out = hit[:, None, None] & (torch.arange(2) == 0)  # (B, 1, N): variable 0 of those windows
    reference = LinearShortcut("linear", 48, 12)
    with torch.no_grad():
        xr = (xn - model.cycle(step, 0, 48)).masked_fill(out, float("nan"))
        yr = (yn - model.cycle(step, 48, 12)).masked_fill(out, float("nan"))
        reference.fit_least_squares([(xr, yr)])
        torch.testing.assert_close(model.shortcut(xn), reference(xn), atol=1e-4, rtol=1e-4)
    plain = fit_datamodule(dm, model=options, run_dir=tmp_path / "p", test=False,
                           train=dataclasses.replace(train, start_trim=0.0))  # fmt: skip
    assert "start_trimmed" not in plain.metrics
    cycle, plain_cycle = model.cycle.values.detach(), plain.module.model.cycle.values.detach()
    torch.testing.assert_close(plain_cycle[:, 1], cycle[:, 1])  # variable 1 has no outlier
    assert (plain_cycle[:, 0] - cycle[:, 0]).abs().max() > 0.25 * cycle[:, 0].abs().max()


def test_negative_start_trim_is_a_value_error_naming_the_setting():
    with pytest.raises(ValueError, match=r"train\.start_trim=-1\.0 must be >= 0"):
        TrainConfig(start_trim=-1.0)


def test_shortcut_lr_scale_zero_keeps_the_closed_form_start_and_trains_the_rest(tmp_path):
    from tsattn.train import fit_datamodule

    dm, start, model_options, reference, *_ = _daily_start(tmp_path / "s", "least_squares")
    train = dataclasses.replace(start, max_steps=4, lr=1e-2, shortcut_lr_scale=0.0,
                                keep_start=False)  # fmt: skip
    module = fit_datamodule(dm, model=model_options, train=train, run_dir=tmp_path / "f",
                            test=False).module  # fmt: skip
    model = module.model
    for name in ("shortcut", "cycle"):
        kept, fitted = getattr(model, name).state_dict(), getattr(reference, name).state_dict()
        for key, value in kept.items():
            torch.testing.assert_close(value, fitted[key], atol=1e-9, rtol=0)
    assert not torch.allclose(model.head[-1].weight, reference.head[-1].weight)  # from zero
    groups = module.configure_optimizers()["optimizer"].param_groups
    assert len(groups) == 1  # the shortcut and the cycle are not in the optimiser
    module.train_config = dataclasses.replace(train, shortcut_lr_scale=0.25)
    groups = module.configure_optimizers()["optimizer"].param_groups
    assert [g["lr"] for g in groups] == [1e-2, 2.5e-3]
    started = {id(p) for part in (model.shortcut, model.cycle) for p in part.parameters()}
    assert {id(p) for p in groups[1]["params"]} == started


def test_negative_shortcut_lr_scale_is_a_value_error_naming_the_setting():
    with pytest.raises(ValueError, match=r"train\.shortcut_lr_scale=-1\.0 must be >= 0"):
        TrainConfig(shortcut_lr_scale=-1.0)


def test_keep_start_returns_to_the_closed_form_start_when_no_epoch_beats_it(tmp_path):
    """A learning rate far too high wrecks every epoch: with ``keep_start`` the model is the
    closed-form start again, scored on the validation windows and saved as start.ckpt; without
    it, the best (wrecked) epoch."""
    from tsattn.train import fit_datamodule

    dm, still, model_options, reference, *_ = _daily_start(tmp_path / "s", "weighted_least_squares")
    wreck = dataclasses.replace(still, max_steps=-1, max_epochs=2, lr=0.5, keep_start=True)
    kept = fit_datamodule(dm, model=model_options, train=wreck, run_dir=tmp_path / "k", test=False)
    assert kept.best_checkpoint.endswith("start.ckpt") and kept.kept_start
    assert kept.metrics["best_val_loss"] == kept.metrics["start_val_loss"]
    for key, value in kept.module.model.state_dict().items():
        torch.testing.assert_close(value, reference.state_dict()[key], atol=1e-6, rtol=0)
    # The start's score is the validation MSE of the start, window by window.
    se, count = 0.0, 0
    with torch.no_grad():
        for x, y, marks, step in dm.val_dataloader():
            se += float(((reference(x, marks, step) - y) ** 2).sum())
            count += y.numel()
    assert kept.metrics["start_val_loss"] == pytest.approx(se / count, rel=1e-5)
    saved = torch.load(kept.best_checkpoint, weights_only=True)["state_dict"]
    torch.testing.assert_close(saved["model.shortcut.linear.weight"],
                               reference.shortcut.linear.weight)  # fmt: skip
    trained = fit_datamodule(dm, model=model_options, run_dir=tmp_path / "t", test=False,
                             train=dataclasses.replace(wreck, keep_start=False))  # fmt: skip
    assert trained.best_checkpoint.endswith("best.ckpt") and not trained.kept_start
    assert trained.metrics["best_val_loss"] > kept.metrics["best_val_loss"]
    assert "start_val_loss" not in trained.metrics


def test_keep_start_compares_the_monitored_score(tmp_path):
    """Trained on MSE, selected on MAE (``train.monitor``): the start is scored by its MAE,
    like every validation check, and kept when no check beats that."""
    from tsattn.train import fit_datamodule

    dm, still, model_options, reference, *_ = _daily_start(tmp_path / "s", "weighted_least_squares")
    wreck = dataclasses.replace(still, max_steps=-1, max_epochs=2, lr=0.5, keep_start=True,
                                monitor="mae")  # fmt: skip
    kept = fit_datamodule(dm, model=model_options, train=wreck, run_dir=tmp_path / "k", test=False)
    assert kept.best_checkpoint.endswith("start.ckpt")
    ae, count = 0.0, 0
    with torch.no_grad():
        for x, y, marks, step in dm.val_dataloader():
            ae += float((reference(x, marks, step) - y).abs().sum())
            count += y.numel()
    assert kept.metrics["start_val_loss"] == pytest.approx(ae / count, rel=1e-5)
    assert kept.metrics["best_val_loss"] == kept.metrics["start_val_loss"]


def test_keep_start_parts_keeps_the_start_unless_training_beats_it_on_every_part(tmp_path):
    """Trained at a sound learning rate, the model beats the closed-form start on all validation
    windows together (``keep_start_parts=1`` keeps it), but not on each half of them: with
    ``keep_start_parts=2`` the start is the model. Both are scored on each half, and the
    halves' window-weighted mean is the score on all windows."""
    from tsattn.train import fit_datamodule

    dm, still, model_options, reference, *_ = _daily_start(tmp_path / "s", "weighted_least_squares")
    sound = dataclasses.replace(still, max_steps=-1, max_epochs=3, lr=1e-2, keep_start=True,
                                keep_start_parts=1)  # fmt: skip
    whole = fit_datamodule(dm, model=model_options, train=sound, run_dir=tmp_path / "1", test=False)
    assert whole.best_checkpoint.endswith("best.ckpt") and not whole.kept_start
    assert whole.metrics["best_val_loss"] < whole.metrics["start_val_loss"]
    halves = fit_datamodule(dm, model=model_options, run_dir=tmp_path / "2", test=False,
                            train=dataclasses.replace(sound, keep_start_parts=2))  # fmt: skip
    assert halves.best_checkpoint.endswith("start.ckpt") and halves.kept_start
    assert halves.metrics["best_val_loss"] == halves.metrics["start_val_loss"]
    for key, value in halves.module.model.state_dict().items():
        torch.testing.assert_close(value, reference.state_dict()[key], atol=1e-6, rtol=0)
    metrics = halves.metrics
    trained = [metrics[f"best_val_loss_part{i}"] for i in (1, 2)]
    start = [metrics[f"start_val_loss_part{i}"] for i in (1, 2)]
    assert any(t >= s for t, s in zip(trained, start, strict=True))
    sizes = [len(part.dataset) for part in split_loader(dm.val_dataloader(), 2)]
    assert sum(sizes) == len(dm.datasets["val"]) and abs(sizes[0] - sizes[1]) <= 1
    assert np.average(start, weights=sizes) == pytest.approx(metrics["start_val_loss"], rel=1e-5)
    assert np.average(trained, weights=sizes) == pytest.approx(whole.metrics["best_val_loss"],
                                                               rel=1e-5)  # fmt: skip


def test_four_parts_are_the_halves_of_the_two_halves():
    """Whatever the number of windows, the cut into 4 parts splits each half of the cut into 2,
    so a half on which the start wins holds a quarter on which it wins, and 4 parts keep the
    start wherever 2 do (``TrainConfig.keep_start_parts``)."""
    for count in range(1, 300):
        loader = torch.utils.data.DataLoader(range(count), batch_size=7)
        halves = [list(part.dataset) for part in split_loader(loader, 2)]
        quarters = [list(part.dataset) for part in split_loader(loader, 4)]
        for half in halves:
            inside = [q for q in quarters if q and q[0] in half]
            assert [w for q in inside for w in q] == half, count


def test_keep_start_parts_below_one_is_a_value_error_naming_the_setting():
    with pytest.raises(ValueError, match=r"train\.keep_start_parts=0 must be >= 1"):
        TrainConfig(keep_start_parts=0)


def _weekly_frame(rows: int = 1400) -> pd.DataFrame:
    """Hourly data whose level follows the day of the week (Thursday 1970-01-01 is phase 0 of
    the grid) on top of a daily sine: a daily cycle cannot hold it, a weekly one can."""
    hours = np.arange(rows)
    g = np.random.default_rng(1)
    week = np.array([0.0, 2.0, -1.0, 3.0, 1.0, -2.5, 0.5])[(hours // 24) % 7]
    values = np.stack([week + np.sin(2 * np.pi * hours / 24) + g.normal(0, 0.2, rows),
                       -week + g.normal(0, 0.2, rows)], 1)  # fmt: skip
    return pd.DataFrame(values, index=pd.date_range("2024-01-04", periods=rows, freq="h"))


@pytest.mark.parametrize(("frame", "chosen"), [(_daily_frame, 24), (_weekly_frame, 168)])
def test_auto_cycle_length_is_the_cycle_whose_start_validates_best(tmp_path, frame, chosen):
    """``cycle_length="auto"`` on hourly data scores the closed-form start with a daily and a
    weekly cycle on the validation windows and keeps the better one; the choice draws nothing
    from the random state, so the model starts as it would have with that cycle given."""
    from tests.train.conftest import TINY_MODEL
    from tsattn.data import TimeSeriesDataModule
    from tsattn.train import fit_datamodule

    dm = TimeSeriesDataModule(frame(), 48, 12, protocol="tslib", batch_size=16)
    train = TrainConfig(max_steps=1, progress_bar=False, patience=0, lr=1e-12, loss="mse")
    model = {**TINY_MODEL, "shortcut_per_phase": False}  # the cycle is chosen with one map
    auto = fit_datamodule(dm, model={**model, "cycle_length": "auto"}, train=train,
                          run_dir=tmp_path / "a", test=False)  # fmt: skip
    assert auto.module.model_config.cycle_length == chosen
    scores = {w: auto.metrics[f"start_val_loss_cycle{w}"] for w in (24, 168)}
    assert min(scores, key=scores.get) == chosen
    given = fit_datamodule(dm, model={**model, "cycle_length": chosen}, train=train,
                           run_dir=tmp_path / "g", test=False)  # fmt: skip
    assert given.metrics["start_val_loss"] == pytest.approx(scores[chosen], rel=1e-6)
    for key, value in given.module.model.state_dict().items():
        torch.testing.assert_close(auto.module.model.state_dict()[key], value, atol=1e-9, rtol=0)


def test_auto_cycle_on_a_registered_file_without_dates_uses_the_registry_step(
    tmp_path, monkeypatch
):
    """An LSTNet file has no dates (solar_AL's 10-minute rows); registered, its step is known,
    so ``cycle_length="auto"`` scores a day and a week of it as it does on dated data. The same
    file by path has no known step and gets no cycle."""
    from tests.train.conftest import TINY_MODEL
    from tsattn.data import DatasetSpec, TimeSeriesDataModule, register_dataset
    from tsattn.data.registry import _SPECS
    from tsattn.data.synthetic import write_series
    from tsattn.train import fit_datamodule

    monkeypatch.delenv("TSATTN_DATA_DIR", raising=False)
    frame = _weekly_frame()
    path = write_series(frame, tmp_path / "hourly_toy.txt", format="lstnet")
    spec = DatasetSpec("hourly_toy", path.name, "file:///nowhere/hourly_toy.txt", None, "h",
                       "lstnet", "mtgnn", "ratio", frame.shape)  # fmt: skip
    register_dataset(spec, overwrite=True)
    train = TrainConfig(max_steps=1, progress_bar=False, patience=0, lr=1e-12, loss="mse")
    model = {**TINY_MODEL, "shortcut_per_phase": False, "cycle_length": "auto"}
    try:
        fits = {}
        for data in ("hourly_toy", path):
            dm = TimeSeriesDataModule(data, 48, 12, protocol="tslib", batch_size=16,
                                      root=tmp_path)  # fmt: skip
            fits[data] = fit_datamodule(dm, model=model, train=train, test=False,
                                        run_dir=tmp_path / f"run{len(fits)}")  # fmt: skip
    finally:
        _SPECS.pop("hourly_toy", None)
    registered = fits["hourly_toy"]
    scores = {w: registered.metrics[f"start_val_loss_cycle{w}"] for w in (24, 168)}
    assert registered.module.model_config.cycle_length == min(scores, key=scores.get) == 168
    assert fits[path].module.model_config.cycle_length == 0
    assert not any(key.startswith("start_val_loss_cycle") for key in fits[path].metrics)
    assert registered.metrics["start_val_loss"] < fits[path].metrics["start_val_loss"]


def test_a_cycle_the_training_series_covers_less_than_twice_is_no_candidate(tmp_path):
    from tests.train.conftest import TINY_MODEL
    from tsattn.data import TimeSeriesDataModule
    from tsattn.train import fit_datamodule

    dm = TimeSeriesDataModule(_daily_frame(400), 48, 12, protocol="tslib", batch_size=16)
    train = TrainConfig(max_steps=1, progress_bar=False, patience=0, lr=1e-12)
    result = fit_datamodule(dm, model={**TINY_MODEL, "cycle_length": "auto"}, train=train,
                            run_dir=tmp_path, test=False)  # fmt: skip
    assert result.module.model_config.cycle_length == 24  # 280 training steps < 2 weeks
    assert "start_val_loss_cycle168" not in result.metrics


def test_auto_time_features_need_a_horizon_of_a_week_under_the_recipe():
    from tsattn.train.recipe import resolve_time_features

    # ETTh1 at H = 96 spans 4 days, at H = 192 8 days; ETTm1 at 720 7.5 days; weather at 720 5
    assert [resolve_time_features("tslib", "auto", h, "h") for h in (96, 167, 168, 192)] == [
        False, False, True, True,
    ]  # fmt: skip
    assert resolve_time_features("tslib", "auto", 720, "15min") is True
    assert resolve_time_features("holdout", "auto", 720, "10min") is False
    assert resolve_time_features("holdout", "auto", 2, "MS") is True  # two months
    assert resolve_time_features("holdout", "auto", 96, None) is False  # no dates, no marks
    # outside the recipe "auto" reads the marks; a bool always stays
    assert resolve_time_features("mtgnn", "auto", 3, "h") is True
    assert resolve_time_features("tslib", "auto", 96, "h", recipe="none") is True
    assert resolve_time_features("tslib", True, 96, "h") is True
    assert resolve_time_features("tslib", False, 720, "h") is False


def test_use_time_features_accepts_auto_and_names_a_bad_value():
    from tsattn.train.config import DataConfig

    assert DataConfig().use_time_features == "auto"
    assert (
        RunConfig().with_overrides(["data.use_time_features=false"]).data.use_time_features is False
    )
    with pytest.raises(ValueError, match=r"data\.use_time_features='yes' is not valid"):
        DataConfig(use_time_features="yes")


@pytest.mark.parametrize(
    ("horizon", "use", "marks"), [(12, "auto", 0), (168, "auto", 4), (12, True, 4), (168, False, 0)]
)
def test_fit_reads_the_marks_only_where_the_rule_or_the_user_says(tmp_path, horizon, use, marks):
    """The datamodule keeps its marks either way; the model is built to read them or not, and
    a forecaster built without them is scored without them."""
    from tests.train.conftest import TINY_MODEL
    from tsattn.data import TimeSeriesDataModule
    from tsattn.train import fit_datamodule

    dm = TimeSeriesDataModule(_weekly_frame(3000), 48, horizon, protocol="tslib", batch_size=16)
    result = fit_datamodule(dm, model={**TINY_MODEL, "cycle_length": 0}, use_time_features=use,
                            train=TrainConfig(max_steps=1, progress_bar=False, patience=0),
                            run_dir=tmp_path)  # fmt: skip
    assert dm.n_time_features == 4
    assert result.module.model_config.time_features == marks
    assert np.isfinite(result.metrics["test_mse"])


def _two_dynamics_frame(rows: int = 900) -> pd.DataFrame:
    """Two hourly variables that follow opposite dynamics: a persistent AR(1) and one that
    flips its sign every step. One map shared by both cannot forecast them; one each can."""
    g = np.random.default_rng(2)
    values = np.zeros((rows, 2))
    for t in range(1, rows):
        values[t] = [0.95, -0.95] * values[t - 1] + g.normal(0, 1.0, 2)
    return pd.DataFrame(values, index=pd.date_range("2024-01-01", periods=rows, freq="h"))


def test_auto_maps_per_variable_are_kept_where_their_start_validates_better(tmp_path):
    """``shortcut_per_variable="auto"`` scores the closed-form start with the shared map and
    with a map per variable on the validation windows and keeps the better; the choice draws
    nothing from the random state, so the model starts as it would have with it given."""
    from tests.train.conftest import TINY_MODEL
    from tsattn.data import TimeSeriesDataModule
    from tsattn.train import fit_datamodule

    dm = TimeSeriesDataModule(_two_dynamics_frame(), 48, 12, protocol="tslib", batch_size=16)
    train = TrainConfig(max_steps=1, progress_bar=False, patience=0, lr=1e-12, loss="mse")
    model = {**TINY_MODEL, "cycle_length": 0}
    auto = fit_datamodule(dm, model={**model, "shortcut_per_variable": "auto"}, train=train,
                          run_dir=tmp_path / "a", test=False)  # fmt: skip
    assert auto.module.model_config.shortcut_per_variable is True
    shared = auto.metrics["start_val_loss_shared_maps"]
    per_variable = auto.metrics["start_val_loss_per_variable_maps"]
    assert per_variable < shared
    given = fit_datamodule(dm, model={**model, "shortcut_per_variable": True}, train=train,
                           run_dir=tmp_path / "g", test=False)  # fmt: skip
    assert given.metrics["start_val_loss"] == pytest.approx(per_variable, rel=1e-6)
    for key, value in given.module.model.state_dict().items():
        torch.testing.assert_close(auto.module.model.state_dict()[key], value, atol=1e-9, rtol=0)


def _leading_frame(rows: int = 900) -> pd.DataFrame:
    """Two hourly variables, the first repeating the second four hours later: a map of each
    variable's own window cannot forecast the first; one that reads both can."""
    g = np.random.default_rng(3)
    lead = np.zeros(rows + 4)
    for t in range(1, rows + 4):
        lead[t] = 0.8 * lead[t - 1] + g.normal(0, 1.0)
    values = np.stack([lead[:rows] + g.normal(0, 0.05, rows), lead[4:]], 1)
    return pd.DataFrame(values, index=pd.date_range("2024-01-01", periods=rows, freq="h"))


def test_auto_cross_variable_maps_are_kept_where_their_start_validates_better(
    tmp_path, monkeypatch
):
    """With both switches ``"auto"``, the trainer scores the shared map, maps per variable and
    cross-variable maps, and keeps the best; data of more than CROSS_MAX_INPUTS inputs do not
    score the cross-variable maps at all."""
    from tests.train.conftest import TINY_MODEL
    from tsattn.data import TimeSeriesDataModule
    from tsattn.train import fit_datamodule
    from tsattn.train import trainer as trainer_module

    dm = TimeSeriesDataModule(_leading_frame(), 48, 12, protocol="tslib", batch_size=16)
    train = TrainConfig(max_steps=1, progress_bar=False, patience=0, lr=1e-12, loss="mse")
    model = {**TINY_MODEL, "cycle_length": 0, "shortcut_per_variable": "auto",
             "shortcut_cross_variable": "auto"}  # fmt: skip
    auto = fit_datamodule(dm, model=model, train=train, run_dir=tmp_path / "a", test=False)
    config = auto.module.model_config
    assert config.shortcut_cross_variable is True and config.shortcut_per_variable is False
    scores = {name: auto.metrics[f"start_val_loss_{name}_maps"]
              for name in ("shared", "per_variable", "cross_variable")}  # fmt: skip
    assert scores["cross_variable"] < min(scores["shared"], scores["per_variable"])
    assert auto.metrics["start_val_loss"] == pytest.approx(scores["cross_variable"], rel=1e-6)
    monkeypatch.setattr(trainer_module, "CROSS_MAX_INPUTS", 2 * 48 - 1)
    capped = fit_datamodule(dm, model=model, train=train, run_dir=tmp_path / "c", test=False)
    assert capped.module.model_config.shortcut_cross_variable is False
    assert "start_val_loss_cross_variable_maps" not in capped.metrics


def _hourly_dynamics_frame(rows: int = 1500) -> pd.DataFrame:
    """Two hourly variables whose persistence follows the hour of the day (each step keeps
    0.95 of the last in the first half of the day, -0.6 of it in the second): one map for
    every window cannot follow both, a map per block of the day can."""
    g = np.random.default_rng(5)
    hours = np.arange(rows) % 24
    values = np.zeros((rows, 2))
    for t in range(1, rows):
        keep = 0.95 if hours[t] < 12 else -0.6
        values[t] = keep * values[t - 1] + g.normal(0, 1.0, 2)
    return pd.DataFrame(values, index=pd.date_range("2024-01-01", periods=rows, freq="h"))


def test_auto_per_phase_maps_are_kept_where_their_start_validates_better(tmp_path):
    """With ``shortcut_per_phase="auto"`` the trainer scores the shared map and maps per block
    of the daily cycle, and keeps the maps per block where the dynamics follow the hour."""
    from tests.train.conftest import TINY_MODEL
    from tsattn.data import TimeSeriesDataModule
    from tsattn.train import fit_datamodule

    dm = TimeSeriesDataModule(_hourly_dynamics_frame(), 48, 12, protocol="tslib", batch_size=16)
    train = TrainConfig(max_steps=1, progress_bar=False, patience=0, lr=1e-12, loss="mse")
    model = {**TINY_MODEL, "cycle_length": 24, "shortcut_per_phase": "auto"}
    auto = fit_datamodule(dm, model=model, train=train, run_dir=tmp_path / "a", test=False)
    assert auto.module.model_config.shortcut_per_phase is True
    scores = {name: auto.metrics[f"start_val_loss_{name}_maps"] for name in ("shared", "per_phase")}
    assert scores["per_phase"] < 0.95 * scores["shared"]
    assert auto.metrics["start_val_loss"] == pytest.approx(scores["per_phase"], rel=1e-6)


def test_auto_maps_resolve_to_the_shared_map_without_a_choice_to_make():
    def choose(options, keys):
        assert options["shortcut_per_variable"] is False  # candidates are built from here
        assert keys == ["shortcut_per_variable"]
        return "shortcut_per_variable"

    auto = {"shortcut_per_variable": "auto"}
    assert resolve_model_options("tslib", 7, 96, auto, choose_maps=choose)[
        "shortcut_per_variable"] is True  # fmt: skip
    assert resolve_model_options("tslib", 7, 96, auto)["shortcut_per_variable"] is False
    assert resolve_model_options("tslib", 1, 96, auto, choose_maps=choose)[
        "shortcut_per_variable"] is False  # one variable: one map  # fmt: skip
    # recipe "none": MTGNN's own model has no linear shortcut to give maps to
    assert resolve_model_options("tslib", 7, 96, auto, recipe="none", choose_maps=choose)[
        "shortcut_per_variable"] is False  # fmt: skip
    both = {"shortcut_per_variable": "auto", "shortcut_cross_variable": "auto"}
    seen = []
    resolved = resolve_model_options(
        "tslib", 7, 96, both, choose_maps=lambda options, keys: seen.append(keys)
    )
    assert seen == [["shortcut_per_variable", "shortcut_cross_variable"]]
    assert not resolved["shortcut_per_variable"] and not resolved["shortcut_cross_variable"]
    # DLinear's shortcut has no cross-variable form: only maps per variable are candidates
    resolve_model_options("tslib", 7, 96, {**both, "linear_shortcut": "dlinear"},
                          choose_maps=lambda options, keys: seen.append(keys))  # fmt: skip
    assert seen[-1] == ["shortcut_per_variable"]
    # maps given explicitly leave nothing to choose (the two switches exclude each other)
    given = resolve_model_options(
        "tslib", 7, 96, {**both, "shortcut_per_variable": True},
        choose_maps=lambda options, keys: seen.append(keys),
    )  # fmt: skip
    assert len(seen) == 2 and given["shortcut_cross_variable"] is False
    # maps per phase block: linear maps on a cycle, a candidate for one variable too
    phase = {"shortcut_per_phase": "auto", "shortcut_per_variable": "auto"}
    resolve_model_options("tslib", 7, 96, phase, freq="h",
                          choose_maps=lambda options, keys: seen.append(keys))  # fmt: skip
    assert seen[-1] == ["shortcut_per_variable", "shortcut_per_phase"]
    resolve_model_options("tslib", 1, 96, phase, freq="h",
                          choose_maps=lambda options, keys: seen.append(keys))  # fmt: skip
    assert seen[-1] == ["shortcut_per_phase"]
    for no_phase in ({"cycle_length": 0}, {"linear_shortcut": "dlinear"}):
        resolve_model_options("tslib", 7, 96, {**phase, **no_phase}, freq="h",
                              choose_maps=lambda options, keys: seen.append(keys))  # fmt: skip
        assert seen[-1] == ["shortcut_per_variable"]
    chosen = resolve_model_options(
        "tslib", 7, 96, phase, freq="h", choose_maps=lambda options, keys: "shortcut_per_phase"
    )
    assert chosen["shortcut_per_phase"] is True and chosen["cycle_length"] == 24


def test_recipe_offers_maps_per_phase_block_where_the_data_have_a_cycle():
    seen = []

    def choose(options, keys):
        seen.append(keys)
        return "shortcut_per_phase"

    hourly = resolve_model_options("tslib", 7, 96, {}, freq="h", choose_maps=choose)
    assert seen == [["shortcut_per_phase"]] and hourly["shortcut_per_phase"] is True
    assert resolve_model_options("tslib", 7, 96, {}, freq="h")["shortcut_per_phase"] is False
    # no calendar, no cycle: nothing to choose, the shared map
    assert resolve_model_options("holdout", 7, 24, {}, choose_maps=choose)[
        "shortcut_per_phase"] is False  # fmt: skip
    # explicit settings win; the single-step protocol and recipe "none" leave the model alone
    for given in ({"shortcut_per_phase": False}, {"shortcut_per_variable": True},
                  {"linear_shortcut": "dlinear"}):  # fmt: skip
        resolved = resolve_model_options("tslib", 7, 96, given, freq="h", choose_maps=choose)
        assert resolved["shortcut_per_phase"] is False
    assert len(seen) == 1
    assert "shortcut_per_phase" not in resolve_model_options("mtgnn", 8, 3, {}, freq="h")
    assert "shortcut_per_phase" not in resolve_model_options(
        "tslib", 7, 96, {}, recipe="none", freq="h"
    )


def test_recipe_trains_maps_per_phase_block_where_the_dynamics_follow_the_hour(tmp_path):
    """Under the recipe nothing needs setting: the trainer scores the start with the shared
    map and with maps per block of the day, and keeps the better; ``False`` keeps the shared
    map without scoring."""
    from tests.train.conftest import TINY_MODEL
    from tsattn.data import TimeSeriesDataModule
    from tsattn.train import fit_datamodule

    dm = TimeSeriesDataModule(_hourly_dynamics_frame(), 48, 12, protocol="tslib", batch_size=16)
    train = TrainConfig(max_steps=1, progress_bar=False, patience=0, lr=1e-12, loss="mse")
    model = {**TINY_MODEL, "cycle_length": 24}
    auto = fit_datamodule(dm, model=model, train=train, run_dir=tmp_path / "a", test=False)
    assert auto.module.model_config.shortcut_per_phase is True
    assert "start_val_loss_per_phase_maps" in auto.metrics
    shared = {**model, "shortcut_per_phase": False}
    off = fit_datamodule(dm, model=shared, train=train, run_dir=tmp_path / "s", test=False)
    assert off.module.model_config.shortcut_per_phase is False
    assert "start_val_loss_per_phase_maps" not in off.metrics


def test_fit_start_fits_the_reversion_to_the_training_level():
    """The start of a shortcut with ``shortcut_level`` reads the training inputs' mean into
    ``level`` and fits the offset's weight with the map: windows whose future moves half of
    the way from their own mean to the training level are forecast exactly."""
    from tsattn.models.mtgnn import MTGNN, MTGNNConfig
    from tsattn.train.trainer import fit_start

    g = torch.Generator().manual_seed(0)
    windows, seq_len, horizon = 400, 24, 6
    mean = 5.0 + 3.0 * torch.randn(windows, 1, 2, generator=g)
    spread = 0.5 + torch.rand(windows, 1, 2, generator=g)
    x = mean + spread * torch.randn(windows, seq_len, 2, generator=g)
    level = x.double().mean((0, 1)).float()  # the training inputs' mean of each variable
    own = x.mean(1, keepdim=True)
    y = (own + 0.5 * (level - own)).expand(-1, horizon, -1).contiguous()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=64)
    model = MTGNN(MTGNNConfig(num_nodes=2, seq_len=seq_len, horizon=horizon, layers=1,
                              conv_channels=4, residual_channels=4, skip_channels=4,
                              end_channels=4, graph=False, channel_independent=True,
                              linear_shortcut="linear", shortcut_level=True)).eval()  # fmt: skip
    assert fit_start(model, loader, weighted=True) == {"shortcut": windows * 2}
    torch.testing.assert_close(model.level, level, rtol=0, atol=1e-5)
    torch.testing.assert_close(model.shortcut.linear.weight[:, -1], torch.full((horizon,), 0.5),
                               rtol=0, atol=1e-3)  # fmt: skip
    with torch.no_grad():
        torch.testing.assert_close(model(x), y, rtol=0, atol=1e-3)
    random_start = MTGNN(model.config)  # a shortcut started at random still reads the level
    assert fit_start(random_start, loader, shortcut=False) == {}
    torch.testing.assert_close(random_start.level, level, rtol=0, atol=1e-5)


def _reverting_frame(rows: int = 1500) -> pd.DataFrame:
    """Two hourly variables that follow one level reverting to zero (AR(1), 0.97 per step),
    plus noise: a window far from the series' mean tends back to it, which a map of the
    normalised look-back alone cannot see."""
    g = np.random.default_rng(7)
    level = np.zeros(rows)
    for t in range(1, rows):
        level[t] = 0.97 * level[t - 1] + g.normal(0, 1.0)
    values = np.stack([level + g.normal(0, 0.5, rows), -level + g.normal(0, 0.5, rows)], 1)
    return pd.DataFrame(values, index=pd.date_range("2024-01-01", periods=rows, freq="h"))


def test_auto_level_is_kept_where_its_start_validates_better(tmp_path):
    """``shortcut_level="auto"`` scores the closed-form start with and without the level offset
    on the validation windows and keeps the better; given, it is not scored."""
    from tests.train.conftest import TINY_MODEL
    from tsattn.data import TimeSeriesDataModule
    from tsattn.train import fit_datamodule

    dm = TimeSeriesDataModule(_reverting_frame(), 48, 24, protocol="tslib", batch_size=16)
    train = TrainConfig(max_steps=1, progress_bar=False, patience=0, lr=1e-12, loss="mse")
    model = {**TINY_MODEL, "cycle_length": 0}
    auto = fit_datamodule(dm, model={**model, "shortcut_level": "auto"}, train=train,
                          run_dir=tmp_path / "a", test=False)  # fmt: skip
    assert auto.module.model_config.shortcut_level is True
    scores = {name: auto.metrics[f"start_val_loss_{name}"] for name in ("level", "no_level")}
    assert scores["level"] < 0.95 * scores["no_level"]
    assert auto.metrics["start_val_loss"] == pytest.approx(scores["level"], rel=1e-6)
    off = fit_datamodule(dm, model={**model, "shortcut_level": False}, train=train,
                         run_dir=tmp_path / "o", test=False)  # fmt: skip
    assert off.module.model_config.shortcut_level is False
    assert "start_val_loss_level" not in off.metrics
    assert off.metrics["start_val_loss"] == pytest.approx(scores["no_level"], rel=1e-6)


def test_auto_level_is_chosen_last_and_only_for_a_linear_map_after_revin():
    seen = []

    def choose(options):
        seen.append(dict(options))
        return True

    auto = {"shortcut_level": "auto", "shortcut_per_phase": "auto"}
    resolved = resolve_model_options(
        "tslib", 7, 96, auto, freq="h", choose_level=choose,
        choose_maps=lambda options, keys: "shortcut_per_phase",
    )  # fmt: skip
    assert resolved["shortcut_level"] is True
    assert seen[-1]["shortcut_per_phase"] is True and seen[-1]["shortcut_level"] is False
    assert resolve_model_options("tslib", 7, 96, auto, freq="h")["shortcut_level"] is False
    for no_level in ({"linear_shortcut": "dlinear"}, {"linear_shortcut": "none"},
                     {"revin": False}):  # fmt: skip
        resolved = resolve_model_options("tslib", 7, 96, {**auto, **no_level}, freq="h",
                                         choose_level=choose)  # fmt: skip
        assert resolved["shortcut_level"] is False
    for given in (True, False):
        resolved = resolve_model_options("tslib", 7, 96, {"shortcut_level": given},
                                         choose_level=choose)  # fmt: skip
        assert resolved["shortcut_level"] is given
    assert len(seen) == 1
