"""MSE, MAE, RSE and CORR accumulated over every window, as defined in PROTOCOLS.md.

The accumulator keeps sums, never batch averages, so the result over many batches equals the
value over the whole set at once (up to float64 rounding). Sums are shifted by the first
batch's per-variable mean, so that large offsets (electricity in kW) do not cancel
catastrophically in the variance terms.

- ``mse`` / ``mae``: mean over every element (windows x steps x variables).
- ``rse``: ``sqrt(sum((yhat - y)^2)) / sqrt(sum((y - mean(y))^2))`` with one global mean.
- ``corr``: mean over variables of the Pearson correlation between ``yhat`` and ``y`` over all
  (window, step) pairs; variables whose true std is 0 are left out. A variable whose
  prediction is constant (std 0) counts as correlation 0 rather than NaN.

Which units the metrics are reported in depends on the protocol and is decided by the caller
(:class:`tsattn.train.ForecastModule`): scaled values for ``tslib``/``holdout``, original units
for ``mtgnn``.

>>> acc = MetricAccumulator()
>>> y = torch.tensor([[1.0, 2.0], [3.0, 5.0], [2.0, 1.0]])
>>> acc.update(y + 0.5, y)
>>> {k: round(v, 3) for k, v in acc.compute().items()}
{'mse': 0.25, 'mae': 0.5, 'rse': 0.243, 'corr': 1.0}
"""

from __future__ import annotations

import math

import torch

__all__ = ["METRIC_NAMES", "MetricAccumulator"]

METRIC_NAMES = ("mse", "mae", "rse", "corr")


class MetricAccumulator:
    """Running sums for MSE, MAE, RSE and CORR over tensors shaped ``(..., N)``."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.rows = 0  # samples per variable (windows x steps)
        self.shift: torch.Tensor | None = None  # (N,)
        self.sum_sq_err = 0.0
        self.sum_abs_err = 0.0
        self.sum_y = self.sum_p = self.sum_yy = self.sum_pp = self.sum_yp = None  # (N,) each

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        if pred.shape != target.shape:
            raise ValueError(
                f"pred has shape {tuple(pred.shape)} but target has {tuple(target.shape)}."
            )
        p = pred.detach().reshape(-1, pred.shape[-1]).to("cpu", torch.float64)  # (..., N) -> (M, N)
        y = target.detach().reshape(-1, target.shape[-1]).to("cpu", torch.float64)  # (M, N)
        if p.shape[0] == 0:
            return
        if self.shift is None:
            self.shift = y.mean(0)  # (N,)
            zeros = torch.zeros_like(self.shift)
            self.sum_y, self.sum_p, self.sum_yy, self.sum_pp, self.sum_yp = (
                zeros.clone() for _ in range(5)
            )
        err = p - y
        self.sum_sq_err += float((err * err).sum())
        self.sum_abs_err += float(err.abs().sum())
        yc, pc = y - self.shift, p - self.shift  # (M, N)
        self.sum_y += yc.sum(0)
        self.sum_p += pc.sum(0)
        self.sum_yy += (yc * yc).sum(0)
        self.sum_pp += (pc * pc).sum(0)
        self.sum_yp += (yc * pc).sum(0)
        self.rows += y.shape[0]

    def compute(self) -> dict[str, float]:
        """``{"mse", "mae", "rse", "corr"}`` as floats; NaN for an empty accumulator."""
        if self.rows == 0:
            return dict.fromkeys(METRIC_NAMES, math.nan)
        m, n_vars = self.rows, self.shift.numel()
        count = m * n_vars
        # Global spread of y about its single global mean, from per-variable shifted sums:
        # sum_v [S2_v + 2 (K_v - mu) S1_v + m (K_v - mu)^2].
        mu = float((self.sum_y + m * self.shift).sum()) / count
        delta = self.shift - mu
        spread = float((self.sum_yy + 2 * delta * self.sum_y + m * delta * delta).sum())
        rse = math.sqrt(self.sum_sq_err) / math.sqrt(spread) if spread > 0 else math.nan

        mean_y, mean_p = self.sum_y / m, self.sum_p / m  # shifted means (N,)
        var_y = (self.sum_yy / m - mean_y**2).clamp_min(0)
        var_p = (self.sum_pp / m - mean_p**2).clamp_min(0)
        cov = self.sum_yp / m - mean_y * mean_p
        scale = torch.sqrt(var_y * var_p)
        corr_v = torch.where(scale > 0, cov / scale.clamp_min(1e-300), torch.zeros_like(cov))
        # "true std 0" up to rounding of the one-pass variance
        keep = var_y > 1e-12 * (self.sum_yy / m).clamp_min(1e-300)
        corr = float(corr_v[keep].mean()) if bool(keep.any()) else math.nan
        return {
            "mse": self.sum_sq_err / count,
            "mae": self.sum_abs_err / count,
            "rse": rse,
            "corr": corr,
        }
