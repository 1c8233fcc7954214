"""Attention mixers on ``(B, C, N, T)`` feature maps, chosen by name.

Every mixer takes the channel count first and maps ``(B, C, N, T)`` to the same shape, dtype
and device. ``create_mixer("eca", 32)`` builds one; ``list_mixers()`` names them all.

Shared keyword names across mixers: ``reduction`` / ``rd_channels`` / ``min_channels`` (squeeze
width ``rd_channels`` or ``max(min_channels, C // reduction)``), ``kernel_size`` (``(k_n, k_t)``
for convolutions over nodes and time, node kernel 1 by default because node order is arbitrary
in a graph), ``groups``, ``act_layer`` (a name such as ``"relu"`` or a module class).

==========  ===============================  =========================================
name        pools over                       attends over / gates
==========  ===============================  =========================================
identity    nothing                          nothing (the control)
se          N, T                             gate per channel
eca         N, T                             gate per channel (1-D conv across channels)
cbam        N, T then C                      gate per channel, then per (node, time)
coord       T (per node), N (per time)       gate per (C, N) times per (C, T)
triplet     N; T; C (one per branch)         gates per (C, T), (N, C), (N, T), averaged
danet       nothing                          positions (axial N, T) and channels
cot         N, T (fusion only)               local (k_n, k_t) window per position
sk          N, T                             branches (receptive fields) per channel
mhsa        nothing                          time, nodes, or both (``axis``)
==========  ===============================  =========================================
"""

from __future__ import annotations

from typing import Any

from torch import nn

from tsattn.nn._registry import Registry
from tsattn.nn.mixers.cbam import CBAM
from tsattn.nn.mixers.coord import CoordinateAttention
from tsattn.nn.mixers.cot import ContextualTransformer
from tsattn.nn.mixers.danet import DualAttention
from tsattn.nn.mixers.eca import EfficientChannelAttention
from tsattn.nn.mixers.identity import Identity
from tsattn.nn.mixers.mhsa import MultiHeadSelfAttention
from tsattn.nn.mixers.se import SqueezeExcite
from tsattn.nn.mixers.sk import SelectiveKernel
from tsattn.nn.mixers.triplet import TripletAttention

__all__ = ["create_mixer", "list_mixers"]

_MIXERS: Registry[nn.Module] = Registry(
    "mixer",
    {
        "identity": Identity,
        "se": SqueezeExcite,
        "eca": EfficientChannelAttention,
        "cbam": CBAM,
        "coord": CoordinateAttention,
        "triplet": TripletAttention,
        "danet": DualAttention,
        "cot": ContextualTransformer,
        "sk": SelectiveKernel,
        "mhsa": MultiHeadSelfAttention,
    },
    positional=("channels",),
)


def list_mixers() -> list[str]:
    """Names accepted by :func:`create_mixer`, ``identity`` (the control) first."""
    return _MIXERS.names()


def create_mixer(name: str, channels: int, **kwargs: Any) -> nn.Module:
    """Build the mixer ``name`` for ``channels`` input channels.

    Raises ``ValueError`` for an unknown name (listing the valid ones), a channel count below 1,
    or a keyword the mixer does not take (listing the ones it does).

    >>> create_mixer("identity", 16)
    Identity()
    """
    _MIXERS.get(name)  # an unknown name is the first thing to report
    if not isinstance(channels, int) or channels < 1:
        raise ValueError(f"channels={channels!r}: pass the number of input channels (an int >= 1).")
    return _MIXERS.create(name, channels, **kwargs)
