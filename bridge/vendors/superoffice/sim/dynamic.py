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
from dataclasses import dataclass
from typing import Any

from bridge.vendors.superoffice.sim.odata import (
    Column,
    ColumnKind,
    Comparison,
    ODataError,
    compile_filter,
    conjuncts,
    parse_filter,
    parse_int_option,
    parse_order_by,
    parse_select,
    sort_rows,
)
from bridge.vendors.superoffice.sim.store import LogAction, LogEntry, TicketStore
from bridge.vendors.superoffice.sim.views import (
    ArchiveOptions,
    RowFormat,
    archive_envelope,
    archive_output,
)

__all__ = ["DYNAMIC_PROVIDER", "LOG_ACTOR_COLUMN", "LOG_TABLE", "dynamic_page", "log_columns"]

DYNAMIC_PROVIDER = "dynamic"
LOG_TABLE = "ticket_log_action"
#: the associate behind the log entry's Service user (a right join on `associate.ejuserId`)
LOG_ACTOR_COLUMN = f"{LOG_TABLE}.user_id.(associate->ejuserId).associate_id"


@dataclass(frozen=True, slots=True)
class _LogColumn:
    column: Column[LogEntry]
    render: Callable[[LogEntry, RowFormat], Any]


def _log_action_literal(value: object) -> int:
    """`log_action` filters take the value (34, '34', '[I:34]') or the name."""
    if isinstance(value, bool):
        raise ODataError("log_action needs a TicketLogAction value or name")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[I:") and text.endswith("]"):
            text = text[3:-1]
        if text.lstrip("-").isdigit():
            return int(text)
        for action in LogAction:
            if action.label.lower() == text.lower():
                return int(action)
    raise ODataError(f"unknown log_action {value!r}")


def log_columns(store: TicketStore) -> dict[str, _LogColumn]:
    """The `ticket_log_action` columns the simulator serves, by canonical name."""

    def entry_id(e: LogEntry) -> int:
        return e.entry_id

    def ticket_id(e: LogEntry) -> int:
        return e.ticket_id

    def user_id(e: LogEntry) -> int:
        return e.user_id

    def log_when(e: LogEntry) -> Any:
        return e.log_when.replace(microsecond=0)

    def log_action(e: LogEntry) -> int:
        return int(e.log_action)

    def associate(e: LogEntry) -> int | None:
        return store.associate_of(e.user_id)

    def plain(get: Callable[[LogEntry], Any]) -> Callable[[LogEntry, RowFormat], Any]:
        return lambda e, fmt: get(e)

    def action_cell(e: LogEntry, fmt: RowFormat) -> Any:
        return int(e.log_action) if fmt.logical else e.log_action.label

    made = [
        _LogColumn(Column(f"{LOG_TABLE}.id", ColumnKind.INT, entry_id), plain(entry_id)),
        _LogColumn(Column(f"{LOG_TABLE}.ticket_id", ColumnKind.INT, ticket_id), plain(ticket_id)),
        _LogColumn(Column(f"{LOG_TABLE}.user_id", ColumnKind.INT, user_id), plain(user_id)),
        _LogColumn(
            Column(f"{LOG_TABLE}.log_when", ColumnKind.DATETIME, log_when),
            lambda e, fmt: fmt.time.archive(e.log_when),
        ),
        _LogColumn(
            Column(f"{LOG_TABLE}.log_action", ColumnKind.LIST, log_action, _log_action_literal),
            action_cell,
        ),
        _LogColumn(Column(LOG_ACTOR_COLUMN, ColumnKind.INT, associate), plain(associate)),
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
    fmt = RowFormat(fmt.time, fmt.culture, logical=archive_output(query))
    spec = log_columns(store)
    columns = {name: c.column for name, c in spec.items()}
    select = parse_select(query.get("$select"), columns)
    if not select:
        raise ODataError("the dynamic provider needs $select: its columns are the caller's")
    order = parse_order_by(query.get("$orderBy") or query.get("$orderby"), columns)
    top = parse_int_option("$top", query.get("$top"), options.top_default, options.top_max)
    skip = parse_int_option("$skip", query.get("$skip"), 0)
    text = query.get("$filter")
    node = parse_filter(text) if text and text.strip() else None
    predicate = compile_filter(node, columns) if node is not None else None

    tickets = _ticket_candidates(node, columns) if node is not None else None
    candidates: Iterable[LogEntry]
    if tickets is not None:
        candidates = [e for t in sorted(tickets) for e in store.log.get(t, ())]
    else:
        candidates = [e for entries in store.log.values() for e in entries]
    rows = [e for e in candidates if predicate is None or predicate(e)]
    key = f"{LOG_TABLE}.id"
    if not any(name == key for name, _ in order):
        order = [*order, (key, False)]
    rows = sort_rows(rows, order, columns)
    values = [
        {
            "PrimaryKey": str(e.entry_id),
            "EntityName": LOG_TABLE,
            **{name: spec[name].render(e, fmt) for name in select},
        }
        for e in rows[skip : skip + top]
    ]
    return archive_envelope(
        values,
        DYNAMIC_PROVIDER,
        query,
        api_url=api_url,
        options=options,
        skip=skip,
        top=top,
        total=len(rows),
    )
