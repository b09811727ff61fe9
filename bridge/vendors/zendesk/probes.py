"""Read-only probes of what the Zendesk adapter assumes (`bridge check --deep`).

The ids match `docs/vendor-fidelity.md`. Every probe sends GETs only (`ReadOnlyHttp`).
"""

from __future__ import annotations

import time
from typing import Any, Final

from bridge.vendors.http import VendorHTTPError
from bridge.vendors.probe import (
    Probe,
    ProbeFailedError,
    ReadOnlyHttp,
    deep_check_for,
    not_exercised,
)
from bridge.vendors.zendesk.adapter import ZendeskAdapter
from bridge.vendors.zendesk.ratelimit import parse_rate_limit

__all__ = ["PROBES", "deep_check"]

#: fields of a `deleted_tickets` item the adapter reads
_DELETED_FIELDS = ("id", "actor", "deleted_at", "previous_state")


def _first_deleted(http: ReadOnlyHttp) -> dict[str, Any]:
    body = http.get_json("api/v2/deleted_tickets", {"page[size]": 1})
    items = body.get("deleted_tickets") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise ProbeFailedError("deleted_tickets answered without a 'deleted_tickets' list")
    if not items:
        raise not_exercised("no soft-deleted tickets on the account")
    first = items[0]
    if not isinstance(first, dict):
        raise ProbeFailedError("a deleted_tickets item is not an object")
    return first


def _deleted_fields(http: ReadOnlyHttp) -> str:
    """`deleted_tickets` items carry the id, actor, deletion time and previous status."""
    item = _first_deleted(http)
    missing = [name for name in _DELETED_FIELDS if name not in item]
    if missing:
        raise ProbeFailedError(f"items lack {', '.join(missing)}")
    actor = item.get("actor")
    if not isinstance(actor, dict) or not isinstance(actor.get("id"), int):
        raise ProbeFailedError("'actor' is not an object with an integer id")
    return f"items carry {', '.join(_DELETED_FIELDS)}"


def _deleted_hidden(http: ReadOnlyHttp) -> str:
    """A soft-deleted ticket is 404 by id and left out of `show_many`."""
    ticket_id = _first_deleted(http)["id"]
    one = http.get(f"api/v2/tickets/{ticket_id}", ok=(404,))
    if one.status_code != 404:
        raise ProbeFailedError(f"tickets/{ticket_id} (soft-deleted) answered {one.status_code}")
    many = http.get_json("api/v2/tickets/show_many", {"ids": str(ticket_id)})
    shown = [t.get("id") for t in many.get("tickets", []) if isinstance(t, dict)]
    if ticket_id in shown:
        raise ProbeFailedError(f"show_many returned soft-deleted ticket {ticket_id}")
    return f"tickets/{ticket_id} is 404 and show_many leaves it out"


def _export_shape(http: ReadOnlyHttp) -> str:
    """The cursor export answers with tickets, `after_cursor` and `end_of_stream`."""
    start = int(time.time()) - 3600
    body = http.get_json("api/v2/incremental/tickets/cursor", {"start_time": start, "per_page": 1})
    missing = [k for k in ("tickets", "after_cursor", "end_of_stream") if k not in body]
    if missing:
        raise ProbeFailedError(f"the export page lacks {', '.join(missing)}")
    return "tickets, after_cursor and end_of_stream present"


def _rate_limit_headers(http: ReadOnlyHttp) -> str:
    """Answers carry the documented rate-limit headers the client paces itself by."""
    response = http.get("api/v2/deleted_tickets", {"page[size]": 1})
    info = parse_rate_limit(response.headers)
    if info.limit is None and info.remaining is None and not info.endpoints:
        raise ProbeFailedError("no documented rate-limit header in the answer")
    endpoints = f", endpoint limits: {', '.join(sorted(info.endpoints))}" if info.endpoints else ""
    return f"account limit {info.limit}, remaining {info.remaining}{endpoints}"


def _audit_logs(http: ReadOnlyHttp) -> str:
    """Audit logs (Enterprise) answer; else the actor of a permanent deletion is the one
    `deleted_tickets` showed."""
    try:
        http.get_json(
            "api/v2/audit_logs",
            {"filter[source_type]": "ticket", "filter[action]": "destroy", "page[size]": 1},
        )
    except VendorHTTPError as exc:
        if exc.status in (403, 404):
            raise not_exercised(
                f"no audit logs on this account ({exc.status}); actors of permanent "
                "deletions come from deleted_tickets"
            ) from None
        raise
    return "readable: permanent deletions get their actor and time from the audit log"


def _audit_entries(http: ReadOnlyHttp) -> str:
    """A ticket `destroy` entry carries the actor id, time and ticket id bridge reads, and
    a description that tells a permanent deletion (and a schedule's) from a soft one."""
    try:
        body = http.get_json(
            "api/v2/audit_logs",
            {"filter[source_type]": "ticket", "filter[action]": "destroy", "page[size]": 5},
        )
    except VendorHTTPError as exc:
        if exc.status in (403, 404):
            raise not_exercised(f"no audit logs on this account ({exc.status})") from None
        raise
    entries = [e for e in body.get("audit_logs", []) if isinstance(e, dict)]
    if not entries:
        raise not_exercised("no ticket deletion in the audit log yet")
    for entry in entries:
        for name, kind in (("actor_id", int), ("source_id", int), ("created_at", str)):
            if not isinstance(entry.get(name), kind):
                raise ProbeFailedError(f"an entry's {name} is {entry.get(name)!r}")
    described = [str(e.get("change_description") or "")[:60] for e in entries]
    return f"{len(entries)} entr(ies), e.g. {described[0]!r}"


PROBES: Final[tuple[Probe, ...]] = (
    Probe("zd.deleted.fields", "deleted_tickets item fields", _deleted_fields),
    Probe("zd.deleted.hidden", "soft-deleted tickets hidden from reads", _deleted_hidden),
    Probe("zd.export.shape", "cursor export page shape", _export_shape),
    Probe("zd.ratelimit.headers", "documented rate-limit headers", _rate_limit_headers),
    Probe("zd.audit.available", "audit logs for permanent deletions", _audit_logs),
    Probe("zd.audit.entries", "audit log ticket deletion entries", _audit_entries),
)


#: `bridge check --deep` for this vendor
deep_check: Final = deep_check_for(ZendeskAdapter, PROBES)
