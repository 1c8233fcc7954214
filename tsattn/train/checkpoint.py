"""Reading checkpoints and run folders without running code from them.

Checkpoints are pickles, and unpickling can call any function the file names. Every file tsattn
loads (a Lightning ``.ckpt`` to resume or to reload the best weights, a ``model.pt`` written by
:meth:`tsattn.Forecaster.save`) therefore goes through :func:`load_checkpoint`, which uses
``torch.load(weights_only=True)``: tensors, plain containers and numbers, and the short
allow-list :data:`SAFE_GLOBALS`, nothing else.

What tsattn and Lightning write fits in that: weights, optimiser and scheduler state, loop and
callback state, and the module's hyper-parameters (plain dicts, lists and numbers; tsattn stores
its configs as dicts, never as dataclasses). The allow-list adds only numpy scalars of the
bool, integer, float and string kinds, which a DataFrame's column or index names can carry
into ``model.pt``.

A run folder is trusted no more than its files: a path read from it (the best checkpoint a
``ModelCheckpoint`` state names, ``last.ckpt``, ``model.pt``) must resolve, links followed,
inside that run's folder (:func:`run_file`).

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> run_file(folder / "checkpoints" / "last.ckpt", folder).name
'last.ckpt'
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["SAFE_GLOBALS", "check_resume_checkpoint", "load_checkpoint", "run_file"]

# numpy pickles a scalar as ``scalar(dtype, bytes)``; the dtype as ``dtype(code)`` plus its class
_NUMPY_SCALAR = np.int64(0).__reduce__()[0]
SAFE_GLOBALS: tuple[Any, ...] = (
    _NUMPY_SCALAR,
    np.dtype,
    *sorted({type(np.dtype(code)) for code in "?bBhHiIlLqQefdgU"}, key=lambda t: t.__name__),
)

# the fields of a Lightning ``ModelCheckpoint`` state that name files
_CHECKPOINT_PATH_FIELDS = ("dirpath", "best_model_path", "kth_best_model_path", "last_model_path")


def load_checkpoint(path: str | Path) -> Any:
    """``torch.load(path)`` onto the CPU, refusing anything but tensors, plain data and
    :data:`SAFE_GLOBALS`; a refused file raises ``ValueError``."""
    try:
        with torch.serialization.safe_globals(list(SAFE_GLOBALS)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        reason = next(
            (
                line.strip()
                for line in str(error).splitlines()
                if "GLOBAL" in line or "got <" in line
            ),
            "it holds objects other than tensors and plain data",
        )
        raise ValueError(
            f"{path} was refused: loading it would run code or build objects that tsattn never "
            f"writes ({reason}). Load only files written by tsattn; if this one was, it has "
            "been altered since."
        ) from None


def run_file(path: str | Path, run_dir: str | Path) -> Path:
    """``path`` resolved (links followed); ``ValueError`` unless it lies inside ``run_dir``."""
    root = Path(run_dir).resolve()
    resolved = Path(path).resolve()
    if not resolved.is_relative_to(root):
        raise ValueError(
            f"{path} resolves to {resolved}, outside the run folder {root}: tsattn reads only "
            "files inside a run's own folder. Check that the folder was not edited or moved "
            "since it was written, or start a new run."
        )
    return resolved


def check_resume_checkpoint(path: str | Path, run_dir: str | Path) -> Path:
    """Check a Lightning checkpoint before a fit resumes from it; returns its resolved path.

    The file must lie inside ``run_dir``, load under :func:`load_checkpoint`, and every file its
    ``ModelCheckpoint`` states name (the best checkpoint that is reloaded after the fit, the
    last one) must lie inside ``run_dir`` too.
    """
    resolved = run_file(path, run_dir)
    checkpoint = load_checkpoint(resolved)
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f"{path} is not a Lightning checkpoint (it holds no mapping).")
    callbacks = checkpoint.get("callbacks") or {}
    for key, state in callbacks.items():
        if not str(key).startswith("ModelCheckpoint") or not isinstance(state, Mapping):
            continue
        named = [state.get(field) for field in _CHECKPOINT_PATH_FIELDS]
        named += list(state.get("best_k_models") or {})
        for name in named:
            if name:
                run_file(name, run_dir)
    return resolved
