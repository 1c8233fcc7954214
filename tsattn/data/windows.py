"""Sliding windows as strided views over one ``(T, N)`` tensor: no per-window copies.

``WindowDataset`` keeps the whole (scaled) series once. ``as_strided`` builds views of shape
``(num_windows, length, N)``; an item is a view, and a batch is one gather from those views
(``__getitems__``, used by the ``DataLoader`` with :func:`collate_windows`), so no pandas and
no Python loop over windows runs while training.

>>> import torch
>>> from tsattn.data.protocols import WindowGeometry
>>> ds = WindowDataset(torch.arange(10.).reshape(10, 1), torch.zeros(10, 0),
...                    WindowGeometry(3, 0, 2), range(0, 6))
>>> x, y, m, step = ds[0]; x.flatten().tolist(), y.flatten().tolist(), tuple(m.shape), int(step)
([0.0, 1.0, 2.0], [3.0, 4.0], (3, 0), 0)
>>> len(ds), ds.__getitems__([5])[1].flatten().tolist()
(6, [8.0, 9.0])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from tsattn.data.protocols import WindowGeometry

__all__ = ["WindowDataset", "collate_windows"]

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class WindowDataset(Dataset):
    """Windows ``(x, y, x_mark, step)`` starting at each row in ``starts``.

    ``x = values[s : s+L]``, ``y = values[s+L+gap : s+L+gap+target_length]``,
    ``x_mark = marks[s : s+L]``, ``step = steps[s]`` (int64, the grid position of the window's
    first input row, which places it in a cycle), with ``L = geometry.input_length``.

    Args:
        values: ``(T, N)`` float32 series (already scaled), shared by every split.
        marks: ``(T, F)`` float32 calendar features (``F`` may be 0).
        geometry: input length, gap and target length.
        starts: window start rows, a ``range`` with step 1.
        steps: ``(T,)`` grid positions of the rows
            (:func:`tsattn.data.timefeatures.grid_steps`); default the row numbers.
    """

    def __init__(
        self,
        values: torch.Tensor,
        marks: torch.Tensor,
        geometry: WindowGeometry,
        starts: range,
        steps: torch.Tensor | np.ndarray | None = None,
    ) -> None:
        if values.ndim != 2 or marks.ndim != 2 or marks.shape[0] != values.shape[0]:
            raise ValueError(
                f"values must be (T, N) and marks (T, F) with the same T; got "
                f"{tuple(values.shape)} and {tuple(marks.shape)}"
            )
        if len(starts) and starts[-1] + geometry.span > values.shape[0]:
            raise ValueError(
                f"the last window (start {starts[-1]}, span {geometry.span}) runs past the "
                f"{values.shape[0]} rows"
            )
        steps = np.arange(values.shape[0]) if steps is None else np.asarray(steps)
        if steps.shape != (values.shape[0],):
            raise ValueError(
                f"steps must be one position per row, shape ({values.shape[0]},); got {steps.shape}"
            )
        self._steps = steps.astype(np.int64)
        self.geometry = geometry
        self.starts = starts
        L, T_out = geometry.input_length, geometry.target_length
        self._first = starts.start if len(starts) else 0
        self._target_shift = L + geometry.gap
        values, marks = values.contiguous(), marks.contiguous()
        self._x = _windows(values, L)  # (T, N) -> (T-L+1, L, N) view
        self._y = _windows(values, T_out)  # (T, N) -> (T-T_out+1, T_out, N) view
        self._m = _windows(marks, L)  # (T, F) -> (T-L+1, L, F) view
        # numpy aliases of the same views: a numpy gather is single-threaded, while torch's
        # advanced indexing wakes its intra-op thread pool, which costs milliseconds per batch
        # on a busy CPU for a copy that takes microseconds.
        self._x_np, self._y_np, self._m_np = self._x.numpy(), self._y.numpy(), self._m.numpy()

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, index: int) -> Batch:
        if not -len(self) <= index < len(self):
            raise IndexError(f"window {index} out of range for {len(self)} windows")
        s = self.starts[index]
        step = torch.tensor(self._steps[s])
        return self._x[s], self._y[s + self._target_shift], self._m[s], step

    def __getitems__(self, indices: Sequence[int]) -> Batch:
        """A whole batch in one gather per tensor: ``(B, L, N), (B, T_out, N), (B, L, F), (B,)``."""
        s = np.asarray(indices, dtype=np.int64) + self._first
        x = torch.from_numpy(self._x_np[s])  # (B, L, N), one contiguous copy
        y = torch.from_numpy(self._y_np[s + self._target_shift])  # (B, T_out, N)
        marks = torch.from_numpy(self._m_np[s])  # (B, L, F)
        return x, y, marks, torch.from_numpy(self._steps[s])  # ..., (B,)


def _windows(series: torch.Tensor, length: int) -> torch.Tensor:
    """All windows of ``length`` rows as one strided view: ``(T, N) -> (T-length+1, length, N)``."""
    rows, width = series.shape
    row_stride = series.stride(0)
    return series.as_strided((rows - length + 1, length, width), (row_stride, row_stride, 1))


def collate_windows(batch: Batch | list[Batch]) -> Batch:
    """Collate for :class:`WindowDataset`: batches from ``__getitems__`` pass through."""
    if isinstance(batch, tuple):
        return batch
    return tuple(torch.stack(parts) for parts in zip(*batch, strict=True))  # type: ignore[return-value]
