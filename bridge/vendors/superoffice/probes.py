"""Read-only probes of what the SuperOffice adapter assumes (`bridge check --deep`).

The ids match `docs/vendor-fidelity.md`. Every probe sends GETs only (`ReadOnlyHttp`).
"""

from __future__ import annotations

from typing import Any, Final

from bridge.vendors.http import VendorHTTPError
from bridge.vendors.probe import (
    Probe,
    ProbeFailedError,
    ReadOnlyHttp,
    deep_check_for,
    not_exercised,
)
from bridge.vendors.superoffice import MAX_TICKET_ID
from bridge.vendors.superoffice import wire as shapes
from bridge.vendors.superoffice.adapter import (
    ARCHIVE_COLUMNS,
    ARCHIVE_OUTPUT,
    LOG_COLUMNS,
    LOG_PROVIDER,
    RECYCLE_PROVIDER,
    TICKET_PROVIDER,
    LogAction,
    SuperOfficeAdapter,
    parse_so_datetime,
)
from bridge.vendors.superoffice.adapter import _as_int as as_int
from bridge.vendors.superoffice.cursor import BY_ID, Position, page_query, whole_second

__all__ = ["PROBES", "deep_check"]

_DELETED = 4


def _rows(http: ReadOnlyHttp, provider: str, **extra: Any) -> list[dict[str, Any]]:
    params = {
        "$select": ARCHIVE_COLUMNS,
        "$output": ARCHIVE_OUTPUT,
        "$orderBy": "lastChanged desc",
        "$top": 5,
        **extra,
    }
    try:
        body = http.get_json(f"Archive/{provider}", params)
    except VendorHTTPError as exc:
        if exc.status == 400:
            raise ProbeFailedError(f"Archive/{provider} refused the query (400)") from None
        raise
    rows = body.get("value") if isinstance(body, dict) else None
    if not isinstance(rows, list):
        raise ProbeFailedError(f"Archive/{provider} answered without a 'value' list")
    return [row for row in rows if isinstance(row, dict)]


def _columns(http: ReadOnlyHttp) -> str:
    """The archive columns the adapter selects exist on both providers."""
    _rows(http, TICKET_PROVIDER)
    _rows(http, RECYCLE_PROVIDER)
    return f"both providers accept $select={ARCHIVE_COLUMNS}"


def _logical_ids(http: ReadOnlyHttp) -> str:
    """With $output=Logical, list columns hold ids, not display text in a culture."""
    rows = _rows(http, TICKET_PROVIDER) + _rows(http, RECYCLE_PROVIDER)
    if not rows:
        raise not_exercised("no tickets in either provider")
    for row in rows:
        for column in ("status", "ticketStatusName"):
            value = row.get(column)
            if value is not None and as_int(value) is None:
                raise ProbeFailedError(
                    f"'{column}' is {str(value)[:30]!r}, not an id: the adapter cannot map it"
                )
    return f"status and ticketStatusName are ids in {len(rows)} row(s)"


def _dates(http: ReadOnlyHttp) -> str:
    """lastChanged is a date the adapter reads (whole seconds, `Z` or no offset)."""
    rows = _rows(http, TICKET_PROVIDER)
    if not rows:
        raise not_exercised("no live tickets")
    for row in rows:
        value = row.get("lastChanged")
        if parse_so_datetime(value) is None:
            raise ProbeFailedError(f"lastChanged {str(value)[:40]!r} is not a date")
    return f"e.g. {rows[0].get('lastChanged')!r}"


def _recycle_status(http: ReadOnlyHttp) -> str:
    """RecycleTicket lists soft-deleted requests only, with base status Deleted (4)."""
    rows = _rows(http, RECYCLE_PROVIDER)
    if not rows:
        raise not_exercised("the recycle bin is empty")
    for row in rows:
        status = row.get("status")
        if as_int(status) != _DELETED:
            raise ProbeFailedError(f"a recycled row has base status {status!r}, not 4")
    return f"{len(rows)} recycled row(s), all Deleted"


def _filters(http: ReadOnlyHttp) -> str:
    """The change filters (`lastChanged afterTime`; inside one second, `afterTime` and
    `beforeTime` around it with `ticketId gt`, the cursor's position) and the id filter
    (`ticketId in`)."""
    rows = _rows(http, TICKET_PROVIDER)
    _rows(http, TICKET_PROVIDER, **{"$filter": "lastChanged afterTime '2000-01-01T00:00:00'"})
    if not rows:
        raise not_exercised("no live tickets to filter by id")
    ticket_id = rows[0].get("ticketId")
    found = _rows(http, TICKET_PROVIDER, **{"$filter": f"ticketId in ({ticket_id})"})
    if [str(r.get("ticketId")) for r in found] != [str(ticket_id)]:
        raise ProbeFailedError(f"'ticketId in ({ticket_id})' did not return exactly it")
    changed, number = parse_so_datetime(rows[0].get("lastChanged")), as_int(ticket_id)
    if changed is not None and number is not None:
        query = page_query(Position(whole_second(changed), number - 1))
        inside = _rows(http, TICKET_PROVIDER, **{"$filter": query.filter, "$orderBy": BY_ID})
        if str(ticket_id) not in {str(r.get("ticketId")) for r in inside}:
            raise ProbeFailedError(f"the position filter {query.filter!r} left {ticket_id} out")
    return "'lastChanged afterTime', the in-second position filter and 'ticketId in' answer"


def _deleted_readable(http: ReadOnlyHttp) -> str:
    """A soft-deleted request is still readable by id, with BaseStatus Deleted."""
    rows = _rows(http, RECYCLE_PROVIDER)
    if not rows:
        raise not_exercised("the recycle bin is empty")
    ticket_id = rows[0].get("ticketId")
    response = http.get(f"Ticket/{ticket_id}", ok=(404,))
    if response.status_code == 404:
        raise ProbeFailedError(f"Ticket/{ticket_id} (in the recycle bin) answered 404")
    entity = response.json()
    base = entity.get("BaseStatus") if isinstance(entity, dict) else None
    if base not in ("Deleted", _DELETED):
        raise ProbeFailedError(f"Ticket/{ticket_id} has BaseStatus {base!r}, not Deleted")
    return f"Ticket/{ticket_id} reads with BaseStatus Deleted"


def _gone_is_404(http: ReadOnlyHttp) -> str:
    """A ticket that does not exist answers 404: the only evidence of a purge."""
    response = http.get(f"Ticket/{MAX_TICKET_ID}", ok=(404,))
    if response.status_code != 404:
        raise ProbeFailedError(f"Ticket/{MAX_TICKET_ID} answered {response.status_code}")
    return "404 for a ticket that does not exist"


def _ticket_log(http: ReadOnlyHttp) -> str:
    """The ticket log reads through `Archive/dynamic`, the actor as an associate id: where
    bridge learns who deleted or restored a request."""
    params = {
        "$select": LOG_COLUMNS,
        "$filter": f"{shapes.LOG_ACTION} oneOf ({','.join(str(int(a)) for a in LogAction)})",
        "$output": ARCHIVE_OUTPUT,
        "$orderBy": f"{shapes.LOG_ID} desc",
        "$top": 5,
    }
    try:
        body = http.get_json(f"Archive/{LOG_PROVIDER}", params)
    except VendorHTTPError as exc:
        raise ProbeFailedError(
            f"the ticket log is not readable ({exc.status}): bridge will record no "
            "SuperOffice actors"
        ) from None
    rows = body.get("value") if isinstance(body, dict) else None
    if not isinstance(rows, list):
        raise ProbeFailedError("Archive/dynamic answered without a 'value' list")
    if not rows:
        raise not_exercised("no delete, restore or status change in the ticket log")
    actors = [row.get(shapes.LOG_ACTOR) for row in rows if isinstance(row, dict)]
    if not any(as_int(a) is not None for a in actors):
        raise ProbeFailedError(f"no entry names an associate id (e.g. {actors[0]!r})")
    return f"{len(rows)} entr(ies), actors as associate ids"


PROBES: Final[tuple[Probe, ...]] = (
    Probe("so.archive.columns", "archive columns exist", _columns),
    Probe("so.archive.logical-ids", "list columns as ids ($output=Logical)", _logical_ids),
    Probe("so.archive.dates", "archive dates readable", _dates),
    Probe("so.archive.filters", "change and id filters", _filters),
    Probe("so.recycle.deleted-only", "RecycleTicket holds Deleted rows", _recycle_status),
    Probe("so.ticket.deleted-readable", "soft-deleted ticket readable by id", _deleted_readable),
    Probe("so.ticket.gone-404", "missing ticket answers 404", _gone_is_404),
    Probe("so.log.actor", "who deleted or restored, from the ticket log", _ticket_log),
)


#: `bridge check --deep` for this vendor
deep_check: Final = deep_check_for(SuperOfficeAdapter, PROBES)
