"""Cutting work into bulk calls and transactions: the one chunking helper."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

__all__ = ["chunked"]

T = TypeVar("T")


def chunked(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """`items` in consecutive slices of at most `size` (the last may be shorter).

    Slices, not copies into tuples: callers pass them straight to a bulk call or a query.
    (`itertools.batched` arrives with Python 3.12; bridge supports 3.11.)"""
    if size < 1:
        raise ValueError(f"chunk size must be positive, got {size}")
    for start in range(0, len(items), size):
        yield items[start : start + size]
