"""The LightningModule that trains and evaluates an :class:`~tsattn.models.mtgnn.MTGNN`.

Batches are ``(x: (B, L, N), y: (B, H, N), x_mark: (B, L, F), step: (B,))`` from
``tsattn.data.TimeSeriesDataModule`` (``F`` may be 0; ``step`` places each window in the
model's cycle, when it has one). The loss (MSE or L1, mixed with a frequency-domain error
in training when ``train.freq_loss`` > 0) is taken on scaled values. Validation and test
metrics (:mod:`tsattn.train.metrics`) are accumulated over every window and reported per
protocol:

- ``metric_space="scaled"`` (protocols ``tslib`` and ``holdout``): MSE/MAE/RSE/CORR on the
  standardised values, as the long-horizon papers report them.
- ``metric_space="original"`` (protocol ``mtgnn``): predictions and targets are mapped back to
  original units with the scaler's affine map (``x = z * scale + loc``) first, as RSE/CORR are
  defined in LSTNet/MTGNN.

A non-finite training loss stops training with a ``FloatingPointError`` that names the step.

>>> from tsattn.models.mtgnn import MTGNNConfig
>>> module = ForecastModule(MTGNNConfig(num_nodes=3, seq_len=24, horizon=6, layers=2).to_dict())
>>> module(torch.randn(2, 24, 3)).shape
torch.Size([2, 6, 3])
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F

from tsattn.models.mtgnn import MTGNN, MTGNNConfig
from tsattn.train.config import TrainConfig
from tsattn.train.metrics import MetricAccumulator
from tsattn.train.recipe import DEFAULT_LR

__all__ = ["ForecastModule", "adam", "horizon_weights"]

METRIC_SPACES = ("scaled", "original")


def horizon_weights(horizon: int) -> torch.Tensor:
    """xPatch's arctangent weight of each forecast step ``i = 1..horizon``:
    ``1 + pi/4 - arctan(i)``, 1 at the first step and falling towards ``1 - pi/4`` (Stitsyuk
    and Choi, AAAI 2025; ``train.horizon_weight="arctan"``).

    >>> horizon_weights(3)
    tensor([1.0000, 0.6782, 0.5364])
    """
    steps = torch.arange(1, horizon + 1, dtype=torch.float64)
    return (1 + math.pi / 4 - torch.atan(steps)).float()


class ForecastModule(pl.LightningModule):
    """MTGNN + loss, optimiser, schedule and metrics.

    ``scaler_loc`` / ``scaler_scale`` (one value per variable) describe the data's scaling as
    ``scaled = (x - loc) / scale``; they travel inside checkpoints and are used to report metrics
    in original units when ``metric_space="original"``.
    """

    def __init__(
        self,
        model_config: Mapping[str, Any],
        train_config: Mapping[str, Any] | None = None,
        metric_space: str = "scaled",
        scaler_loc: Sequence[float] | None = None,
        scaler_scale: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if metric_space not in METRIC_SPACES:
            raise ValueError(
                f"metric_space={metric_space!r}: choose one of {', '.join(METRIC_SPACES)}."
            )
        self.save_hyperparameters()
        self.model_config = MTGNNConfig.from_dict(model_config)
        self.train_config = TrainConfig.from_dict(train_config)
        self.metric_space = metric_space
        self.model = MTGNN(self.model_config)
        n = self.model_config.num_nodes
        loc = (
            torch.zeros(n)
            if scaler_loc is None
            else torch.as_tensor(scaler_loc, dtype=torch.float32)
        )
        scale = (
            torch.ones(n)
            if scaler_scale is None
            else torch.as_tensor(scaler_scale, dtype=torch.float32)
        )
        if loc.shape != (n,) or scale.shape != (n,):
            raise ValueError(
                f"scaler_loc/scaler_scale need one value per variable ({n}); "
                f"got {tuple(loc.shape)} and {tuple(scale.shape)}."
            )
        self.register_buffer("scaler_loc", loc)
        self.register_buffer("scaler_scale", scale)
        # (H, 1): each step's weight in the training loss, made once and moved with the module
        weights = None
        if self.train_config.horizon_weight == "arctan":
            weights = horizon_weights(self.model_config.horizon)[:, None]
        self.register_buffer("step_weights", weights, persistent=False)
        self._metrics = {"val": MetricAccumulator(), "test": MetricAccumulator()}

    def forward(
        self,
        x: torch.Tensor,
        x_mark: torch.Tensor | None = None,
        step: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``(B, L, N)``, ``(B, L, F) | None``, ``(B,) | None`` -> ``(B, H, N)``, scaled units."""
        if not self.model_config.time_features:
            x_mark = None
        return self.model(x, x_mark, step)

    def _loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        pred = pred.float()
        if self.train_config.loss == "l1":
            return F.l1_loss(pred, target)
        if self.train_config.loss == "huber":
            return F.huber_loss(pred, target, delta=1.0)
        return F.mse_loss(pred, target)  # "mse", and "auto" outside fit_datamodule

    def training_loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss the optimiser follows: ``_loss`` (what validation reads), of forecasts and
        targets scaled step by step when ``train.horizon_weight`` is ``arctan`` (xPatch), mixed
        with the frequency-domain error when ``train.freq_loss`` > 0 (FreDF)."""
        if self.step_weights is not None:
            pred, target = pred.float() * self.step_weights, target * self.step_weights
        weight = self.train_config.freq_loss
        loss = self._loss(pred, target)
        if weight == 0:
            return loss
        error = torch.fft.rfft(pred.float() - target, dim=1, norm="ortho")  # (B, H//2+1, N)
        return (1 - weight) * loss + weight * error.abs().mean()

    def score(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The validation score ``train.monitor`` selects on, for one batch: the loss
        (``val_loss``), or the mean squared / absolute error in the metric space (``val_mse``
        / ``val_mae``)."""
        monitor = self.train_config.monitor
        if monitor == "loss":
            return self._loss(pred, target)
        pred = pred.float()
        if self.metric_space == "original":
            pred, target = self.to_original(pred), self.to_original(target)
        error = pred - target
        return error.square().mean() if monitor == "mse" else error.abs().mean()

    def training_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y, x_mark, step = _unpack(batch)
        loss = self.training_loss(self(x, x_mark, step), y)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"training loss is {loss.item()} at global step {self.global_step} "
                f"(epoch {self.current_epoch}, batch {batch_idx}): lower train.lr, keep "
                "train.grad_clip on, and check the data for NaN/inf values."
            )
        self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=True)
        return loss

    def to_original(self, values: torch.Tensor) -> torch.Tensor:
        """Scaled ``(..., N)`` -> original units."""
        return values * self.scaler_scale + self.scaler_loc  # (..., N)

    def _evaluate(self, stage: str, batch: Sequence[torch.Tensor]) -> torch.Tensor:
        x, y, x_mark, step = _unpack(batch)
        pred = self(x, x_mark, step).float()  # (B, H, N)
        loss = self._loss(pred, y)
        if self.metric_space == "original":
            self._metrics[stage].update(self.to_original(pred), self.to_original(y))
        else:
            self._metrics[stage].update(pred, y)
        return loss

    def _log_metrics(self, stage: str) -> None:
        values = self._metrics[stage].compute()
        self._metrics[stage].reset()
        for name, value in values.items():
            if not math.isnan(value):
                self.log(f"{stage}_{name}", value)

    def on_validation_epoch_start(self) -> None:
        self._metrics["val"].reset()

    def validation_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> None:
        self.log("val_loss", self._evaluate("val", batch), prog_bar=True, batch_size=len(batch[0]))

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val")

    def on_test_epoch_start(self) -> None:
        self._metrics["test"].reset()

    def test_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> None:
        self.log("test_loss", self._evaluate("test", batch), batch_size=len(batch[0]))

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test")

    def predict_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, _, x_mark, step = _unpack(batch)
        return self(x, x_mark, step)

    def _param_groups(
        self, lr: float, scale: float, network_decay: float = 0.0
    ) -> list[dict[str, Any]]:
        """The optimiser's parameter groups: the linear shortcut and the cycle, the parts the
        trainer starts in closed form, learn at ``scale x lr`` (``0``: they keep their start);
        with ``network_decay`` > 0 the deep path's convolution and linear weights form a group
        of their own with decoupled weight decay (``TrainConfig.network_decay``). One group
        when ``scale`` is 1 and there is no decay, or the model has none of these parts."""
        parts = (getattr(self.model, "shortcut", None), getattr(self.model, "cycle", None))
        started = [p for m in parts if m is not None for p in m.parameters()]
        decayed = self._network_weights(started) if network_decay > 0 else []
        if (scale == 1 or not started) and not decayed:
            return [{"params": list(self.parameters())}]
        apart = {id(p) for p in decayed} | ({id(p) for p in started} if scale != 1 else set())
        groups = [{"params": [p for p in self.parameters() if id(p) not in apart]}]
        if decayed:
            groups.append({"params": decayed, "weight_decay": network_decay,
                           "decoupled_weight_decay": True})  # fmt: skip
        if scale != 1 and scale > 0 and started:
            groups.append({"params": started, "lr": lr * scale})
        return groups

    def _network_weights(self, started: list[torch.nn.Parameter]) -> list[torch.nn.Parameter]:
        """The weights of the deep path's convolutions and linear layers: not ``started`` (the
        closed-form parts), RevIN, biases or norms."""
        skip = {id(p) for p in started}
        revin = getattr(self.model, "revin", None)
        if revin is not None:
            skip |= {id(p) for p in revin.parameters()}
        layers = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear)
        return [
            m.weight for m in self.modules()
            if isinstance(m, layers) and m.weight.requires_grad and id(m.weight) not in skip
        ]  # fmt: skip

    def configure_optimizers(self) -> Any:
        cfg = self.train_config
        lr = DEFAULT_LR if cfg.lr == "auto" else cfg.lr  # "auto" outside fit_datamodule
        groups = self._param_groups(lr, cfg.shortcut_lr_scale, cfg.network_decay)
        optimizer = adam(groups, lr=lr, weight_decay=cfg.weight_decay)
        if cfg.lr_schedule == "none":
            return optimizer
        if cfg.lr_schedule == "exponential":
            scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=cfg.lr_decay)
        else:
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
                optimizer, T_max=max(1, cfg.max_epochs)
            )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"},
        }


def adam(params: Any, lr: float, weight_decay: float = 0.0) -> torch.optim.Adam:
    """Adam as tsattn trains with it: on CPUs fused into one kernel over every parameter.

    PyTorch's default Adam on CPUs runs several operations per parameter tensor, a cost that
    does not shrink with the model: with it the whole training step of
    ``experiments/bench_speed.py`` took 2% longer at the ETTh1-like shape and 7% at the
    electricity-like one. Elsewhere PyTorch's own choice stays: a
    fused CUDA Adam unscales the gradients itself, which Lightning's 16-bit mixed precision
    cannot combine with gradient clipping.
    """
    groups = list(params)
    tensors = [p for g in groups for p in (g["params"] if isinstance(g, dict) else [g])]
    fused = bool(tensors) and all(p.device.type == "cpu" for p in tensors)
    return torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay, fused=fused or None)


def _unpack(batch: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """``(x, y, x_mark, step)``; data modules without grid positions may give the first three
    (``step`` is then ``None``, which only a model with a cycle refuses)."""
    if len(batch) == 3:
        return (*batch, None)
    return tuple(batch)
