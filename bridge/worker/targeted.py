"""The targeted task: a run of the tickets `bridge serve` was told of, as a worker's job.

With the ledger on PostgreSQL and the queue created, `bridge serve` does not run its
targeted runs itself: after a pair's coalescing window (and the echo check), it defers one
job of `TARGETED_TASK` with the tickets, and a `bridge worker` runs it as it runs a
scheduled sync (`bridge.once`, the pair's lease, the same retries by outcome).

The job's options, and why:

* `queue` = the pair (the queue its workers take from); `lock` = the pair, as the
  scheduled job's: a pair's targeted and scheduled runs never overlap, on any worker.
* `queueing_lock` = the pair + `:hints`: at most one targeted job waits per pair, so one
  coalescing window is one job. While one waits (the pair's scheduled run holds the lock),
  `serve` keeps the later hints in memory and defers them once the waiting one has started.
* `priority` above the scheduled job's: a waiting hint goes before a waiting sync.
* A lease held (a `bridge sync` outside the queue) is the job's retry; a retry that meets
  a job `serve` deferred meanwhile takes its tickets along (`merged_tickets`).
* A worker killed while it runs one: the job is taken back as a scheduled one is
  (`app._recover_stalled`); left `doing`, it would hold the pair's lock for good.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import procrastinate
from procrastinate.exceptions import AlreadyEnqueued

from bridge.core.model import Side

__all__ = [
    "PRIORITY",
    "TARGETED_TASK",
    "TargetedQueue",
    "hints_lock",
    "merged_tickets",
    "tickets_from_json",
    "tickets_to_json",
]

#: the task's name, the same in `serve` (which defers it) and `worker` (which runs it)
TARGETED_TASK: Final = "bridge.targeted_sync"
#: above the scheduled job's 0: of a pair's waiting jobs, hints run first
PRIORITY: Final = 1


def hints_lock(pair: str) -> str:
    """The queueing lock of a pair's targeted jobs (beside the scheduled job's, the pair)."""
    return f"{pair}:hints"


def tickets_to_json(tickets: Mapping[Side, Iterable[int]]) -> dict[str, Any]:
    return {str(side): sorted(ids) for side, ids in tickets.items() if ids}


def tickets_from_json(data: Mapping[str, Iterable[Any]]) -> dict[Side, frozenset[int]]:
    """The job's tickets back (JSON keeps ids as numbers; anything else is refused)."""
    return {Side(side): frozenset(int(i) for i in ids) for side, ids in data.items() if ids}


def merged_tickets(*kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The tickets of several targeted jobs' arguments, each once."""
    merged: dict[Side, set[int]] = {}
    for args in kwargs:
        for side, ids in tickets_from_json(args.get("tickets", {})).items():
            merged.setdefault(side, set()).update(ids)
    return tickets_to_json(merged)


class TargetedQueue:
    """What `bridge serve` defers targeted jobs through: a synchronous connector to the
    queue's database (`queue_conninfo`), used from `serve`'s runner thread."""

    def __init__(self, conninfo: str) -> None:
        self.app = procrastinate.App(
            connector=procrastinate.SyncPsycopgConnector(conninfo=conninfo)
        )

    def open(self) -> TargetedQueue:
        self.app.open()
        return self

    def close(self) -> None:
        self.app.close()

    def defer(self, pair: str, tickets: Mapping[Side, Iterable[int]]) -> int | None:
        """Queue a targeted run of `pair`; its job id, or None while one still waits (the
        caller keeps the tickets and tries again)."""
        deferrer = self.app.configure_task(
            TARGETED_TASK,
            queue=pair,
            lock=pair,
            queueing_lock=hints_lock(pair),
            priority=PRIORITY,
        )
        try:
            return deferrer.defer(pair=pair, tickets=tickets_to_json(tickets))
        except AlreadyEnqueued:
            return None
