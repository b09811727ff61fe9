"""The `dynamic` archive provider, for the one table bridge reads through it: the ticket log.

SuperOffice's `dynamic` provider (docs: `api/archive-providers/reference/dynamic.md` and the
"Dynamic Provider - the dot syntax" page) takes raw database columns named
`table.field`, follows a foreign key with `.fk_field.` and joins a table that points back
with `.(table->fk_field).`; all columns of a query start on the same table. The simulator
knows `ticket_log_action` (docs: `database/tables/ticket-log-action.md`) and the one join
bridge uses, from the log's Service user to the associate whose `ejuserId` it is
(`ticket_log_action.user_id.(associate->ejuserId).associate_id`). Any other column is
refused with 400, as on the other providers.

Rows are `{"PrimaryKey": "<id>", "EntityName": "ticket_log_action", "<column>": value}`
(the keys are the selected column names, as in the documented samples). Ids are ints in
either `$output`; `log_action` is the enum's name (`Ticket_DeleteTicket`) in Display and its
value (34) in Logical (assumed, as for the other providers' list columns).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from operator import attrgetter
from typing import Any

from bridge.vendors.superoffice.sim.odata import (
    Column,
    ColumnKind,
    Comparison,
    ODataError,
    conjuncts,
)
from bridge.vendors.superoffice.sim.store import LogAction, LogEntry, TicketStore
from bridge.vendors.superoffice.sim.views import (
    ArchiveColumn,
    ArchiveOptions,
    ArchiveQuery,
    RowFormat,
    archive_envelope,
    list_literal,
)

__all__ = ["DYNAMIC_PROVIDER", "LOG_ACTOR_COLUMN", "LOG_TABLE", "dynamic_page", "log_columns"]

DYNAMIC_PROVIDER = "dynamic"
LOG_TABLE = "ticket_log_action"
#: the associate behind the log entry's Service user (a right join on `associate.ejuserId`)
LOG_ACTOR_COLUMN = f"{LOG_TABLE}.user_id.(associate->ejuserId).associate_id"


def _log_action_literal(value: object) -> int:
    """`log_action` filters take the value (34, '34', '[I:34]') or the name."""

    def by_name(text: str) -> int:
        for action in LogAction:
            if action.label.lower() == text.lower():
                return int(action)
        raise ODataError(f"unknown log_action {value!r}")

    return list_literal(value, "log_action", by_name)


def log_columns(store: TicketStore) -> dict[str, ArchiveColumn[LogEntry]]:
    """The `ticket_log_action` columns the simulator serves, by canonical name."""

    def cell(name: str) -> Callable[[LogEntry, RowFormat], Any]:
        get = attrgetter(name)
        return lambda e, fmt: get(e)

    def associate(e: LogEntry) -> int | None:
        return store.associate_of(e.user_id)

    def log_when(e: LogEntry) -> Any:
        return e.log_when.replace(microsecond=0)  # whole seconds, as on the other providers

    def action_cell(e: LogEntry, fmt: RowFormat) -> Any:
        return int(e.log_action) if fmt.logical else e.log_action.label

    ints = {"id": "entry_id", "ticket_id": "ticket_id", "user_id": "user_id"}
    made = [
        ArchiveColumn(Column(f"{LOG_TABLE}.{name}", ColumnKind.INT, attrgetter(attr)), cell(attr))
        for name, attr in ints.items()
    ]
    made += [
        ArchiveColumn(
            Column(f"{LOG_TABLE}.log_when", ColumnKind.DATETIME, log_when),
            lambda e, fmt: fmt.time.archive(e.log_when),
        ),
        ArchiveColumn(
            Column(
                f"{LOG_TABLE}.log_action",
                ColumnKind.LIST,
                lambda e: int(e.log_action),
                _log_action_literal,
            ),
            action_cell,
        ),
        ArchiveColumn(
            Column(LOG_ACTOR_COLUMN, ColumnKind.INT, associate), lambda e, fmt: associate(e)
        ),
    ]
    return {c.column.name: c for c in made}


def _ticket_candidates(node: Any, columns: Mapping[str, Column[LogEntry]]) -> set[int] | None:
    """Ticket ids named by a top-level `ticket_id eq/in` term: read those tickets' logs only."""
    for term in conjuncts(node):
        if (
            isinstance(term, Comparison)
            and term.column.lower() == f"{LOG_TABLE}.ticket_id"
            and term.op in {"eq", "in"}
        ):
            return {columns[f"{LOG_TABLE}.ticket_id"].literal(v) for v in term.values}
    return None


def dynamic_page(
    store: TicketStore,
    query: Mapping[str, str | None],
    *,
    fmt: RowFormat,
    api_url: str,
    options: ArchiveOptions,
) -> dict[str, Any]:
    """Answer one `Archive/dynamic` query on the ticket log; ODataError → 400."""
    parsed = ArchiveQuery.parse(query, log_columns(store), fmt=fmt, options=options)
    if not parsed.select:
        raise ODataError("the dynamic provider needs $select: its columns are the caller's")
    node = parsed.node
    tickets = _ticket_candidates(node, parsed.columns) if node is not None else None
    candidates: Iterable[LogEntry]
    if tickets is not None:
        candidates = [e for t in sorted(tickets) for e in store.log.get(t, ())]
    else:
        candidates = [e for entries in store.log.values() for e in entries]
    page, total = parsed.page(candidates, f"{LOG_TABLE}.id")
    values = parsed.values(page, parsed.select, LOG_TABLE, lambda e: e.entry_id)
    return archive_envelope(
        values,
        DYNAMIC_PROVIDER,
        query,
        api_url=api_url,
        options=options,
        skip=parsed.skip,
        top=parsed.top,
        total=total,
    )
