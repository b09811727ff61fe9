"""What a renderer writes to: anything with `write(str)` (a file, stdout, a hashing tee)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

__all__ = ["Write", "Writer"]


class Writer(Protocol):
    def write(self, text: str, /) -> int: ...


#: a bound `Writer.write`, as the renderers pass it around
Write = Callable[[str], object]
