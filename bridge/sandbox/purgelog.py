"""The ground truth of the irreversible (purge) requests a simulator accepted, so a harness
can tell whether a client ever purged the same ticket twice.

One record per ticket per accepted request, with whether it was a duplicate (the ticket was
already purged, or already had a purge under way). A handler records into it only once it
has acted, so a fault injected `before` the handler never shows there and one injected
`after` it always does. Harnesses read it with `SimulatorBase.purge_log()` or
`GET /_sandbox/purges`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

__all__ = ["PurgeLog", "PurgePrior", "PurgeRecord"]

#: why a purge request was a duplicate: the ticket was gone, or a purge of it was under way
PurgePrior = Literal["purged", "queued"]


@dataclass(slots=True)
class PurgeRecord:
    """One ticket of one accepted irreversible request.

    * `request`: the request's number in this log (the tickets of one bulk call share it);
    * `state`: the ticket's state when the request was accepted (the simulator's words:
      ``active``, ``deleted``, ``purged``, or None for an id it never had);
    * `prior`: ``purged`` (already gone) or ``queued`` (another accepted purge of it was
      still queued or working), or None; `duplicate` is ``prior is not None``;
    * `outcome`: ``done`` (this request purged it), ``failed`` (its job failed: the
      vendor did nothing, a retry is legitimate), ``skipped`` (when its job ran the ticket
      was not purgeable: restored, never deleted, or already purged), or ``pending``
      (its job has not run yet).
    """

    request: int
    ticket_id: int
    at: datetime
    route: str
    state: str | None
    prior: PurgePrior | None
    job_id: str | None = None
    outcome: str = "pending"

    @property
    def duplicate(self) -> bool:
        return self.prior is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "request": self.request,
            "ticket_id": self.ticket_id,
            "at": self.at.isoformat(),
            "route": self.route,
            "duplicate": self.duplicate,
            "prior": self.prior,
            "state": self.state,
            "job_id": self.job_id,
            "outcome": self.outcome,
        }


class PurgeLog:
    """Every irreversible request a simulator accepted, one record per ticket. Thread-safe.

    The simulator calls `record` from the handler, after it has acted (queued the purge
    job, removed the row), so the log is exactly what the vendor did: a request refused by
    a `before` fault, the rate limiter, auth or a 404 never appears; one whose answer an
    `after` fault replaced or lost does. `settle` fills in what the job finally did.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[PurgeRecord] = []
        self._requests = 0

    def record(
        self,
        route: str,
        at: datetime,
        tickets: Iterable[tuple[int, str | None, PurgePrior | None]],
        *,
        job_id: str | None = None,
        outcome: str = "pending",
    ) -> int:
        """Log one accepted request: `(ticket_id, state, prior)` per ticket; returns its
        request number."""
        with self._lock:
            self._requests += 1
            for ticket_id, state, prior in tickets:
                self._records.append(
                    PurgeRecord(self._requests, ticket_id, at, route, state, prior, job_id, outcome)
                )
            return self._requests

    def settle(self, job_id: str, outcomes: Mapping[int, str]) -> None:
        """Record what job `job_id` did to each of its tickets (`done|failed|skipped`)."""
        with self._lock:
            for entry in self._records:
                if entry.job_id == job_id and entry.ticket_id in outcomes:
                    entry.outcome = outcomes[entry.ticket_id]

    @property
    def records(self) -> list[PurgeRecord]:
        with self._lock:
            return list(self._records)

    def snapshot(self) -> list[dict[str, Any]]:
        """The log as JSON-able dicts, oldest first."""
        with self._lock:
            return [entry.to_dict() for entry in self._records]

    def duplicates(self) -> list[PurgeRecord]:
        with self._lock:
            return [entry for entry in self._records if entry.duplicate]

    @property
    def requests(self) -> int:
        with self._lock:
            return self._requests

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
            self._requests = 0
