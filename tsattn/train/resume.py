"""Exact resumption of a killed fit, mid-epoch included.

Lightning restores weights, optimiser, scheduler, loop counters and callbacks from a
checkpoint, but not the order in which a shuffled ``DataLoader`` visits the windows, nor the
global RNG that dropout draws from. Two pieces close that gap:

- :class:`EpochShuffleSampler`: the visiting order is a pure function of ``(seed, epoch)``
  (and of rank/world size under DDP, where it also shards like ``DistributedSampler``), and
  it can skip the windows already consumed in the epoch being resumed.
- :class:`DeterministicResume`: a callback that records ``(epoch, batches consumed)`` in every
  checkpoint, hands it back to the sampler on restore, and reseeds the RNG before every
  training step from ``(seed, global_step, rank)``, so dropout masks do not depend on history.

Together they make "kill at step k, ``fit(ckpt_path="last")``" end with exactly the weights of
an uninterrupted run (tested in ``tests/train/test_resume.py``).

>>> sampler = EpochShuffleSampler(10, seed=0)
>>> sampler.set_epoch(1); first = list(sampler)
>>> sampler.skip = 4; list(sampler) == first[4:]
True
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import lightning.pytorch as pl
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Sampler

__all__ = ["DeterministicResume", "EpochShuffleSampler", "resumable_loader"]


def _rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class EpochShuffleSampler(Sampler[int]):
    """Shuffled indices, a pure function of ``(seed, epoch, rank, world size)``.

    ``skip`` (a count of indices) applies to the next iteration only. Under DDP each rank takes
    every ``world``-th index of the permutation, padded by wrapping around so every rank gets the
    same count (as ``DistributedSampler`` does).
    """

    def __init__(self, num_samples: int, seed: int = 0) -> None:
        self.num_samples = int(num_samples)
        self.seed = int(seed)
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _per_rank(self, world: int) -> int:
        return -(-self.num_samples // world)  # ceil

    def __len__(self) -> int:
        return self._per_rank(_rank_and_world()[1])

    def __iter__(self) -> Iterator[int]:
        rank, world = _rank_and_world()
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.num_samples, generator=generator)
        total = self._per_rank(world) * world
        if total > self.num_samples:
            order = torch.cat([order, order[: total - self.num_samples]])
        mine = order[rank::world]
        skip, self.skip = self.skip, 0
        return iter(mine[skip:].tolist())


def resumable_loader(loader: DataLoader, seed: int) -> DataLoader:
    """``loader`` (same dataset, batch size, workers, collate) with an
    :class:`EpochShuffleSampler` in place of its shuffling."""
    if loader.batch_size is None:
        raise ValueError(
            "the training DataLoader uses a custom batch_sampler; tsattn needs a plain "
            "batch_size to make its order resumable."
        )
    return DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=EpochShuffleSampler(len(loader.dataset), seed),
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        drop_last=loader.drop_last,
        persistent_workers=loader.persistent_workers,
    )


class DeterministicResume(pl.Callback):
    """Saves the in-epoch position into checkpoints and reseeds the RNG before each step.

    ``loader`` is the training loader built by :func:`resumable_loader`.
    """

    def __init__(self, loader: DataLoader, seed: int) -> None:
        if not isinstance(loader.sampler, EpochShuffleSampler):
            raise ValueError("DeterministicResume needs a loader built by resumable_loader().")
        self.sampler = loader.sampler
        self.batch_size = int(loader.batch_size)
        self.seed = int(seed)
        self.epoch = 0
        self.consumed = 0  # batches finished in ``epoch``
        self.batches_per_epoch = 0

    @property
    def state_key(self) -> str:
        return "DeterministicResume"

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.epoch, self.consumed = trainer.current_epoch, 0
        self.batches_per_epoch = int(trainer.num_training_batches)

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        torch.manual_seed(self.seed * 1_000_003 + trainer.global_step * 1009 + trainer.global_rank)

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        self.consumed = batch_idx + 1

    def state_dict(self) -> dict[str, int]:
        return {
            "epoch": self.epoch,
            "consumed": self.consumed,
            "batches_per_epoch": self.batches_per_epoch,
        }

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        epoch, consumed = state_dict["epoch"], state_dict["consumed"]
        if consumed >= state_dict["batches_per_epoch"]:  # saved at an epoch's end
            epoch, consumed = epoch + 1, 0
        self.sampler.set_epoch(epoch)
        self.sampler.skip = consumed * self.batch_size
        self.epoch, self.consumed = epoch, consumed
