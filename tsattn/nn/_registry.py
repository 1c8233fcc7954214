"""Names to block classes, shared by the mixer and fusion registries.

>>> from torch import nn
>>> blocks = Registry("block", {"linear": nn.Linear}, positional=("in_features", "out_features"))
>>> blocks.create("linear", 3, 2, bias=False)
Linear(in_features=3, out_features=2, bias=False)
>>> blocks.create("linear", 3, 2, bias_=False)
Traceback (most recent call last):
ValueError: block 'linear' does not take bias_; it accepts: bias, device, dtype.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Block classes by name (case-insensitive), in the order given; ``kind`` names them in errors.

    ``positional`` are the constructor arguments every class takes first (``channels`` for a
    mixer); any other keyword is checked against the class's signature before it is built.
    """

    def __init__(
        self, kind: str, classes: Mapping[str, Callable[..., T]], positional: Sequence[str]
    ) -> None:
        self.kind = kind
        self._classes = dict(classes)
        self._positional = ("self", *positional)

    def names(self) -> list[str]:
        return list(self._classes)

    def get(self, name: str) -> Callable[..., T]:
        """The class registered as ``name``; ``ValueError`` listing the valid names otherwise."""
        key = name.lower() if isinstance(name, str) else name
        if key not in self._classes:
            raise ValueError(
                f"unknown {self.kind} {name!r}: choose one of {', '.join(self._classes)}."
            )
        return self._classes[key]

    def create(self, name: str, *args: Any, **kwargs: Any) -> T:
        """Build ``name`` from the positional ``args`` and checked keyword ``kwargs``."""
        cls = self.get(name)
        accepted = [
            p for p in inspect.signature(cls.__init__).parameters if p not in self._positional
        ]
        unknown = sorted(set(kwargs) - set(accepted))
        if unknown:
            raise ValueError(
                f"{self.kind} {name.lower()!r} does not take {', '.join(unknown)}; "
                f"it accepts: {', '.join(accepted) or 'no keyword arguments'}."
            )
        return cls(*args, **kwargs)
