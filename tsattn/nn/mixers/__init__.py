"""Attention mixers on ``(B, C, N, T)`` feature maps, chosen by name.

Every mixer takes the channel count first and maps ``(B, C, N, T)`` to the same shape, dtype
and device. ``create_mixer("eca", 32)`` builds one; ``list_mixers()`` names them all.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from tsattn.nn.mixers.identity import Identity

__all__ = ["create_mixer", "list_mixers"]

_MIXERS: dict[str, type[nn.Module]] = {
    "identity": Identity,
}


def list_mixers() -> list[str]:
    """Names accepted by :func:`create_mixer`, ``identity`` (the control) first."""
    return list(_MIXERS)


def create_mixer(name: str, channels: int, **kwargs: Any) -> nn.Module:
    """Build the mixer ``name`` for ``channels`` input channels.

    Raises ``ValueError`` for an unknown name (listing the valid ones), a channel count below 1,
    or a keyword the mixer does not take (listing the ones it does).

    >>> create_mixer("identity", 16)
    Identity()
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in _MIXERS:
        raise ValueError(f"unknown mixer {name!r}: choose one of {', '.join(_MIXERS)}.")
    if not isinstance(channels, int) or channels < 1:
        raise ValueError(f"channels={channels!r}: pass the number of input channels (an int >= 1).")
    cls = _MIXERS[key]
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "channels")]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(
            f"mixer {key!r} does not take {', '.join(unknown)}; "
            f"it accepts: {', '.join(accepted) or 'no keyword arguments'}."
        )
    return cls(channels, **kwargs)
