"""What `bridge serve` holds between a webhook call and its targeted run: the deliveries
already seen (`Deliveries`), and each pair's tickets waiting to be coalesced
(`PendingHints`). Both live in memory, bounded; see `Deliveries` for why a restart that
forgets them is harmless."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from bridge.core.hints import Hint
from bridge.core.model import Side

__all__ = ["Deliveries", "Named", "PendingHints"]


class Deliveries:
    """The delivery ids (and body digests) of the calls accepted within the replay window,
    at most `limit` of them: a call seen again is a duplicate (a vendor's retry, or a
    replay). A call signed before the window is refused whatever its id, so nothing older
    need be kept: memory is bounded by the calls one window holds, and by `limit`.

    Not persisted, on purpose: after a restart, a vendor's retry of a call already queued
    is queued again, and that costs at most one bulk lookup of tickets whose state is
    then found unchanged (a hint is idempotent: it names tickets, it sets nothing); the
    replay window bounds how far back such retries reach."""

    def __init__(self, window_seconds: float, limit: int = 100_000) -> None:
        self._window = window_seconds
        self._limit = limit
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, keys: Iterable[str], now: float) -> bool:
        """True (and the keys are remembered) unless one of `keys` was seen already."""
        keys = [key for key in keys if key]
        with self._lock:
            self._forget_before(now - self._window)
            if any(key in self._seen for key in keys):
                return False
            for key in keys:
                self._seen[key] = now
            while len(self._seen) > self._limit:
                self._seen.popitem(last=False)
            return True

    def __len__(self) -> int:
        return len(self._seen)

    def _forget_before(self, oldest: float) -> None:
        while self._seen:
            key, at = next(iter(self._seen.items()))
            if at >= oldest:
                return
            del self._seen[key]


@dataclass
class Named:
    """What the waiting webhooks said of one ticket: who changed it (echo suppression)
    and the latest time a vendor gave."""

    actors: set[int | None] = field(default_factory=set)
    latest: datetime | None = None

    def add(self, actor: int | None, at: datetime | None) -> None:
        self.actors.add(actor)
        if at is not None and (self.latest is None or at > self.latest):
            self.latest = at

    def merge(self, other: Named) -> None:
        self.actors |= other.actors
        if other.latest is not None and (self.latest is None or other.latest > self.latest):
            self.latest = other.latest


#: the tickets of one targeted run: by side, what the webhooks said of each
Batch = dict[Side, dict[int, Named]]


class PendingHints:
    """One pair's tickets waiting for its next targeted run (not thread-safe: the runner
    holds its lock). A ticket named twice waits once."""

    def __init__(self) -> None:
        self._tickets: Batch = {}
        #: when the oldest waiting hint arrived (monotonic seconds); None: none waits
        self.since: float | None = None
        #: no run before this (monotonic seconds): the lease was held
        self.not_before: float = 0.0

    @property
    def depth(self) -> int:
        return sum(len(tickets) for tickets in self._tickets.values())

    def add(self, hint: Hint, now: float) -> None:
        tickets = self._tickets.setdefault(hint.side, {})
        for ticket_id in hint.ticket_ids:
            tickets.setdefault(ticket_id, Named()).add(hint.actor_id, hint.occurred_at)
        if self.since is None:
            self.since = now

    def ready_at(self, coalesce: float) -> float | None:
        """When the waiting tickets are due for a run (None: none waits)."""
        if self.since is None:
            return None
        return max(self.since + coalesce, self.not_before)

    def take(self) -> Batch:
        taken, self._tickets, self.since = self._tickets, {}, None
        return taken

    def put_back(
        self, batch: Mapping[Side, Mapping[int, Named]], now: float, retry_at: float
    ) -> None:
        """A run could not start (the lease was held): its tickets wait again, with any
        that came meanwhile, until `retry_at`."""
        for side, tickets in batch.items():
            waiting = self._tickets.setdefault(side, {})
            for ticket_id, named in tickets.items():
                waiting.setdefault(ticket_id, Named()).merge(named)
        self.since = min(self.since, now) if self.since is not None else now
        self.not_before = retry_at
