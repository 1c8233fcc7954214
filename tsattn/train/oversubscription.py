"""A once-per-fit warning when CPU training threads are oversubscribed.

OpenMP threads that spin-wait for a partner thread which the operating system has descheduled
make a CPU training step erratic, up to tens of times slower, whenever another process computes
on the same cores (README, "Shared machines"). The ``tsattn`` command sets
``OMP_WAIT_POLICY=PASSIVE`` before torch loads; a Python program has to set it itself, before
``import torch``. :class:`OversubscriptionWarning` watches the training steps of a CPU fit and
warns once when a step takes far longer than the steps before it while the machine's load
exceeds its cores, saying what to set.

>>> callback = OversubscriptionWarning(cores=2, load=lambda: 6.0)
>>> for seconds in [0.1] * 20 + [0.9]:
...     callback.observe(seconds)
>>> callback.warned
True
"""

from __future__ import annotations

import os
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl

__all__ = ["OversubscriptionWarning"]


def _load_average() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:  # not available on this platform
        return 0.0


class OversubscriptionWarning(pl.Callback):
    """Warn once when a CPU step exceeds ``ratio`` x the median of the last ``window`` steps
    while the 1-minute load average exceeds the number of cores.

    The first ``warmup`` steps (allocator and thread-pool warm-up) are not judged.
    """

    def __init__(
        self,
        *,
        ratio: float = 3.0,
        window: int = 20,
        warmup: int = 5,
        cores: int | None = None,
        load: Callable[[], float] = _load_average,
    ) -> None:
        if ratio <= 1 or window < 1 or warmup < 0:
            raise ValueError(
                f"ratio={ratio} must be > 1, window={window} >= 1 and warmup={warmup} >= 0."
            )
        self.ratio, self.window, self.warmup = ratio, window, warmup
        self.cores = cores or os.cpu_count() or 1
        self.load = load
        self.history: list[float] = []
        self.warned = False
        self._start = 0.0

    def observe(self, seconds: float) -> None:
        """Judge one step's duration against the steps before it."""
        recent = self.history[-self.window :]
        self.history.append(seconds)
        if self.warned or len(recent) < max(self.warmup, 1):
            return
        usual = statistics.median(recent)
        if seconds <= self.ratio * usual:
            return
        load = self.load()
        if load > self.cores:
            self.warned = True
            policy = os.environ.get("OMP_WAIT_POLICY", "unset")
            warnings.warn(
                f"a training step took {seconds:.3f} s, {seconds / usual:.0f}x the usual "
                f"{usual:.3f} s, while the load average ({load:.2f}) exceeds this "
                f"machine's {self.cores} cores (OMP_WAIT_POLICY={policy}): other processes "
                "compete for the cores and spin-waiting threads slow every step. Set "
                "OMP_WAIT_POLICY=PASSIVE in the environment before Python starts (the tsattn "
                "command does this), or torch.set_num_threads() to fewer threads.",
                RuntimeWarning,
                stacklevel=2,
            )

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any, **kwargs: Any) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any, **kwargs: Any) -> None:
        if trainer.strategy.root_device.type == "cpu":
            self.observe(time.perf_counter() - self._start)
