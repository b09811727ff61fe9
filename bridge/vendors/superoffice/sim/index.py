"""The simulator's ticket index: ids in (lastChanged second, ticketId) order, per provider.

An archive page must cost time in proportion to the page, not to the tenant: the page's
rows are found by bisecting to the first key of the query's range and reading on, never by
scanning or sorting every ticket. A key is one int, `second << 32 | ticket_id` (ids are
below 2**31), kept in a list of sorted blocks (the shape of `sortedcontainers.SortedList`,
without the dependency): inserting or removing costs a bisect and a move within one block.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator
from datetime import datetime

__all__ = ["ID_BITS", "SortedKeys", "id_of", "key_of", "second_of"]

ID_BITS = 32
_ID_MASK = (1 << ID_BITS) - 1


def second_of(moment: datetime) -> int:
    """The whole second of an aware datetime (archive dates are cut to seconds)."""
    return int(moment.replace(microsecond=0).timestamp())


def key_of(second: int, ticket_id: int) -> int:
    return (second << ID_BITS) | ticket_id


def id_of(key: int) -> int:
    return key & _ID_MASK


class SortedKeys:
    """A sorted set of int keys, in blocks of `load` to `2 * load` keys."""

    def __init__(self, load: int = 1000) -> None:
        self._load = load
        self._blocks: list[list[int]] = []
        self._maxes: list[int] = []
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def add(self, key: int) -> None:
        """Insert `key` (not present); appending the largest key costs no search."""
        self._len += 1
        if not self._blocks:
            self._blocks.append([key])
            self._maxes.append(key)
            return
        if key > self._maxes[-1]:
            i = len(self._blocks) - 1
            block = self._blocks[i]
            block.append(key)
            self._maxes[i] = key
        else:
            i = bisect_left(self._maxes, key)
            block = self._blocks[i]
            insort(block, key)
        if len(block) > 2 * self._load:
            half = len(block) // 2
            self._blocks[i : i + 1] = [block[:half], block[half:]]
            self._maxes[i : i + 1] = [block[half - 1], block[-1]]

    def remove(self, key: int) -> None:
        """Remove `key`; KeyError when absent."""
        i = bisect_left(self._maxes, key)
        if i == len(self._maxes):
            raise KeyError(key)
        block = self._blocks[i]
        j = bisect_left(block, key)
        if j == len(block) or block[j] != key:
            raise KeyError(key)
        del block[j]
        self._len -= 1
        if not block:
            del self._blocks[i]
            del self._maxes[i]
        elif j == len(block):
            self._maxes[i] = block[-1]

    def _locate(self, key: int) -> tuple[int, int]:
        """(block, offset) of the first key >= `key`."""
        i = bisect_left(self._maxes, key)
        if i == len(self._maxes):
            return i, 0
        return i, bisect_left(self._blocks[i], key)

    def irange(self, low: int | None, high: int | None, *, skip: int = 0) -> Iterator[int]:
        """Keys in [low, high) in order, the first `skip` of them left out (skipped by
        block lengths, not one by one)."""
        i, j = self._locate(low) if low is not None else (0, 0)
        blocks = self._blocks
        while skip and i < len(blocks):
            left = len(blocks[i]) - j
            if skip < left:
                j += skip
                skip = 0
            else:
                skip -= left
                i, j = i + 1, 0
        while i < len(blocks):
            block = blocks[i]
            end = len(block)
            if high is not None and block[-1] >= high:
                end = bisect_left(block, high, j)
                yield from block[j:end]
                return
            yield from block[j:end]
            i, j = i + 1, 0

    def count(self, low: int | None, high: int | None) -> int:
        """How many keys lie in [low, high), by block lengths."""
        start = self._locate(low) if low is not None else (0, 0)
        stop = self._locate(high) if high is not None else (len(self._blocks), 0)
        if start[0] == stop[0]:
            return max(0, stop[1] - start[1])
        total = len(self._blocks[start[0]]) - start[1] + stop[1]
        return total + sum(len(b) for b in self._blocks[start[0] + 1 : stop[0]])
