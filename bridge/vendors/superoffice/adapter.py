"""The SuperOffice Service adapter: the `Adapter` contract over the SuperOffice WebAPI.

SuperOffice answers writes synchronously (no jobs), lists changes through archive
providers (`Ticket` for live requests, `RecycleTicket` for soft-deleted ones) that page
with `$top`/`$skip`, and offers no on-demand hard delete: its retention job removes
soft-deleted requests after "Retain deleted data" (14 days by default). A purge copied
here is therefore a promise with a date, verified later by `lookup` (404 by id).

Who deleted or restored a ticket is in no ticket field: it is read from the ticket log
(`ticket_log_action` through the `dynamic` archive provider) the first time the change is
seen, because a purge takes the log with it (`docs/design.md`, "Who deleted it").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import IntEnum
from typing import Any, Protocol
from urllib.parse import urlsplit

import msgspec
import requests
import structlog

from bridge.core.batches import chunked
from bridge.core.contract import (
    AdapterError,
    ChangePage,
    CheckResult,
    JobState,
    PermanentError,
    Submitted,
    TicketView,
    TransientError,
    UnreadableAnswerError,
)
from bridge.core.model import Cause, State, Transition
from bridge.vendors import wire
from bridge.vendors.http import HttpClient, VendorHTTPError, decode_json
from bridge.vendors.superoffice import MAX_TICKET_ID, SIDE
from bridge.vendors.superoffice import wire as shapes
from bridge.vendors.superoffice.auth import SuperOfficeAuth
from bridge.vendors.superoffice.cursor import (
    ChangeCursor,
    Key,
    Position,
    ReadBounds,
    Span,
    filter_time,
    next_position,
    page_query,
    row_key,
    row_second,
)
from bridge.vendors.superoffice.errors import error_code

__all__ = [
    "DeleteEndpointPurge",
    "LogAction",
    "LogEntry",
    "PurgeStrategy",
    "RestoreStatusError",
    "RetentionPurge",
    "SuperOfficeAdapter",
    "format_filter_time",
    "parse_so_datetime",
    "pick_actor",
]

log = structlog.get_logger(__name__)

TICKET_PROVIDER = "Ticket"
RECYCLE_PROVIDER = "RecycleTicket"
#: the archive columns the adapter reads, all documented columns of both providers
#: (reference §3.3); nothing else (no titles: bridge stores no content)
ARCHIVE_COLUMNS = "ticketId,lastChanged,status,ticketStatusName,connectId"
#: list columns as their logical value (the list item id), not as display text in the API
#: user's culture: `status` gives the base status id, `ticketStatusName` the status id
ARCHIVE_OUTPUT = "Logical"
ORDER_BY = "lastChanged,ticketId"
#: full archive pages in a row that bring nothing new before a read is stopped as endless
STALE_PAGES = 3

#: the ticket log is read through the `dynamic` provider (raw table columns, dot syntax)
LOG_PROVIDER = "dynamic"
LOG_COLUMNS = ",".join(
    (shapes.LOG_ID, shapes.LOG_TICKET, shapes.LOG_WHEN, shapes.LOG_ACTION, shapes.LOG_ACTOR)
)
#: how long before a change its log entry is looked for (the entry is at the change's own
#: `lastChanged`, unless the ticket was edited again before bridge read it)
ACTOR_LOOKBACK = timedelta(days=1)


class LogAction(IntEnum):
    """The `TicketLogAction` values (docs: database enum `ticketlogaction.md`) that can
    delete or restore a ticket. Which one SuperOffice writes for each call is not
    documented: see `_ACTOR_TIERS`."""

    CHANGE_STATUS = 21
    EDIT_TICKET = 33
    DELETE_TICKET = 34


#: per state a change reached, the log actions that can have made it, the likeliest first:
#: a deletion is `Ticket_DeleteTicket` or a status change (to Deleted); a restore is a status
#: change (an undelete goes to the default open status); an edit of the entity only when
#: there is neither (assumed: which action each call logs is unconfirmed)
_ACTOR_TIERS: dict[State, tuple[frozenset[int], ...]] = {
    State.SOFT_DELETED: (
        frozenset({LogAction.DELETE_TICKET, LogAction.CHANGE_STATUS}),
        frozenset({LogAction.EDIT_TICKET}),
    ),
    State.ACTIVE: (frozenset({LogAction.CHANGE_STATUS}), frozenset({LogAction.EDIT_TICKET})),
}

# BaseStatus: serialized as a name in entities, as an int in raw columns and webhooks.
_BASE_STATUS_BY_INT = {0: "Unknown", 1: "Active", 2: "Closed", 3: "Postponed", 4: "Deleted"}
_BASE_STATUS_BY_INT[5] = "Merged"


class RestoreStatusError(TransientError):
    """Tickets were undeleted but their pre-delete status could not all be put back.

    Retrying the restore is safe: undeleting an active ticket changes nothing we rely on,
    and the status patch is state-setting.
    """

    def __init__(self, failed: Mapping[int, str]) -> None:
        self.failed = dict(failed)
        ids = ", ".join(str(i) for i in sorted(self.failed)[:10])
        super().__init__(f"restored, but the previous status was not put back on {ids}")


def parse_so_datetime(value: Any) -> datetime | None:
    """An aware UTC datetime from a SuperOffice date; year 1 ("empty") and junk give None.

    Dates without an offset are read as UTC: every request asks for UTC (`SO-TimeZone`).
    """
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())  # "Z" is read as UTC (Python 3.11)
    except ValueError:
        return None
    if parsed.year <= 1:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed if parsed.tzinfo is UTC else parsed.astimezone(UTC)


def format_filter_time(when: datetime) -> str:
    """The literal for `afterTime`: UTC, second resolution."""
    return filter_time(when)


def _http_date(value: str | None) -> datetime | None:
    """An HTTP `Date` header as aware UTC; None when absent or unreadable."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _as_int(value: Any) -> int | None:
    """Ints as archives serialize them: 42, "42", "[I:42]", or an object with an id."""
    if type(value) is int:  # the usual answer, first
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[I:") and text.endswith("]"):
            text = text[3:-1]
        try:
            return int(text)
        except ValueError:
            return None
    return None


def _logical_id(value: Any) -> int | None:
    """A positive id as `$output=Logical` writes one: a JSON int, or `[I:42]`.

    Nothing else is an id: user columns in display output hold an associate's initials or
    name (`ownedBy` is "AB" or "Ann Berg"), and even a display value made of digits is
    text, not the id of whoever it names."""
    if isinstance(value, bool):
        return None
    number: int | None = None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.startswith("[I:") and value.endswith("]"):
        digits = value[3:-1]
        number = int(digits) if digits.isdigit() else None
    return number if number is not None and 0 < number <= 2**31 - 1 else None


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One `ticket_log_action` row, as far as bridge reads it (no description, no details)."""

    entry_id: int
    ticket_id: int
    at: datetime
    action: int
    #: the associate behind the entry's Service user; None when the log names none
    associate_id: int | None


def _log_entry(row: shapes.SuperOfficeLogRow) -> LogEntry | None:
    """A log row, or None when its time or action cannot be read (the actor is then
    unknown; the ticket's state does not depend on it)."""
    at = parse_so_datetime(row.log_when)
    action = _logical_id(row.log_action) if isinstance(row.log_action, str) else row.log_action
    if at is None or action is None:
        return None
    return LogEntry(row.entry_id, row.ticket_id, at, action, _logical_id(row.actor))


def pick_actor(view: TicketView, entries: Iterable[LogEntry]) -> LogEntry | None:
    """The log entry that made `view`'s change: of the actions that can reach its state
    (`_ACTOR_TIERS`, likeliest first), the latest at or before its `lastChanged`.

    `lastChanged` is whole seconds in archive rows, so an entry in the same second counts.
    None when no entry fits: a guess would name the wrong person."""
    tiers = _ACTOR_TIERS.get(view.state)
    if tiers is None:
        return None
    limit = view.vendor_time + timedelta(seconds=1) if view.vendor_time else None
    fitting = [
        e for e in entries if e.ticket_id == view.ticket_id and (limit is None or e.at < limit)
    ]
    for actions in tiers:
        tier = [e for e in fitting if e.action in actions]
        if tier:
            return max(tier, key=lambda e: (e.at, e.entry_id))
    return None


def _base_status(value: Any) -> str | None:
    """BaseStatus name from a name, an int, or a status object (`{"Status": "Active"}`)."""
    if isinstance(value, dict):
        return _base_status(value.get("Status"))
    number = _as_int(value)
    if number is not None:
        return _BASE_STATUS_BY_INT.get(number)
    if isinstance(value, str) and value.strip():
        return value.strip().capitalize()
    return None


def _status_id(value: Any) -> int | None:
    if isinstance(value, dict):
        return _as_int(value.get("TicketStatusId"))
    return _as_int(value)


def _view(
    ticket_id: int,
    base_status: str | None,
    *,
    last_changed: datetime | None,
    status_id: int | None,
    connect_id: int | None,
    recycled: bool = False,
) -> TicketView | None:
    """Normalise one row; None when the status is not one we can map (never guess)."""
    if recycled or base_status == "Deleted":
        return TicketView(ticket_id, State.SOFT_DELETED, vendor_time=last_changed)
    if base_status in ("Active", "Closed", "Postponed", "Merged"):
        merged = base_status == "Merged"
        return TicketView(
            ticket_id,
            State.ACTIVE,
            vendor_time=last_changed,
            # a merged ticket's status (Merged) is no status to put back after a restore
            status_id=None if merged else status_id,
            merged_into=connect_id if merged and connect_id and connect_id > 0 else None,
        )
    return None


def _entity_view(entity: Mapping[str, Any]) -> TicketView | None:
    ticket_id = _as_int(entity.get("TicketId"))
    if ticket_id is None or ticket_id <= 0:
        return None
    return _view(
        ticket_id,
        _base_status(entity.get("BaseStatus") or entity.get("Status")),
        last_changed=parse_so_datetime(entity.get("LastChanged")),
        status_id=_status_id(entity.get("Status")),
        connect_id=_as_int(entity.get("ConnectId")),
    )


def _misfit(path: str, column: str, value: Any, expected: str) -> UnreadableAnswerError:
    """A failed read naming the archive column whose value does not fit."""
    return UnreadableAnswerError(
        f"{path}: answer does not fit: 'value[].{column}' is {str(value)[:40]!r}, not "
        f"{expected}; read stopped"
    )


def _archive_time(changed: Any, path: str) -> datetime | None:
    """A row's `lastChanged`: None when empty (null, "" or year 1), a failed read naming
    the column when it is there but no date."""
    last_changed = parse_so_datetime(changed)
    if last_changed is None:
        empty = changed in (None, "") or (isinstance(changed, str) and changed.startswith("0001-"))
        if not empty:
            raise _misfit(path, "lastChanged", changed, "a date")
    return last_changed


def _row_view(
    row: Mapping[str, Any], *, recycled: bool, path: str
) -> tuple[Key, TicketView | None]:
    """One archive row in any form (the lenient reader: see `_logical_rows` for the usual
    one): its place in `lastChanged,ticketId` order, and the row normalised (None: a
    status with no deletion meaning, such as Unknown). A row the adapter cannot read in
    full is a failed read naming the column: a row skipped would be a change never seen,
    with the cursor moved past it."""
    raw_id = row.get("ticketId", row.get("PrimaryKey"))
    ticket_id = _as_int(raw_id)
    if ticket_id is None or not 0 < ticket_id <= MAX_TICKET_ID:
        raise _misfit(path, "ticketId", raw_id, "a ticket id")
    # ids only: display text is in the user's culture, so no text is ever matched
    base_id = _as_int(row.get("status"))
    base_status = _BASE_STATUS_BY_INT.get(base_id) if base_id is not None else None
    if "status" in row and base_status is None:
        raise _misfit(path, "status", row["status"], "a base status id")
    status_id = _as_int(row.get("ticketStatusName"))
    if row.get("ticketStatusName") is not None and status_id is None:
        raise _misfit(path, "ticketStatusName", row["ticketStatusName"], "a status id")
    last_changed = _archive_time(row.get("lastChanged"), path)
    return row_key(ticket_id, last_changed), _view(
        ticket_id,
        base_status,
        last_changed=last_changed,
        status_id=status_id,
        connect_id=_as_int(row.get("connectId")),
        recycled=recycled,
    )


def _archive_query(
    provider: str, *, filter_: str | None, order_by: str, top: int, skip: int
) -> tuple[str, dict[str, Any]]:
    """The path and query of one archive page, with the columns the adapter reads."""
    params: dict[str, Any] = {
        "$select": ARCHIVE_COLUMNS,
        "$output": ARCHIVE_OUTPUT,
        "$orderBy": order_by,
        "$top": top,
        "$skip": skip,
    }
    if filter_:
        params["$filter"] = filter_
    return f"Archive/{provider}", params


def _logical_rows(
    rows: Sequence[shapes.LogicalArchiveRow], *, recycled: bool, path: str
) -> list[tuple[Key, TicketView | None]]:
    """A page whose rows fit `LogicalArchiveRow` (the parser checked each value's type
    and range), as `_row_view` reads them: each distinct `lastChanged` parsed once (a bulk
    change gives a page one date)."""
    times: dict[str | None, tuple[datetime | None, datetime]] = {}
    out: list[tuple[Key, TicketView | None]] = []
    append = out.append
    for row in rows:
        changed = row.last_changed
        known = times.get(changed)
        if known is None:
            last_changed = _archive_time(changed, path)
            known = times[changed] = (last_changed, row_second(last_changed))
        status = row.status
        base_status = None if status is msgspec.UNSET else _BASE_STATUS_BY_INT[status]
        append(
            (
                (known[1], row.ticket_id),
                _view(
                    row.ticket_id,
                    base_status,
                    last_changed=known[0],
                    status_id=row.ticket_status_name,
                    connect_id=row.connect_id,
                    recycled=recycled,
                ),
            )
        )
    return out


def _later(a: datetime | None, b: datetime | None) -> bool:
    """Whether `a` is strictly later than `b` (unknown times never win)."""
    return a is not None and (b is None or a > b)


class PurgeStrategy(Protocol):
    """How a purge is carried out on this tenant (SuperOffice Online has no hard delete)."""

    #: whether sending the purge again for a ticket already purged changes nothing
    resend_harmless: bool

    def purge(self, adapter: SuperOfficeAdapter, ticket_ids: Sequence[int]) -> Submitted: ...


class RetentionPurge:
    """Make sure each ticket is soft-deleted; the tenant's retention job does the rest.

    `pending_until` is the deletion's `LastChanged` plus the retention period: the
    reconciler records the purge as pending and confirms it by `lookup` after that date.
    Ids already purged get no date (a lookup confirms them at once). Only state-setting
    calls: resending it is harmless.
    """

    resend_harmless = True

    def purge(self, adapter: SuperOfficeAdapter, ticket_ids: Sequence[int]) -> Submitted:
        views = adapter.lookup(ticket_ids)
        unknown = [i for i in ticket_ids if i not in views]
        if unknown:
            raise TransientError(f"purge: state of {len(unknown)} ticket(s) unknown; not sent")
        active = [i for i in ticket_ids if views[i].state is State.ACTIVE]
        if active:
            adapter.set_deleted(active)
            views.update(adapter.lookup(active))
        pending: dict[int, datetime] = {}
        for ticket_id in ticket_ids:
            view = views.get(ticket_id)
            if view is None or view.state is State.ACTIVE:
                raise TransientError(f"purge: ticket {ticket_id} is not soft-deleted after delete")
            if view.state is State.SOFT_DELETED:
                deleted_at = view.vendor_time or adapter.now()
                pending[ticket_id] = deleted_at + adapter.retention_period
        return Submitted(Transition.PURGE, tuple(ticket_ids), pending_until=pending)


class DeleteEndpointPurge:
    """For tenants where `DELETE Ticket/{id}` really removes the row (e.g. on-site setups).

    Irreversible, so never resent blindly (`idempotent=False`); 404 counts as done. No
    `pending_until`: the reconciler confirms each id by `lookup` straight away.
    """

    resend_harmless = False

    def purge(self, adapter: SuperOfficeAdapter, ticket_ids: Sequence[int]) -> Submitted:
        for ticket_id in ticket_ids:
            adapter.http.request("DELETE", f"Ticket/{ticket_id}", idempotent=False, ok=(404,))
        return Submitted(Transition.PURGE, tuple(ticket_ids))


class SuperOfficeAdapter:
    """SuperOffice Service behind the reconciler's contract (see the module docstring).

    `base_url` is the tenant URL (`https://sod.superoffice.com/Cust12345`); the API is
    `{base_url}/api/v1/`. `clock` returns aware UTC now (simulated in tests).
    """

    side = SIDE
    retention_is_silent = True
    job_limit: int | None = None
    #: writes are answered synchronously: a re-read this long after a lost answer shows
    #: whether the call was acted on (the server may still have been working on it)
    outcome_wait = timedelta(minutes=2)

    def __init__(
        self,
        base_url: str,
        *,
        tenant: str,
        auth: SuperOfficeAuth,
        retention_days: int = 14,
        requests_per_second: float | None = 10,
        timeout: float = 30,
        batch_limit: int = 100,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] | None = None,
        bridge_associate_id: int | None = None,
        purge_strategy: PurgeStrategy | None = None,
        http: HttpClient | None = None,
        page_size: int = 500,
        lookup_chunk: int = 100,
        change_overlap: timedelta = timedelta(minutes=1),
        state_url: str | None = None,
        check_tenant_state: bool = True,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.tenant = tenant
        self.auth = auth
        self.batch_limit = batch_limit
        self.retention_period = timedelta(days=retention_days)
        self.bridge_associate_id = bridge_associate_id
        self.purge_strategy: PurgeStrategy = purge_strategy or RetentionPurge()
        self.page_size = page_size
        self.lookup_chunk = lookup_chunk
        self.change_overlap = change_overlap
        self.check_tenant_state = check_tenant_state
        self._clock = clock or (lambda: datetime.now(UTC))
        self._sleep = sleep
        self._monotonic = monotonic
        self._per_second = requests_per_second
        self.http = http or HttpClient(
            f"{self.base_url}/api/v1/",
            auth=auth,
            timeout=timeout,
            per_second=requests_per_second,
            on_unauthorized=auth.refresh if auth.refreshable else None,
            error_code=error_code,
            sleep=sleep,
            monotonic=monotonic,
        )
        # Ask for UTC with offsets (SuperOffice's own samples); parsing assumes UTC anyway.
        self.http.session.headers.setdefault("SO-TimeZone", "UTC, includeTZOffset")
        parts = urlsplit(self.base_url)
        self.state_url = state_url or f"{parts.scheme}://{parts.netloc}/api/state/{tenant}"
        #: tickets this adapter deleted or restored, and the state it left them in: their
        #: change coming back needs no log read (it was bridge's)
        self._own: dict[int, State] = {}
        #: False once the tenant refused the ticket log: no more tries while this runs
        self._log_readable = True
        #: the tenant's clock, from the `Date` of the first archive answer of a change read
        self._tenant_time: datetime | None = None
        self._state_http = HttpClient(
            self.state_url,
            auth=lambda _request: None,
            timeout=timeout,
            error_code=error_code,
            sleep=sleep,
        )

    # ------------------------------------------------------------------ helpers

    def now(self) -> datetime:
        return self._clock()

    def purge_cause(self, deleted_at: datetime | None, seen_at: datetime) -> Cause | None:
        """Who purged a ticket found gone: the retention job once its period has run out.

        SuperOffice's API cannot hard-delete, so a ticket vanishing earlier was emptied
        from the recycle bin by someone (`user`); None when the deletion time is unknown.
        """
        if deleted_at is None:
            return None
        return Cause.RETENTION if deleted_at + self.retention_period <= seen_at else Cause.USER

    def _archive(
        self, provider: str, *, filter_: str | None, top: int, skip: int
    ) -> list[TicketView | None]:
        """One page of an archive provider, each row normalised (`_row_view`)."""
        rows = self._archive_rows(provider, filter_=filter_, order_by=ORDER_BY, top=top, skip=skip)
        return [view for _key, view in rows]

    def _archive_rows(
        self, provider: str, *, filter_: str | None, order_by: str, top: int, skip: int
    ) -> list[tuple[Key, TicketView | None]]:
        """One page of an archive provider, with the columns the adapter reads: each row's
        place in `lastChanged,ticketId` order and the row normalised."""
        path, params = _archive_query(
            provider, filter_=filter_, order_by=order_by, top=top, skip=skip
        )
        response = self.http.request("GET", path, params=params)
        if self._tenant_time is None:
            self._tenant_time = _http_date(response.headers.get("Date"))
        recycled = provider == RECYCLE_PROVIDER
        logical = wire.fits(shapes.ARCHIVE_PAGE, response.content)
        if logical is not None:
            return _logical_rows(logical.value, recycled=recycled, path=path)
        page = wire.check(shapes.SuperOfficeArchivePage, decode_json(response, path), path)
        return [_row_view(row, recycled=recycled, path=path) for row in page.value]

    def set_deleted(self, ticket_ids: Sequence[int]) -> None:
        """`SetDeletedStatusByIds`: state-setting, so a blind retry is harmless."""
        self.http.request(
            "POST",
            "Agents/Ticket/SetDeletedStatusByIds",
            json={"TicketIds": list(ticket_ids)},
            idempotent=True,
        )
        self._own.update(dict.fromkeys(ticket_ids, State.SOFT_DELETED))

    # ------------------------------------------------------------------ who did it

    def _cause(self, actor_id: int) -> Cause:
        if self.bridge_associate_id is not None and actor_id == self.bridge_associate_id:
            return Cause.BRIDGE
        return Cause.USER

    def _bridges_own(self, view: TicketView) -> bool:
        """Whether `view` is this adapter's own delete or restore coming back (then
        forgotten: a later change of the ticket is someone else's again)."""
        if self._own.get(view.ticket_id) is view.state:
            del self._own[view.ticket_id]
            return True
        return False

    def _with_actors(
        self, views: list[TicketView], wanted: Sequence[TicketView]
    ) -> list[TicketView]:
        """`views`, those in `wanted` with the associate who made their change (and the
        cause that follows from it) where the ticket log names one."""
        if not wanted:
            return views
        log_entries = self._read_log(wanted)
        actors: dict[tuple[int, State, datetime | None], int] = {}
        for view in wanted:
            entry = pick_actor(view, log_entries.get(view.ticket_id, ()))
            if entry is not None and entry.associate_id is not None:
                actors[(view.ticket_id, view.state, view.vendor_time)] = entry.associate_id
        out: list[TicketView] = []
        for view in views:
            actor = actors.get((view.ticket_id, view.state, view.vendor_time))
            if actor is not None and view.actor_id is None:
                view = replace(view, actor_id=actor, cause=self._cause(actor))
            out.append(view)
        return out

    def _read_log(self, views: Sequence[TicketView]) -> dict[int, list[LogEntry]]:
        """The log entries that can delete or restore these tickets, one query per chunk
        of ids (paged). A tenant that refuses the log (4xx) is not asked again while this
        adapter runs; a query that fails otherwise costs that chunk's actors only."""
        found: dict[int, list[LogEntry]] = {}
        actions = ",".join(str(int(a)) for a in LogAction)
        for chunk in chunked(views, self.lookup_chunk):
            if not self._log_readable:
                break
            ids = ",".join(str(v.ticket_id) for v in chunk)
            filter_ = f"{shapes.LOG_TICKET} oneOf ({ids}) and {shapes.LOG_ACTION} oneOf ({actions})"
            times = [v.vendor_time for v in chunk if v.vendor_time is not None]
            if len(times) == len(chunk):
                floor = format_filter_time(min(times) - ACTOR_LOOKBACK)
                filter_ += f" and {shapes.LOG_WHEN} afterTime '{floor}'"
            try:
                for entry in self._log_pages(filter_):
                    found.setdefault(entry.ticket_id, []).append(entry)
            except PermanentError as exc:
                self._log_readable = False
                log.warning(
                    "superoffice.ticket_log_unreadable",
                    error=_describe(exc),
                    effect="who deletes or restores tickets is not recorded until restarted",
                )
            except TransientError as exc:
                log.warning(
                    "superoffice.ticket_log_failed", error=_describe(exc), tickets=len(chunk)
                )
        return found

    def _log_pages(self, filter_: str) -> Iterator[LogEntry]:
        """Every log entry the filter matches, page by page in entry order."""
        path = f"Archive/{LOG_PROVIDER}"
        seen: set[int] = set()
        skip = 0
        while True:
            params: dict[str, Any] = {
                "$select": LOG_COLUMNS,
                "$filter": filter_,
                "$output": ARCHIVE_OUTPUT,
                "$orderBy": shapes.LOG_ID,
                "$top": self.page_size,
                "$skip": skip,
            }
            response = self.http.request("GET", path, params=params)
            page = wire.check(shapes.SuperOfficeLogPage, decode_json(response, path), path)
            fresh = [row for row in page.value if row.entry_id not in seen]
            seen.update(row.entry_id for row in fresh)
            unread = 0
            for row in fresh:
                entry = _log_entry(row)
                # a value where an id belongs (display text, say) is no actor: said once a
                # page, since the tenant then answers in a form bridge does not read
                if entry is None or (row.actor is not None and entry.associate_id is None):
                    unread += 1
                if entry is not None:
                    yield entry
            if unread:
                log.warning("superoffice.ticket_log_rows_unread", path=path, rows=unread)
            if len(page.value) < self.page_size:
                return
            if not fresh:
                raise TransientError(f"{path}: a full page repeats entries already read")
            skip += self.page_size

    def resend_harmless(self, transition: Transition) -> bool:
        """Soft delete and restore set a state; a purge depends on the tenant's strategy."""
        if transition is Transition.PURGE:
            return self.purge_strategy.resend_harmless
        return True

    # ------------------------------------------------------------------ contract: reads

    def destroyed_by(self, transition: Transition, ticket_ids: Sequence[int]) -> dict[int, str]:
        """None: SuperOffice's API deletes are soft deletes, whatever the ticket."""
        del transition, ticket_ids
        return {}

    def live(self, ticket_ids: Sequence[int]) -> set[int]:
        """Active ids, from the `Ticket` provider alone (it leaves soft-deleted rows out)."""
        wanted = list(dict.fromkeys(int(i) for i in ticket_ids))
        active: set[int] = set()
        for chunk in chunked(wanted, self.lookup_chunk):
            ids = ",".join(str(i) for i in chunk)
            for view in self._archive(
                TICKET_PROVIDER, filter_=f"ticketId in ({ids})", top=len(chunk), skip=0
            ):
                if view is not None and view.ticket_id in chunk and view.state is State.ACTIVE:
                    active.add(view.ticket_id)
        return active

    def lookup(self, ticket_ids: Sequence[int]) -> dict[int, TicketView]:
        """Both archive providers by id (in chunks), then `GET Ticket/{id}` for the rest.

        404 by id is the only way a ticket is declared purged. A failed per-id read leaves
        the id out (unknown); a failed archive query raises.
        """
        wanted = list(dict.fromkeys(int(i) for i in ticket_ids))
        found = self._archive_states(wanted)
        for ticket_id in wanted:
            if ticket_id in found:
                continue
            view = self._get_one(ticket_id)
            if view is not None:
                found[ticket_id] = view
        return found

    def sweep(
        self, known: Mapping[int, State], *, expected_gone: Collection[int] = ()
    ) -> dict[int, TicketView]:
        """Both archive providers by id, 100 ids a call each. A ticket in neither is
        confirmed purged by `GET Ticket/{id}` (404), the evidence a purge copied to the
        other side rests on, except the ids in `expected_gone`: purges bridge copied here
        and waits for, where absence from both listings is all there is to verify."""
        wanted = [i for i in dict.fromkeys(known) if known[i] is not State.PURGED]
        found = self._archive_states(wanted)
        expected = set(expected_gone)
        for ticket_id in wanted:
            if ticket_id in found:
                continue
            if ticket_id in expected:
                found[ticket_id] = TicketView(ticket_id, State.PURGED)
                continue
            view = self._get_one(ticket_id)
            if view is not None:
                found[ticket_id] = view
        # a delete or restore found here is first seen here: whoever made it is read now
        moved = [
            v
            for i, v in found.items()
            if known.get(i) in _ACTOR_TIERS
            and v.state in _ACTOR_TIERS
            and v.state is not known[i]
            and not self._bridges_own(v)
        ]
        for view in self._with_actors(moved, moved):
            found[view.ticket_id] = view
        return found

    def _archive_states(self, wanted: Sequence[int]) -> dict[int, TicketView]:
        """The state of every id either archive provider lists (a failed query raises)."""
        found: dict[int, TicketView] = {}
        for chunk in chunked(wanted, self.lookup_chunk):
            ids = ",".join(str(i) for i in chunk)
            for provider in (TICKET_PROVIDER, RECYCLE_PROVIDER):
                rows = self._archive(
                    provider, filter_=f"ticketId in ({ids})", top=len(chunk), skip=0
                )
                for view in rows:
                    if view is None or view.ticket_id not in chunk:
                        continue
                    current = found.get(view.ticket_id)
                    if current is None or _later(view.vendor_time, current.vendor_time):
                        found[view.ticket_id] = view
        return found

    def _get_one(self, ticket_id: int) -> TicketView | None:
        path = f"Ticket/{ticket_id}"
        try:
            response = self.http.request("GET", path, ok=(404,))
            if response.status_code == 404:
                return TicketView(ticket_id, State.PURGED)
            body = decode_json(response, path)
        except TransientError as exc:
            log.warning("superoffice.lookup_unknown", ticket_id=ticket_id, error=str(exc))
            return None
        return _entity_view(body) if isinstance(body, dict) else None

    @property
    def change_page_size(self) -> int:
        return self.page_size

    def changes_ready_in(self) -> float:
        """Always now: the client's own pacing (10 calls a second) is the only limit."""
        return 0.0

    def turn_in(self) -> float:
        return 0.0  # a tenant's calls are paced by its own client, not shared (factory.py)

    @property
    def changes_per_minute(self) -> float | None:
        return None  # its change reads are ordinary calls, paced with the rest

    def calls_per_minute(self) -> float:
        """The client's own pacing (`requests_per_second`); unpaced, the rate an
        Online tenant is documented to allow is not known here: 700, as for Zendesk."""
        return self._per_second * 60 if self._per_second else 700.0

    def changes(
        self, cursor: str | None, *, read_ahead: bool = False
    ) -> Generator[ChangePage, None, None]:
        """Rows changed after the cursor, `Ticket` then `RecycleTicket`, each paged from a
        (lastChanged second, ticketId) position (`cursor.py`).

        A read starts from the cursor's `read` position, or from `settled` to read the
        rows a late commit could still have joined once more (`ChangeCursor.settles`: with
        every run while they are few, once when a bulk change made them many). What the
        read may claim is bounded by when it began, by the earlier of bridge's clock and
        the tenant's (`_bounds`): seconds not yet over are read again next run, seconds
        not yet `change_overlap` old stay unsettled. Only the last page moves the cursor:
        a read that fails or is killed midway replays. Every row read after a cursor is
        new to bridge or read again: the pages say `makers_unread`, and the makers of those
        that changed state are read from the log (`makers`); a tenant's first read is
        history and looks nothing up.

        With `read_ahead`, a provider's next page is asked for (`HttpClient.read_ahead`)
        before a page is handed over, when the client's pacing lets it go at once: it is
        answered while the caller records this one.
        """
        try:
            yield from self._changes(cursor, read_ahead=read_ahead)
        finally:
            self.http.drop_ahead()  # a stream closed midway: its next page goes unread

    def _changes(self, cursor: str | None, *, read_ahead: bool) -> Iterator[ChangePage]:
        """The pages of `changes`."""
        start = ChangeCursor.parse(cursor, old_overlap=self.change_overlap)
        kept = cursor or ""
        began = self.now()
        self._tenant_time = None
        # which start is decided by bridge's clock (settling early only reads more); what
        # the read claims, by the earlier of both clocks once the tenant's is known
        settles = start.settles(ReadBounds.at(began, self.change_overlap), each_run=self.page_size)
        lookup = not start.first  # a tenant's first read is history: no maker is looked up
        bounds: ReadBounds | None = None
        unsettled: Span | None = None
        counted = 0
        for provider in (TICKET_PROVIDER, RECYCLE_PROVIDER):
            pages = self._pass(provider, start.start(settles), read_ahead=read_ahead)
            for views, keys, done in pages:
                if bounds is None:  # after the first answer: the tenant's clock is known
                    bounds = self._bounds(began)
                    unsettled = start.counts(bounds, settles=settles)
                counted += unsettled.count(keys) if unsettled else 0
                if done and provider == RECYCLE_PROVIDER:
                    end = start.after(
                        bounds, settles=settles, counted=counted, each_run=self.page_size
                    )
                    yield ChangePage(views, end.encode(), complete=True, makers_unread=lookup)
                else:
                    yield ChangePage(views, kept, complete=False, makers_unread=lookup)

    def _bounds(self, began: datetime) -> ReadBounds:
        """What a read that began at `began` may claim, by the earlier of bridge's clock
        and the tenant's (the first answer's `Date`, whole seconds): a tenant clock behind
        bridge's never closes a second early."""
        now = min(began, self._tenant_time) if self._tenant_time else began
        return ReadBounds.at(now, self.change_overlap)

    def _pass(
        self, provider: str, at: Position | None, *, read_ahead: bool
    ) -> Iterator[tuple[list[TicketView], list[Key], bool]]:
        """One provider from `at`, a page at a time: (views new to this pass, the keys of
        the rows new to it, whether the provider is read to its end). Rows a page reads again
        (the second a full page cut off) are dropped; full pages in a row that bring
        nothing new stop the read, as the tenant then ignores the position. With
        `read_ahead`, the next page is sent for before a page is handed over."""
        previous: set[Key] = set()
        stale = 0  # full pages in a row that brought nothing new
        while True:
            query = page_query(at)
            rows = self._archive_rows(
                provider, filter_=query.filter, order_by=query.order_by, top=self.page_size, skip=0
            )
            keys = [key for key, _view in rows]
            full = len(rows) >= self.page_size
            new = [(key, view) for key, view in rows if key not in previous]
            fresh = [view for _key, view in new if view is not None]
            moved, done = next_position(at, keys, full=full)
            repeated = all(key in previous for key in keys)
            stuck = moved is not None and at is not None and moved.key <= at.key
            stale = stale + 1 if full and (repeated or stuck) else 0
            if stale >= STALE_PAGES:
                raise TransientError(
                    f"Archive/{provider}: {stale} full pages in a row repeat rows already "
                    "read; read stopped"
                )
            previous = set(keys)
            at = moved
            if read_ahead and not done:
                ahead = page_query(at)
                path, params = _archive_query(
                    provider,
                    filter_=ahead.filter,
                    order_by=ahead.order_by,
                    top=self.page_size,
                    skip=0,
                )
                self.http.read_ahead("GET", path, params=params)
            yield fresh, [key for key, _view in new], done
            if done:
                return

    def makers(self, views: Sequence[TicketView]) -> list[TicketView]:
        """The makers of these changes from the ticket log (`ticket_log_action`), one
        query per hundred tickets: bridge's own writes coming back are not looked up."""
        return self._with_actors(list(views), self._new_changes(views))

    def _new_changes(self, views: Sequence[TicketView]) -> list[TicketView]:
        """The views whose maker is read from the log: changes to a state a delete or
        restore reaches, not bridge's own write coming back."""
        if not self._log_readable:
            return []
        return [v for v in views if v.state in _ACTOR_TIERS and not self._bridges_own(v)]

    # ------------------------------------------------------------------ contract: writes

    def submit(
        self,
        transition: Transition,
        ticket_ids: Sequence[int],
        *,
        restore_status: Mapping[int, int | None] | None = None,
    ) -> Submitted:
        ids = tuple(dict.fromkeys(int(i) for i in ticket_ids))
        if len(ids) > self.batch_limit:
            raise ValueError(f"at most {self.batch_limit} ids per call, got {len(ids)}")
        if not ids:
            return Submitted(transition, ())
        if transition is Transition.SOFT_DELETE:
            self.set_deleted(ids)
            return Submitted(transition, ids)
        if transition is Transition.RESTORE:
            self._restore(ids, restore_status or {})
            return Submitted(transition, ids)
        if transition is Transition.PURGE:
            return self.purge_strategy.purge(self, ids)
        raise ValueError(f"unknown transition {transition!r}")  # pragma: no cover

    def _restore(self, ids: Sequence[int], restore_status: Mapping[int, int | None]) -> None:
        """`UndeleteByIds` resets the status to the default open one: put the old one back."""
        self.http.request(
            "POST", "Agents/Ticket/UndeleteByIds", json={"TicketIds": list(ids)}, idempotent=True
        )
        self._own.update(dict.fromkeys(ids, State.ACTIVE))
        failed: dict[int, str] = {}
        for ticket_id in ids:
            status_id = restore_status.get(ticket_id)
            if status_id is None:
                continue
            try:
                self.http.request(
                    "PATCH",
                    f"Ticket/{ticket_id}",
                    json={"Status": {"TicketStatusId": status_id}},
                    headers={"Content-Type": "application/merge-patch+json"},
                    idempotent=True,
                )
            except AdapterError as exc:
                failed[ticket_id] = str(exc)
        if failed:
            raise RestoreStatusError(failed)

    def poll(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        """SuperOffice has no jobs: every write is answered synchronously."""
        return {}

    # ------------------------------------------------------------------ check

    def check(self) -> list[CheckResult]:
        results: list[CheckResult] = []
        with self.http.probing(), self._state_http.probing():
            if self.check_tenant_state:
                results.append(self._check_state())
            reach, auth = self._check_api()
            results += [reach, auth]
            if auth.ok:
                results.append(self._check_delete_right())
        return results

    def _check_state(self) -> CheckResult:
        name = "superoffice tenant state"
        try:
            body = decode_json(self._state_http.request("GET", self.state_url), "api/state")
        except requests.RequestException as exc:  # pragma: no cover - HttpClient wraps these
            return CheckResult(name, False, f"cannot reach {self.state_url}: {type(exc).__name__}")
        except AdapterError as exc:
            return CheckResult(name, False, f"{self.state_url}: {_describe(exc)}")
        state = body.get("State") if isinstance(body, dict) else None
        endpoint = body.get("Endpoint") if isinstance(body, dict) else None
        if state != "Running":
            return CheckResult(name, False, f"tenant {self.tenant} is {state or 'unknown'}")
        if isinstance(endpoint, str) and endpoint.rstrip("/").lower() != self.base_url.lower():
            return CheckResult(
                name, False, f"tenant {self.tenant} now lives at {endpoint}; update base_url"
            )
        return CheckResult(name, True, f"tenant {self.tenant} is Running")

    def _check_api(self) -> tuple[CheckResult, CheckResult]:
        reach, auth = "superoffice reachable", "superoffice authenticated"
        try:
            self._archive(TICKET_PROVIDER, filter_=None, top=1, skip=0)
        except VendorHTTPError as exc:
            ok = CheckResult(reach, True, f"{self.base_url} answers")
            if exc.status == 401:
                return ok, CheckResult(auth, False, f"credentials refused ({self.auth.mode})")
            if exc.status == 421:
                return ok, CheckResult(auth, False, "421 Misdirected: the tenant moved host")
            return ok, CheckResult(auth, False, _describe(exc))
        except PermanentError as exc:  # e.g. a system-user exchange refused
            return CheckResult(reach, True, "login service answers"), CheckResult(
                auth, False, _describe(exc)
            )
        except UnreadableAnswerError as exc:
            # it answered, and only an authenticated user gets archive rows
            return CheckResult(reach, True, f"{self.base_url} answers"), CheckResult(
                auth,
                False,
                f"authenticated, but the archive answer is unreadable: {_describe(exc)}",
            )
        except AdapterError as exc:
            message = f"cannot reach {self.base_url}: {_describe(exc)}"
            return CheckResult(reach, False, message), CheckResult(
                auth, False, "not tried: API unreachable"
            )
        return (
            CheckResult(reach, True, f"{self.base_url} answers"),
            CheckResult(auth, True, f"authenticated ({self.auth.mode})"),
        )

    def _check_delete_right(self) -> CheckResult:
        """An empty `SetDeletedStatusByIds` changes nothing but is refused without the right."""
        name = "superoffice right to delete requests"
        try:
            self.set_deleted([])
        except VendorHTTPError as exc:
            if exc.status == 403:
                return CheckResult(name, False, "the API user may not delete requests (403)")
            return CheckResult(name, False, _describe(exc))
        except AdapterError as exc:
            return CheckResult(name, False, _describe(exc))
        return CheckResult(name, True, "the API user may delete requests")


def _describe(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
