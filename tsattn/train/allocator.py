"""Keep freed memory for the next training step instead of handing it back to the system.

A training step allocates and frees the same large buffers again and again: activations, their
gradients, dropout masks. glibc's ``malloc`` serves every request above its mmap threshold (at
most 32 MiB on 64-bit Linux, 128 KiB to begin with) with a fresh ``mmap`` and returns it with
``munmap`` when it is freed, so on every step the kernel maps those pages again and fills them
with zeros on first touch. Where a step's buffers are large, that is much of the step: at the
electricity shape of ``experiments/bench_epoch.py`` (321 variables, batch 32,
``MTGNNConfig``'s defaults, 118 MB per activation) a step of 25.8 s spent 19.4 s of its threads'
time in the kernel, and with those buffers served from the heap it took 13.7 s (README,
"Freed memory kept between steps").

:func:`reuse_freed_memory` serves large requests from the heap (``mallopt(M_MMAP_MAX, 0)``)
and keeps freed memory at its top for the next step (``M_TRIM_THRESHOLD``); on leaving, it
restores glibc's limits and returns the free memory to the system (``malloc_trim(0)``), so a
process holds its training peak only while it trains (glibc's mmap threshold then stays where
it stood instead of adapting, as it does once any of its limits has been set). Every CPU fit
runs inside it (:class:`FreedMemoryReuse`, one of the trainer's callbacks); wrap your own
training loop in it the same way. It changes nothing where the C library is not glibc (macOS,
Windows, musl) and nothing when you tuned malloc yourself (``MALLOC_MMAP_MAX_``,
``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TOP_PAD_`` or
``GLIBC_TUNABLES`` set); set ``FreedMemoryReuse.enabled = False`` to turn it off.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import lightning.pytorch as pl

__all__ = ["FreedMemoryReuse", "glibc", "reuse_freed_memory"]

# mallopt parameters (<malloc.h>) and glibc's defaults for the two this module sets
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
DEFAULT_TRIM_THRESHOLD, DEFAULT_MMAP_MAX = 128 * 1024, 65536
#: freed memory kept at the heap's top before it is trimmed: the largest value mallopt takes
KEEP_BYTES = 2**31 - 1
USER_SETTINGS = (
    "MALLOC_MMAP_MAX_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TOP_PAD_",
    "GLIBC_TUNABLES",
)

_lock = threading.Lock()
_depth = 0  # nested reuse_freed_memory() blocks; the outermost one sets and restores


def glibc() -> Any | None:
    """The process's C library when it is glibc (it has ``mallopt`` and ``malloc_trim``),
    else ``None``."""
    try:
        libc = ctypes.CDLL(None)
    except OSError:  # no C library to load this way (Windows)
        return None
    needed = ("gnu_get_libc_version", "mallopt", "malloc_trim")
    return libc if all(hasattr(libc, name) for name in needed) else None


def _user_tuned() -> bool:
    return any(name in os.environ for name in USER_SETTINGS)


@contextmanager
def reuse_freed_memory() -> Iterator[bool]:
    """Within the block, glibc's ``malloc`` reuses freed memory instead of unmapping it.

    Yields whether it changed anything (glibc, and no malloc setting of the user's). Blocks may
    nest; the outermost one restores glibc's limits and trims the heap.

    >>> with reuse_freed_memory() as changed:
    ...     isinstance(changed, bool)
    True
    """
    global _depth
    libc = None if _user_tuned() else glibc()
    if libc is None:
        yield False
        return
    with _lock:
        if _depth == 0:
            libc.mallopt(M_MMAP_MAX, 0)
            libc.mallopt(M_TRIM_THRESHOLD, KEEP_BYTES)
        _depth += 1
    try:
        yield True
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                libc.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
                libc.mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD)
                libc.malloc_trim(0)


class FreedMemoryReuse(pl.Callback):
    """Runs a CPU fit inside :func:`reuse_freed_memory` (from ``setup`` to ``teardown``).

    Fits on other devices are left alone: their large buffers live in the device's own
    caching allocator.
    """

    #: ``False`` turns it off for every fit (on the class) or one (on an instance).
    enabled: ClassVar[bool] = True

    def __init__(self) -> None:
        self._context = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit" or not self.enabled or self._context is not None:
            return
        if trainer.strategy.root_device.type != "cpu":
            return
        self._context = reuse_freed_memory()
        self._context.__enter__()

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self._context is not None:
            context, self._context = self._context, None
            context.__exit__(None, None, None)
