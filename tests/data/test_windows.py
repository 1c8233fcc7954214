"""Windows are strided views; items and gathered batches equal the plain slices."""

from __future__ import annotations

import pytest
import torch

from tsattn.data.protocols import WindowGeometry
from tsattn.data.windows import WindowDataset, collate_windows


def _series(T: int = 50, N: int = 3, F: int = 2):  # noqa: N803
    values = torch.arange(T * N, dtype=torch.float32).reshape(T, N)
    marks = torch.arange(T * F, dtype=torch.float32).reshape(T, F) / 1000
    return values, marks


@pytest.mark.parametrize("geometry", [WindowGeometry(8, 0, 4), WindowGeometry(8, 2, 1)])
def test_items_and_batches_equal_plain_slices(geometry: WindowGeometry) -> None:
    values, marks = _series()
    starts = range(5, 50 - geometry.span + 1)
    ds = WindowDataset(values, marks, geometry, starts)
    L, g, H = geometry.input_length, geometry.gap, geometry.target_length
    for i in (0, 7, len(ds) - 1):
        s = starts[i]
        x, y, m, step = ds[i]
        assert torch.equal(x, values[s : s + L]) and torch.equal(m, marks[s : s + L])
        assert step.dtype == torch.int64 and int(step) == s  # default steps: the row numbers
        assert torch.equal(y, values[s + L + g : s + L + g + H])
    bx, by, bm, bs = ds.__getitems__([0, 7, len(ds) - 1])
    sx, sy, sm, ss = collate_windows([ds[0], ds[7], ds[len(ds) - 1]])
    assert torch.equal(bx, sx) and torch.equal(by, sy) and torch.equal(bm, sm)
    assert torch.equal(bs, ss) and bs.tolist() == [starts[0], starts[7], starts[-1]]
    assert bx.shape == (3, L, 3) and by.shape == (3, H, 3) and bm.shape == (3, L, 2)
    with pytest.raises(IndexError, match="out of range"):
        ds[len(ds)]


def test_items_are_views_of_the_one_series_tensor() -> None:
    values, marks = _series()
    ds = WindowDataset(values, marks, WindowGeometry(8, 0, 4), range(0, 39))
    x, y, *_ = ds[3]
    assert x.untyped_storage().data_ptr() == values.untyped_storage().data_ptr()
    assert y.untyped_storage().data_ptr() == values.untyped_storage().data_ptr()
    values[3, 0] = -1.0  # a change in the series shows through the view
    assert ds[3][0][0, 0] == -1.0


def test_zero_time_features_and_bad_ranges() -> None:
    values, _ = _series()
    ds = WindowDataset(values, torch.zeros(50, 0), WindowGeometry(8, 0, 4), range(0, 39))
    assert ds.__getitems__([0, 1])[2].shape == (2, 8, 0)
    with pytest.raises(ValueError, match=r"the last window \(start 39, span 12\) runs past"):
        WindowDataset(values, torch.zeros(50, 0), WindowGeometry(8, 0, 4), range(0, 40))


def test_steps_are_the_grid_positions_given() -> None:
    values, marks = _series()
    steps = torch.arange(50) + 1000
    ds = WindowDataset(values, marks, WindowGeometry(8, 0, 4), range(5, 39), steps)
    assert int(ds[0][3]) == 1005 and ds.__getitems__([0, 2])[3].tolist() == [1005, 1007]
    with pytest.raises(ValueError, match=r"steps must be one position per row, shape \(50,\)"):
        WindowDataset(values, marks, WindowGeometry(8, 0, 4), range(0, 39), steps[:10])
