"""Keep CPU training fast when other processes compete for the cores.

OpenMP threads that spin-wait for a partner thread which the operating system has descheduled
make a CPU training step erratic, up to tens of times slower, whenever another process computes
on the same cores (README, "Shared machines"). Waiting passively (``OMP_WAIT_POLICY=PASSIVE``,
read once when torch loads) avoids that, but costs a quiet machine 10-45 % at small shapes,
where each step is many short parallel regions that wake sleeping threads.

:class:`OversubscriptionGuard` keeps the fast spinning default while the machine is quiet and
acts when it is shared: every ``interval`` seconds of a CPU fit it counts the threads of
*other* processes that are runnable right now (Linux: ``/proc/loadavg`` less this process's
own running threads; data-loader workers are other processes and count, as they take cores
from the threads too). When, in ``votes`` of the last ``window`` of these looks, those plus
this process's threads exceed the cores, it trains on one thread (``torch.set_num_threads(1)``:
no partner thread to wait for, so no policy applies) and warns once, saying so and what to set
instead. When the other work has gone for ``window`` looks in a row, it restores the threads;
the fit always ends with the threads it started with. The user's own choice is left alone: nothing
changes when ``OMP_NUM_THREADS`` is set, when the fit already runs on one thread, or when
``OversubscriptionGuard.adapt`` is ``False`` (then it only warns). Where the runnable count is
unknown (not Linux), the 1-minute load average above the cores stands in for it.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable
from typing import Any, ClassVar

import lightning.pytorch as pl
import torch

__all__ = ["OversubscriptionGuard", "cores_shared", "runnable_elsewhere"]


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not available on this platform
        return os.cpu_count() or 1


def runnable_elsewhere() -> float:
    """Threads of other processes that are runnable right now: the system's runnable count
    (``/proc/loadavg``) less this process's own running threads. Where that is unknown (not
    Linux), the 1-minute load average less this process's torch threads (it counts them, and
    it lags a change by tens of seconds); 0 where neither is available."""
    runnable = _proc_runnable()
    if runnable is not None:
        return runnable
    try:
        return max(os.getloadavg()[0] - torch.get_num_threads(), 0.0)
    except OSError:
        return 0.0


def _proc_runnable() -> int | None:
    """``/proc``'s count of runnable threads less this process's, or None without ``/proc``."""
    try:
        with open("/proc/loadavg") as f:
            runnable = int(f.read().split()[3].split("/")[0])
        ours = 0
        for tid in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{tid}/stat") as f:
                    ours += f.read().rsplit(")", 1)[1].split()[0] == "R"
            except (OSError, IndexError):
                continue  # the thread ended while it was read
        return max(runnable - ours, 0)
    except (OSError, ValueError, IndexError):
        return None


def cores_shared(threads: int | None = None, *, looks: int = 5, gap: float = 0.02) -> bool:
    """Whether other processes' runnable threads and ``threads`` more (default: one per core,
    torch's default) exceed the cores in most of ``looks`` looks ``gap`` seconds apart. The
    ``tsattn`` command asks this before torch computes anything, to choose its OpenMP wait
    policy."""
    cores = _cores()
    threads = threads or cores
    shared = 0
    for look in range(looks):
        if look:
            time.sleep(gap)
        shared += runnable_elsewhere() + threads > cores
    return 2 * shared > looks


class OversubscriptionGuard(pl.Callback):
    """Train on one thread while other processes' runnable threads and this fit's threads
    exceed the cores; warn once; restore the threads when the others have gone.

    During a CPU fit a background thread looks at the machine every ``interval`` seconds
    (:meth:`start`; reading ``/proc`` costs about 0.1 ms), so that a step slowed to seconds
    does not slow the judgement too; the thread count changes at the end of a training step
    (:meth:`act`, in the training thread, whose OpenMP setting it is). ``window`` looks are
    judged together: ``votes`` of them must find the machine shared before the guard acts, and
    all of them must find it quiet before it restores the threads. ``others`` counts the other
    runnable threads (:func:`runnable_elsewhere`), ``threads`` is the fit's own thread count
    (``torch.get_num_threads()`` when the fit starts). A training loop of its own calls
    :meth:`start`, :meth:`act` after each step, and :meth:`stop`.
    """

    adapt: ClassVar[bool] = True  # False: warn only, never change the thread count
    every: ClassVar[float] = 0.5  # the default ``interval``, seconds between two looks

    def __init__(
        self,
        *,
        window: int = 5,
        votes: int = 4,
        cores: int | None = None,
        others: Callable[[], float] | None = None,
        threads: int | None = None,
        interval: float | None = None,
    ) -> None:
        interval = self.every if interval is None else interval
        if interval <= 0:  # the background sampler waits this long between two looks
            raise ValueError(f"interval={interval} must be > 0 seconds.")
        if window < 1 or not 1 <= votes <= window:
            raise ValueError(f"window={window} must be >= 1 and votes={votes} in [1, window].")
        if cores is not None and cores < 1:
            raise ValueError(f"cores={cores} must be >= 1.")
        self.window, self.votes = window, votes
        self.cores = cores or _cores()
        self.others = others or (lambda: runnable_elsewhere())  # looked up when called
        self.threads = self.own_threads = threads or torch.get_num_threads()
        self.recent: deque[float] = deque(maxlen=window)  # the other runnable threads per look
        self.shared = self.warned = False
        self.interval = interval
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None

    @property
    def may_adapt(self) -> bool:
        return self.adapt and self.own_threads > 1 and "OMP_NUM_THREADS" not in os.environ

    def look(self) -> None:
        """Count the other runnable threads once (``act`` judges whether the cores are shared)."""
        others = self.others()
        with self._lock:
            self.recent.append(others)

    def act(self) -> None:
        """Judge the last ``window`` looks; move to one thread or back (training thread)."""
        with self._lock:
            verdicts = [others + self.own_threads > self.cores for others in self.recent]
            others = max(self.recent, default=0.0)
            turn = (not self.shared and sum(verdicts) >= self.votes) or (
                self.shared and len(verdicts) == self.window and not any(verdicts)
            )
            if turn:
                self.recent.clear()
        if not turn:
            return
        self.shared = not self.shared
        if self.shared:
            self._warn(others)
            if self.may_adapt:
                self._set_threads(1)
        else:
            self._set_threads(self.own_threads)

    def start(self) -> None:
        """Look every ``interval`` seconds from a background thread until :meth:`stop`."""
        self.stop()
        self._stop.clear()

        def sample() -> None:
            while not self._stop.wait(self.interval):
                self.look()

        self._sampler = threading.Thread(target=sample, name="tsattn-guard", daemon=True)
        self._sampler.start()

    def stop(self) -> None:
        """Stop looking, and give the fit back the threads it started with."""
        if self._sampler is not None:
            self._stop.set()
            self._sampler.join()
            self._sampler = None
        self._set_threads(self.own_threads)

    def _set_threads(self, threads: int) -> None:
        if threads != self.threads:
            torch.set_num_threads(threads)
            self.threads = threads

    def _warn(self, others: float) -> None:
        if self.warned:
            return
        self.warned = True
        act = (
            "tsattn trains on one thread until they stop (OversubscriptionGuard.adapt = False "
            "keeps the threads)"
            if self.may_adapt
            else "spin-waiting threads can slow every step many times over"
        )
        warnings.warn(
            f"other processes compete for this machine's {self.cores} cores (up to {others:g} of "
            f"their threads runnable beside this fit's {self.own_threads}): {act}. To choose "
            "yourself, set OMP_WAIT_POLICY=PASSIVE in the environment before Python starts, "
            "or OMP_NUM_THREADS / torch.set_num_threads().",
            RuntimeWarning,
            stacklevel=3,
        )

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.threads = self.own_threads = torch.get_num_threads()
        self.recent.clear()
        self.shared = False
        if trainer.strategy.root_device.type == "cpu":
            self.start()

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any, **kwargs: Any) -> None:
        if self._sampler is not None:
            self.act()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.stop()

    def on_exception(self, trainer: pl.Trainer, *args: Any, **kwargs: Any) -> None:
        self.stop()
