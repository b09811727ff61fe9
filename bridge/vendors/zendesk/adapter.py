"""Zendesk Support behind the adapter contract of `bridge.core.contract`.

Reads, cheapest first: `tickets/show_many` for live tickets, `deleted_tickets` (sorted by
`deleted_at` desc, limited to 10 requests a minute, so read only as far as needed) for
soft-deleted ones and their actor, a direct `GET /tickets/{id}` before calling anything
purged, and the incremental cursor export for changes.

Archived tickets (closed for 120 days) are read-only and still shown by id; deleting one (an
admin, or the account's deletion schedule) removes it at once: it never passes through the
deleted list. A linked ticket gone that way is found by the sweep (404 by id, absent from
the deleted list) or, should the export show it, by a SCRUBBED row not updated for longer
than the scrub period before it: its cause is `archive_retention` unless the audit log
(Enterprise; looked for once per run, only when something was purged) names a person. The
audit log also gives a permanent deletion's actor and time. Writes are the bulk endpoints
(`destroy_many`, `restore_many`, `deleted_tickets/destroy_many`), at most 100 ids each, with
this adapter's own jobs kept under `job_limit`.

Which requests are retried blindly (after a 5xx, a read timeout or a dropped connection) is
decided by `HttpClient`: every GET, the PUT `restore_many` and the DELETE `destroy_many`
(soft delete: repeating it only deletes what is already deleted). The purge
`deleted_tickets/destroy_many` is sent with `idempotent=False`: an irreversible call whose
outcome is unknown is never resent; the caller confirms by lookup. 429 and 503 are retried
for every request, purges included, because the vendor did not act on them.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Collection, Generator, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
import structlog
import urllib3.exceptions

from bridge.core.batches import chunked
from bridge.core.contract import (
    ChangePage,
    CheckResult,
    JobState,
    JobStatus,
    OutcomeUnknownError,
    SharedBudget,
    Submitted,
    TicketView,
    TransientError,
)
from bridge.core.model import Cause, State, Transition
from bridge.secrets import register_secret_value
from bridge.vendors import wire
from bridge.vendors.http import HttpClient, VendorHTTPError, decode_json
from bridge.vendors.zendesk import SIDE
from bridge.vendors.zendesk import wire as shapes
from bridge.vendors.zendesk.errors import error_code
from bridge.vendors.zendesk.ratelimit import endpoint_budget, parse_rate_limit

__all__ = [
    "BATCH_LIMIT",
    "JOB_LIMIT",
    "RETENTION_PERIOD",
    "ZendeskAdapter",
    "job_state",
    "map_job_status",
    "parse_time",
    "ticket_state",
]

log = structlog.get_logger(__name__)

BATCH_LIMIT = 100
#: Zendesk allows 30 queued or running jobs per account
JOB_LIMIT = 30
#: the incremental export's own limit: pages a minute per account (30 with High Volume)
EXPORT_PER_MINUTE = 10
#: the deleted-tickets listing's own limit, requests a minute per account (the sandbox
#: models it, `deleted-tickets-index`), and its kind in a shared budget
DELETED_LIST_PER_MINUTE = 10
DELETED_LIST_BUDGET = "deleted_tickets"
#: the kind of call the incremental export is counted as in a shared budget (its own limit)
EXPORT_BUDGET = "export"
#: every other call's kind in a shared budget (the account's requests a minute)
CALLS_BUDGET = "calls"
#: soft-deleted tickets are scrubbed about 30 days after deletion
RETENTION_PERIOD = timedelta(days=30)
#: closed tickets are archived "about 120 days" after closing (documented); one closed this
#: long is treated as possibly archived, where a delete is permanent (90 days: a margin)
ARCHIVE_SUSPECT_AFTER = timedelta(days=90)
#: how far back the audit log is searched for a vanished ticket's deletion (runs check each
#: link daily by default: a week of missed runs is covered twice)
AUDIT_LOOKBACK = timedelta(days=14)
#: pages of the audit log read for one batch at most (100 entries a page)
AUDIT_MAX_PAGES = 10
AUDIT_PATH = "api/v2/audit_logs"
#: a purge this long after the ticket's last update did not follow a soft delete
ARCHIVE_GAP = RETENTION_PERIOD + timedelta(days=1)
SCRUBBED = "SCRUBBED"
EXPORT_PATH = "api/v2/incremental/tickets/cursor"
_JSON = {"Content-Type": "application/json"}
_JOB_STATUSES = {status.value: status for status in JobStatus if status is not JobStatus.UNKNOWN}

#: the account's calls a minute until its headers say (Support Enterprise's documented limit)
DEFAULT_CALLS_PER_MINUTE = 700.0


def parse_time(value: object) -> datetime | None:
    """An aware UTC datetime from Zendesk's ISO strings or unix seconds; None if unreadable.

    Lenient because the published example `20140704T15:37:04Z` is not valid ISO 8601.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, tz=UTC)
    if not isinstance(value, str) or not value:
        return None
    if value.endswith("Z"):
        try:  # what every ticket carries (`2024-05-01T13:00:00Z`): read at once
            return datetime.fromisoformat(value).astimezone(UTC)
        except ValueError:
            pass
    text = value.strip().replace("Z", "+00:00")
    for candidate in (text, _compact_date(text)):
        if candidate is None:
            continue
        try:
            parsed = datetime.fromisoformat(candidate)
        except ValueError:
            continue
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return None


def _compact_date(text: str) -> str | None:
    if len(text) >= 9 and text[:8].isdigit() and text[8] == "T":
        return f"{text[:4]}-{text[4:6]}-{text[6:8]}{text[8:]}"
    return None


_DELETED, _PURGED = State.SOFT_DELETED, State.PURGED
#: a ticket as `show_many` gives it (a dict) or the export (`shapes.ExportTicket`)
Row = Mapping[str, Any] | shapes.ExportTicket


def ticket_state(row: Row) -> State:
    """The normalised state of a ticket row from show_many or the incremental export."""
    if row.get("status") == "deleted":
        return State.PURGED if row.get("subject") == SCRUBBED else State.SOFT_DELETED
    return State.ACTIVE


def map_job_status(value: object) -> JobStatus:
    """Zendesk's job status string; anything unrecognised is UNKNOWN (confirm by lookup)."""
    return _JOB_STATUSES.get(str(value).lower(), JobStatus.UNKNOWN)


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _ids_param(ids: Sequence[int]) -> str:
    return ",".join(str(i) for i in ids)


@dataclass(frozen=True, slots=True)
class _Deleted:
    ticket_id: int
    deleted_at: datetime | None
    actor_id: int | None


@dataclass(frozen=True, slots=True)
class _Purge:
    """What the audit log says of a permanent deletion."""

    ticket_id: int
    deleted_at: datetime | None
    actor_id: int | None
    #: the entry names a deletion schedule
    schedule: bool
    #: the actor is the system (no person: a negative or missing id)
    system: bool
    #: the entry says the deletion was permanent (not a soft delete)
    permanent: bool


class _ListingIncompleteError(Exception):
    """The deleted-tickets listing stopped before its end (rate limit budget, network)."""


#: how long a walk of the deleted-tickets listing is continued by the next lookup instead
#: of read again from its newest page: a run looks its tickets up 100 at a time, and a
#: burst of 1,000 deletions would otherwise read the listing's first pages ten times over
LISTING_REUSE = timedelta(seconds=30)


@dataclass
class _Listing:
    """A walk of the deleted-tickets listing, newest deletion first: what it has read so
    far, and where it goes on."""

    started_at: datetime
    pages: Iterator[Sequence[Mapping[str, Any]]]
    rows: dict[int, _Deleted]
    #: the oldest deletion read so far (the walk is past everything newer)
    oldest: datetime | None = None
    ended: bool = False


class ZendeskAdapter:
    """The Zendesk side of the bridge. Construct with already-resolved secrets.

    Auth: `oauth_token` (Bearer) when given, else API token Basic auth `{email}/token`.
    `sleep` serves retries, job polling and slot waits so that a simulated clock can
    drive them; `clock` (aware UTC now) measures job age for the fresh-job 404 rule.
    """

    side = SIDE
    retention_is_silent = False
    batch_limit = BATCH_LIMIT
    retention_period = RETENTION_PERIOD

    def __init__(
        self,
        *,
        base_url: str,
        email: str | None = None,
        token: str | None = None,
        oauth_token: str | None = None,
        timeout: float = 30.0,
        job_limit: int = JOB_LIMIT,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] | None = None,
        bridge_user_id: int | None = None,
        start_time: int = 0,
        http: HttpClient | None = None,
        job_poll_interval: float = 2.0,
        job_wait_budget: float = 900.0,
        fresh_job_attempts: int = 5,
        fresh_job_interval: float = 0.5,
        fresh_job_window: float = 60.0,
        export_per_page: int = 1000,
        deletion_slack: float = 3600.0,
        export_per_minute: int = EXPORT_PER_MINUTE,
        outcome_wait: float = 900.0,
        audit_lookback: timedelta = AUDIT_LOOKBACK,
        audit_max_pages: int = AUDIT_MAX_PAGES,
        budget: SharedBudget | None = None,
    ) -> None:
        if job_limit < 1:
            raise ValueError("job_limit must be at least 1")
        self.job_limit: int | None = job_limit
        #: a purge accepted just before its answer was lost is a queued job for at most
        #: this long (30 jobs of about 15 s each ahead of it), so a re-read after it proves
        self.outcome_wait = timedelta(seconds=outcome_wait)
        self._sleep = sleep
        self._clock = clock or (lambda: datetime.now(UTC))
        self.bridge_user_id = bridge_user_id
        self._start_time = start_time
        self._job_poll_interval = job_poll_interval
        self._job_wait_budget = job_wait_budget
        self._fresh_job_attempts = max(1, fresh_job_attempts)
        self._fresh_job_interval = fresh_job_interval
        self._fresh_job_window = timedelta(seconds=fresh_job_window)
        self._export_per_page = export_per_page
        self._deletion_slack = timedelta(seconds=deletion_slack)
        self._export_spacing = 60.0 / max(1, export_per_minute)
        #: when (clock seconds) the export may next be read without a 429
        self._export_ready_at = 0.0
        self._authorization = _authorization(email, token, oauth_token)
        #: the account's calls, export pages and jobs, shared with the other pairs that
        #: use this account (None: this pair alone uses it)
        self._budget = budget
        self._http = http or HttpClient(
            base_url,
            auth=self._auth,
            timeout=timeout,
            rate_limit=parse_rate_limit,
            error_code=error_code,
            sleep=sleep,
            user_agent="bridge-zendesk",
            pacer=budget.take_call if budget is not None else None,
        )
        self._lock = threading.Lock()
        #: this adapter's jobs that may still be queued or working, with their submit time
        self._in_flight: dict[str, datetime] = {}
        #: tickets this adapter soft-deleted (their deletion's actor is bridge)
        self._own_deletes: set[int] = set()
        #: tickets this adapter purged (their confirmation needs no audit evidence)
        self._own_purges: set[int] = set()
        #: whether the account has the audit log: None until first needed, then remembered
        #: for the run (403/404 means it has not)
        self._audit_logs: bool | None = None
        self._audit_lookback = audit_lookback
        self._audit_max_pages = max(1, audit_max_pages)
        #: the deleted-tickets walk the next lookup may continue (`_find_deleted`)
        self._listing: _Listing | None = None

    # -- plumbing ------------------------------------------------------------------------
    def _auth(self, prepared: requests.PreparedRequest) -> None:
        prepared.headers["Authorization"] = self._authorization

    @property
    def http(self) -> HttpClient:
        return self._http

    @property
    def in_flight(self) -> tuple[str, ...]:
        """Job ids this adapter submitted and has not yet seen finish."""
        with self._lock:
            return tuple(self._in_flight)

    def _cause(self, actor_id: int | None) -> Cause | None:
        if actor_id is None:
            return None
        if self.bridge_user_id is not None and actor_id == self.bridge_user_id:
            return Cause.BRIDGE
        return Cause.USER

    def resend_harmless(self, transition: Transition) -> bool:
        """Soft delete and restore set a state; a purge is irreversible."""
        return transition is not Transition.PURGE

    # -- lookup --------------------------------------------------------------------------
    def sweep(
        self, known: Mapping[int, State], *, expected_gone: Collection[int] = ()
    ) -> dict[int, TicketView]:
        """`show_many` over every id (100 a call). A ticket the ledger holds as active that
        is no longer live is looked up fully (the deleted-ticket listing, then 404 by id);
        one it holds as soft-deleted stays so unless live again: its scrub comes through
        the export as `SCRUBBED`, and walking the listing (10 calls a minute) for every
        soft-deleted ticket would cost more than the whole sweep."""
        del expected_gone  # a ticket gone from Zendesk is always confirmed by id
        ids = [i for i in dict.fromkeys(known) if known[i] is not State.PURGED]
        views = self._live_views(ids)
        gone = [i for i in ids if i not in views and known[i] is State.ACTIVE]
        if gone:
            views.update(self._vanished(gone))
        for ticket_id in ids:
            if ticket_id not in views and known[ticket_id] is State.SOFT_DELETED:
                views[ticket_id] = TicketView(ticket_id, State.SOFT_DELETED)
        return views

    def _vanished(self, ticket_ids: Sequence[int]) -> dict[int, TicketView]:
        """Active tickets missing from `show_many`, in bulk reads first: the deleted list
        (100 a page, newest deletion first) finds the soft-deleted ones. Only those it does
        not explain are read by id (an archived ticket is shown there even where
        `show_many` leaves it out); one that answers 404 went from active to purged without
        passing through the deleted list, which only an archived ticket's deletion does
        (Zendesk documents it): `archive_retention`, unless the audit log (one query for
        them all) names a person."""
        views: dict[int, TicketView] = {}
        wanted = set(ticket_ids)
        try:
            found = self._find_deleted(wanted)
        except _ListingIncompleteError as exc:
            found = exc.args[0]
            log.info("zendesk.sweep.incomplete", unresolved=len(wanted - set(found)))
            wanted = set(found)  # only what was found is settled this time
        for deleted in found.values():
            views[deleted.ticket_id] = self._deleted_view(deleted)
        gone: list[int] = []
        for ticket_id in sorted(wanted - set(found)):
            try:
                response = self._http.request("GET", f"api/v2/tickets/{ticket_id}", ok=(404,))
            except TransientError:
                continue  # unsettled this time
            if response.status_code == 404:
                gone.append(ticket_id)
                continue
            body = decode_json(response, "api/v2/tickets/{id}")
            wire.check(shapes.ShowOneAnswer, body, "api/v2/tickets/{id}")
            view = self._live_view(body["ticket"])
            if view is not None:
                views[ticket_id] = view
            # shown as deleted yet not in the list just read: unsettled this time
        if not gone:
            return views
        now = self._clock()
        evidence = self._purge_evidence(gone, now - self._audit_lookback, now, strict=False)
        for ticket_id in gone:
            views[ticket_id] = self._purged_view(ticket_id, evidence.get(ticket_id), None)
        return views

    def _deleted_view(self, deleted: _Deleted) -> TicketView:
        return TicketView(
            ticket_id=deleted.ticket_id,
            state=State.SOFT_DELETED,
            vendor_time=deleted.deleted_at,
            actor_id=deleted.actor_id,
            cause=self._cause(deleted.actor_id),
        )

    def _purged_view(
        self, ticket_id: int, purge: _Purge | None, seen: datetime | None, *, archived: bool = True
    ) -> TicketView:
        """A purged ticket with what the evidence says: the audit log's actor and time when
        it has an entry (a person: their cause; a deletion schedule: `archive_retention`;
        the system: `archive_retention` for a ticket known archived), else
        `archive_retention` for a ticket known archived, else no cause (the run's
        retention rule decides)."""
        if purge is not None:
            person = not (purge.schedule or purge.system)
            if person:
                cause: Cause | None = self._cause(purge.actor_id)
            else:
                cause = Cause.ARCHIVE_RETENTION if purge.schedule or archived else None
            return TicketView(
                ticket_id=ticket_id,
                state=State.PURGED,
                vendor_time=purge.deleted_at or seen,
                actor_id=purge.actor_id if person else None,
                cause=cause,
            )
        return TicketView(
            ticket_id=ticket_id,
            state=State.PURGED,
            vendor_time=seen,
            cause=Cause.ARCHIVE_RETENTION if archived else None,
        )

    def _purge_evidence(
        self, ticket_ids: Sequence[int], start: datetime, end: datetime, *, strict: bool
    ) -> dict[int, _Purge]:
        """The audit log's newest ticket `destroy` entry for each id in `[start, end]`: one
        bulk query (newest first, at most `audit_max_pages` pages), never one per ticket.
        `strict` keeps only entries that say the deletion was permanent (a soft delete's
        entry says nothing of the scrub that followed). Empty where the account has no
        audit log (403/404: remembered for the run) or the read fails."""
        if self._audit_logs is False or not ticket_ids:
            return {}
        wanted = set(ticket_ids)
        found: dict[int, _Purge] = {}
        params: dict[str, str | list[str]] = {
            "filter[source_type]": "ticket",
            "filter[action]": "destroy",
            "filter[created_at][]": [_iso(start), _iso(end)],
            "sort": "-created_at",
            "page[size]": "100",
        }
        try:
            for _page in range(self._audit_max_pages):
                response = self._http.request("GET", AUDIT_PATH, params=params, ok=(403, 404))
                if response.status_code in (403, 404):
                    self._audit_logs = False
                    log.info("zendesk.audit_logs.unavailable", status=response.status_code)
                    return {}
                self._audit_logs = True
                page = wire.check(
                    shapes.AuditLogsPage, decode_json(response, AUDIT_PATH), AUDIT_PATH
                )
                for entry in page.audit_logs:
                    purge = _purge_of(entry)
                    if purge is None or purge.ticket_id not in wanted:
                        continue
                    if purge.ticket_id in found or (strict and not purge.permanent):
                        continue
                    found[purge.ticket_id] = purge
                meta = page.meta
                if len(found) == len(wanted) or meta is None or not meta.has_more:
                    break
                if not meta.after_cursor:
                    break
                params = {**params, "page[after]": meta.after_cursor}
        except TransientError as exc:
            log.info("zendesk.audit_logs.stopped", reason=str(exc))
        return found

    def destroyed_by(self, transition: Transition, ticket_ids: Sequence[int]) -> dict[int, str]:
        """Soft deletes that would be permanent: Zendesk deletes an *archived* ticket for
        good (it never reaches `deleted_tickets`). The API shows no archive flag, so a
        ticket closed for `ARCHIVE_SUSPECT_AFTER` is taken as possibly archived, and so is a
        closed one that `show_many` leaves out but `GET tickets/{id}` shows. One
        `show_many` per 100 ids; per-id reads only for ids it leaves out."""
        if transition is not Transition.SOFT_DELETE:
            return {}
        wanted = list(dict.fromkeys(ticket_ids))
        rows = self._show_many(wanted)
        hidden = [i for i in wanted if i not in rows]
        for ticket_id in hidden:
            response = self._http.request("GET", f"api/v2/tickets/{ticket_id}", ok=(404,))
            if response.status_code == 404:
                continue  # soft-deleted or gone: a soft delete changes nothing
            body = decode_json(response, "api/v2/tickets/{id}")
            wire.check(shapes.ShowOneAnswer, body, "api/v2/tickets/{id}")
            if body["ticket"].get("status") == "closed":
                rows[ticket_id] = {**body["ticket"], "updated_at": None}
        suspect_before = self._clock() - ARCHIVE_SUSPECT_AFTER
        refused: dict[int, str] = {}
        for ticket_id, row in rows.items():
            if row.get("status") != "closed":
                continue
            updated = parse_time(row.get("updated_at"))
            if updated is None or updated <= suspect_before:
                since = f" since {updated:%Y-%m-%d}" if updated else ""
                refused[ticket_id] = (
                    f"zendesk ticket closed{since} may be archived, where a delete is "
                    "permanent: soft delete refused"
                )
        return refused

    def live(self, ticket_ids: Sequence[int]) -> set[int]:
        """Active ids, from `show_many` alone (soft-deleted and purged ids are left out)."""
        return set(self._live_views(list(dict.fromkeys(ticket_ids))))

    def _show_many(self, wanted: Sequence[int]) -> dict[int, Mapping[str, Any]]:
        """The tickets `show_many` shows among `wanted` (100 ids a call), by id."""
        rows: dict[int, Mapping[str, Any]] = {}
        for chunk in chunked(wanted, BATCH_LIMIT):
            response = self._http.request(
                "GET", "api/v2/tickets/show_many", params={"ids": _ids_param(chunk)}, ok=(404,)
            )
            # real variance: what show_many answers when no id is live is unconfirmed (the
            # fact sheet expects them left out); a 404 is read the same way: none live
            if response.status_code == 404:
                continue
            body = decode_json(response, "api/v2/tickets/show_many")
            wire.check(shapes.ShowManyAnswer, body, "api/v2/tickets/show_many")
            rows.update((row["id"], row) for row in body["tickets"] if row["id"] in chunk)
        return rows

    def _live_views(self, wanted: Sequence[int]) -> dict[int, TicketView]:
        views = (self._live_view(row) for row in self._show_many(wanted).values())
        return {view.ticket_id: view for view in views if view is not None}

    def lookup(self, ticket_ids: Sequence[int]) -> dict[int, TicketView]:
        """Authoritative states; ids that cannot be settled this time are left out."""
        wanted = list(dict.fromkeys(ticket_ids))
        if any(i <= 0 for i in wanted):
            raise ValueError("ticket ids must be positive")
        views = self._live_views(wanted)
        missing = {i for i in wanted if i not in views}
        if not missing:
            return views
        try:
            found = self._find_deleted(missing)
            complete = True
        except _ListingIncompleteError as exc:
            found, complete = exc.args[0], False
        for deleted in found.values():
            views[deleted.ticket_id] = self._deleted_view(deleted)
        if not complete:
            log.info("zendesk.lookup.incomplete", unresolved=len(missing - set(found)))
            return views
        for ticket_id in sorted(missing - set(found)):
            view = self._confirm_gone(ticket_id)
            if view is not None:
                views[ticket_id] = view
        return views

    def _live_view(self, row: Mapping[str, Any]) -> TicketView | None:
        ticket_id = _as_int(row.get("id"))
        if ticket_id is None or row.get("status") == "deleted":
            return None
        external_id = row.get("external_id")
        return TicketView(
            ticket_id=ticket_id,
            state=State.ACTIVE,
            vendor_time=parse_time(row.get("updated_at")),
            external_id=str(external_id) if external_id not in (None, "") else None,
        )

    def _confirm_gone(self, ticket_id: int) -> TicketView | None:
        """Purged only if the ticket itself also answers 404; None when that is unsure."""
        try:
            response = self._http.request("GET", f"api/v2/tickets/{ticket_id}", ok=(404,))
        except TransientError:
            return None
        if response.status_code == 404:
            return TicketView(ticket_id=ticket_id, state=State.PURGED)
        body = decode_json(response, "api/v2/tickets/{id}")
        wire.check(shapes.ShowOneAnswer, body, "api/v2/tickets/{id}")
        row = body["ticket"]
        # restored between the two reads: trust the newer answer
        return self._live_view(row) if isinstance(row, dict) else None

    def _deleted_pages(self) -> Iterator[Sequence[Mapping[str, Any]]]:
        """`deleted_tickets`, newest deletion first, 100 a page (cursor or offset answers)."""
        params: dict[str, str] = {
            "sort_by": "deleted_at",
            "sort_order": "desc",
            "page[size]": str(BATCH_LIMIT),
        }
        seen: set[str] = set()
        while True:
            if self._budget is not None:
                self._budget.take_call(DELETED_LIST_BUDGET)
            body = self._http.get_json("api/v2/deleted_tickets", params=params)
            wire.check(shapes.DeletedTicketsPage, body, "api/v2/deleted_tickets")
            items = list(body["deleted_tickets"])
            yield items
            meta = body.get("meta")
            if isinstance(meta, dict):
                after = meta.get("after_cursor")
                if not meta.get("has_more") or not after:
                    return
                link = f"cursor:{after}"
                params = {**params, "page[after]": str(after)}
            else:
                # real variance: whether cursor paging accepts `sort_by` here is unconfirmed;
                # an offset-paged answer (`next_page`) is followed instead
                next_page = body.get("next_page")
                if not next_page:
                    return
                link = f"page:{next_page}"
                params = dict(parse_qsl(urlsplit(str(next_page)).query))
            if link in seen:
                raise TransientError(
                    "api/v2/deleted_tickets: the next page repeats one already read; read stopped"
                )
            seen.add(link)

    def _find_deleted(
        self, wanted: set[int], *, not_before: datetime | None = None
    ) -> dict[int, _Deleted]:
        """Walk the listing until every wanted id is found, or past `not_before`.

        A walk begun less than `LISTING_REUSE` ago (with no write of ours since) is
        continued rather than begun again; what it cannot find (deleted since it began) is
        looked for in a fresh walk of only the newest pages, down to the first deletion
        the earlier walk had read (the listing is newest first: no clock is compared).
        Raises `_ListingIncompleteError(found_so_far)` if a walk had to stop early.
        """
        now = self._clock()
        earlier = self._listing
        if earlier is None or now - earlier.started_at > LISTING_REUSE:
            self._listing = _Listing(now, self._deleted_pages(), {})
            return self._walk(self._listing, wanted, not_before)
        found = self._walk(earlier, wanted, not_before)
        missing = wanted - set(found)
        if missing:
            self._listing = _Listing(now, self._deleted_pages(), {})
            found.update(self._walk(self._listing, missing, not_before, known=earlier.rows))
        return found

    def _walk(
        self,
        listing: _Listing,
        wanted: set[int],
        not_before: datetime | None,
        *,
        known: Mapping[int, _Deleted] | None = None,
    ) -> dict[int, _Deleted]:
        """`listing` read on until every wanted id is found, or past `not_before`, or (a
        fresh walk after an earlier one) at a deletion the earlier walk had read: every
        older one it read too."""
        found = {i: listing.rows[i] for i in wanted if i in listing.rows}
        met_known = False

        def done() -> bool:
            if len(found) == len(wanted) or met_known:
                return True
            oldest = listing.oldest
            return not_before is not None and oldest is not None and oldest < not_before

        while not listing.ended and not done():
            try:
                items = next(listing.pages)
            except StopIteration:
                listing.ended = True
                break
            except TransientError as exc:
                log.info("zendesk.deleted_tickets.stopped", reason=str(exc))
                self._listing = None
                raise _ListingIncompleteError(found) from None
            for row in items:
                ticket_id = _as_int(row.get("id"))
                deleted_at = parse_time(row.get("deleted_at"))
                if deleted_at is not None:
                    listing.oldest = deleted_at
                if ticket_id is None or ticket_id in listing.rows:
                    continue
                actor = row.get("actor")
                actor_id = _as_int(actor.get("id")) if isinstance(actor, dict) else None
                deleted = listing.rows[ticket_id] = _Deleted(ticket_id, deleted_at, actor_id)
                if ticket_id in wanted:
                    found[ticket_id] = deleted
                if known is not None and known.get(ticket_id) == deleted:
                    met_known = True
        return found

    # -- changes -------------------------------------------------------------------------
    @property
    def change_page_size(self) -> int:
        return self._export_per_page

    @property
    def changes_per_minute(self) -> float:
        """The export's pace (10 pages a minute, 30 with High Volume): what bounds a large
        migration, so `bridge migrate --dry-run` estimates with it."""
        return 60.0 / self._export_spacing

    def changes_ready_in(self) -> float:
        return max(0.0, self._export_ready_at - self._clock().timestamp())

    def turn_in(self) -> float:
        """A run's first calls: the export's first page and ordinary calls."""
        return 0.0 if self._budget is None else self._budget.turn_in((CALLS_BUDGET, EXPORT_BUDGET))

    def calls_per_minute(self) -> float:
        """The account's limit from the last answer's rate-limit headers; before any,
        Enterprise's documented 700 a minute."""
        info = self._http.last_rate_limit
        return float(info.limit) if info is not None and info.limit else DEFAULT_CALLS_PER_MINUTE

    def _note_export_budget(self) -> None:
        """When the export's own limit lets the next page through: its rate-limit header
        when the answer carries one, else the documented pace (10 a minute)."""
        now = self._clock().timestamp()
        info = self._http.last_rate_limit
        budget = endpoint_budget(info, "incremental-exports")
        if budget is not None and budget[1] is not None:
            _total, remaining, resets = budget
            self._export_ready_at = now if remaining else now + (resets or self._export_spacing)
        else:
            self._export_ready_at = now + self._export_spacing

    def changes(
        self, cursor: str | None, *, read_ahead: bool = False
    ) -> Generator[ChangePage, None, None]:
        """The incremental cursor export from `cursor`, one ChangePage per export page.

        From `cursor` None (the first read of an account) deletions are history: their
        actor is not looked up, because that could walk the whole deleted-ticket listing
        at 10 requests a minute; their time is the export's `generated_timestamp`.

        Every page waits its turn under the export's own limit (10 a minute): the adapter
        paces itself rather than spend retries on 429s. The cursor stored with a page is
        where that page began (its own `after_cursor` is believed once the next page shows
        it leads on; a read that stops repeats one page, harmlessly); the last page stores
        its `after_cursor`. A position inside the second that is still running is stored as
        that second's start time instead: a change later in that second, on a lower id,
        sorts before the cursor and would be missed. A cursor the export refuses (expired,
        unreadable) is replaced, once a read, by the start time of the last row read
        before it: that second is read again (rows read twice change nothing).

        With `read_ahead`, the next page is asked for (`HttpClient.read_ahead`) before a
        page is handed over, when the export's limit lets it go at once and no shared
        budget is counted: it is answered while the caller records this one.
        """
        position = _Position.parse(cursor, self._start_time)
        try:
            yield from self._export_pages(position, cursor is not None, read_ahead=read_ahead)
        finally:
            self._http.drop_ahead()  # a stream closed midway: its next page goes unread

    def _export_pages(
        self, position: _Position, resolve: bool, *, read_ahead: bool
    ) -> Iterator[ChangePage]:
        """The pages of `changes` from `position` (`resolve`: look deletions' actors up)."""
        seen_cursors: set[str] = set()
        fell_back = False
        while True:
            # past the first page, a shared account's turn is waited for: the page
            # handed over last stored where it began, so ending the read here would read
            # it again, and a run given one page a turn would never get on
            with self._turns(patient=bool(seen_cursors)):
                self._pace_export()
                try:
                    answer = self._http.request(
                        "GET", EXPORT_PATH, params=self._export_params(position)
                    )
                except VendorHTTPError as exc:
                    if position.cursor is None or fell_back or exc.status not in _REFUSED_CURSOR:
                        raise
                    fell_back = True
                    start = position.stamp if position.stamp is not None else self._start_time
                    log.warning(
                        "zendesk.export.cursor_refused", status=exc.status, start_time=start
                    )
                    position = _Position(None, start)
                    continue
                finally:
                    self._note_export_budget()
            rows, after, end = _export_page(answer)
            if not end and after in seen_cursors:
                raise TransientError(
                    f"{EXPORT_PATH}: after_cursor repeats without end_of_stream; read stopped"
                )
            seen_cursors.add(after or "")
            views = self._export_views(rows, resolve_actors=resolve)
            following = _Position(after, _last_stamp(rows, position.stamp)) if after else None
            if not end:
                assert following is not None  # a page that is not the last names the next
                page = ChangePage(views=views, cursor=self._storable(position), complete=False)
                if read_ahead and self._budget is None and self.changes_ready_in() < _NO_WAIT:
                    params = self._export_params(following)
                    self._http.read_ahead("GET", EXPORT_PATH, params=params)
                yield page
                position = following
                continue
            final = following or position
            yield ChangePage(views=views, cursor=self._storable(final), complete=True)
            return

    def makers(self, views: Sequence[TicketView]) -> list[TicketView]:
        """The export's pages come with their makers already (`changes`)."""
        return list(views)

    def _turns(self, *, patient: bool) -> AbstractContextManager[None]:
        """Where the calls in the block wait for a shared account's turn however far
        (`SharedBudget.waiting`), when `patient`."""
        if patient and self._budget is not None:
            return self._budget.waiting()
        return nullcontext()

    def _pace_export(self) -> None:
        """Wait until the export's own limit lets the next page through (the run's
        scheduler usually waited already: then this costs nothing)."""
        wait = self.changes_ready_in()
        if wait > _NO_WAIT:
            self._sleep(wait)
        if self._budget is not None:
            self._budget.take_call(EXPORT_BUDGET)

    def _storable(self, position: _Position) -> str:
        """The position as a stored cursor; inside the running second, its start time."""
        stamp = position.stamp
        running = stamp is not None and self._clock().timestamp() < stamp + 1
        if position.cursor is not None and running:
            return f"t:{stamp}"
        return position.stored()

    def _export_params(self, position: _Position) -> dict[str, str]:
        params = {"per_page": str(self._export_per_page)}
        if position.cursor is None:
            return {**params, "start_time": str(position.stamp or 0)}
        return {**params, "cursor": position.cursor}

    def _export_views(self, rows: Sequence[Row], *, resolve_actors: bool) -> list[TicketView]:
        latest: dict[int, Row] = {}
        for row in rows:
            ticket_id = _as_int(row.get("id"))
            if ticket_id is not None and ticket_id > 0:
                latest[ticket_id] = row  # the export is ordered: the last row is the newest
        states = {i: ticket_state(row) for i, row in latest.items()}
        # our own soft deletes coming back need no actor: walking the deleted-ticket
        # listing (10 requests a minute) for them would only confirm what we did
        with self._lock:
            own = self._own_deletes
        deleted_rows = {
            i: latest[i] for i, state in states.items() if state is _DELETED and i not in own
        }
        actors = self._deletion_details(deleted_rows) if deleted_rows and resolve_actors else {}
        with self._lock:
            own_purges = self._own_purges
        purged_rows = {
            i: latest[i] for i, state in states.items() if state is _PURGED and i not in own_purges
        }
        purges = self._purge_details(purged_rows) if purged_rows and resolve_actors else {}
        views: list[TicketView] = []
        # a page's rows share few times (a bulk change: one): each read once
        times: dict[str, datetime | None] = {}
        for ticket_id, row in latest.items():
            state = states[ticket_id]
            external_id = row.get("external_id")
            external = str(external_id) if external_id not in (None, "") else None
            if state is State.SOFT_DELETED:
                detail = actors.get(ticket_id)
                actor_id = detail.actor_id if detail else None
                views.append(
                    TicketView(
                        ticket_id=ticket_id,
                        state=state,
                        vendor_time=(detail.deleted_at if detail else None) or _generated_at(row),
                        actor_id=actor_id,
                        cause=self._cause(actor_id),
                        external_id=external,
                    )
                )
            elif state is State.PURGED:
                view = self._purged_view(
                    ticket_id,
                    purges.get(ticket_id),
                    _generated_at(row),
                    archived=_archived_purge(row),
                )
                views.append(replace(view, external_id=external))
            else:
                updated = row.get("updated_at")
                if isinstance(updated, str):
                    if updated not in times:
                        times[updated] = parse_time(updated)
                    vendor_time = times[updated]
                else:
                    vendor_time = parse_time(updated)
                views.append(
                    TicketView(
                        ticket_id=ticket_id,
                        state=state,
                        vendor_time=vendor_time,
                        external_id=external,
                    )
                )
        return views

    def _deletion_details(self, rows: Mapping[int, Row]) -> dict[int, _Deleted]:
        """Actor and time of the page's deletions: usually one `deleted_tickets` call.

        A soft-deleted ticket cannot change until restored or scrubbed, so its export
        `generated_timestamp` is its deletion time; the walk stops `deletion_slack`
        before the oldest of them. Missing details are not an error: the state is known.
        """
        stamps = [t for t in (_generated_at(row) for row in rows.values()) if t is not None]
        not_before = min(stamps) - self._deletion_slack if len(stamps) == len(rows) else None
        try:
            return self._find_deleted(set(rows), not_before=not_before)
        except _ListingIncompleteError as exc:
            found: dict[int, _Deleted] = exc.args[0]
            return found

    def _purge_details(self, rows: Mapping[int, Row]) -> dict[int, _Purge]:
        """The audit log's word on the page's permanent deletions (one query, spanning
        their export times with `deletion_slack` either side): actor and time."""
        stamps = [t for t in (_generated_at(row) for row in rows.values()) if t is not None]
        if not stamps:
            return {}
        start, end = min(stamps) - self._deletion_slack, max(stamps) + self._deletion_slack
        return self._purge_evidence(sorted(rows), start, end, strict=True)

    # -- writes --------------------------------------------------------------------------
    def submit(
        self,
        transition: Transition,
        ticket_ids: Sequence[int],
        *,
        restore_status: Mapping[int, int | None] | None = None,
    ) -> Submitted:
        """One bulk call. Zendesk restores `previous_state` itself: `restore_status` is unused."""
        del restore_status
        ids = tuple(dict.fromkeys(ticket_ids))
        if not ids:
            raise ValueError("submit needs at least one ticket id")
        if len(ids) > BATCH_LIMIT:
            raise ValueError(f"at most {BATCH_LIMIT} ids per call, got {len(ids)}")
        if any(i <= 0 for i in ids):
            raise ValueError("ticket ids must be positive")
        params = {"ids": _ids_param(ids)}
        self._listing = None  # our write changes the deleted list: the next lookup reads it anew
        if transition is Transition.RESTORE:
            self._http.request(
                "PUT", "api/v2/deleted_tickets/restore_many", params=params, headers=_JSON
            )
            log.info("zendesk.submit", transition=str(transition), count=len(ids))
            return Submitted(transition=transition, ticket_ids=ids)
        self._wait_for_slot()
        if transition is Transition.SOFT_DELETE:
            path, idempotent = "api/v2/tickets/destroy_many", True
        elif transition is Transition.PURGE:
            path, idempotent = "api/v2/deleted_tickets/destroy_many", False
        else:  # pragma: no cover - Transition has three members
            raise ValueError(f"unsupported transition {transition}")
        response = self._http.request(
            "DELETE", path, params=params, headers=_JSON, idempotent=idempotent
        )
        # a 2xx without a readable job: the request may have been acted on
        answer = wire.check(shapes.JobStatusAnswer, decode_json(response, path), path, write=True)
        job_id = answer.job_status.id
        if not job_id:
            raise OutcomeUnknownError(f"DELETE {path}: answer without a job id")
        if self._budget is not None:
            self._budget.hold_job(str(job_id))
        with self._lock:
            self._in_flight[str(job_id)] = self._clock()
            if transition is Transition.SOFT_DELETE:
                self._own_deletes.update(ids)
            else:
                self._own_purges.update(ids)
        log.info("zendesk.submit", transition=str(transition), count=len(ids), job=job_id)
        return Submitted(transition=transition, ticket_ids=ids, job_id=str(job_id))

    def _wait_for_slot(self) -> None:
        """Block (polling, with the injected sleep) until fewer than job_limit jobs run."""
        waited = 0.0
        limit = self.job_limit or JOB_LIMIT
        while True:
            running = self.in_flight
            if self._jobs_running(running) < limit:
                return
            self.poll(running)
            if self._jobs_running(self.in_flight) < limit:
                return
            if waited >= self._job_wait_budget:
                raise TransientError(
                    f"{len(running)} Zendesk jobs still running after {waited:.0f}s; "
                    f"job limit {limit}"
                )
            self._sleep(self._job_poll_interval)
            waited += self._job_poll_interval

    def _jobs_running(self, own: Sequence[str]) -> int:
        """This account's jobs that may still run: ours, or every pair's that shares it."""
        return len(own) if self._budget is None else self._budget.jobs_running()

    def poll(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        """`job_statuses/show_many`, ≤100 ids a call. A fresh job id briefly unknown to
        Zendesk is asked for again (5 tries, 0.5 s apart, as node-zendesk does)."""
        wanted = list(dict.fromkeys(str(j) for j in job_ids))
        states: dict[str, JobState] = {}
        for chunk in chunked(wanted, BATCH_LIMIT):
            found = self._show_jobs(chunk)
            missing = [j for j in chunk if j not in found]
            attempt = 1
            while missing and attempt < self._fresh_job_attempts and self._any_fresh(missing):
                self._sleep(self._fresh_job_interval)
                attempt += 1
                found.update(self._show_jobs(missing))
                missing = [j for j in missing if j not in found]
            states.update(found)
            for job_id in missing:
                status = JobStatus.QUEUED if self._any_fresh([job_id]) else JobStatus.UNKNOWN
                states[job_id] = JobState(job_id, status, message="job status not found")
        ended = [job_id for job_id, state in states.items() if state.status.terminal]
        with self._lock:
            for job_id in ended:
                self._in_flight.pop(job_id, None)
        if self._budget is not None:
            self._budget.release_jobs(ended)
        return states

    def _any_fresh(self, job_ids: Sequence[str]) -> bool:
        now = self._clock()
        with self._lock:
            return any(
                now - self._in_flight[j] < self._fresh_job_window
                for j in job_ids
                if j in self._in_flight
            )

    def _show_jobs(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        path = "api/v2/job_statuses/show_many"
        response = self._http.request("GET", path, params={"ids": ",".join(job_ids)}, ok=(404,))
        if response.status_code == 404:
            return {}
        body = decode_json(response, path)
        wire.check(shapes.JobStatusesAnswer, body, path)
        states: dict[str, JobState] = {}
        for job in body["job_statuses"]:
            if isinstance(job, dict) and job.get("id") is not None:
                state = job_state(job)
                states[state.job_id] = state
        return {j: s for j, s in states.items() if j in job_ids}

    # -- check ---------------------------------------------------------------------------
    def check(self) -> list[CheckResult]:
        """Reachable, authenticated, allowed to list deleted tickets and read the export."""
        reachable = self._probe()
        results = [reachable]
        if not reachable.ok:
            return results
        authenticated = self._check_call("authenticated", "api/v2/users/me", {})
        listing = self._check_call("deleted_tickets", "api/v2/deleted_tickets", {"page[size]": "1"})
        results.extend([authenticated, listing])
        if not authenticated.ok:
            return results
        start = int(self._clock().timestamp()) - 120
        results.append(
            self._check_call(
                "incremental_export",
                "api/v2/incremental/tickets/cursor",
                {"start_time": str(start), "per_page": "1"},
            )
        )
        return results

    def _probe(self) -> CheckResult:
        """One unauthenticated request, not retried: classifies DNS, TLS and connection
        failures, which HttpClient's retry messages reduce to an exception name."""
        name = "zendesk.reachable"
        url = self._http.url("api/v2/users/me")
        host = urlsplit(url).netloc
        try:
            self._http.session.get(url, timeout=(10.0, 30.0), allow_redirects=False)
        except requests.exceptions.SSLError:
            return CheckResult(name, False, f"TLS handshake with {host} failed (certificate?)")
        except requests.exceptions.ConnectTimeout:
            return CheckResult(name, False, f"connecting to {host} timed out")
        except requests.exceptions.ConnectionError as exc:
            if _is_dns_failure(exc):
                return CheckResult(name, False, f"DNS: cannot resolve {urlsplit(url).hostname}")
            return CheckResult(name, False, f"cannot connect to {host} (refused or reset)")
        except requests.exceptions.RequestException as exc:
            return CheckResult(name, False, f"request to {host} failed: {type(exc).__name__}")
        return CheckResult(name, True, f"{host} answers")

    def _check_call(self, what: str, path: str, params: Mapping[str, str]) -> CheckResult:
        name = f"zendesk.{what}"
        try:
            response = self._http.request("GET", path, params=params, ok=(401, 403, 404))
        except TransientError as exc:
            return CheckResult(name, False, f"{path}: {exc}")
        except VendorHTTPError as exc:
            return CheckResult(name, False, f"{path}: unexpected {exc.status}")
        status = response.status_code
        if status == 401:
            return CheckResult(name, False, "401: credentials rejected (email/API token or OAuth)")
        if status == 403:
            return CheckResult(name, False, f"403: the API user may not read {path}")
        if status == 404:
            return CheckResult(name, False, f"404: {path} not found (wrong base URL?)")
        if path.endswith("users/me"):
            user = decode_json(response, path).get("user") or {}
            if user.get("id") is None:
                return CheckResult(name, False, "answered as an anonymous user: not authenticated")
            role = user.get("role") or "unknown role"
            return CheckResult(name, True, f"authenticated as user {user['id']} ({role})")
        return CheckResult(name, True, f"{path} readable")


def job_state(job: Mapping[str, Any]) -> JobState:
    """One `job_status` object as a JobState; failed ids from results items with
    `success: false`. A purge's `{"success": false}` object names no ids."""
    job_id = str(job.get("id"))
    status = map_job_status(job.get("status"))
    failed: dict[int, str] = {}
    results = job.get("results")
    if isinstance(results, list):
        for item in results:
            if isinstance(item, dict) and item.get("success") is False:
                ticket_id = _as_int(item.get("id"))
                if ticket_id is not None:
                    reason = item.get("error") or item.get("details") or "failed"
                    failed[ticket_id] = str(reason)[:200]
    message = job.get("message")
    if isinstance(results, dict) and results.get("success") is False:
        message = f"{message or ''} (not every ticket was deleted)".strip()
    return JobState(
        job_id=job_id,
        status=status,
        message=str(message)[:500] if message is not None else None,
        failed_ids=failed,
    )


def _export_page(answer: requests.Response) -> tuple[list[Row], str | None, bool]:
    """(rows, after_cursor, end_of_stream) of one export page, or a failed read naming the
    field: a page misread as empty would move the cursor past tickets never seen."""
    page = wire.decode(shapes.EXPORT_PAGE, answer, EXPORT_PATH)
    rows: list[Row] = list(page.tickets)
    return rows, page.after_cursor, page.end_of_stream or not page.after_cursor


#: a wait shorter than this is none (as the run's scheduler counts it)
_NO_WAIT = 0.001
#: what the export answers a cursor it will not read (expired or unreadable; assumed: the
#: status is not documented, a 400 InvalidValue is what an unreadable one gets in the sandbox)
_REFUSED_CURSOR = frozenset({400, 404, 410, 422})


@dataclass(frozen=True, slots=True)
class _Position:
    """Where an export read is: after `cursor` (exclusive), or from the start time `stamp`
    (inclusive) when there is no cursor. With a cursor, `stamp` is the export time of the
    last row before it: the start time to fall back on should the cursor be refused."""

    cursor: str | None
    stamp: int | None

    @classmethod
    def parse(cls, stored: str | None, start_time: int) -> _Position:
        """A stored cursor: `t:<start time>`, `c:<cursor>@<stamp>` or (older ledgers)
        `c:<cursor>`, whose stamp is read from Zendesk's cursor where it can be."""
        if stored is None:
            return cls(None, start_time)
        if stored.startswith("t:"):
            return cls(None, int(stored[2:]))
        value = stored[2:] if stored.startswith("c:") else stored
        cursor, _, stamp = value.partition("@")
        return cls(cursor, int(stamp) if stamp.isdigit() else _cursor_stamp(cursor))

    def stored(self) -> str:
        if self.cursor is None:
            return f"t:{self.stamp or 0}"
        return f"c:{self.cursor}" if self.stamp is None else f"c:{self.cursor}@{self.stamp}"


def _cursor_stamp(cursor: str) -> int | None:
    """The export time inside a Zendesk export cursor (recorded: base64 of
    `"1576613539.0||467|"`), or None: the format is not documented."""
    try:
        raw = base64.b64decode(cursor.encode(), validate=True).decode()
        return int(float(raw.partition("||")[0]))
    except (ValueError, UnicodeDecodeError):
        return None


def _last_stamp(rows: Sequence[Row], default: int | None) -> int | None:
    """The export time of a page's last row (the export is ordered by it)."""
    for row in reversed(rows):
        moment = _generated_at(row)
        if moment is not None:
            return int(moment.timestamp())
    return default


def _purge_of(entry: shapes.AuditLogEntry) -> _Purge | None:
    """A ticket `destroy` entry as a deletion; None for anything else. Which words tell a
    permanent deletion or a deletion schedule is assumed (the API documents the actions
    only): "permanent" and "schedule" in `change_description`."""
    if entry.action != "destroy" or entry.source_type != "ticket" or not entry.source_id:
        return None
    text = (entry.change_description or "").lower()
    actor = entry.actor_id
    return _Purge(
        ticket_id=entry.source_id,
        deleted_at=parse_time(entry.created_at),
        actor_id=actor,
        schedule="schedule" in text,
        system=actor is None or actor < 0,
        permanent="permanent" in text,
    )


def _archived_purge(row: Row) -> bool:
    """A SCRUBBED export row not updated for longer than the scrub period before it: it
    was not deleted through the deleted list (a soft delete updates the ticket, and is
    scrubbed at the latest that period later), so it was an archived ticket's deletion."""
    purged_at, updated = _generated_at(row), parse_time(row.get("updated_at"))
    return purged_at is not None and updated is not None and purged_at - updated > ARCHIVE_GAP


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _generated_at(row: Row) -> datetime | None:
    return parse_time(row.get("generated_timestamp")) or parse_time(row.get("updated_at"))


def _is_dns_failure(exc: BaseException) -> bool:
    seen: set[int] = set()
    stack: list[object] = [exc]
    while stack:
        item = stack.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, urllib3.exceptions.NameResolutionError):
            return True
        text = str(item)
        if "Name or service not known" in text or "getaddrinfo failed" in text:
            return True
        if "Temporary failure in name resolution" in text or "nodename nor servname" in text:
            return True
        if isinstance(item, BaseException):
            stack.extend(item.args)
            stack.extend([item.__cause__, item.__context__])
        reason = getattr(item, "reason", None)
        if reason is not None:
            stack.append(reason)
    return False


def _authorization(email: str | None, token: str | None, oauth_token: str | None) -> str:
    if oauth_token:
        register_secret_value(oauth_token)
        return f"Bearer {oauth_token}"
    if email and token:
        basic = base64.b64encode(f"{email}/token:{token}".encode()).decode("ascii")
        register_secret_value(token)
        register_secret_value(basic)
        return f"Basic {basic}"
    raise ValueError("Zendesk needs an OAuth token, or an e-mail address and an API token")
