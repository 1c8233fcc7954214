"""The LightningModule and trainer factory: clipping, NaN guard, metric units, schedule."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping

from tests.train.conftest import TINY_MODEL
from tests.train.toy import ToyDataModule
from tsattn.models.mtgnn import MTGNNConfig
from tsattn.train import ForecastModule, TrainConfig, fit_datamodule, recipe
from tsattn.train.module import horizon_weights
from tsattn.train.trainer import mean_loss


class RecordingModule(ForecastModule):
    """Records the global gradient norm before and after Lightning's clipping."""

    norms: list[tuple[float, float]]

    def configure_gradient_clipping(
        self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None
    ):
        grads = [p.grad for p in self.parameters() if p.grad is not None]
        before = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)
        after = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        type(self).norms.append((float(before), float(after)))


def _fit(dm, tmp_path, module_class=ForecastModule, **train):
    options = {"max_steps": 4, "progress_bar": False, "patience": 0, **train}
    return fit_datamodule(dm, model=TINY_MODEL, train=TrainConfig(**options), run_dir=tmp_path,
                          module_class=module_class)  # fmt: skip


def test_gradient_clipping_really_clips(toy, tmp_path):
    RecordingModule.norms = []
    _fit(toy, tmp_path, RecordingModule, grad_clip=1e-3)
    assert len(RecordingModule.norms) == 4
    for before, after in RecordingModule.norms:
        assert before > 1e-3  # clipping had work to do
        assert after <= 1e-3 * (1 + 1e-4)


def test_non_finite_loss_stops_with_the_step(tmp_path):
    dm = ToyDataModule()
    y = dm.sets["train"].tensors[1]
    y[:] = float("nan")
    with pytest.raises(
        FloatingPointError, match=r"training loss is nan at global step 0 \(epoch 0"
    ):
        _fit(dm, tmp_path)


def test_fit_reports_finite_metrics_and_reloads_best(toy, tmp_path):
    # keep_start off: on this toy the closed-form start can beat both epochs (test_recipe.py)
    result = _fit(toy, tmp_path, max_steps=-1, max_epochs=2, keep_start=False)
    for name in ("test_mse", "test_mae", "test_rse", "test_corr", "best_val_loss"):
        assert torch.isfinite(torch.tensor(result.metrics[name])), name
    assert result.best_checkpoint.endswith("best.ckpt")
    best = torch.load(result.best_checkpoint, weights_only=True)["state_dict"]
    assert all(torch.equal(v, result.module.state_dict()[k]) for k, v in best.items())
    assert (tmp_path / "metrics.csv").is_file()
    assert len(result.epoch_seconds) == 2


def test_original_units_metrics_for_mtgnn_protocol(tmp_path):
    # recipe="none": the same model under both protocols (the recipe applies to holdout only)
    scaled = _fit(ToyDataModule(protocol="holdout"), tmp_path / "a", recipe="none")
    original = _fit(ToyDataModule(protocol="mtgnn"), tmp_path / "b", recipe="none")
    assert original.module.metric_space == "original"
    # same weights and data: MAE in original units = scaled MAE x the per-variable scale
    scale = original.module.scaler_scale
    assert original.metrics["test_mae"] != pytest.approx(scaled.metrics["test_mae"], rel=1e-3)
    assert scale.min() < original.metrics["test_mae"] / scaled.metrics["test_mae"] < scale.max()
    assert original.metrics["test_rse"] == pytest.approx(scaled.metrics["test_rse"], rel=0.5)


def test_exponential_schedule_halves_lr_each_epoch():
    module = ForecastModule(
        {"num_nodes": 2, "seq_len": 8, "horizon": 2, **TINY_MODEL},
        TrainConfig(lr=0.1, lr_schedule="exponential", lr_decay=0.5).to_dict(),
    )
    config = module.configure_optimizers()
    config["optimizer"].step()
    sched = config["lr_scheduler"]["scheduler"]
    sched.step()
    assert sched.get_last_lr() == [pytest.approx(0.05)]


class CountingValidation(ForecastModule):
    """Counts validation runs during fitting (the final re-validation is not a fit's)."""

    checks: list[int]

    def on_validation_epoch_end(self):
        super().on_validation_epoch_end()
        if self.trainer.training or self.trainer.state.fn == "fit":
            type(self).checks.append(self.global_step)


def test_val_checks_per_epoch_validates_between_epochs(toy, tmp_path):
    CountingValidation.checks = []
    result = _fit(toy, tmp_path, CountingValidation, max_steps=-1, max_epochs=2,
                  val_checks_per_epoch=2, keep_start=False)  # fmt: skip
    batches = len(toy.train_dataloader())
    half = batches // 2
    assert CountingValidation.checks == [half, batches, batches + half, 2 * batches]
    assert len(result.epoch_seconds) == 2  # epochs are still epochs
    stopping = [c for c in result.trainer.callbacks if type(c).__name__ == "EarlyStopping"]
    assert stopping == []  # patience=0 in _fit: off


def test_patience_counts_epochs_whatever_the_checks_per_epoch(toy, tmp_path):
    result = _fit(toy, tmp_path / "a", max_steps=-1, max_epochs=1, patience=3,
                  val_checks_per_epoch=4)  # fmt: skip
    (stopping,) = [c for c in result.trainer.callbacks if type(c).__name__ == "EarlyStopping"]
    assert stopping.patience == 12


@pytest.mark.parametrize(("protocol", "per_epoch"), [("holdout", 2), ("mtgnn", 1)])
def test_auto_val_checks_follow_the_steps_per_epoch(tmp_path, monkeypatch, protocol, per_epoch):
    # one check per VAL_EVERY_STEPS steps under the recipe's protocols, once per epoch elsewhere
    monkeypatch.setattr(recipe, "VAL_EVERY_STEPS", 8)
    CountingValidation.checks = []
    dm = ToyDataModule(protocol=protocol)
    batches = len(dm.train_dataloader())
    assert batches == 16
    _fit(dm, tmp_path, CountingValidation, max_steps=-1, max_epochs=1,
         val_checks_per_epoch="auto", keep_start=False)  # fmt: skip
    assert CountingValidation.checks == [batches * (i + 1) // per_epoch for i in range(per_epoch)]


@pytest.mark.parametrize("checks", [0, "often"])
def test_val_checks_per_epoch_must_be_positive_or_auto(checks):
    with pytest.raises(ValueError, match=rf"train\.val_checks_per_epoch={checks!r}.* or 'auto'"):
        TrainConfig(val_checks_per_epoch=checks)
    assert TrainConfig(val_checks_per_epoch="3").val_checks_per_epoch == 3


class RecordingWeights(ForecastModule):
    """Records the parameters after every optimiser step."""

    steps: list[dict[str, torch.Tensor]]

    def on_train_batch_end(self, outputs, batch, batch_idx):
        type(self).steps.append({k: p.detach().clone() for k, p in self.named_parameters()})


def test_ema_decay_validates_and_returns_the_moving_average(toy, tmp_path):
    RecordingWeights.steps = []
    decay = 0.6
    result = _fit(toy, tmp_path, RecordingWeights, ema_decay=decay, keep_start=False)
    assert len(RecordingWeights.steps) == 4  # validated once, at the last step
    average = dict(RecordingWeights.steps[0])  # the average starts at the first step's weights
    for weights in RecordingWeights.steps[1:]:
        average = {k: decay * average[k] + (1 - decay) * w for k, w in weights.items()}
    final = dict(result.module.named_parameters())
    last = RecordingWeights.steps[-1]
    assert any(not torch.allclose(final[k], last[k]) for k in last)  # not the last step's
    for name, value in average.items():
        torch.testing.assert_close(final[name], value, rtol=1e-5, atol=1e-6, msg=name)
    best = torch.load(result.best_checkpoint, weights_only=True)["state_dict"]
    torch.testing.assert_close(best["model.start_conv.weight"], average["model.start_conv.weight"])
    # validating again after the fit scores the model's weights as they are (the average is
    # not swapped in again), here moved away from every average the fit saw
    with torch.no_grad():
        for p in result.module.parameters():
            p.mul_(0.5)
    again = result.trainer.validate(result.module, toy.val_dataloader(), verbose=False)[0]
    expected = mean_loss(result.module, toy.val_dataloader())
    assert again["val_loss"] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("decay", [-0.1, 1.0])
def test_ema_decay_must_lie_in_unit_interval(decay):
    with pytest.raises(ValueError, match=r"train\.ema_decay=.* must lie in \[0, 1\)"):
        TrainConfig(ema_decay=decay)


def _dft_l1(diff: torch.Tensor) -> torch.Tensor:
    """Mean modulus of the orthonormal DFT along the horizon, written out as a sum (reference)."""
    h = diff.shape[1]
    t = torch.arange(h, dtype=torch.float64)
    k = torch.arange(h // 2 + 1, dtype=torch.float64)
    angle = -2 * torch.pi * k[:, None] * t[None, :] / h  # (K, H)
    d = diff.double()
    real = torch.einsum("kt,btn->bkn", torch.cos(angle), d) / h**0.5
    imag = torch.einsum("kt,btn->bkn", torch.sin(angle), d) / h**0.5
    return torch.sqrt(real**2 + imag**2).mean()


def test_huber_loss_is_squared_below_one_scaled_unit_and_absolute_above():
    model = MTGNNConfig(num_nodes=2, seq_len=24, horizon=2, layers=2).to_dict()
    module = ForecastModule(model, TrainConfig(loss="huber").to_dict())
    target = torch.zeros(1, 2, 2)
    pred = torch.tensor([[[0.5, -0.2], [3.0, -2.0]]])
    # 0.5 e^2 where |e| <= 1, |e| - 0.5 beyond: 0.125, 0.02, 2.5, 1.5
    expected = torch.tensor((0.125 + 0.02 + 2.5 + 1.5) / 4)
    torch.testing.assert_close(module._loss(pred, target), expected)
    torch.testing.assert_close(module.training_loss(pred, target), expected)


@pytest.mark.parametrize(("weight", "base"), [(0.0, "l1"), (0.5, "l1"), (1.0, "mse")])
def test_freq_loss_adds_the_spectrum_error_to_training_only(weight, base):
    model = MTGNNConfig(num_nodes=3, seq_len=24, horizon=6, layers=2).to_dict()
    module = ForecastModule(model, TrainConfig(loss=base, freq_loss=weight).to_dict())
    pred, target = torch.randn(4, 6, 3), torch.randn(4, 6, 3)
    plain = (torch.nn.functional.l1_loss if base == "l1" else torch.nn.functional.mse_loss)(
        pred, target
    )
    expected = (1 - weight) * plain + weight * _dft_l1(pred - target)
    torch.testing.assert_close(module.training_loss(pred, target).double(), expected)
    # validation, early stopping and keep_start read the plain loss whatever the weight
    torch.testing.assert_close(module._loss(pred, target), plain)


def test_freq_loss_trains_and_validates_on_the_plain_loss(toy, tmp_path):
    result = _fit(toy, tmp_path, loss="l1", freq_loss=0.5, keep_start=False)
    expected = mean_loss(result.module, toy.val_dataloader())
    again = result.trainer.validate(result.module, toy.val_dataloader(), verbose=False)[0]
    assert again["val_loss"] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("weight", [-0.1, 1.5])
def test_freq_loss_must_lie_in_unit_interval(weight):
    with pytest.raises(ValueError, match=r"train\.freq_loss=.* must lie in \[0, 1\]"):
        TrainConfig(freq_loss=weight)


def test_arctan_horizon_weight_scales_each_step_of_the_training_loss_only():
    """xPatch's arctangent loss: step i of forecast and target scaled by 1 + pi/4 - atan(i)."""
    model = MTGNNConfig(num_nodes=3, seq_len=24, horizon=6, layers=2).to_dict()
    module = ForecastModule(model, TrainConfig(loss="l1", horizon_weight="arctan").to_dict())
    pred, target = torch.randn(4, 6, 3), torch.randn(4, 6, 3)
    steps = torch.tensor([1 + math.pi / 4 - math.atan(i) for i in range(1, 7)])
    expected = ((pred - target).abs() * steps[:, None]).mean()
    torch.testing.assert_close(module.training_loss(pred, target), expected)
    assert steps[0] == 1 and steps[-1] < 0.4  # the near steps weigh most
    # validation, early stopping and keep_start read the plain loss
    torch.testing.assert_close(module._loss(pred, target), (pred - target).abs().mean())


def test_arctan_horizon_weight_combines_with_the_frequency_loss():
    model = MTGNNConfig(num_nodes=3, seq_len=24, horizon=6, layers=2).to_dict()
    train = TrainConfig(loss="mse", horizon_weight="arctan", freq_loss=0.5).to_dict()
    module = ForecastModule(model, train)
    pred, target = torch.randn(4, 6, 3), torch.randn(4, 6, 3)
    error = (pred - target) * horizon_weights(6)[:, None]
    expected = 0.5 * error.square().mean() + 0.5 * _dft_l1(error)
    torch.testing.assert_close(module.training_loss(pred, target).double(), expected)


def test_arctan_horizon_weight_trains(toy, tmp_path):
    result = _fit(toy, tmp_path, horizon_weight="arctan", keep_start=False)
    expected = mean_loss(result.module, toy.val_dataloader())
    again = result.trainer.validate(result.module, toy.val_dataloader(), verbose=False)[0]
    assert again["val_loss"] == pytest.approx(expected, rel=1e-5)


def test_unknown_horizon_weight_names_the_setting():
    with pytest.raises(ValueError, match=r"train\.horizon_weight='linear' is not valid"):
        TrainConfig(horizon_weight="linear")


def test_cpu_training_uses_fused_adam_equal_to_the_looped_one():
    """One kernel over every parameter on CPUs (``adam``); the same updates as PyTorch's
    looped Adam, with the recipe's two parameter groups and weight decay."""
    config = MTGNNConfig(
        num_nodes=3, seq_len=24, horizon=6, layers=2, dropout=0.0, linear_shortcut="linear"
    )
    train = TrainConfig(shortcut_lr_scale=0.5, weight_decay=1e-3, lr_schedule="none")
    module = ForecastModule(config.to_dict(), train.to_dict())
    optimizer = module.configure_optimizers()
    assert optimizer.defaults["fused"] and len(optimizer.param_groups) == 2
    looped_module = ForecastModule(config.to_dict(), train.to_dict())
    looped_module.load_state_dict(module.state_dict())
    looped = torch.optim.Adam(looped_module._param_groups(1e-3, 0.5), lr=1e-3,
                              weight_decay=1e-3, foreach=False)  # fmt: skip
    x, y = torch.randn(4, 24, 3), torch.randn(4, 6, 3)
    for m, opt in ((module, optimizer), (looped_module, looped)):
        for _ in range(3):
            opt.zero_grad()
            m._loss(m(x), y).backward()
            opt.step()
    for (name, a), b in zip(module.named_parameters(), looped_module.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def test_network_decay_shrinks_the_deep_weights_towards_the_start_and_nothing_else():
    """Decoupled decay (AdamW) of the deep path's convolution and linear weights only: with
    zero gradients a step multiplies each by ``1 - lr * network_decay``, and leaves the
    closed-form parts, RevIN, biases and norms where they were."""
    config = MTGNNConfig(num_nodes=3, seq_len=24, horizon=6, layers=2, dropout=0.0,
                         linear_shortcut="linear", cycle_length=4)  # fmt: skip
    coupled = TrainConfig(network_decay=2.0, weight_decay=1e-3)
    groups = ForecastModule(config.to_dict(), coupled.to_dict()).configure_optimizers()
    groups = groups["optimizer"].param_groups
    # Adam's L2 penalty stays on the other parameters; the deep weights take the decay instead
    assert [(g["weight_decay"], g["decoupled_weight_decay"]) for g in groups] == [
        (1e-3, False),
        (2.0, True),
    ]
    train = TrainConfig(lr=1e-2, network_decay=2.0, lr_schedule="none")
    module = ForecastModule(config.to_dict(), train.to_dict())
    optimizer = module.configure_optimizers()
    decayed = next(g for g in optimizer.param_groups if g["decoupled_weight_decay"])
    deep = {id(p) for p in decayed["params"]}
    names = {name for name, p in module.named_parameters() if id(p) in deep}
    assert "model.start_conv.weight" in names and "model.head.3.weight" in names
    assert not any(
        part in name for name in names
        for part in ("shortcut", "cycle", "revin", "norm", "bias")
    )  # fmt: skip
    before = {name: p.detach().clone() for name, p in module.named_parameters()}
    for p in module.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    for name, p in module.named_parameters():
        factor = 1 - 1e-2 * 2.0 if name in names else 1.0  # no gradient: decay alone moves it
        torch.testing.assert_close(p.detach(), before[name] * factor, msg=name)


def test_negative_network_decay_is_a_value_error_naming_the_setting():
    with pytest.raises(ValueError, match=r"train\.network_decay=-0\.5 must be >= 0"):
        TrainConfig(network_decay=-0.5)


@pytest.mark.parametrize("monitor", ["loss", "mse", "mae"])
def test_monitor_picks_the_best_checkpoint_and_stops_on_the_named_score(toy, tmp_path, monitor):
    """Trained on L1, selected on what ``train.monitor`` names: the best checkpoint is the
    validation check with the lowest such score, and validating it again gives that score."""
    result = _fit(toy, tmp_path, loss="l1", monitor=monitor, max_steps=-1, max_epochs=3,
                  val_checks_per_epoch=2, patience=5, keep_start=False)  # fmt: skip
    key = f"val_{monitor}"
    checks = pd.read_csv(tmp_path / "metrics.csv").dropna(subset=[key])[key]
    assert len(checks) == 6
    assert result.metrics["best_val_loss"] == pytest.approx(checks.min(), rel=1e-6)
    again = result.trainer.validate(result.module, toy.val_dataloader(), verbose=False)[0]
    assert again[key] == pytest.approx(checks.min(), rel=1e-5)
    stop = next(c for c in result.trainer.callbacks if isinstance(c, EarlyStopping))
    assert stop.monitor == key


@pytest.mark.parametrize(("monitor", "error"), [("mse", "square"), ("mae", "abs")])
def test_mean_loss_scores_the_monitored_error(toy, monitor, error):
    model = MTGNNConfig(num_nodes=3, seq_len=16, horizon=4, layers=1).to_dict()
    module = ForecastModule(model, TrainConfig(loss="l1", monitor=monitor).to_dict()).eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for x, y, *_ in toy.val_dataloader():
            total += float(getattr(module(x) - y, error)().sum())
            count += y.numel()
    assert mean_loss(module, toy.val_dataloader()) == pytest.approx(total / count, rel=1e-5)


def test_unknown_monitor_is_a_value_error_naming_the_setting():
    with pytest.raises(ValueError, match=r"train\.monitor"):
        TrainConfig(monitor="val_mse")
