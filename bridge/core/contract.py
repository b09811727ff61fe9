"""The contract between the reconciler and a vendor adapter.

An adapter hides one vendor's API behind four questions and three writes. The reconciler
never sees vendor JSON; adapters never see the ledger. Writes are split into `submit`
(send, return at once with a job handle when the vendor works asynchronously) and
`poll`, so that a migration can keep many vendor jobs in flight, and `lookup` re-reads
the target to confirm: a job result alone is never trusted for a purge.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Generator, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol, runtime_checkable

from bridge.core.immutable import immutable
from bridge.core.model import Cause, Side, State, Transition
from bridge.errors import BridgeError, ExitCode

__all__ = [
    "AccountBusyError",
    "Adapter",
    "AdapterError",
    "BudgetBook",
    "ChangePage",
    "CheckResult",
    "JobState",
    "JobStatus",
    "OutcomeUnknownError",
    "PermanentError",
    "RefusedError",
    "SharedBudget",
    "Submitted",
    "TicketView",
    "TransientError",
    "UnreachableError",
    "UnreadableAnswerError",
]


class AdapterError(BridgeError):
    """A vendor call failed; the message is safe to log (no secrets, no ticket content)."""

    exit_code = ExitCode.VENDOR


class TransientError(AdapterError):
    """Worth retrying later: rate limits outlasting the retry budget, 5xx, network loss."""

    #: seconds the vendor asked us to wait (a 429's Retry-After) when retries ran out;
    #: a worker's retry of the run waits that long (docs/workers.md)
    retry_after: float | None = None

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        exit_code: ExitCode | None = None,
    ) -> None:
        super().__init__(message, exit_code=exit_code)
        self.retry_after = retry_after


class AccountBusyError(TransientError):
    """The vendor account's calls for now went to other pairs that share it, and this run
    was told not to wait for its turn (a worker gives its thread back to the other pairs'
    runs instead: docs/workers.md). Nothing was sent; `retry_after` says when the turn
    comes."""


class PermanentError(AdapterError):
    """Retrying will not help: bad credentials, missing rights, a malformed request.

    On a write this is the vendor's *rejection*: it said no and did nothing."""


class RefusedError(PermanentError):
    """The vendor refused *us*, not the request: credentials or rights (401, 403). Every
    call will fail the same way until a person fixes the token or the API user's rights,
    so a run that meets it ends `unavailable` (exit 5), never "retry later"."""


class UnreachableError(TransientError):
    """No attempt reached the vendor: its host did not resolve, or refused or timed out
    every connection. Nothing was sent; a wrong `base_url` or an outage, for a person
    to look at when it lasts."""


class UnreadableAnswerError(TransientError):
    """A read the vendor answered, in a shape the adapter cannot read (a field missing, a
    display text where an id was expected). Transient because a vendor's bad answer may
    pass; reported as such, never as a vendor out of reach."""


class OutcomeUnknownError(TransientError):
    """A write that may have been acted on: the answer was lost (timeout or dropped
    connection after sending), unreadable, or a 5xx. Never resent blindly unless the
    adapter declares the operation harmless to resend (`Adapter.resend_harmless`); the
    target is re-read first. A plain `TransientError` from a write means *not sent*
    (429, connection refused): resending is safe."""


@immutable
class TicketView:
    """One ticket as one vendor shows it, already normalised.

    `status_id` is the vendor's own status before deletion where that matters for a
    faithful restore, where the vendor's own restore does not put it back. `external_id`
    lets links be discovered, where the vendor carries one.
    `merged_into` records a merge, which is never a deletion.
    """

    ticket_id: int
    state: State
    vendor_time: datetime | None = None
    actor_id: int | None = None
    cause: Cause | None = None
    status_id: int | None = None
    external_id: str | None = None
    merged_into: int | None = None


@dataclass(frozen=True, slots=True)
class ChangePage:
    """A page of changes and the cursor to store once the page is recorded.

    `complete` is True on the last page of the stream (nothing more to read now).
    `makers_unread`: the views carry no actor yet; who made them is asked (`makers`)
    only for the views whose state differs from what the ledger holds, since a row
    read again unchanged records nothing (a re-read window would cost a log query per
    hundred rows otherwise).
    """

    views: Sequence[TicketView]
    cursor: str
    complete: bool
    makers_unread: bool = False


@dataclass(frozen=True, slots=True)
class Submitted:
    """A write accepted by the vendor. `job_id` is None when the vendor answered synchronously."""

    transition: Transition
    ticket_ids: tuple[int, ...]
    job_id: str | None = None
    # where a purge cannot be forced, the vendor's retention job removes the ticket by this time
    pending_until: Mapping[int, datetime] = field(default_factory=dict)


class JobStatus(StrEnum):
    QUEUED = "queued"
    WORKING = "working"
    COMPLETED = "completed"
    FAILED = "failed"
    KILLED = "killed"
    UNKNOWN = "unknown"  # expired or never seen: confirm by lookup instead

    @property
    def terminal(self) -> bool:
        return self in {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.KILLED, JobStatus.UNKNOWN}


@dataclass(frozen=True, slots=True)
class JobState:
    job_id: str
    status: JobStatus
    message: str | None = None
    failed_ids: Mapping[int, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    ok: bool
    message: str


class SharedBudget(Protocol):
    """A vendor account's limits when several pairs use it (`bridge.budgets`): what one
    adapter spends is counted where every pair's run can see it."""

    def take_call(self, kind: str = "calls") -> None:
        """Block until the account's minute allows one more call of `kind`; or, for a
        run told not to wait long, raise `AccountBusyError` (nothing sent)."""
        ...

    def waiting(self) -> AbstractContextManager[None]:
        """In the block, this thread's calls wait for their turn however far it is: a
        change stream read midway, whose page given back would be read again."""
        ...

    def turn_in(self, kinds: Iterable[str]) -> float:
        """Seconds until a run just starting could make a call of each of `kinds` (0: now),
        looked up without joining the account's queue."""
        ...

    def jobs_running(self) -> int:
        """The account's background jobs that may still run, every pair's."""
        ...

    def hold_job(self, job_id: str) -> None: ...

    def release_jobs(self, job_ids: list[str]) -> None: ...


class BudgetBook(Protocol):
    """Where the shared budgets of vendor accounts are kept (`bridge.budgets.Budgets`)."""

    def account(
        self, account: str, *, limits: Mapping[str, Callable[[], float]], job_limit: int
    ) -> SharedBudget:
        """The budget of `account`: per kind of call, its limit a minute (asked anew each
        minute: it may come from the vendor's answers), and its jobs at once."""
        ...


@runtime_checkable
class Adapter(Protocol):
    """What the reconciler, migration and `bridge check` need from one vendor."""

    side: Side
    #: the most ids one bulk call takes
    batch_limit: int
    #: the most vendor jobs that may be queued or running at once (None: writes are synchronous)
    job_limit: int | None
    #: how long the vendor keeps a soft-deleted ticket before its own job purges it
    #: (each adapter says which setting or documented period this is).
    #: The reconciler attributes a purge to `retention` when this explains it.
    retention_period: timedelta
    #: the vendor's own retention purge leaves no trace in its change stream, so soft-deleted
    #: tickets past `retention_period` must be swept (looked up) for the run to see them go
    retention_is_silent: bool

    #: after an outcome-unknown write with no job to follow, how long until a re-read that
    #: shows the target unchanged proves the call had no effect (a vendor job accepted
    #: just before the answer was lost may still be queued until then)
    outcome_wait: timedelta

    def resend_harmless(self, transition: Transition) -> bool:
        """Whether sending `transition` again for a ticket it already reached changes
        nothing (state-setting calls); False for anything irreversible or job-creating."""
        ...

    def sweep(
        self, known: Mapping[int, State], *, expected_gone: Collection[int] = ()
    ) -> dict[int, TicketView]:
        """Bulk check that linked tickets still exist (ids → the state the ledger holds):
        a ticket in no listing any more is `purged`, confirmed by a read by id unless it
        is in `expected_gone` (a purge bridge copied and waits for, where nothing
        irreversible follows). Ids missing from the answer could not be settled."""
        ...

    def lookup(self, ticket_ids: Sequence[int]) -> dict[int, TicketView]:
        """Authoritative state of each id. An id missing from the answer could not be
        determined this time (treat as unknown, never as purged)."""
        ...

    def live(self, ticket_ids: Sequence[int]) -> set[int]:
        """The ids that are active right now: one cheap read per batch, for the check made
        right before a purge (a purge is never sent for a ticket that is active)."""
        ...

    def destroyed_by(self, transition: Transition, ticket_ids: Sequence[int]) -> dict[int, str]:
        """The ids on which `transition` would not do as asked but destroy the ticket for
        good (a vendor may delete an archived ticket permanently), each with why: read right
        before sending, so that a soft delete is never turned into a purge."""
        ...

    def changes(
        self, cursor: str | None, *, read_ahead: bool = False
    ) -> Generator[ChangePage, None, None]:
        """Everything that changed since `cursor` (None: from the beginning), page by page.

        With `read_ahead`, the next page may be asked for while the caller handles one
        (reads overlap the recording): its answer may then be from before anything the
        caller does meanwhile, so only a caller that writes nothing to the vendor between
        pages passes it, and resumes or closes the stream promptly. Closing the stream
        waits for a page asked for ahead (no read outlives its stream)."""
        ...

    def makers(self, views: Sequence[TicketView]) -> list[TicketView]:
        """These views of a `makers_unread` page, each with who made its change (and the
        cause that follows) where the vendor can tell; the rest as they are."""
        ...

    @property
    def change_page_size(self) -> int:
        """The most tickets one `changes` page holds (a full page is worth reading early)."""
        ...

    def changes_ready_in(self) -> float:
        """Seconds until `changes` can fetch its next page without waiting on a rate limit
        (0: now). The reconciler reads another side, or its confirmations, meanwhile."""
        ...

    def turn_in(self) -> float:
        """Seconds until a run may begin its calls on a vendor account it shares with other
        pairs (0: now, or the account is this pair's alone): a worker starts no run whose
        first calls would wait long for their turn (docs/workers.md)."""
        ...

    @property
    def changes_per_minute(self) -> float | None:
        """The most `changes` pages the vendor serves a minute (None: only
        `calls_per_minute` bounds them): what bounds a large migration's reading."""
        ...

    def calls_per_minute(self) -> float:
        """The calls a minute this account may make now: the vendor's own rate-limit
        signals once it has sent some, else its configured or documented pace. Estimates
        (`bridge migrate --dry-run`) use it."""
        ...

    def submit(
        self,
        transition: Transition,
        ticket_ids: Sequence[int],
        *,
        restore_status: Mapping[int, int | None] | None = None,
    ) -> Submitted:
        """Send one bulk write of at most `batch_limit` ids. `restore_status` carries the
        pre-delete status to put back after a restore, where the vendor does not."""
        ...

    def poll(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        """Current state of vendor jobs (one bulk call where the vendor allows)."""
        ...

    def check(self) -> list[CheckResult]:
        """Network checks for `bridge check`: reachable, authenticated, allowed."""
        ...
