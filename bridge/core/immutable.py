"""Value classes made by the hundred thousand: frozen for the type checker, plain at run time.

A frozen dataclass's `__init__` sets every field through `object.__setattr__`, about twice
the cost of a plain one. A first sync builds a `TicketView` and an `Observation` for every
ticket it reads on each side, 400,000 of them at 100,000 links, and freezing them at run
time cost about 0.5 s of its CPU (docs/performance.md, issue 16). The classes decorated
here are slotted dataclasses with a frozen one's equality and hash; mypy holds them frozen
(`dataclass_transform(frozen_default=True)`: assigning to a field is a type error, and
bridge is checked with `--strict`), so nothing in bridge can change one after it is made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar, dataclass_transform

__all__ = ["immutable"]

_T = TypeVar("_T")


@dataclass_transform(frozen_default=True)
def immutable(cls: type[_T]) -> type[_T]:
    """A dataclass of `cls`: slotted, compared and hashed by its fields."""
    return dataclass(slots=True, unsafe_hash=True)(cls)
