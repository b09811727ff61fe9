"""The shapes of the SuperOffice answers the adapter reads (see `bridge.vendors.wire`)."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, StrictInt, StrictStr

from bridge.vendors.wire import Shape, TicketId

__all__ = [
    "LOG_ACTION",
    "LOG_ACTOR",
    "LOG_ID",
    "LOG_TICKET",
    "LOG_WHEN",
    "SuperOfficeArchivePage",
    "SuperOfficeLogPage",
    "SuperOfficeLogRow",
]


class SuperOfficeArchivePage(Shape):
    """An archive provider's page; each row's values are checked by the adapter's row
    parser (archive values come as numbers, `[I:42]` strings or display text)."""

    value: list[dict[str, Any]]


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
