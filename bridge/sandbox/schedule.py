"""Keys due at a simulated time, so a lazy `tick` applies what fell due without a scan."""

from __future__ import annotations

import heapq
from datetime import UTC, datetime
from typing import Generic, TypeVar

__all__ = ["Schedule"]

K = TypeVar("K")


class Schedule(Generic[K]):
    """Keys due at a time, popped in due order: O(log n) per change, O(due) per tick.

    Re-pushing a key moves it (the older entry goes stale); `discard` forgets it. Use it for
    "scrub 30 days after deletion", retention jobs and job progress, so that a tick never
    scans every ticket.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, K]] = []
        self._due: dict[K, float] = {}
        self._seq = 0

    def push(self, key: K, due: datetime) -> None:
        stamp = due.timestamp()
        self._due[key] = stamp
        self._seq += 1
        heapq.heappush(self._heap, (stamp, self._seq, key))

    def discard(self, key: K) -> None:
        self._due.pop(key, None)

    def due_at(self, key: K) -> datetime | None:
        stamp = self._due.get(key)
        return None if stamp is None else datetime.fromtimestamp(stamp, UTC)

    def pop_due(self, now: datetime) -> list[K]:
        """Remove and return, oldest first, every key whose due time is at or before `now`."""
        return [key for _, key in self.pop_due_items(now)]

    def pop_due_items(self, now: datetime) -> list[tuple[datetime, K]]:
        """Like `pop_due`, with each key's due time (apply effects *as of* that time)."""
        limit = now.timestamp()
        out: list[tuple[datetime, K]] = []
        while self._heap and self._heap[0][0] <= limit:
            stamp, _, key = heapq.heappop(self._heap)
            if self._due.get(key) == stamp:
                del self._due[key]
                out.append((datetime.fromtimestamp(stamp, UTC), key))
        return out

    def next_due(self) -> datetime | None:
        while self._heap and self._due.get(self._heap[0][2]) != self._heap[0][0]:
            heapq.heappop(self._heap)
        return datetime.fromtimestamp(self._heap[0][0], UTC) if self._heap else None

    def clear(self) -> None:
        self._heap.clear()
        self._due.clear()

    def __len__(self) -> int:
        return len(self._due)

    def __contains__(self, key: object) -> bool:
        return key in self._due
