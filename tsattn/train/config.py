"""Configuration dataclasses shared by the Python API, the CLI and the experiment scripts.

A run is described by three sections, each a dataclass that round-trips through dict/YAML:

- :class:`DataConfig`: which data, window lengths, protocol, scaling, batch sizes.
- ``model``: overrides of :class:`~tsattn.models.mtgnn.MTGNNConfig` fields (checked against them).
  ``num_nodes``, ``seq_len``, ``horizon`` and ``time_features`` come from the data and are not
  set here.
- :class:`TrainConfig`: loss, optimiser, schedule, clipping, stopping, devices, seed.

:class:`RunConfig` holds the three plus a run name and output folder.

>>> cfg = RunConfig(data=DataConfig(data="ETTh1", horizon=96))
>>> cfg = cfg.with_overrides(["model.mixer=eca", "train.lr=1e-3"])
>>> cfg.model["mixer"], cfg.train.lr
('eca', 0.001)
>>> RunConfig.from_dict(cfg.to_dict()) == cfg
True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tsattn._config import reject_unknown
from tsattn.models.mtgnn import MTGNNConfig
from tsattn.train.recipe import RECIPES

__all__ = ["DERIVED_MODEL_FIELDS", "DataConfig", "RunConfig", "TrainConfig", "split_options"]

# MTGNNConfig fields that the data decides; a user never sets them directly.
DERIVED_MODEL_FIELDS = ("num_nodes", "seq_len", "horizon", "time_features")
# Model fields that also take "auto": the trainer sets them from the data (see
# tsattn.train.recipe.resolve_model_options).
AUTO_MODEL_FIELDS = ("cycle_length",)

LOSSES = ("auto", "mse", "l1", "huber")
LR_SCHEDULES = ("none", "exponential", "cosine")
SHORTCUT_INITS = ("least_squares", "weighted_least_squares", "random")
CYCLE_INITS = ("mean", "zero")
MONITORS = ("loss", "mse", "mae")
HORIZON_WEIGHTS = ("none", "arctan")
PROTOCOLS = ("auto", "tslib", "mtgnn", "holdout")
SCALINGS = ("standard", "maxabs_legacy", "none")


def _choice(name: str, value: str, choices: Iterable[str]) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not valid: choose one of {', '.join(choices)}.")


def _coerce(name: str, kind: str, value: Any) -> Any:
    """Match a YAML/CLI value to a field's declared type (``"1e-3"`` is a string in YAML)."""
    if value is None or not isinstance(value, str):
        if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value
    base = kind.replace(" | None", "")
    try:
        if base == "float":
            return float(value)
        if base == "int":
            return int(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a number.") from None
    return value


class _Section:
    """Dict round-trip with a clear error for unknown keys, values coerced to field types."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None):
        data = dict(data or {})
        reject_unknown(f"{cls.__name__} field", data, cls)
        kinds = {f.name: str(f.type) for f in dataclasses.fields(cls)}
        return cls(**{k: _coerce(k, kinds[k], v) for k, v in data.items()})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class DataConfig(_Section):
    """What to train on and how it is windowed (see ``tsattn.data.TimeSeriesDataModule``).

    ``data`` is a registered dataset name or a CSV path (the CLI needs it; the Python API passes
    DataFrames directly and leaves it ``None``).
    ``use_time_features``: whether the model reads the calendar marks of its inputs (data with
    dates): ``true``, ``false``, or ``auto`` (the default): under the long-horizon recipe only
    where the horizon spans a week or more, always elsewhere
    (:func:`tsattn.train.recipe.resolve_time_features`).
    """

    data: str | None = None
    seq_len: int = 96
    horizon: int = 96
    protocol: str = "auto"
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    scaling: str = "standard"
    use_time_features: bool | str = "auto"
    batch_size: int = 32
    eval_batch_size: int | None = None
    num_workers: int = 0

    def __post_init__(self) -> None:
        _choice("data.protocol", self.protocol, PROTOCOLS)
        _choice("data.scaling", self.scaling, SCALINGS)
        if self.use_time_features not in (True, False, "auto"):
            raise ValueError(
                f"data.use_time_features={self.use_time_features!r} is not valid: choose one "
                "of true, false, auto."
            )
        if self.seq_len < 1 or self.horizon < 1:
            raise ValueError(
                f"data.seq_len={self.seq_len} and data.horizon={self.horizon} must both be >= 1."
            )
        if self.batch_size < 1:
            raise ValueError(f"data.batch_size={self.batch_size} must be >= 1.")


@dataclass
class TrainConfig(_Section):
    """How to train.

    ``loss``: ``mse``, ``l1``, ``huber`` (squared below one scaled unit of error, absolute
    above: Huber, Ann. Math. Statist. 1964, ``torch.nn.functional.huber_loss`` with
    ``delta=1``), or ``auto``: L1 where the long-horizon recipe applies
    (:mod:`tsattn.train.recipe`), MSE elsewhere. ``lr``: a number, or ``auto``: the recipe's
    learning rate where it applies, MTGNN's 1e-3 elsewhere. ``lr_schedule``: ``exponential``
    multiplies the learning rate by ``lr_decay`` after every epoch (the Time-Series-Library
    recipe halves it: ``lr_decay=0.5``), ``cosine`` anneals it to 0 over ``max_epochs``,
    ``none`` keeps it. ``grad_clip`` is a max global L2 norm (0 = off). ``patience`` is early
    stopping on ``val_loss`` (or what ``monitor`` names; 0 = off), in epochs; the best
    checkpoint is reloaded before testing. ``val_checks_per_epoch`` scores the validation
    windows that many times per epoch, at evenly spaced steps, so that the best checkpoint and
    early stopping see the model between epochs too (Lightning's ``val_check_interval``;
    ``patience`` then counts ``patience * val_checks_per_epoch`` checks); ``auto`` (the
    default): under the recipe, one check per 256 training steps of an epoch, at least one
    (:func:`tsattn.train.recipe.resolve_val_checks`: one on ETTh1, four on ETTm1 at batch 32),
    once per epoch elsewhere.
    ``weight_decay`` is Adam's L2 penalty on every parameter (MTGNN's 1e-4 in its single-step
    recipe). ``network_decay`` > 0 is decoupled weight decay (AdamW: Loshchilov and Hutter,
    ICLR 2019; each step multiplies a weight by ``1 - lr * network_decay``) of the deep path's
    convolution and linear weights only: not of the parts the trainer starts in closed form
    (the linear shortcut, the cycle), RevIN, biases or norms, so that it pulls the forecaster
    towards its closed-form start (the deep path's head starts at zero) rather than towards
    zero; those weights then take no ``weight_decay``. 0 is off.
    ``ema_decay`` > 0 validates, checkpoints and returns an
    exponential moving average of the weights over the optimiser steps instead of the last
    step's weights (Polyak averaging: Polyak and Juditsky, SIAM J. Control Optim. 1992; each
    step ``avg = ema_decay * avg + (1 - ema_decay) * weights``, Lightning's
    ``EMAWeightAveraging``, which needs Lightning >= 2.6); 0 is off.
    ``freq_loss`` in [0, 1] trains on ``(1 - freq_loss) * loss + freq_loss * spectrum``, where
    ``spectrum`` is the mean modulus of the forecast error's orthonormal DFT along the horizon
    (FreDF: Wang et al., "FreDF: Learning to Forecast in the Frequency Domain", ICLR 2025): the
    steps of one forecast are correlated, and in the frequency domain their errors are much
    less so. Validation, early stopping and ``keep_start`` still read ``loss`` alone; 0 is off.
    ``horizon_weight="arctan"`` trains on forecasts and targets whose step ``i`` (1 to H) is
    scaled by ``1 + pi/4 - arctan(i)`` (xPatch's arctangent loss: Stitsyuk and Choi, AAAI 2025):
    1 at the first step, 0.31 at the tenth, falling towards 1 - pi/4 (0.21), so that training weighs
    the near steps, which the look-back predicts best, over the far ones; with ``freq_loss``
    the spectrum is taken of the scaled error. xPatch validates on the scaled error too;
    tsattn's validation, early stopping and ``keep_start`` read the plain ``loss``, as for
    ``freq_loss``. ``none`` (the default) weighs every step alike.
    ``monitor`` is the validation score that picks the best checkpoint and stops early, and that
    ``keep_start`` and the recipe's choices of cycle and shortcut maps compare: ``loss`` (the
    training loss, logged as ``val_loss``), or ``mse`` / ``mae`` (``val_mse`` / ``val_mae``, in
    the metric space the metrics are reported in), so that a model trained on one loss can be
    selected on the error it is judged by.
    ``checkpoint_every_n_steps`` additionally writes ``last.ckpt`` every n optimiser steps, for
    resuming a killed run mid-epoch.
    ``recipe="auto"`` builds the model of the long-horizon recipe (:mod:`tsattn.train.recipe`)
    under the ``tslib`` and ``holdout`` protocols, where model settings are not given
    explicitly; ``"none"`` keeps ``MTGNNConfig``'s own defaults. ``shortcut_init`` starts a
    model's linear shortcut (``MTGNNConfig.linear_shortcut``) at the closed-form least-squares
    fit of the training windows (``least_squares``, Toner and Darlow, ICML 2024; see
    :mod:`tsattn.nn.shortcut`), at the same fit with each window weighted by its RevIN variance,
    so that it minimises the squared error of the denormalised forecast
    (``weighted_least_squares``), or at ``nn.Linear``'s random draw (``random``); models without
    a shortcut ignore it. ``shortcut_shrink`` > 0 pulls the closed-form start of a shortcut
    with one map per variable (``MTGNNConfig.shortcut_per_variable``) towards the map shared by
    all variables (ridge regression towards the shared fit, relative to each variable's
    regressors: :meth:`~tsattn.nn.shortcut.LinearShortcut.fit_least_squares`); 0 fits each
    variable alone. ``start_trim`` > 0 leaves out of the closed-form start (cycle and
    shortcut) every training window's variable whose input or target holds a value more than
    ``start_trim`` standard deviations from that variable's training mean: a gross outlier, such
    as a sensor's -9999 sentinel, or a rare spike, would pull the least-squares fit and the
    phase means to itself (trimmed least squares, Rousseeuw, JASA 1984); the windows still
    train the model. 0 fits every window. ``cycle_init`` starts a model's learned cycle
    (``MTGNNConfig.cycle_length``) at the mean of each phase over the training windows
    (``mean``; the shortcut is then fitted to what the cycle leaves) or at zero (``zero``, as
    CycleNet does); models without a cycle ignore it. ``shortcut_lr_scale`` is the learning rate
    of the shortcut and the cycle relative to ``lr`` (``0`` keeps them at their start and trains
    the rest of the model on what they leave). ``keep_start``: a model started in closed form is
    scored on the validation windows before its first step, like an epoch 0, and kept
    (``checkpoints/start.ckpt``) when no epoch's ``val_loss`` (or ``monitor``'s score) beats it.
    ``keep_start_parts`` > 1 cuts the validation windows, in time order, into that many
    consecutive parts of (nearly) equal size, and the trained model replaces the start only if
    it scores below the start on every part, not only on all windows together: a gain that
    the later months do not share is a gain on the earlier months alone (shift within the
    validation period), and the start is kept (the recipe's 4: the eighteenth and nineteenth
    searches, :mod:`tsattn.train.recipe`). 1 compares all windows together. The four parts are
    the halves of the two halves, and a half the start wins it wins on one of its quarters at
    least, so 4 keeps the start wherever 2 does.
    """

    loss: str = "auto"
    lr: float | str = "auto"
    weight_decay: float = 0.0
    network_decay: float = 0.0
    lr_schedule: str = "exponential"
    lr_decay: float = 0.5
    grad_clip: float = 5.0
    max_epochs: int = 10
    max_steps: int = -1
    patience: int = 3
    val_checks_per_epoch: int | str = "auto"
    ema_decay: float = 0.0
    freq_loss: float = 0.0
    horizon_weight: str = "none"
    monitor: str = "loss"
    seed: int = 0
    precision: str = "32-true"
    accelerator: str = "auto"
    devices: int | str = "auto"
    strategy: str = "auto"
    num_nodes: int = 1  # machines, each with `devices` processes (Lightning's num_nodes)
    progress_bar: bool = True
    limit_train_batches: float | int = 1.0
    limit_val_batches: float | int = 1.0
    limit_test_batches: float | int = 1.0
    checkpoint_every_n_steps: int | None = None
    recipe: str = "auto"
    shortcut_init: str = "weighted_least_squares"
    shortcut_shrink: float = 0.0
    start_trim: float = 0.0
    cycle_init: str = "mean"
    shortcut_lr_scale: float = 1.0
    keep_start: bool = True
    keep_start_parts: int = 4

    def __post_init__(self) -> None:
        _choice("train.loss", self.loss, LOSSES)
        _choice("train.recipe", self.recipe, RECIPES)
        _choice("train.lr_schedule", self.lr_schedule, LR_SCHEDULES)
        _choice("train.shortcut_init", self.shortcut_init, SHORTCUT_INITS)
        _choice("train.cycle_init", self.cycle_init, CYCLE_INITS)
        _choice("train.monitor", self.monitor, MONITORS)
        _choice("train.horizon_weight", self.horizon_weight, HORIZON_WEIGHTS)
        if isinstance(self.lr, str) and self.lr != "auto":
            try:
                self.lr = float(self.lr)
            except ValueError:
                raise ValueError(f"train.lr={self.lr!r} is not a number or 'auto'.") from None
        if not isinstance(self.lr, str) and self.lr <= 0:
            raise ValueError(f"train.lr={self.lr} must be > 0.")
        if self.shortcut_shrink < 0:
            raise ValueError(
                f"train.shortcut_shrink={self.shortcut_shrink} must be >= 0 (0 fits each "
                "variable's map alone)."
            )
        if self.start_trim < 0:
            raise ValueError(
                f"train.start_trim={self.start_trim} must be >= 0 (0 fits the start to every "
                "window)."
            )
        if self.network_decay < 0:
            raise ValueError(
                f"train.network_decay={self.network_decay} must be >= 0 (0 turns it off)."
            )
        if self.shortcut_lr_scale < 0:
            raise ValueError(
                f"train.shortcut_lr_scale={self.shortcut_lr_scale} must be >= 0 (0 keeps the "
                "shortcut and the cycle at their start)."
            )
        if self.grad_clip < 0 or self.weight_decay < 0 or self.patience < 0:
            raise ValueError(
                f"train.grad_clip={self.grad_clip}, train.weight_decay={self.weight_decay} and "
                f"train.patience={self.patience} must be >= 0 (0 turns each off)."
            )
        checks = self.val_checks_per_epoch
        if checks != "auto":
            try:
                self.val_checks_per_epoch = int(checks)
            except (TypeError, ValueError):
                raise ValueError(
                    f"train.val_checks_per_epoch={checks!r} is not a number or 'auto'."
                ) from None
            if self.val_checks_per_epoch < 1:
                raise ValueError(f"train.val_checks_per_epoch={checks} must be >= 1 or 'auto'.")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(
                f"train.ema_decay={self.ema_decay} must lie in [0, 1) (0 turns weight averaging "
                "off; 0.99 averages over about 100 steps)."
            )
        if not 0.0 <= self.freq_loss <= 1.0:
            raise ValueError(
                f"train.freq_loss={self.freq_loss} must lie in [0, 1] (the weight of the "
                "frequency-domain error in the training loss; 0 turns it off)."
            )
        if self.keep_start_parts < 1:
            raise ValueError(
                f"train.keep_start_parts={self.keep_start_parts} must be >= 1 (1 compares the "
                "start with the trained model on all validation windows together)."
            )
        if self.num_nodes < 1:
            raise ValueError(f"train.num_nodes={self.num_nodes} must be >= 1 (machines).")
        if self.max_epochs < 1 and self.max_steps < 1:
            raise ValueError("set train.max_epochs >= 1 or train.max_steps >= 1.")

    @property
    def monitor_key(self) -> str:
        """The logged name of ``monitor``: ``val_loss``, ``val_mse`` or ``val_mae``."""
        return f"val_{self.monitor}"


def _model_overrides(model: Mapping[str, Any] | None) -> dict[str, Any]:
    model = dict(model or {})
    names = {f.name for f in dataclasses.fields(MTGNNConfig)}
    derived = sorted(set(model) & set(DERIVED_MODEL_FIELDS))
    if derived:
        raise ValueError(
            f"model.{derived[0]} is set by the data: use data.seq_len / data.horizon instead "
            f"(num_nodes and time_features follow the data's columns and dates)."
        )
    reject_unknown("model field", model, sorted(names - set(DERIVED_MODEL_FIELDS)))
    kinds = {f.name: str(f.type) for f in dataclasses.fields(MTGNNConfig)}
    return {
        k: v if k in AUTO_MODEL_FIELDS and v == "auto" else _coerce(f"model.{k}", kinds[k], v)
        for k, v in model.items()
    }


@dataclass
class RunConfig:
    """One run: data, model overrides, training, and where its folder goes."""

    data: DataConfig = field(default_factory=DataConfig)
    model: dict[str, Any] = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)
    name: str | None = None
    output_dir: str = "runs"

    def __post_init__(self) -> None:
        self.model = _model_overrides(self.model)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "output_dir": self.output_dir,
            "data": self.data.to_dict(),
            "model": dict(self.model),
            "train": self.train.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunConfig:
        data = dict(data)
        reject_unknown("config section", data, ["name", "output_dir", "data", "model", "train"])
        return cls(
            data=DataConfig.from_dict(data.get("data")),
            model=dict(data.get("model") or {}),
            train=TrainConfig.from_dict(data.get("train")),
            name=data.get("name"),
            output_dir=data.get("output_dir", "runs"),
        )

    @classmethod
    def from_yaml(cls, path: str | Path) -> RunConfig:
        with open(path, encoding="utf-8") as handle:
            loaded = yaml.safe_load(handle) or {}
        if not isinstance(loaded, Mapping):
            raise ValueError(f"{path}: a config file must hold a mapping with data/model/train.")
        return cls.from_dict(loaded)

    def to_yaml(self, path: str | Path) -> None:
        with open(path, "w", encoding="utf-8") as handle:
            yaml.safe_dump(self.to_dict(), handle, sort_keys=False)

    def with_overrides(self, overrides: Iterable[str]) -> RunConfig:
        """Apply ``section.key=value`` strings; values are parsed as YAML (``1e-3``, ``true``).

        >>> RunConfig().with_overrides(["data.horizon=24"]).data.horizon
        24
        """
        raw = self.to_dict()
        for item in overrides:
            key, sep, value = item.partition("=")
            parts = key.strip().split(".")
            if not sep or not parts[0]:
                raise ValueError(f"override {item!r}: write it as section.key=value.")
            target = raw
            for part in parts[:-1]:
                if not isinstance(target.get(part), dict):
                    raise ValueError(
                        f"override {item!r}: {part!r} is not a section "
                        "(use data.*, model.*, train.*, name or output_dir)."
                    )
                target = target[part]
            target[parts[-1]] = yaml.safe_load(value) if value.strip() else None
        return RunConfig.from_dict(raw)


def split_options(options: Mapping[str, Any]) -> tuple[dict, dict, dict]:
    """Sort flat keyword options into (data, model, train) by field name.

    >>> split_options({"horizon": 24, "mixer": "se", "lr": 1e-3})
    ({'horizon': 24}, {'mixer': 'se'}, {'lr': 0.001})
    """
    data_names = {f.name for f in dataclasses.fields(DataConfig)} - {"data"}
    train_names = {f.name for f in dataclasses.fields(TrainConfig)}
    model_names = {f.name for f in dataclasses.fields(MTGNNConfig)} - set(DERIVED_MODEL_FIELDS)
    data, model, train = {}, {}, {}
    for key, value in options.items():
        if key in data_names:
            data[key] = value
        elif key in train_names:
            train[key] = value
        elif key in model_names:
            model[key] = value
        else:
            valid = sorted(data_names | train_names | model_names)
            raise ValueError(f"unknown option {key!r}; valid options: {', '.join(valid)}.")
    return data, model, train
