"""An in-memory vendor behind the adapter contract, for the engine's unit tests.

It keeps the contract's promises (bulk limits, jobs, change cursors, lookups) so that the
engine's logic can be tested without HTTP; the end-to-end tests use the real simulators.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bridge.core.contract import (
    ChangePage,
    CheckResult,
    JobState,
    JobStatus,
    PermanentError,
    Submitted,
    TicketView,
)
from bridge.core.model import Cause, Side, State, Transition, apply


@dataclass
class FakeTicket:
    state: State
    changed_at: datetime
    status_id: int = 1
    actor_id: int | None = None
    cause: Cause | None = None


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class FakeVendor:
    """`purge_mode="retention"` behaves like SuperOffice: a purge only waits for retention."""

    def __init__(
        self,
        side: Side,
        clock: FakeClock,
        *,
        retention: timedelta,
        job_limit: int | None = None,
        purge_mode: str = "immediate",
        bridge_actor: int = 999,
        retention_is_silent: bool = False,
    ) -> None:
        self.side = side
        self.batch_limit = 100
        self.job_limit = job_limit
        self.retention_period = retention
        #: the run sweeps for retention purges (SuperOffice: its stream does not show them)
        self.retention_is_silent = retention_is_silent
        self.clock = clock
        self.purge_mode = purge_mode
        self.bridge_actor = bridge_actor
        self.tickets: dict[int, FakeTicket] = {}
        self._log: list[int] = []
        self._jobs: dict[str, tuple[Transition, list[int]]] = {}
        self._job_count = 0
        self.calls: Counter[str] = Counter()
        self.submitted: list[tuple[Transition, tuple[int, ...]]] = []
        self.fail_submit: Exception | None = None
        #: the next poll raises this (the job goes on: it never ends unless polled again)
        self.fail_poll: Exception | None = None
        #: the next submit is acted on, then raises this (the answer was lost)
        self.fail_after_submit: Exception | None = None
        #: the next `changes` read raises this
        self.fail_changes: Exception | None = None
        self.outcome_wait = timedelta(minutes=15)
        #: tickets a soft delete would destroy for good (Zendesk's archived ones)
        self.archived: set[int] = set()

    # --- agent actions -----------------------------------------------------------------

    def seed(self, *ids: int, state: State = State.ACTIVE) -> None:
        for ticket_id in ids:
            self.tickets[ticket_id] = FakeTicket(state, self.clock())
            self._log.append(ticket_id)

    def act(self, transition: Transition, *ids: int, actor: int = 7) -> None:
        for ticket_id in ids:
            ticket = self.tickets[ticket_id]
            ticket.state = apply(ticket.state, transition)
            ticket.changed_at = self.clock()
            ticket.actor_id = actor
            ticket.cause = Cause.BRIDGE if actor == self.bridge_actor else Cause.USER
            if transition is Transition.RESTORE:
                ticket.status_id = 1  # like UndeleteByIds: the default open status
            self._log.append(ticket_id)

    def retention_sweep(self) -> None:
        """The vendor's own job: remove soft-deleted tickets older than the retention."""
        for ticket_id, ticket in self.tickets.items():
            expired = ticket.changed_at + self.retention_period <= self.clock()
            if ticket.state is State.SOFT_DELETED and expired:
                ticket.state = State.PURGED
                ticket.changed_at = self.clock()
                ticket.actor_id = None
                ticket.cause = None
                self._log.append(ticket_id)

    def vanish(self, *ids: int) -> None:
        """An admin's hard delete: the ticket is gone, and no change stream shows it."""
        for ticket_id in ids:
            del self.tickets[ticket_id]

    def state(self, ticket_id: int) -> State:
        return self.tickets[ticket_id].state

    # --- the contract ----------------------------------------------------------------------

    def _view(self, ticket_id: int) -> TicketView:
        ticket = self.tickets[ticket_id]
        return TicketView(
            ticket_id=ticket_id,
            state=ticket.state,
            vendor_time=ticket.changed_at,
            actor_id=ticket.actor_id,
            cause=ticket.cause if ticket.state is not State.PURGED else None,
            status_id=ticket.status_id if ticket.state is State.ACTIVE else None,
        )

    def lookup(self, ticket_ids: Sequence[int]) -> dict[int, TicketView]:
        self.calls["lookup"] += 1
        return {i: self._view(i) for i in ticket_ids if i in self.tickets}

    def resend_harmless(self, transition: Transition) -> bool:
        return transition is not Transition.PURGE or self.purge_mode == "retention"

    def sweep(
        self, known: Mapping[int, State], *, expected_gone: Collection[int] = ()
    ) -> dict[int, TicketView]:
        self.calls["sweep"] += 1
        return {
            i: self._view(i) if i in self.tickets else TicketView(i, State.PURGED) for i in known
        }

    def destroyed_by(self, transition: Transition, ticket_ids: Sequence[int]) -> dict[int, str]:
        """Ids marked `archived` (like Zendesk's) would be destroyed by a soft delete."""
        if transition is not Transition.SOFT_DELETE:
            return {}
        self.calls["destroyed_by"] += 1
        return {i: "archived" for i in ticket_ids if i in self.archived}

    def live(self, ticket_ids: Sequence[int]) -> set[int]:
        self.calls["live"] += 1
        return {i for i in ticket_ids if i in self.tickets and self.state(i) is State.ACTIVE}

    change_page_size = 1000
    changes_per_minute = None

    def changes_ready_in(self) -> float:
        return 0.0

    def turn_in(self) -> float:
        return 0.0

    def calls_per_minute(self) -> float:
        return 700.0

    def changes(
        self, cursor: str | None, *, read_ahead: bool = False
    ) -> Generator[ChangePage, None, None]:
        self.calls["changes"] += 1
        if self.fail_changes is not None:
            error, self.fail_changes = self.fail_changes, None
            raise error
        start = int(cursor or 0)
        ids = [i for i in dict.fromkeys(self._log[start:]) if i in self.tickets]
        yield ChangePage([self._view(i) for i in ids], str(len(self._log)), True)

    def makers(self, views: Sequence[TicketView]) -> list[TicketView]:
        return list(views)

    def submit(
        self,
        transition: Transition,
        ticket_ids: Sequence[int],
        *,
        restore_status: Mapping[int, int | None] | None = None,
    ) -> Submitted:
        self.calls[f"submit.{transition}"] += 1
        if len(ticket_ids) > self.batch_limit:
            raise ValueError("too many ids")
        if self.fail_submit is not None:
            error, self.fail_submit = self.fail_submit, None
            raise error
        self.submitted.append((transition, tuple(ticket_ids)))
        if transition is Transition.PURGE and self.purge_mode == "retention":
            due = {
                i: self.tickets[i].changed_at + self.retention_period
                for i in ticket_ids
                if self.tickets[i].state is State.SOFT_DELETED
            }
            return Submitted(transition, tuple(ticket_ids), pending_until=due)
        if self.job_limit:
            self._job_count += 1
            job_id = f"job-{self._job_count}"
            self._jobs[job_id] = (transition, list(ticket_ids))
            submitted = Submitted(transition, tuple(ticket_ids), job_id=job_id)
        else:
            self._apply(transition, ticket_ids, restore_status)
            submitted = Submitted(transition, tuple(ticket_ids))
        if self.fail_after_submit is not None:
            error, self.fail_after_submit = self.fail_after_submit, None
            raise error
        return submitted

    def _apply(
        self,
        transition: Transition,
        ticket_ids: Sequence[int],
        restore_status: Mapping[int, int | None] | None,
    ) -> None:
        missing = [i for i in ticket_ids if i not in self.tickets]
        if len(missing) == len(ticket_ids):
            raise PermanentError("RecordNotFound")
        for ticket_id in ticket_ids:
            ticket = self.tickets.get(ticket_id)
            if ticket is None:
                continue
            try:
                self.act(transition, ticket_id, actor=self.bridge_actor)
            except ValueError:
                continue
            if restore_status and restore_status.get(ticket_id):
                ticket.status_id = restore_status[ticket_id] or 1

    def poll(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        self.calls["poll"] += 1
        if self.fail_poll is not None:
            error, self.fail_poll = self.fail_poll, None
            raise error
        states = {}
        for job_id in job_ids:
            job = self._jobs.pop(job_id, None)
            if job is None:
                states[job_id] = JobState(job_id, JobStatus.UNKNOWN)
                continue
            transition, ids = job
            self._apply(transition, ids, None)
            states[job_id] = JobState(job_id, JobStatus.COMPLETED)
        return states

    def check(self) -> list[CheckResult]:
        return [CheckResult("fake", True, "ok")]
