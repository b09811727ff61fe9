"""The shapes of the vendor answers the adapters rely on, checked before they are believed.

One pydantic model per answer, naming only the fields an adapter reads (everything else is
ignored, so that a vendor adding a field breaks nothing). A body that does not fit is a
failed read: `check` raises `TransientError` naming the endpoint, the field and what was
expected, and the run decides nothing from it (`docs/design.md`, "A failed read decides
nothing"). On a write's answer the same misfit is an unknown outcome: the vendor answered
2xx, so it may have acted.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from pydantic import ValidationError as _ValidationError

from bridge.adapters.base import OutcomeUnknownError, TransientError

__all__ = [
    "DeletedTicketsPage",
    "ExportPage",
    "JobStatusAnswer",
    "JobStatusesAnswer",
    "ShowManyAnswer",
    "ShowOneAnswer",
    "SuperOfficeArchivePage",
    "check",
]

M = TypeVar("M", bound=BaseModel)

#: Zendesk's ticket statuses (`deleted` only in the export and for deleted tickets)
ZendeskStatus = Literal["new", "open", "pending", "hold", "solved", "closed", "deleted"]
#: Zendesk's job statuses (`killed`: node-zendesk and the apps docs; not in the OpenAPI)
ZendeskJobStatus = Literal["queued", "working", "completed", "failed", "killed"]
TicketId = Annotated[StrictInt, Field(gt=0, le=2**63 - 1)]


class _Shape(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ZendeskTicket(_Shape):
    id: TicketId
    status: ZendeskStatus
    updated_at: StrictStr | None = None
    subject: StrictStr | None = None
    external_id: StrictStr | StrictInt | None = None
    generated_timestamp: StrictInt | float | None = None


class ShowManyAnswer(_Shape):
    tickets: list[ZendeskTicket]


class ShowOneAnswer(_Shape):
    ticket: ZendeskTicket


class ExportPage(_Shape):
    tickets: list[ZendeskTicket]
    after_cursor: StrictStr | None = Field(...)
    end_of_stream: StrictBool


class DeletedActor(_Shape):
    id: StrictInt | None = None


class DeletedTicket(_Shape):
    id: TicketId
    deleted_at: StrictStr | None = None
    actor: DeletedActor | None = None


class CursorMeta(_Shape):
    has_more: StrictBool
    after_cursor: StrictStr | None = None


class DeletedTicketsPage(_Shape):
    deleted_tickets: list[DeletedTicket]
    meta: CursorMeta | None = None
    next_page: StrictStr | None = None


class JobStatusBody(_Shape):
    id: StrictStr
    status: ZendeskJobStatus
    message: StrictStr | None = None
    results: list[Any] | dict[str, Any] | None = None


class JobStatusAnswer(_Shape):
    job_status: JobStatusBody


class JobStatusesAnswer(_Shape):
    job_statuses: list[JobStatusBody]


class SuperOfficeArchivePage(_Shape):
    """An archive provider's page; each row's values are checked by the adapter's row
    parser (archive values come as numbers, `[I:42]` strings or display text)."""

    value: list[dict[str, Any]]


def check(model: type[M], body: object, endpoint: str, *, write: bool = False) -> M:
    """`body` as `model`, or a failed read (an unknown outcome for a write's answer)
    naming the endpoint, the first field that does not fit and what was expected."""
    try:
        return model.model_validate(body)
    except _ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        error = OutcomeUnknownError if write else TransientError
        raise error(
            f"{endpoint}: answer does not fit: '{where}' {first['msg'].lower()} "
            f"({exc.error_count()} problem(s)); read stopped"
        ) from None
