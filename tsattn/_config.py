"""The unknown-field check of every tsattn configuration dataclass's ``from_dict``.

It lives below ``tsattn.models`` and ``tsattn.train`` and imports nothing from tsattn, so both
:class:`~tsattn.models.mtgnn.MTGNNConfig` and the train config sections use it.

>>> reject_unknown("DataConfig field", {"seq_len": 96, "horizn": 24}, ["horizon", "seq_len"])
Traceback (most recent call last):
ValueError: unknown DataConfig field(s) horizn; valid: horizon, seq_len.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

__all__ = ["reject_unknown"]


def reject_unknown(what: str, given: Iterable[str], valid: Iterable[str] | type[Any]) -> None:
    """``ValueError`` naming the keys of ``given`` not in ``valid``, and the valid ones.

    ``valid`` is a list of names or a dataclass (its field names, sorted). ``what`` names one
    key in the message (``"MTGNNConfig field"``, ``"config section"``).
    """
    if isinstance(valid, type) and dataclasses.is_dataclass(valid):
        valid = sorted(f.name for f in dataclasses.fields(valid))
    valid = list(valid)
    unknown = sorted(set(given) - set(valid))
    if unknown:
        raise ValueError(f"unknown {what}(s) {', '.join(unknown)}; valid: {', '.join(valid)}.")
