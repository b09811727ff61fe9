"""The shapes of the Zendesk answers the adapter reads (see `bridge.vendors.wire`)."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from pydantic import StrictBool, StrictInt, StrictStr

from bridge.vendors.wire import FastTicketId, Shape, TicketId

__all__ = [
    "AuditLogsPage",
    "DeletedTicketsPage",
    "ExportPage",
    "JobStatusAnswer",
    "JobStatusesAnswer",
    "ShowManyAnswer",
    "ShowOneAnswer",
]

#: Zendesk's ticket statuses (`deleted` only in the export and for deleted tickets)
ZendeskStatus = Literal["new", "open", "pending", "hold", "solved", "closed", "deleted"]
#: Zendesk's job statuses (`killed`: node-zendesk and the apps docs; not in the OpenAPI)
ZendeskJobStatus = Literal["queued", "working", "completed", "failed", "killed"]


class ZendeskTicket(Shape):
    id: TicketId
    status: ZendeskStatus
    updated_at: StrictStr | None = None
    subject: StrictStr | None = None
    external_id: StrictStr | StrictInt | None = None
    generated_timestamp: StrictInt | float | None = None


class ShowManyAnswer(Shape):
    tickets: list[ZendeskTicket]


class ShowOneAnswer(Shape):
    ticket: ZendeskTicket


class ExportTicket(msgspec.Struct, frozen=True):
    """One ticket of an export page: the fields the adapter reads, nothing else kept.
    `get` reads it as the adapter reads a `show_many` row (a dict)."""

    id: FastTicketId
    status: ZendeskStatus
    updated_at: str | None = None
    subject: str | None = None
    external_id: str | int | None = None
    generated_timestamp: int | float | None = None

    def get(self, name: str, default: Any = None) -> Any:
        return getattr(self, name, default)


class ExportPage(msgspec.Struct, frozen=True):
    """An incremental export page, read by `bridge.vendors.wire.decode` (a thousand whole
    tickets: see there). `after_cursor` is required, null allowed."""

    tickets: list[ExportTicket]
    after_cursor: str | None
    end_of_stream: bool
    #: null on the first page read by start_time (recorded); not followed: bridge reads forward
    before_cursor: str | None = None


EXPORT_PAGE = msgspec.json.Decoder(ExportPage)


class DeletedActor(Shape):
    id: StrictInt | None = None


class DeletedTicket(Shape):
    id: TicketId
    deleted_at: StrictStr | None = None
    actor: DeletedActor | None = None


class CursorMeta(Shape):
    has_more: StrictBool
    after_cursor: StrictStr | None = None
    before_cursor: StrictStr | None = None


class CursorLinks(Shape):
    """Present on every cursor page with rows, `next` even when `has_more` is false
    (recorded): `meta.has_more`, not a null `next`, ends the walk."""

    prev: StrictStr | None = None
    next: StrictStr | None = None


class DeletedTicketsPage(Shape):
    deleted_tickets: list[DeletedTicket]
    meta: CursorMeta | None = None
    links: CursorLinks | None = None
    next_page: StrictStr | None = None


class JobStatusBody(Shape):
    id: StrictStr
    status: ZendeskJobStatus
    message: StrictStr | None = None
    results: list[Any] | dict[str, Any] | None = None


class JobStatusAnswer(Shape):
    job_status: JobStatusBody


class JobStatusesAnswer(Shape):
    job_statuses: list[JobStatusBody]


class AuditLogEntry(Shape):
    """One audit-log entry; only ticket `destroy` entries are read (what else is in the
    log is ignored). `actor_id` of the system is assumed negative (-1)."""

    id: StrictInt
    action: StrictStr | None = None
    actor_id: StrictInt | None = None
    source_id: StrictInt | None = None
    source_type: StrictStr | None = None
    change_description: StrictStr | None = None
    created_at: StrictStr | None = None


class AuditLogsPage(Shape):
    audit_logs: list[AuditLogEntry]
    meta: CursorMeta | None = None
    links: CursorLinks | None = None
