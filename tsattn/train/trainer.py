"""Trainer factory and the fit -> reload best -> test driver used by the API, CLI and scripts.

:func:`build_trainer` turns a :class:`~tsattn.train.config.TrainConfig` into a Lightning
``Trainer``: accelerator/devices/strategy/precision, early stopping on ``val_loss`` (or the
score ``TrainConfig.monitor`` names), a ``best`` checkpoint, a ``last`` checkpoint (every n
steps when asked, for mid-epoch resume), an exponential moving average of the weights when
``ema_decay`` asks for one, gradient clipping by global norm, a CSV logger, one progress bar
for training (``progress_bar=False`` silences it), several machines (``num_nodes``), and the
:class:`~tsattn.train.resume.DeterministicResume` callback.

:func:`fit_datamodule` builds the model from the data's shape, trains, reloads the best
checkpoint and tests, returning a :class:`TrainResult`.

Under DDP (``strategy="ddp"``, ``devices>1``) the training windows are sharded across ranks by
:class:`~tsattn.train.resume.EpochShuffleSampler`; validation and test loaders are *not*
sharded (``use_distributed_sampler=False``), so every rank scores every window once and the
reported metrics are exact (a ``DistributedSampler`` would pad the test set with repeats).

>>> from tsattn.train.config import TrainConfig
>>> trainer, _ = build_trainer(TrainConfig(max_steps=1, progress_bar=False), "/tmp/tsattn-doc")
>>> trainer.max_steps
1
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm
from lightning.pytorch.loggers import CSVLogger

from tsattn.data import TimeSeriesDataModule
from tsattn.models.mtgnn import MTGNN, MTGNNConfig
from tsattn.train.allocator import FreedMemoryReuse
from tsattn.train.checkpoint import (
    SAFE_GLOBALS,
    check_resume_checkpoint,
    load_checkpoint,
    run_file,
)
from tsattn.train.config import DataConfig, RunConfig, TrainConfig
from tsattn.train.module import ForecastModule, _unpack
from tsattn.train.oversubscription import OversubscriptionGuard
from tsattn.train.recipe import (
    CROSS_MAX_INPUTS,
    MAP_NAMES,
    resolve_loss,
    resolve_lr,
    resolve_model_options,
    resolve_time_features,
    resolve_val_checks,
)
from tsattn.train.resume import DeterministicResume, resumable_loader

__all__ = [
    "EpochTimer",
    "TrainResult",
    "build_datamodule",
    "build_trainer",
    "choose_cycle_length",
    "fit_config",
    "fit_datamodule",
    "fit_start",
    "mean_loss",
    "quiet_lightning",
    "scaler_affine",
]


class TrainingProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar for the training epochs only: validation and the final test run
    inside the same line (their results appear in its postfix) instead of bars of their own."""

    def init_validation_tqdm(self) -> Tqdm:
        return Tqdm(disable=True)

    def init_test_tqdm(self) -> Tqdm:
        return Tqdm(disable=True)


class EpochTimer(pl.Callback):
    """Wall time of each training epoch, validation excluded (``seconds`` list)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._start = 0.0
        self._val = 0.0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start, self._val = time.perf_counter(), 0.0

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._val_start = time.perf_counter()

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.training:
            self._val += time.perf_counter() - self._val_start

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.seconds.append(time.perf_counter() - self._start - self._val)


class StartCheckpoint(pl.Callback):
    """Scores the model's closed-form start on the validation windows before the first training
    step, as an epoch 0 would be scored (:func:`mean_loss`: ``val_loss``, or the error
    ``TrainConfig.monitor`` names, over the windows ``limit_val_batches`` allows), and saves it as
    ``start.ckpt`` beside the ``best`` checkpoint, so that the trainer can return to it when no
    epoch beats it (``TrainConfig.keep_start``). With ``parts`` > 1 it also scores the start on
    each of that many consecutive parts of those windows (``part_scores``), for the trained
    model to beat on every part (``TrainConfig.keep_start_parts``, :meth:`score_parts`). Its
    scores travel in the run's checkpoints, so a resumed run still knows them."""

    FILENAME = "start.ckpt"

    def __init__(self, val_loader: torch.utils.data.DataLoader, parts: int = 1) -> None:
        self.val_loader, self.parts = val_loader, parts
        self.score: float | None = None
        self.part_scores: list[float] | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"score": self.score, "part_scores": self.part_scores}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.score = state_dict.get("score")
        self.part_scores = state_dict.get("part_scores")

    def _batches(self, trainer: pl.Trainer) -> int:
        """The validation batches ``limit_val_batches`` allows."""
        limit, available = trainer.limit_val_batches, len(self.val_loader)
        return min(available, limit) if isinstance(limit, int) else int(available * limit)

    def _split(self, trainer: pl.Trainer) -> list[torch.utils.data.DataLoader]:
        """The validation windows ``limit_val_batches`` allows, cut into ``parts``."""
        return split_loader(self.val_loader, self.parts, self._batches(trainer))

    def score_parts(self, module: ForecastModule, trainer: pl.Trainer) -> list[float]:
        """``module``'s score (:func:`mean_loss`) on each of ``parts`` consecutive parts of the
        validation windows that ``limit_val_batches`` allows, in time order."""
        with trainer.precision_plugin.val_step_context():
            return [mean_loss(module, part) for part in self._split(trainer)]

    @classmethod
    def path(cls, trainer: pl.Trainer) -> Path:
        """Where the start is saved: beside the ``best`` checkpoint (the run's
        ``checkpoints/`` folder when there is none)."""
        best = [c for c in trainer.checkpoint_callbacks if c.filename == "best"]
        folder = best[0].dirpath if best else Path(trainer.default_root_dir) / "checkpoints"
        return Path(folder) / cls.FILENAME

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.score is not None or trainer.global_step > 0:  # resumed: scored before, or never
            return
        # One pass over the windows: the whole score is the parts' window-weighted mean.
        sizes = [len(part.dataset) for part in self._split(trainer)]
        scores = self.score_parts(pl_module, trainer)
        self.score = float(np.average(scores, weights=sizes)) if scores else None
        if self.parts > 1:
            self.part_scores = scores
        if self.score is not None:
            trainer.save_checkpoint(self.path(trainer), weights_only=True)


def split_loader(
    loader: torch.utils.data.DataLoader, parts: int, batches: int | None = None
) -> list[torch.utils.data.DataLoader]:
    """The windows of ``loader``'s first ``batches`` batches (all by default), in order, cut into
    ``parts`` consecutive loaders of (nearly) equal size, each batched and collated as
    ``loader`` is; fewer where there are fewer windows than parts.

    >>> loader = torch.utils.data.DataLoader(range(10), batch_size=4)
    >>> [list(part.dataset) for part in split_loader(loader, 3)]
    [[0, 1, 2], [3, 4, 5, 6], [7, 8, 9]]
    >>> [list(part.dataset) for part in split_loader(loader, 2, batches=2)]
    [[0, 1, 2, 3], [4, 5, 6, 7]]
    """
    size = len(loader.dataset)
    windows = size if batches is None else min(size, batches * (loader.batch_size or 1))
    bounds = np.linspace(0, windows, parts + 1).round().astype(int)
    return [
        torch.utils.data.DataLoader(
            torch.utils.data.Subset(loader.dataset, range(a, b)),
            batch_size=loader.batch_size,
            collate_fn=loader.collate_fn,
        )
        for a, b in itertools.pairwise(bounds)
        if b > a
    ]


def mean_loss(
    module: ForecastModule, loader: torch.utils.data.DataLoader, batches: int | None = None
) -> float | None:
    """``module``'s validation score (:meth:`ForecastModule.score`: the training loss,
    ``val_loss``, or the error ``train.monitor`` names) over the first ``batches`` of ``loader``
    (all by default), averaged per window, in eval mode and without gradients; ``None`` without
    windows."""
    was_training = module.training
    module.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for _, batch in zip(range(len(loader) if batches is None else batches), loader,
                            strict=False):  # fmt: skip
            x, y, x_mark, step = _unpack(module.transfer_batch_to_device(batch, module.device, 0))
            loss = module.score(module(x, x_mark, step), y)
            total, count = total + float(loss) * len(x), count + len(x)
    module.train(was_training)
    return total / count if count else None


def build_trainer(
    cfg: TrainConfig,
    run_dir: str | Path,
    *,
    has_val: bool = True,
    batches_per_epoch: int | None = None,
    callbacks: Iterable[pl.Callback] = (),
) -> tuple[pl.Trainer, ModelCheckpoint | None]:
    """A configured ``Trainer`` writing into ``run_dir``, and its ``best`` checkpoint callback.

    ``has_val=False`` (no validation windows) drops early stopping and the ``best`` checkpoint.
    Validation runs ``cfg.val_checks_per_epoch`` times per epoch (``auto``, unresolved: once;
    :func:`fit_datamodule` resolves it from the protocol and the steps per epoch with
    :func:`~tsattn.train.recipe.resolve_val_checks`), and early stopping waits
    ``cfg.patience`` epochs' worth of checks. When ``max_steps`` ends training inside the first
    epoch (``batches_per_epoch`` known), validation runs at that last step, so a short run still
    has a validated checkpoint.
    """
    if cfg.val_checks_per_epoch == "auto":  # fit_datamodule resolves it from the data first
        cfg = dataclasses.replace(cfg, val_checks_per_epoch=1)
    run_dir = Path(run_dir)
    ckpt_dir = run_dir / "checkpoints"
    all_callbacks = list(callbacks)
    best = None
    if has_val:
        best = ModelCheckpoint(
            dirpath=ckpt_dir, filename="best", monitor=cfg.monitor_key, mode="min", save_top_k=1
        )
        all_callbacks.append(best)
        if cfg.patience:
            all_callbacks.append(
                EarlyStopping(
                    monitor=cfg.monitor_key,
                    mode="min",
                    patience=cfg.patience * cfg.val_checks_per_epoch,
                    check_on_train_epoch_end=False,
                )
            )
    if cfg.ema_decay:
        all_callbacks.append(_weight_averaging(cfg.ema_decay))
    if cfg.progress_bar:
        all_callbacks.append(TrainingProgressBar())
    all_callbacks.append(
        ModelCheckpoint(
            dirpath=ckpt_dir,
            save_top_k=0,
            save_last=True,
            every_n_train_steps=cfg.checkpoint_every_n_steps,
        )
    )
    val_check_interval = 1.0 / cfg.val_checks_per_epoch if cfg.val_checks_per_epoch > 1 else None
    if batches_per_epoch and 0 < cfg.max_steps < batches_per_epoch:
        val_check_interval = cfg.max_steps
    trainer = pl.Trainer(
        val_check_interval=val_check_interval,
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        strategy=cfg.strategy,
        precision=cfg.precision,
        max_epochs=cfg.max_epochs if cfg.max_epochs >= 1 else -1,
        max_steps=cfg.max_steps,
        gradient_clip_val=cfg.grad_clip or None,
        gradient_clip_algorithm="norm",
        limit_train_batches=cfg.limit_train_batches,
        limit_val_batches=cfg.limit_val_batches if has_val else 0,
        limit_test_batches=cfg.limit_test_batches,
        callbacks=all_callbacks,
        logger=CSVLogger(run_dir, name="", version=""),
        default_root_dir=run_dir,
        num_nodes=cfg.num_nodes,
        enable_progress_bar=cfg.progress_bar,
        enable_model_summary=False,  # the CLI prints its own summary; Python stays quiet
        # a short epoch still logs its steps (and Lightning has nothing to warn about)
        log_every_n_steps=max(1, min(10, batches_per_epoch or 10)),
        use_distributed_sampler=False,
        num_sanity_val_steps=0,
    )
    return trainer, best


try:  # Lightning >= 2.6
    from lightning.pytorch.callbacks import EMAWeightAveraging
except ImportError:  # pragma: no cover - older Lightning: ema_decay raises below
    EMAWeightAveraging = None

if EMAWeightAveraging is not None:

    class _WeightAverage(EMAWeightAveraging):
        """Lightning's EMA, released when training ends: the model then holds its weights for
        good (the best checkpoint is loaded next), so a later ``trainer.validate()`` scores
        them instead of swapping the last average in."""

        def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            super().on_train_end(trainer, pl_module)
            self._average_model = None


def _weight_averaging(decay: float) -> pl.Callback:
    """Lightning's exponential moving average of the weights (``TrainConfig.ema_decay``): it
    validates and checkpoints the average (``best.ckpt`` holds it, ``last.ckpt`` both, so a
    resumed run continues the average) and leaves it in the model when training ends."""
    if EMAWeightAveraging is None:
        raise ValueError(
            f"train.ema_decay={decay} needs Lightning >= 2.6 (its EMAWeightAveraging); this is "
            f"Lightning {pl.__version__}: upgrade it, or set train.ema_decay=0."
        )
    return _WeightAverage(decay=decay)


def build_datamodule(cfg: DataConfig, data: Any = None, **overrides: Any) -> TimeSeriesDataModule:
    """The ``TimeSeriesDataModule`` a :class:`DataConfig` describes; ``data`` (a DataFrame,
    path or name) replaces ``cfg.data``, ``overrides`` replace constructor options."""
    data = cfg.data if data is None else data
    if data is None:
        raise ValueError("no data given: set data.data (a dataset name or a CSV path).")
    options = dict(
        protocol=cfg.protocol, val_fraction=cfg.val_fraction, test_fraction=cfg.test_fraction,
        scaling=cfg.scaling, use_time_features=cfg.use_time_features is not False,
        batch_size=cfg.batch_size, eval_batch_size=cfg.eval_batch_size,
        num_workers=cfg.num_workers,
    )  # fmt: skip
    options.update(overrides)
    return TimeSeriesDataModule(data, cfg.seq_len, cfg.horizon, **options)


def scaler_affine(scaler: Any, num_nodes: int) -> tuple[list[float], list[float]]:
    """``(loc, scale)`` with ``scaled = (x - loc) / scale`` for any per-column affine scaler.

    Read off the scaler by probing ``transform`` at 0 and 1, so it works for standard, max-abs
    and identity scaling alike without depending on the scaler's attribute names.
    """
    if scaler is None:
        return [0.0] * num_nodes, [1.0] * num_nodes
    probe = np.stack([np.zeros(num_nodes), np.ones(num_nodes)]).astype(np.float64)  # (2, N)
    out = np.asarray(scaler.transform(probe), dtype=np.float64)
    step = out[1] - out[0]  # 1 / scale
    if not np.all(np.isfinite(step)) or np.any(step == 0):
        raise ValueError("the data's scaler is not an invertible per-column affine map.")
    scale = 1.0 / step
    loc = -out[0] * scale
    return loc.tolist(), scale.tolist()


@dataclass
class TrainResult:
    """What :func:`fit_datamodule` hands back."""

    module: ForecastModule
    trainer: pl.Trainer
    metrics: dict[str, float] = field(default_factory=dict)
    epoch_seconds: list[float] = field(default_factory=list)
    best_checkpoint: str | None = None
    #: ``True`` when no epoch beat the closed-form start (``TrainConfig.keep_start``, on every
    #: part of the validation windows: ``keep_start_parts``) and the start is the model.
    kept_start: bool = False


def _protocol_of(datamodule: Any) -> str:
    return str(getattr(datamodule, "protocol", "holdout"))


def fit_datamodule(
    datamodule: Any,
    *,
    model: Mapping[str, Any] | None = None,
    train: TrainConfig | None = None,
    use_time_features: bool | str = "auto",
    run_dir: str | Path,
    ckpt_path: str | None = None,
    callbacks: Iterable[pl.Callback] = (),
    test: bool = True,
    module_class: type[ForecastModule] = ForecastModule,
) -> TrainResult:
    """Seed, build the model from the data's shape, fit, reload the best checkpoint, test.

    The model is ``MTGNNConfig`` with the data's shape, the long-horizon recipe where
    ``train.recipe`` and the protocol call for it (:mod:`tsattn.train.recipe`), and ``model``'s
    explicit settings on top. ``use_time_features`` (``True``, ``False`` or ``"auto"``:
    :func:`~tsattn.train.recipe.resolve_time_features`) decides whether it reads the data's
    calendar marks.

    ``datamodule`` follows the ``tsattn.data.TimeSeriesDataModule`` contract (``seq_len``,
    ``num_nodes``, ``output_length``, ``n_time_features``, ``scaler``, ``window_counts``, the
    dataloaders).
    ``ckpt_path`` (``"last"`` or a path inside ``run_dir``) resumes a killed run; the checkpoint
    is loaded without unpickling code and every file it names must lie inside ``run_dir``
    (:mod:`tsattn.train.checkpoint`). Returns the trained module (with the best weights), the
    trainer, and metrics: ``val_*`` of the last validation, ``best_val_loss`` of the reloaded
    checkpoint (its ``train.monitor`` score), ``test_*`` of that checkpoint.
    """
    cfg = train or TrainConfig()
    with quiet_lightning():
        return _fit(datamodule, model, cfg, use_time_features, run_dir, ckpt_path, callbacks,
                    test, module_class)  # fmt: skip


def fit_config(
    config: RunConfig, datamodule: Any, run_dir: str | Path, **options: Any
) -> TrainResult:
    """:func:`fit_datamodule` with a run's settings: ``config.model`` and ``config.train``, and
    the time features as ``config.data`` asks (``datamodule`` is built from ``config.data``
    by the caller, :func:`build_datamodule`, who keeps it for scoring); ``options`` are
    :func:`fit_datamodule`'s other keywords (``ckpt_path``, ``test``, ...)."""
    return fit_datamodule(
        datamodule,
        model=config.model,
        train=config.train,
        use_time_features=config.data.use_time_features,
        run_dir=run_dir,
        **options,
    )


# Lightning's messages that a tsattn user cannot act on: banners ("GPU available"), tips
# advertising services, notes on options tsattn sets on purpose (in-memory windows need no
# loader workers; a resumed run folder is not empty; val_fraction=0 means no validation),
# the mid-epoch resume caveat that tsattn.train.resume makes untrue, and Lightning's own use
# of a deprecated torch pytree check.
_HIDDEN_WARNINGS = (
    r".*resuming from a checkpoint that ended before",
    r".*does not have many workers",
    r".*exists and is not empty",
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
    r".*but have no `val_dataloader`",  # val_fraction=0 asks for no validation
)


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """Keep Lightning's info-level chatter (banners, tips, ``max_steps`` reached, the visible
    GPUs) and the warnings in ``_HIDDEN_WARNINGS`` away from the user; every other warning
    still shows. Every fit runs under it; wrap a ``Trainer.validate`` or ``Trainer.test`` of
    your own in it too."""
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        for message in _HIDDEN_WARNINGS:
            warnings.filterwarnings("ignore", message=message)
        for logger in loggers:
            logger.setLevel(logging.WARNING)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


def fit_start(
    model: MTGNN,
    train_loader: torch.utils.data.DataLoader,
    *,
    shortcut: bool = True,
    cycle: bool = True,
    weighted: bool = False,
    shrink: float = 0.0,
    trim: float = 0.0,
) -> dict[str, int]:
    """Start ``model``'s closed-form parts at their fit to ``train_loader``'s windows.

    ``cycle``: the learned cycle (``MTGNNConfig.cycle_length``) starts at the mean of each
    phase over the training inputs (:meth:`~tsattn.nn.cycle.ResidualCycle.fit_mean`).
    ``shortcut``: the linear shortcut then starts at the least-squares fit of what the cycle
    leaves of the inputs and targets (:meth:`~tsattn.nn.shortcut.LinearShortcut.fit_least_squares`);
    ``weighted`` weights each window's variables by their RevIN variance, so that the fit
    minimises the squared error of the denormalised forecast, the space the training loss is
    taken in (unweighted, a window with a tiny spread counts as much as any other).
    The windows are read in order (the loader's own shuffling and random state are left alone)
    and normalised as the model normalises them (RevIN, whose affine map is the identity before
    training). ``shrink`` pulls maps per variable towards the shared fit
    (``TrainConfig.shortcut_shrink``); maps per phase block are pulled so by their own
    :data:`~tsattn.nn.shortcut.PHASE_SHRINK`. ``trim`` > 0 leaves out of both fits every window's
    variable whose input or target holds a value more than ``trim`` standard deviations from
    that variable's mean over the training inputs (:func:`gross_outliers`;
    ``TrainConfig.start_trim``): least squares and phase means have no defence against a gross
    outlier. A model whose shortcut reads the level offset (``MTGNNConfig.shortcut_level``)
    gets its ``level``, the mean of each variable over the training inputs, whether or not the
    shortcut is fitted; the fit then sets the weight on the offset with the rest of the map.
    Returns the number of values fitted by each part (parts the model lacks are left out) and,
    with ``trim``, the number of window variables left out (``trimmed``).
    """
    ordered = torch.utils.data.DataLoader(
        train_loader.dataset, batch_size=256, collate_fn=train_loader.collate_fn
    )
    seq_len, horizon = model.config.seq_len, model.config.horizon
    level = model.shortcut is not None and model.config.shortcut_level
    moments = _training_moments(ordered) if trim > 0 or level else None
    bounds = None
    if trim > 0:
        mean, std = moments
        bounds = (mean - trim * std).float(), (mean + trim * std).float()
    trimmed = 0

    def windows() -> Iterator[tuple[torch.Tensor, ...]]:
        """``(x (B, L, N), y (B, H, N), step (B,) | None, variance (B, N), offset (B, 1, N)
        | None)``, normalised; the window variables ``trim`` leaves out are NaN, which both
        fits skip."""
        nonlocal trimmed
        trimmed = 0
        with torch.no_grad():
            for x, y, *rest in ordered:
                if bounds is not None:
                    out = gross_outliers(x, y, *bounds)  # (B, N)
                    trimmed += int(out.sum())
                    x = x.masked_fill(out[:, None, :], math.nan)
                    y = y.masked_fill(out[:, None, :], math.nan)
                variance = torch.ones_like(x[:, 0])  # (B, N)
                offset = None
                if model.revin is not None:
                    x, stats = model.revin.normalize(x)  # (B, L, N)
                    y = model.revin.normalize_target(y, stats)  # (B, H, N)
                    variance = stats.std.squeeze(1) ** 2  # (B, 1, N) -> (B, N)
                    offset = model.level_offset(stats) if level and shortcut else None
                yield x, y, rest[1] if len(rest) > 1 else None, variance, offset

    def residuals() -> Iterator[tuple[torch.Tensor, ...]]:
        for x, y, step, variance, offset in windows():
            if model.cycle is not None:
                x = x - model.cycle(step, 0, seq_len)  # (B, L, N)
                y = y - model.cycle(step, seq_len, horizon)  # (B, H, N)
            if offset is not None:
                x = torch.cat([x, offset], dim=1)  # (B, L + 1, N), as forward reads it
            weight = variance if weighted else None
            phase = model.shortcut_phase(step)  # (B,), for maps per phase block
            yield (x, y, weight) if phase is None else (x, y, weight, phase)

    if level:  # the training level, also where the shortcut itself starts at random
        model.level.copy_(moments[0].to(model.level))
    fitted = {}
    if cycle and model.cycle is not None:
        fitted["cycle"] = model.cycle.fit_mean((x, step) for x, _, step, *_ in windows())
    if shortcut and model.shortcut is not None:
        with torch.no_grad():
            per_variable = model.shortcut.num_nodes is not None  # ``shrink`` is theirs
            fitted["shortcut"] = model.shortcut.fit_least_squares(
                residuals(), shrink=shrink if per_variable else None
            )
    if bounds is not None and fitted:
        fitted["trimmed"] = trimmed
    return fitted


def _training_moments(loader: torch.utils.data.DataLoader) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean and standard deviation of each variable over ``loader``'s input values,
    ``(mean (N,), std (N,))`` in float64, non-finite values left out. The global random state is
    left as it was (iterating a loader draws from it), so that reading them changes nothing
    else."""
    total = square = count = 0.0
    with torch.random.fork_rng(devices=[]):
        for x, *_ in loader:
            values = x.double().reshape(-1, x.shape[-1])  # (B*L, N)
            finite = values.isfinite()
            values = torch.where(finite, values, 0.0)
            total, square = total + values.sum(0), square + (values**2).sum(0)
            count = count + finite.sum(0)
    count = torch.as_tensor(count).clamp(min=1)
    mean = total / count
    std = (square / count - mean**2).clamp(min=0).sqrt()
    return mean, std


def gross_outliers(
    x: torch.Tensor, y: torch.Tensor, low: torch.Tensor, high: torch.Tensor
) -> torch.Tensor:
    """``(B, N)``: whether window ``b``'s variable ``n`` holds, in its input ``x (B, L, N)``
    or target ``y (B, H, N)``, a value outside ``[low[n], high[n]]``.

    >>> low, high = torch.tensor([-3.0, -3.0]), torch.tensor([3.0, 3.0])
    >>> x = torch.tensor([[[0.0, 1.0], [2.0, -9.0]]])  # one window, two steps, two variables
    >>> gross_outliers(x, torch.zeros(1, 1, 2), low, high).tolist()
    [[False, True]]
    """
    values = torch.cat([x, y], 1)  # (B, L + H, N)
    return ((values < low) | (values > high)).any(1)


def choose_cycle_length(
    make_module: Callable[[int], ForecastModule],
    lengths: Sequence[int],
    train_loader: torch.utils.data.DataLoader,
    val_loader: torch.utils.data.DataLoader,
    **start: Any,
) -> tuple[int, dict[int, float]]:
    """The cycle of ``lengths`` (``MTGNNConfig.cycle_length="auto"``) whose closed-form start
    scores the lowest validation loss, and every candidate's score.

    ``make_module(length)`` builds the module with that cycle; each is started as training
    starts it (:func:`fit_start`: the cycle at its phase means, the shortcut at what the cycle
    leaves) and scored on ``val_loader`` (:func:`mean_loss`, the score that early
    stopping and ``keep_start`` read). The candidates are built with the global random state
    saved and restored, so the model that then trains starts and sees its batches as it would
    without the choice.
    A cycle is a candidate only where the training series covers it at least twice; the
    shortest always is. CycleNet (Lin et al., NeurIPS 2024) reads the cycle off the
    autocorrelation of the data; scoring the fitted cycles on held-out windows makes the same
    choice with the model's own criterion.
    """
    x, y, *_ = train_loader.dataset[0]
    span = len(train_loader.dataset) + x.shape[0] + y.shape[0] - 1  # steps the windows cover
    candidates = [w for i, w in enumerate(lengths) if i == 0 or 2 * w <= span]
    scores = start_scores(make_module, candidates, train_loader, val_loader, **start)
    return min(scores, key=lambda w: (scores[w], w)), scores


def choose_shortcut_maps(
    make_module: Callable[[str | None], ForecastModule],
    options: Sequence[str],
    train_loader: torch.utils.data.DataLoader,
    val_loader: torch.utils.data.DataLoader,
    **start: Any,
) -> tuple[str | None, dict[str | None, float]]:
    """Which maps the linear shortcut gets where ``MTGNNConfig.shortcut_per_variable``,
    ``shortcut_cross_variable`` or ``shortcut_per_phase`` is ``"auto"``: the closed-form start
    with the map shared by every variable (``None``) and with each of ``options`` turned on
    (``make_module(option)`` builds each candidate), each scored as :func:`choose_cycle_length`
    scores its cycles; ties go to the earlier candidate, the shared map first. Returns the
    choice and every score.

    A map per variable (DLinear's ``individual=True``) fits variables that follow different
    relations, and over-fits where the training months do not carry over to the later ones
    (on ETTh2 it validated 7 % higher at H=720); maps that read every variable's look-back
    (the channel-dependent linear model) use what the variables say about each other, and
    over-fit more still where the windows are few; maps per phase block follow dynamics that
    change with the hour of the day, from a share of the windows each: the held-out windows
    tell them apart.
    """
    candidates = (None, *options)
    scores = start_scores(make_module, candidates, train_loader, val_loader, **start)
    return min(candidates, key=lambda c: scores[c]), scores


def start_scores(
    make_module: Callable[[Any], ForecastModule],
    candidates: Iterable[Any],
    train_loader: torch.utils.data.DataLoader,
    val_loader: torch.utils.data.DataLoader,
    **start: Any,
) -> dict[Any, float]:
    """The validation score (:func:`mean_loss`) on ``val_loader`` of ``make_module(c)``'s
    closed-form start (:func:`fit_start` on ``train_loader`` with the keywords ``start``:
    ``weighted``, ``shrink``, ``trim``) for every candidate ``c`` (``inf``
    where it is not finite). The candidates are built with the global random state saved and
    restored, so the model that then trains starts and sees its batches as it would without the
    choice."""
    scores = {}
    with torch.random.fork_rng(devices=[]):  # building and iterating the loaders draw from it
        for candidate in candidates:
            module = make_module(candidate)
            fit_start(module.model, train_loader, **start)
            score = mean_loss(module, val_loader)
            scores[candidate] = math.inf if score is None or not math.isfinite(score) else score
    return scores


def _resume_path(ckpt_path: str | None, run_dir: str | Path) -> str | None:
    """The checked checkpoint to resume from: ``"last"`` is ``checkpoints/last.ckpt`` of
    ``run_dir`` (``None``, a fresh start, when there is none, as in Lightning)."""
    if ckpt_path is None:
        return None
    if ckpt_path == "last":
        last = Path(run_dir) / "checkpoints" / "last.ckpt"
        if not last.exists():
            warnings.warn(
                f"ckpt_path='last' but {last} does not exist: training starts afresh.",
                stacklevel=4,
            )
            return None
        ckpt_path = str(last)
    return str(check_resume_checkpoint(ckpt_path, run_dir))


def _fit(datamodule, model, cfg, use_time_features, run_dir, ckpt_path, callbacks, test,
         module_class) -> TrainResult:  # fmt: skip
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule.setup()
    seq_len = datamodule.seq_len
    counts = datamodule.window_counts
    if counts.get("train", 0) < 1:
        raise ValueError(
            f"no training windows (counts {counts}): the series is too short for "
            f"seq_len={seq_len} + horizon; use a shorter seq_len/horizon or more history."
        )
    protocol = _protocol_of(datamodule)
    cfg = dataclasses.replace(cfg, loss=resolve_loss(protocol, cfg.loss, cfg.recipe),
                              lr=resolve_lr(protocol, cfg.lr, cfg.recipe))  # fmt: skip
    loc, scale = scaler_affine(getattr(datamodule, "scaler", None), datamodule.num_nodes)
    plan = getattr(datamodule, "plan", None)
    gap = plan.geometry.gap if plan is not None else 0
    freq = getattr(datamodule, "freq", None)
    use_time_features = resolve_time_features(
        protocol, use_time_features, datamodule.output_length, freq, cfg.recipe
    )

    def make_module(options: Mapping[str, Any]) -> ForecastModule:
        model_config = MTGNNConfig(
            num_nodes=datamodule.num_nodes,
            seq_len=seq_len,
            horizon=datamodule.output_length,
            time_features=datamodule.n_time_features if use_time_features else 0,
            **options,
        )
        if model_config.cycle_length and gap:
            raise ValueError(
                f"model.cycle_length={model_config.cycle_length} needs forecasts that follow "
                f"the input directly, but protocol {protocol!r} skips {gap} steps: use "
                "model.cycle_length=0 with this protocol."
            )
        return module_class(
            model_config.to_dict(),
            cfg.to_dict(),
            metric_space="original" if protocol == "mtgnn" else "scaled",
            scaler_loc=loc,
            scaler_scale=scale,
        )

    has_val = counts.get("val", 0) > 0
    loader = datamodule.train_dataloader()
    start_options = dict(weighted=cfg.shortcut_init == "weighted_least_squares",
                         shrink=cfg.shortcut_shrink, trim=cfg.start_trim)  # fmt: skip
    cycle_scores: dict[int, float] = {}
    map_scores: dict[str, float] = {}
    level_scores: dict[str, float] = {}

    def choose_cycle(options: dict[str, Any], lengths: tuple[int, ...]) -> int:
        """The cycle whose closed-form start validates best (the first without a start to
        score: no validation windows, a cycle started at zero, or a gap)."""
        if not has_val or cfg.cycle_init != "mean" or gap:
            return lengths[0]
        length, scores = choose_cycle_length(
            lambda w: make_module({**options, "cycle_length": w}), lengths, loader,
            datamodule.val_dataloader(), **start_options,
        )  # fmt: skip
        cycle_scores.update(scores)
        return length

    def choose_maps(options: dict[str, Any], keys: Sequence[str]) -> str | None:
        """The maps among ``keys`` whose closed-form start validates best, ``None`` for the
        shared map (also without a start to score: no validation windows, a random start, or a
        gap). Cross-variable maps are candidates only up to :data:`CROSS_MAX_INPUTS` inputs."""
        if not has_val or cfg.shortcut_init == "random" or gap:
            return None
        if datamodule.num_nodes * seq_len > CROSS_MAX_INPUTS:
            keys = [key for key in keys if key != "shortcut_cross_variable"]
        if not keys:
            return None
        chosen, scores = choose_shortcut_maps(
            lambda key: make_module({**options, **({key: True} if key else {})}), keys,
            loader, datamodule.val_dataloader(), **start_options,
        )  # fmt: skip
        map_scores.update({MAP_NAMES[key]: score for key, score in scores.items()})
        return chosen

    def choose_level(options: dict[str, Any]) -> bool:
        """Whether the shortcut's closed-form start validates better with the level offset
        (``shortcut_level``) than without it (without a start to score: without)."""
        if not has_val or cfg.shortcut_init == "random" or gap:
            return False
        scores = start_scores(
            lambda on: make_module({**options, "shortcut_level": on}), (False, True), loader,
            datamodule.val_dataloader(), **start_options,
        )  # fmt: skip
        level_scores.update({"level" if on else "no_level": score for on, score in scores.items()})
        return scores[True] < scores[False]

    model_options = resolve_model_options(
        protocol, datamodule.num_nodes, datamodule.output_length, model or {}, cfg.recipe,
        freq=freq, choose_cycle=choose_cycle, choose_maps=choose_maps, choose_level=choose_level,
    )  # fmt: skip
    module = make_module(model_options)
    resume_from = _resume_path(ckpt_path, run_dir)
    fitted = {}
    if resume_from is None:
        fitted = fit_start(module.model, loader, shortcut=cfg.shortcut_init != "random",
                           cycle=cfg.cycle_init == "mean", **start_options)  # fmt: skip
    start = None
    if has_val and cfg.keep_start and (fitted or resume_from is not None):
        # a resumed run restores its scores
        start = StartCheckpoint(datamodule.val_dataloader(), cfg.keep_start_parts)
    train_loader = resumable_loader(loader, cfg.seed)
    timer = EpochTimer()
    extra = [DeterministicResume(train_loader, cfg.seed), timer, OversubscriptionGuard(),
             FreedMemoryReuse(), *([start] if start is not None else []), *callbacks]  # fmt: skip
    batches = len(train_loader)
    limit = cfg.limit_train_batches
    batches = min(batches, int(limit)) if isinstance(limit, int) else int(batches * limit)
    checks = resolve_val_checks(protocol, cfg.val_checks_per_epoch, cfg.recipe, batches)
    cfg = dataclasses.replace(cfg, val_checks_per_epoch=checks)
    trainer, best = build_trainer(
        cfg, run_dir, has_val=has_val, batches_per_epoch=batches, callbacks=extra
    )
    with torch.serialization.safe_globals(list(SAFE_GLOBALS)):
        trainer.fit(
            module,
            train_dataloaders=train_loader,
            val_dataloaders=datamodule.val_dataloader() if has_val else None,
            ckpt_path=resume_from,
            weights_only=True,
        )
    best_path = best.best_model_path if best is not None and best.best_model_path else None
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val_")}
    metrics.update({f"start_val_loss_cycle{w}": score for w, score in cycle_scores.items()})
    metrics.update({f"start_val_loss_{maps}_maps": score for maps, score in map_scores.items()})
    metrics.update({f"start_val_loss_{name}": score for name, score in level_scores.items()})
    if "trimmed" in fitted:
        metrics["start_trimmed"] = float(fitted["trimmed"])
    best_score = float(best.best_model_score) if best_path else math.inf
    keep = False
    if start is not None and start.score is not None:
        metrics["start_val_loss"] = start.score
        keep = start.score <= best_score
        if best_path and start.part_scores:
            # The trained model must beat the start on every part of the validation windows.
            state = load_checkpoint(run_file(best_path, best.dirpath or run_dir))
            module.load_state_dict(state["state_dict"])
            trained = start.score_parts(module, trainer)
            pairs = list(zip(trained, start.part_scores, strict=True))
            for i, (ours, theirs) in enumerate(pairs):
                metrics[f"best_val_loss_part{i + 1}"] = ours
                metrics[f"start_val_loss_part{i + 1}"] = theirs
            keep = keep or any(ours >= theirs for ours, theirs in pairs)
        if keep:
            # No epoch beat the closed-form start (on every part): it is the model, and its
            # checkpoint the best.
            best_path, best_score = str(StartCheckpoint.path(trainer)), start.score
    if best_path:
        # The best checkpoint lies in the checkpoint folder of this run; under multi-node DDP
        # every rank reads rank 0's folder, which Lightning broadcasts (the other ranks' own
        # run folder is a scratch folder). A resumed run's recorded paths were checked against
        # its folder before fitting (check_resume_checkpoint).
        state = load_checkpoint(run_file(best_path, best.dirpath or run_dir))
        module.load_state_dict(state["state_dict"])
        metrics["best_val_loss"] = best_score
    if test and counts.get("test", 0) > 0:
        results = trainer.test(module, dataloaders=datamodule.test_dataloader(), verbose=False)
        metrics.update({k: float(v) for k, v in results[0].items()})
    return TrainResult(module, trainer, metrics, timer.seconds, best_path, kept_start=keep)
