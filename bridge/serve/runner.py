"""Targeted runs: the tickets webhooks named, re-read and copied by the sync pipeline.

`TargetedRuns` is the seam between the HTTP side and whatever runs the work: `submit` a
hint for a pair, and a run of that pair follows, later, never inside the request. With a
SQLite ledger it is `InProcessRuns`: one worker thread, which waits `coalesce_seconds`
after a pair's first hint (so that a burst becomes a few bulk calls), drops the echoes of
bridge's own writes (`PairWork.not_echoes`), then runs one targeted `SyncRun`
(`RunOptions.hints`) under the pair's run lease: one run per pair at a time, whoever
runs it. A lease held by a scheduled sync puts the tickets back to wait and try again.

With the ledger on PostgreSQL and the workers' queue created, it is `QueuedRuns`: the
same coalescing and echo check, then one `bridge.targeted_sync` job per pair and window,
which a `bridge worker` runs as `PairWork.run` runs it here (`bridge.once`, the lease).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

import structlog

from bridge.config import Config
from bridge.core.contract import Adapter
from bridge.core.hints import Hint
from bridge.core.model import Side
from bridge.ledger import LeaseHeldError, Ledger
from bridge.ledger.tables import OperationStatus, utcnow
from bridge.metrics import LedgerCollector, WebhookCounters
from bridge.once import run_with, targeted_options
from bridge.run.runner import RunResult
from bridge.serve.queue import Batch, Named, PendingHints
from bridge.worker.targeted import TargetedQueue

__all__ = ["InProcessRuns", "JobWaitingError", "PairWork", "QueuedRuns", "TargetedRuns"]

log = structlog.get_logger("bridge.serve")

#: how long after bridge's write a webhook about the same ticket is taken for its echo
ECHO_WINDOW: Final = timedelta(minutes=10)
#: vendor clocks and ours differ a little: an event this much after our write settled
#: may still be its echo
ECHO_SLACK: Final = timedelta(seconds=5)
#: the outcomes `bridge status` counts as a success (`bridge.cli.core.SUCCESS_OUTCOMES`)
_SUCCESS: Final = ("converged", "attention")


class TargetedRuns(Protocol):
    """Where an accepted webhook's hint goes: a targeted run of `pair` follows, later."""

    def submit(self, pair: str, hint: Hint) -> None:
        """Queue the hint's tickets for a run of `pair`; returns at once."""
        ...

    def health(self) -> dict[str, Any]:
        """Per pair: tickets waiting, whether a run is going on, the last run."""
        ...


class PairWork:
    """One pair's targeted runs: its config, ledger and adapters (built once), and the
    echo check in front of them. Used by one thread at a time."""

    def __init__(
        self,
        config: Config,
        ledger: Ledger,
        adapters: Mapping[Side, Adapter],
        counters: WebhookCounters,
        *,
        holder: str,
        actors: Mapping[Side, int | None],
        stop: Callable[[], bool] = lambda: False,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.config = config
        self.ledger = ledger
        self.adapters = adapters
        self.collector = LedgerCollector(ledger.sides)
        self._counters = counters
        self._holder = holder
        self._actors = actors
        self._stop = stop
        self._now = now
        self.refresh_metrics()

    def refresh_metrics(self) -> None:
        """Read the ledger's metrics again (in this thread: a scrape never touches it)."""
        self.collector.refresh(self.ledger, self._now(), _SUCCESS)

    def not_echoes(self, batch: Batch) -> dict[Side, frozenset[int]]:
        """The linked tickets worth a lookup. An echo of bridge's own write (its actor is
        bridge's, or bridge wrote the ticket shortly before the event) costs nothing once
        that write is confirmed, one lookup while it is still `sent` (the lookup confirms
        it); a ticket no link holds is left (counted)."""
        pair, ledger = self.config.pair, self.ledger
        since = self._now() - ECHO_WINDOW
        wanted: dict[Side, frozenset[int]] = {}
        for side, tickets in batch.items():
            links = ledger.links_for_tickets(side, tickets)
            unlinked = len(tickets) - len(links)
            if unlinked:
                self._counters.unlinked.labels(pair, side).inc(unlinked)
            writes = ledger.recent_writes(side, [link.link_id for link in links.values()], since)
            ours = self._actors.get(side)
            keep: set[int] = set()
            for ticket_id, link in links.items():
                named = tickets[ticket_id]
                write = writes.get(link.link_id)
                if write is not None and write.status in _AWAITING:
                    self._counters.echo_reads.labels(pair, side).inc()
                    keep.add(ticket_id)
                elif (ours is not None and named.actors == {ours}) or (
                    write is not None and _before(named, write.at)
                ):
                    self._counters.echoes.labels(pair, side).inc()
                else:
                    keep.add(ticket_id)
            if keep:
                wanted[side] = frozenset(keep)
        return wanted

    def run(self, tickets: Mapping[Side, frozenset[int]]) -> RunResult:
        """One targeted run of these tickets under the pair's run lease (`bridge.once`, as
        `bridge sync` takes it); raises `LeaseHeldError` when another run holds it."""
        options = targeted_options(self.config, tickets)
        result, _ = run_with(
            self.config,
            self.ledger,
            self.adapters,
            options,
            holder=self._holder,
            stop=self._stop,
            now=self._now,
        )
        self.refresh_metrics()
        return result


#: bridge's write not yet confirmed: a webhook about it is worth the lookup confirming it
_AWAITING: Final = frozenset({OperationStatus.SENT})


def _before(named: Named, settled_at: datetime) -> bool:
    """Whether what the webhooks said happened no later than bridge's write settled (so
    it may be that write); a webhook that gives no time is taken for it."""
    return named.latest is None or named.latest <= settled_at + ECHO_SLACK


@dataclass
class _PairStatus:
    pending: PendingHints
    running: bool = False
    waiting_for_lease: bool = False
    last_run: dict[str, Any] | None = None


class InProcessRuns:
    """`TargetedRuns` in one worker thread of this process (a SQLite ledger): a pair's
    hints are coalesced for `coalesce` seconds, then run; pairs take turns, the one
    waiting longest first."""

    def __init__(
        self,
        work: Mapping[str, PairWork],
        counters: WebhookCounters,
        *,
        coalesce: float,
        lease_retry: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._work = dict(work)
        self._counters = counters
        self._coalesce = coalesce
        self._lease_retry = lease_retry
        self._monotonic = monotonic
        self._status = {pair: _PairStatus(PendingHints()) for pair in self._work}
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    # --- the seam ---------------------------------------------------------------------

    def submit(self, pair: str, hint: Hint) -> None:
        status = self._status[pair]
        with self._cond:
            status.pending.add(hint, self._monotonic())
            self._counters.depth.labels(pair).set(status.pending.depth)
            self._cond.notify()
        self._counters.queued.labels(pair, hint.side).inc(len(hint.ticket_ids))

    def health(self) -> dict[str, Any]:
        with self._cond:
            return {
                "worker": self.alive,
                "pairs": {
                    pair: {
                        "queue_depth": status.pending.depth,
                        "running": status.running,
                        "waiting_for_lease": status.waiting_for_lease,
                        "last_run": status.last_run,
                    }
                    for pair, status in self._status.items()
                },
            }

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stopping(self) -> bool:
        return self._stopping

    # --- the worker -------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="bridge-hints", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the run in flight (its batch is recorded) and end; tickets still
        waiting are left to the scheduled sync (logged)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        left = {pair: s.pending.depth for pair, s in self._status.items() if s.pending.depth}
        if left:
            log.warning("serve.hints_left", tickets=left, note="the scheduled sync reads them")

    def _next(self) -> tuple[str, Batch] | None:
        """Wait for a pair whose hints are due; None when stopping."""
        with self._cond:
            while not self._stopping:
                now = self._monotonic()
                due = [
                    (at, pair)
                    for pair, status in self._status.items()
                    if (at := status.pending.ready_at(self._coalesce)) is not None
                ]
                if due:
                    at, pair = min(due)
                    if at <= now:
                        status = self._status[pair]
                        status.running = True
                        batch = status.pending.take()
                        self._counters.depth.labels(pair).set(0)
                        return pair, batch
                    self._cond.wait(at - now)
                else:
                    self._cond.wait()
            return None

    def _loop(self) -> None:
        while (job := self._next()) is not None:
            pair, batch = job
            try:
                self._run(pair, batch)
            finally:
                with self._cond:
                    self._status[pair].running = False

    def _run(self, pair: str, batch: Batch) -> None:
        work, status = self._work[pair], self._status[pair]
        try:
            tickets = work.not_echoes(batch)
            if not tickets:
                return
            last = self._dispatch(pair, work, tickets)
        except (LeaseHeldError, JobWaitingError) as exc:
            now = self._monotonic()
            with self._cond:
                status.pending.put_back(batch, now, now + self._lease_retry)
                status.waiting_for_lease = True
                self._counters.depth.labels(pair).set(status.pending.depth)
            self._counters.lease_waits.labels(pair).inc()
            log.info("serve.lease_held", pair=pair, held=str(exc))
            return
        except Exception as exc:  # a bug or a ledger error: the scheduled sync covers it
            self._counters.runs.labels(pair, "error").inc()
            log.error("serve.run_failed", pair=pair, error=f"{type(exc).__name__}: {exc}"[:300])
            return
        with self._cond:
            status.waiting_for_lease = False
            status.last_run = {
                **last,
                "ended_at": utcnow().isoformat(timespec="seconds"),
                "tickets": sum(len(ids) for ids in tickets.values()),
            }
        self._counters.runs.labels(pair, last["outcome"]).inc()
        log.info("serve.run", pair=pair, **last)

    def _dispatch(
        self, pair: str, work: PairWork, tickets: Mapping[Side, frozenset[int]]
    ) -> dict[str, Any]:
        """Run the tickets now, in this thread; what `/health` shows of the run."""
        result = work.run(tickets)
        return {"run": result.run_id, "outcome": result.outcome}


class JobWaitingError(Exception):
    """A targeted job of the pair still waits in the queue: the tickets wait too."""


class QueuedRuns(InProcessRuns):
    """`TargetedRuns` through the workers' queue (PostgreSQL, `bridge worker`): the same
    coalescing and echo check as in-process, then one `bridge.targeted_sync` job per pair
    and window instead of a run here (`bridge/worker/targeted.py` says why its locks)."""

    def __init__(
        self,
        work: Mapping[str, PairWork],
        counters: WebhookCounters,
        queue: TargetedQueue,
        **timing: Any,
    ) -> None:
        super().__init__(work, counters, **timing)
        self._queue = queue

    def _dispatch(
        self, pair: str, work: PairWork, tickets: Mapping[Side, frozenset[int]]
    ) -> dict[str, Any]:
        job = self._queue.defer(pair, tickets)
        if job is None:
            raise JobWaitingError(f"a targeted job of pair {pair} is still waiting")
        work.refresh_metrics()  # the workers' runs since the last one
        return {"job": job, "outcome": "queued"}
