"""The shapes of the SuperOffice answers the adapter reads (see `bridge.vendors.wire`)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from pydantic import ConfigDict, Field, StrictInt, StrictStr

from bridge.vendors.superoffice import MAX_TICKET_ID
from bridge.vendors.wire import Shape, TicketId

__all__ = [
    "ARCHIVE_PAGE",
    "LOG_ACTION",
    "LOG_ACTOR",
    "LOG_ID",
    "LOG_TICKET",
    "LOG_WHEN",
    "LogicalArchivePage",
    "LogicalArchiveRow",
    "SuperOfficeArchivePage",
    "SuperOfficeLogPage",
    "SuperOfficeLogRow",
]


class SuperOfficeArchivePage(Shape):
    """An archive provider's page; each row's values are checked by the adapter's row
    parser (archive values come as numbers, `[I:42]` strings or display text)."""

    value: list[dict[str, Any]]


#: a base status id (`BaseStatus`: Unknown 0 … Merged 5), as `$output=Logical` gives it
BaseStatusId = Annotated[int, msgspec.Meta(ge=0, le=5)]


class LogicalArchiveRow(msgspec.Struct, frozen=True, gc=False):
    """One archive row in the form bridge asks for and every recorded answer has
    (`$output=Logical`: ids as JSON numbers, dates as text): the columns the adapter
    reads, checked by the parser (`bridge.vendors.wire.fits`). A row in any other form
    (`[I:42]` strings, a float id, a status that is no base status id, no `ticketId`)
    does not fit, and its page is read by the adapter's lenient row parser instead,
    which takes what it can read and names what it cannot."""

    ticket_id: Annotated[int, msgspec.Meta(gt=0, le=MAX_TICKET_ID)] = msgspec.field(name="ticketId")
    last_changed: str | None = msgspec.field(default=None, name="lastChanged")
    #: absent (not asked for) is not null: a null status is a misfit, for the lenient parser
    status: BaseStatusId | msgspec.UnsetType = msgspec.field(default=msgspec.UNSET)
    ticket_status_name: int | None = msgspec.field(default=None, name="ticketStatusName")
    connect_id: int | None = msgspec.field(default=None, name="connectId")


class LogicalArchivePage(msgspec.Struct, frozen=True):
    value: list[LogicalArchiveRow]


ARCHIVE_PAGE = msgspec.json.Decoder(LogicalArchivePage)


# The ticket log through the `dynamic` archive provider: raw `ticket_log_action` columns
# (docs: database/tables/ticket-log-action.md), rows keyed by the selected column names.
LOG_ID = "ticket_log_action.id"
LOG_TICKET = "ticket_log_action.ticket_id"
LOG_WHEN = "ticket_log_action.log_when"
LOG_ACTION = "ticket_log_action.log_action"
#: the associate whose Service user (`ejuser`) wrote the entry: `user_id` is an `ejuser`
#: id, and `associate.ejuserId` points back at it (a right join in the dot syntax)
LOG_ACTOR = "ticket_log_action.user_id.(associate->ejuserId).associate_id"


class SuperOfficeLogRow(Shape):
    """One log entry. The actor is left unchecked here: the adapter takes it only when it
    is a logical id, so a display value costs the actor, never the page."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    entry_id: StrictInt = Field(alias=LOG_ID)
    ticket_id: TicketId = Field(alias=LOG_TICKET)
    log_when: StrictStr = Field(alias=LOG_WHEN)
    log_action: StrictInt | StrictStr = Field(alias=LOG_ACTION)
    actor: Any = Field(default=None, alias=LOG_ACTOR)


class SuperOfficeLogPage(Shape):
    value: list[SuperOfficeLogRow]
