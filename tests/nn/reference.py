"""Textbook forms that the fused implementations must equal.

The dilated inception below is written the way the official MTGNN code writes it: one
convolution per kernel size, every branch cropped to the shortest output (most recent steps),
concatenated; the gated convolution runs it twice, once for the tanh filter and once for the
sigmoid gate. It reads the weights of a :class:`tsattn.nn.temporal.GatedTemporalConv`, so both
forms share parameters.
"""

from __future__ import annotations

import torch

from tsattn.nn.temporal import DilatedInception, GatedTemporalConv


def textbook_dilated_inception(module: DilatedInception, x: torch.Tensor) -> torch.Tensor:
    outputs = [conv(x) for conv in module.branches]  # each (B, c, N, T - d (k - 1))
    length = min(out.size(3) for out in outputs)
    cropped = [out[..., -length:] for out in outputs]  # each (B, c, N, T_out)
    return torch.cat(cropped, dim=1)  # (B, c_out, N, T_out)


def textbook_gated_temporal_conv(module: GatedTemporalConv, x: torch.Tensor) -> torch.Tensor:
    filt = torch.tanh(textbook_dilated_inception(module.filter, x))
    gate = torch.sigmoid(textbook_dilated_inception(module.gate, x))
    return filt * gate
