"""Per-variable affine scaling: fitted on the train rows, applied to every row, invertible.

- ``standard``: scikit-learn ``StandardScaler`` fitted on the train rows (a constant column
  gets scale 1, as scikit-learn does, so nothing is divided by zero);
- ``maxabs_legacy``: MTGNN / LSTNet reference scaling, each column divided by its max ``|x|``
  over the WHOLE series (it leaks test information; for parity with published numbers only);
- ``none``: identity.

>>> import numpy as np
>>> scaler = fit_scaler("standard", np.array([[1.0], [3.0]]), np.array([[1.0], [3.0], [5.0]]))
>>> scaler.transform(np.array([[5.0]])).tolist()
[[3.0]]
>>> scaler.inverse_transform(np.array([[3.0]])).tolist()
[[5.0]]
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.preprocessing import StandardScaler

__all__ = ["SCALINGS", "Scaler", "fit_scaler"]

SCALINGS = ("standard", "maxabs_legacy", "none")

ArrayLike = np.ndarray | torch.Tensor


class Scaler:
    """``(x - mean) / scale`` per variable on the last axis, for numpy arrays or torch tensors.

    Attributes:
        kind: ``"standard"``, ``"maxabs_legacy"`` or ``"none"``.
        mean, scale: float64 arrays of shape ``(N,)``.
        sklearn: the fitted ``StandardScaler`` for ``"standard"``, else ``None``.
    """

    def __init__(
        self, kind: str, mean: np.ndarray, scale: np.ndarray, sklearn: StandardScaler | None = None
    ) -> None:
        self.kind = kind
        self.mean = np.asarray(mean, dtype=np.float64)
        self.scale = np.asarray(scale, dtype=np.float64)
        self.sklearn = sklearn

    def _params(self, x: ArrayLike):
        if x.shape[-1] != self.mean.shape[0]:
            raise ValueError(
                f"the last axis must hold the {self.mean.shape[0]} variables, got shape "
                f"{tuple(x.shape)}"
            )
        if isinstance(x, torch.Tensor):
            dtype = x.dtype if x.is_floating_point() else torch.float32
            as_tensor = torch.as_tensor
            return as_tensor(self.mean, dtype=dtype, device=x.device), as_tensor(
                self.scale, dtype=dtype, device=x.device
            )
        return self.mean, self.scale

    def transform(self, x: ArrayLike) -> ArrayLike:
        """Scale ``x`` of shape ``(..., N)``."""
        mean, scale = self._params(x)
        return (x - mean) / scale

    def inverse_transform(self, x: ArrayLike) -> ArrayLike:
        """Back to original units: ``x * scale + mean`` over ``(..., N)``."""
        mean, scale = self._params(x)
        return x * scale + mean

    def __repr__(self) -> str:
        return f"Scaler(kind={self.kind!r}, n_variables={self.mean.shape[0]})"


def fit_scaler(kind: str, train_values: np.ndarray, all_values: np.ndarray) -> Scaler:
    """Fit a :class:`Scaler` (``standard`` on ``train_values``; ``maxabs_legacy`` on all rows)."""
    n = all_values.shape[1]
    if kind == "standard":
        sk = StandardScaler().fit(train_values)
        return Scaler(kind, sk.mean_, sk.scale_, sk)
    if kind == "maxabs_legacy":
        peak = np.abs(all_values).max(axis=0)
        return Scaler(kind, np.zeros(n), np.where(peak > 0, peak, 1.0))
    if kind == "none":
        return Scaler(kind, np.zeros(n), np.ones(n))
    raise ValueError(f"scaling must be one of {list(SCALINGS)}, got {kind!r}")
