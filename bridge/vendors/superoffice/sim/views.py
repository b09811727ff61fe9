"""How the SuperOffice simulator shows its tickets: TicketEntity JSON and archive rows.

Pure functions over the store. Archive providers `Ticket` and `RecycleTicket` share one
column set (the real providers do, for the columns the bridge needs); `Ticket` leaves
soft-deleted rows out, `RecycleTicket` lists only them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from itertools import islice
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode

from bridge.vendors.superoffice.sim.index import id_of, key_of, second_of
from bridge.vendors.superoffice.sim.odata import (
    Column,
    ColumnKind,
    Comparison,
    Node,
    ODataError,
    compile_filter,
    conjuncts,
    parse_datetime,
    parse_filter,
    parse_int_option,
    parse_order_by,
    parse_select,
    sort_rows,
)
from bridge.vendors.superoffice.sim.store import BaseStatus, StoreError, Ticket, TicketStore

__all__ = [
    "CULTURES",
    "DEFAULT_SELECT",
    "PROVIDERS",
    "ArchiveColumn",
    "ArchiveOptions",
    "ArchiveQuery",
    "ArchiveRows",
    "RowFormat",
    "TimeFormat",
    "archive_columns",
    "archive_envelope",
    "archive_output",
    "archive_page",
    "archive_rows",
    "culture_of",
    "list_literal",
    "ticket_entity",
]

R = TypeVar("R")

#: provider name (lower-case) → canonical spelling
PROVIDERS: dict[str, str] = {"ticket": "Ticket", "recycleticket": "RecycleTicket"}

#: columns returned when a query has no `$select` (the real default set is unknown)
DEFAULT_SELECT: tuple[str, ...] = (
    "ticketId",
    "title",
    "createdAt",
    "lastChanged",
    "status",
    "ticketStatusName",
    "connectId",
    "ownedBy",
)


@dataclass(frozen=True, slots=True)
class TimeFormat:
    """Dates as .NET writes a DateTimeOffset: fraction without trailing zeros, and the
    offset only when the client asked for it (`SO-TimeZone: ..., includeTZOffset`) or sent
    no `SO-TimeZone` at all. Times are always UTC."""

    include_offset: bool = True

    @classmethod
    def from_header(cls, value: str | None) -> TimeFormat:
        if value is None or not value.strip():
            return cls(True)
        return cls("includetzoffset" in value.replace(" ", "").lower())

    def __call__(self, moment: datetime | None) -> str:
        if moment is None:
            return "0001-01-01T00:00:00"
        moment = moment.astimezone(UTC)
        text = moment.strftime("%Y-%m-%dT%H:%M:%S")
        if moment.microsecond:
            text += f".{moment.microsecond:06d}".rstrip("0")
        return text + ("+00:00" if self.include_offset else "")

    def archive(self, moment: datetime | None) -> str:
        """Dates as archive rows show them: whole seconds (the fraction is cut, not
        rounded), `Z` when an offset is wanted, else local time without one (the real
        sample in reference §3.2 is `"2020-04-22T15:51:25"`; §3.3 shows the `Z` form)."""
        if moment is None:
            return "0001-01-01T00:00:00"
        return _archive_text(moment, self.include_offset)


@lru_cache(maxsize=4096)
def _archive_text(moment: datetime, include_offset: bool) -> str:
    """`TimeFormat.archive`'s text, each time formatted once: a page's rows share few
    seconds (a bulk change: one), and formatting was a tenth of the simulator's page."""
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return text + ("Z" if include_offset else "")


#: display text per culture (language tag → English text → translation): archive list
#: columns in `$output=Display` are shown in the user's culture, so English names are
#: never a stable key. Statuses not listed keep their (user-defined) name.
CULTURES: dict[str, dict[str, str]] = {
    "en": {},
    "de": {
        "Unknown": "Unbekannt",
        "Active": "Aktiv",
        "Closed": "Geschlossen",
        "Postponed": "Zurückgestellt",
        "Deleted": "Gelöscht",
        "Merged": "Zusammengeführt",
        "Open": "Offen",
        "In progress": "In Bearbeitung",
        "Waiting for customer": "Wartet auf Kunde",
    },
    "nb": {
        "Unknown": "Ukjent",
        "Active": "Aktiv",
        "Closed": "Lukket",
        "Postponed": "Utsatt",
        "Deleted": "Slettet",
        "Merged": "Slått sammen",
        "Open": "Åpen",
        "In progress": "Under arbeid",
        "Waiting for customer": "Venter på kunde",
    },
}
#: `$output` values (lower-case); Display is the default (assumed)
OUTPUTS = frozenset({"display", "logical"})


def culture_of(*candidates: str | None) -> str:
    """The first known culture among header values such as `de-DE` or `nb-NO,nb;q=0.9`
    (`no`/`nn` read as `nb`); English when none is known."""
    for value in candidates:
        for part in (value or "").split(","):
            tag = part.split(";")[0].strip().lower().replace("_", "-").split("-")[0]
            tag = "nb" if tag in ("no", "nn") else tag
            if tag in CULTURES:
                return tag
    return "en"


@dataclass(frozen=True, slots=True)
class RowFormat:
    """How archive cells are written: dates, the culture of display text, and whether list
    columns show their display text or their logical value (the list item id)."""

    time: TimeFormat = TimeFormat()
    culture: str = "en"
    logical: bool = False

    def text(self, english: str) -> str:
        return CULTURES.get(self.culture, {}).get(english, english)


def ticket_entity(
    ticket: Ticket, api_url: str, fmt: TimeFormat, *, links: bool = True
) -> dict[str, Any]:
    """`TicketEntity` with every documented property (PascalCase, in the documented order;
    what the simulator does not model is null, 0, "" or empty), plus `_Links` for the REST
    variant (`TicketEntityWithLinks`); the Ticket agent's answers have no `_Links`."""
    empty = fmt(None)
    entity: dict[str, Any] = {
        "TicketId": ticket.ticket_id,
        "Title": ticket.title,
        "CreatedAt": fmt(ticket.created_at),
        "LastChanged": fmt(ticket.last_changed),
        "ReadByOwner": empty,
        "ReadByCustomer": empty,
        "FirstReadByOwner": empty,
        "FirstReadByUser": empty,
        "Activate": empty,
        "ClosedAt": empty,
        "RepliedAt": empty,
        "AlertTimeout": empty,
        "Deadline": empty,
        "CreatedBy": {"AssociateId": ticket.created_by},
        "Author": "",
        "OwnedBy": {"AssociateId": ticket.owned_by},
        "Category": None,
        "Slevel": "External",
        "Priority": None,
        "BaseStatus": ticket.base_status.label,
        "Status": ticket.status.entity(),
        "Origin": "Unknown",
        "Person": None,
        "SecondaryPersons": [],
        "AlertLevel": 0,
        "ConnectId": ticket.connect_id,
        "ReadStatus": "Green",
        **dict.fromkeys(_TICKET_METRICS, 0),
        "HasAttachment": False,
        "NumReplies": 0,
        "NumMessages": 0,
        "FromAddress": "",
        "Messages": [],
        "Tags": [],
        "Language": "",
        "Sentiment": 0,
        "SentimentConfidence": 0,
        "SuggestedCategoryId": 0,
        "SuggestedCategoryName": "",
        "OrigHumanCategoryId": 0,
        "IconHint": "",
        "Sale": None,
        "Project": None,
        "FormSubmission": None,
        "TicketType": None,
        "ActiveStatusMonitorId": 0,
        "ExtraFields": {},
        "CustomFields": {},
        "TableRight": None,
        "FieldProperties": {},
    }
    if links:
        entity["_Links"] = {
            "Self": f"{api_url}/v1/Ticket/{ticket.ticket_id}",
            "Archive": f"{api_url}/v1/Ticket",
        }
    return entity


#: TicketEntity's time metrics (minutes or seconds, documented as int32)
_TICKET_METRICS: tuple[str, ...] = (
    "TimeToReply",
    "RealTimeToReply",
    "TimeToClose",
    "RealTimeToClose",
    "TimeSpentInternally",
    "TimeSpentExternally",
    "TimeSpentQueue",
    "RealTimeSpentInternally",
    "RealTimeSpentExternally",
    "RealTimeSpentQueue",
    "TimeSpent",
)


# --------------------------------------------------------------------------- archive


@dataclass(frozen=True, slots=True)
class ArchiveColumn(Generic[R]):
    """A provider's column: how to filter and sort on it, and how a row shows it."""

    column: Column[R]
    render: Callable[[R, RowFormat], Any]


def list_literal(value: object, what: str, by_name: Callable[[str], int]) -> int:
    """A list column's filter value: an id (4, '4', '[I:4]') or, through `by_name`, a name."""
    if isinstance(value, bool):
        raise ODataError(f"{what} needs an id or a name")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[I:") and text.endswith("]"):
            text = text[3:-1]
        if text.lstrip("-").isdigit():
            return int(text)
        return by_name(text)
    raise ODataError(f"unknown {what} {value!r}")


def _base_status_literal(value: object) -> int:
    """`status` filters accept 4, '4', '[I:4]' or 'Deleted'."""

    def by_name(text: str) -> int:
        try:
            return int(BaseStatus.from_label(text))
        except StoreError:
            raise ODataError(f"unknown status {value!r}") from None

    return list_literal(value, "status", by_name)


@dataclass(frozen=True, slots=True)
class ArchiveQuery(Generic[R]):
    """One archive request's options read against a provider's columns: what every
    provider does alike (unknown columns, operators or values raise ODataError: 400)."""

    spec: Mapping[str, ArchiveColumn[R]]
    select: list[str] | None
    order: list[tuple[str, bool]]
    top: int
    skip: int
    node: Node | None
    predicate: Callable[[R], bool] | None
    fmt: RowFormat

    @classmethod
    def parse(
        cls,
        query: Mapping[str, str | None],
        spec: Mapping[str, ArchiveColumn[R]],
        *,
        fmt: RowFormat,
        options: ArchiveOptions,
    ) -> ArchiveQuery[R]:
        columns = {name: c.column for name, c in spec.items()}
        text = query.get("$filter")
        node = parse_filter(text) if text and text.strip() else None
        return cls(
            spec=spec,
            select=parse_select(query.get("$select"), columns),
            order=parse_order_by(query.get("$orderBy") or query.get("$orderby"), columns),
            top=parse_int_option("$top", query.get("$top"), options.top_default, options.top_max),
            skip=parse_int_option("$skip", query.get("$skip"), 0),
            node=node,
            predicate=compile_filter(node, columns) if node is not None else None,
            fmt=RowFormat(fmt.time, fmt.culture, logical=archive_output(query)),
        )

    @property
    def columns(self) -> dict[str, Column[R]]:
        return {name: c.column for name, c in self.spec.items()}

    def matching(self, candidates: Iterable[R], tie_breaker: str) -> list[R]:
        """All rows the filter keeps, sorted (`tie_breaker` last, for a stable order)."""
        rows = [r for r in candidates if self.predicate is None or self.predicate(r)]
        order = self.order
        if not any(name == tie_breaker for name, _ in order):
            order = [*order, (tie_breaker, False)]
        return sort_rows(rows, order, self.columns)

    def page(self, candidates: Iterable[R], tie_breaker: str) -> tuple[list[R], int]:
        """The rows of this page and how many rows match in all."""
        rows = self.matching(candidates, tie_breaker)
        return rows[self.skip : self.skip + self.top], len(rows)

    def values(
        self, rows: Iterable[R], select: Iterable[str], entity: str, key: Callable[[R], int]
    ) -> list[dict[str, Any]]:
        """The rows as the `value` array shows them (`PrimaryKey` a string)."""
        return [
            {
                "PrimaryKey": str(key(row)),
                "EntityName": entity,
                **{name: self.spec[name].render(row, self.fmt) for name in select},
            }
            for row in rows
        ]


def archive_columns(store: TicketStore) -> dict[str, ArchiveColumn[Ticket]]:
    """The columns both ticket providers understand, keyed by canonical name."""

    def status_id_literal(value: object) -> int:
        if isinstance(value, str) and value.startswith("[I:") and value.endswith("]"):
            value = value[3:-1]
        try:
            return store.resolve_status(value).status_id
        except StoreError as exc:
            raise ODataError(str(exc)) from None

    def iso(get: Callable[[Ticket], datetime]) -> Callable[[Ticket, RowFormat], Any]:
        return lambda t, fmt: fmt.time.archive(get(t))

    def plain(get: Callable[[Ticket], Any]) -> Callable[[Ticket, RowFormat], Any]:
        return lambda t, fmt: get(t)

    def base_status_cell(t: Ticket, fmt: RowFormat) -> Any:
        return int(t.base_status) if fmt.logical else fmt.text(t.base_status.label)

    def status_name_cell(t: Ticket, fmt: RowFormat) -> Any:
        return t.status.status_id if fmt.logical else fmt.text(t.status.name)

    def ticket_id(t: Ticket) -> int:
        return t.ticket_id

    def title(t: Ticket) -> str:
        return t.title

    # archive dates are whole seconds, in rows and in filters and sorting alike (assumed:
    # `afterTime '12:01:00'` leaves out a change at 12:01:00.6)
    def created_at(t: Ticket) -> datetime:
        return t.created_at.replace(microsecond=0)

    def last_changed(t: Ticket) -> datetime:
        return t.last_changed.replace(microsecond=0)

    def base_status(t: Ticket) -> int:
        return int(t.base_status)

    def status_id(t: Ticket) -> int:
        return t.status.status_id

    def connect_id(t: Ticket) -> int:
        return t.connect_id

    def owned_by(t: Ticket) -> int:
        return t.owned_by

    def created_by(t: Ticket) -> int:
        return t.created_by

    made = [
        ArchiveColumn(Column("ticketId", ColumnKind.INT, ticket_id), plain(ticket_id)),
        ArchiveColumn(Column("title", ColumnKind.STRING, title), plain(title)),
        ArchiveColumn(Column("createdAt", ColumnKind.DATETIME, created_at), iso(created_at)),
        ArchiveColumn(Column("lastChanged", ColumnKind.DATETIME, last_changed), iso(last_changed)),
        ArchiveColumn(
            Column("status", ColumnKind.LIST, base_status, _base_status_literal),
            base_status_cell,
        ),
        ArchiveColumn(
            Column("ticketStatusName", ColumnKind.LIST, status_id, status_id_literal),
            status_name_cell,
        ),
        ArchiveColumn(Column("connectId", ColumnKind.INT, connect_id), plain(connect_id)),
        ArchiveColumn(Column("ownedBy", ColumnKind.INT, owned_by), plain(owned_by)),
        ArchiveColumn(Column("ownedBy/associateDbId", ColumnKind.INT, owned_by), plain(owned_by)),
        ArchiveColumn(
            Column("createdBy/associateDbId", ColumnKind.INT, created_by), plain(created_by)
        ),
    ]
    return {c.column.name: c for c in made}


@dataclass(frozen=True, slots=True)
class ArchiveOptions:
    """Simulator choices where SuperOffice's behaviour is unknown."""

    top_default: int = 50
    top_max: int = 10_000
    #: fill `odata.nextLink` when more rows follow (the real service was seen sending null)
    next_link: bool = False


def _id_candidates(node: Any, columns: Mapping[str, Column[Ticket]]) -> set[int] | None:
    """Ids named by a top-level `ticketId eq/in` term, for a lookup instead of a scan."""
    for term in conjuncts(node):
        if (
            isinstance(term, Comparison)
            and term.column.lower() == "ticketid"
            and term.op in {"eq", "in"}
        ):
            return {columns["ticketId"].literal(v) for v in term.values}
    return None


@dataclass(frozen=True, slots=True)
class KeyRange:
    """The part of a provider's index (`sim/index.py`) a filter can match: keys in
    [low, high) (None: unbounded). `exact`: the filter says nothing else, so every key in
    the range matches; `one_second`: the range lies inside one second, where index order
    is id order."""

    low: int | None = None
    high: int | None = None
    exact: bool = True
    one_second: bool = False


def key_range(node: Node | None) -> KeyRange:
    """The index range of a filter's top-level `lastChanged` bounds (whole seconds, as
    archive dates are compared) and, inside one second, its `ticketId` bounds."""
    if node is None:
        return KeyRange()
    first: int | None = None  # inclusive seconds
    last: int | None = None
    id_low, id_high = 0, ID_LIMIT  # inclusive ids
    exact = True
    for term in conjuncts(node):
        bounds = _second_bounds(term) if isinstance(term, Comparison) else None
        ids = _id_bounds(term) if isinstance(term, Comparison) else None
        if bounds is not None:
            low, high = bounds
            first = low if first is None or (low is not None and low > first) else first
            last = high if last is None or (high is not None and high < last) else last
        elif ids is not None:
            id_low, id_high = max(id_low, ids[0]), min(id_high, ids[1])
        else:
            exact = False
    one_second = first is not None and first == last
    if (id_low, id_high) != (0, ID_LIMIT) and not one_second:
        exact = False  # ids bound the range only inside one second
    if first is not None and last is not None and (first > last or id_low > id_high):
        return KeyRange(0, 0, exact, one_second)
    if one_second:
        assert first is not None
        return KeyRange(key_of(first, id_low), key_of(first, id_high) + 1, exact, True)
    return KeyRange(
        key_of(first, 0) if first is not None else None,
        key_of(last + 1, 0) if last is not None else None,
        exact,
    )


#: above every ticket id (ids are below 2**31)
ID_LIMIT = 2**31


def _second_bounds(term: Comparison) -> tuple[int | None, int | None] | None:
    """The whole seconds (first, last; None: open) a `lastChanged` term allows."""
    if term.column.lower() != "lastchanged":
        return None
    op = term.op
    if op not in {"after", "gt", "ge", "before", "lt", "le", "eq", "between"}:
        return None
    values = [parse_datetime(v) for v in term.values]
    floor = [second_of(v) for v in values]
    cut = [v.microsecond != 0 for v in values]
    if op in {"after", "gt"}:
        return floor[0] + 1, None
    if op == "ge":
        return floor[0] + cut[0], None
    if op in {"before", "lt"}:
        return None, floor[0] - (not cut[0])
    if op == "le":
        return None, floor[0]
    if op == "eq":
        return (floor[0], floor[0]) if not cut[0] else (1, 0)
    return floor[0] + cut[0], floor[1]  # between, both ends included


def _id_bounds(term: Comparison) -> tuple[int, int] | None:
    """The ids (inclusive) a `ticketId gt/ge/lt/le` term allows."""
    if term.column.lower() != "ticketid" or term.op not in {"gt", "ge", "lt", "le"}:
        return None
    value = Column("ticketId", ColumnKind.INT, lambda _t: 0).literal(term.values[0])
    return {
        "gt": (value + 1, ID_LIMIT),
        "ge": (value, ID_LIMIT),
        "lt": (0, value - 1),
        "le": (0, value),
    }[term.op]


@dataclass(frozen=True, slots=True)
class ArchiveRows:
    """The rows an archive query selects, before paging and rendering: what both the REST
    archive (`archive_page`) and the Archive agent (`sim/agents.py`) answer from."""

    provider: str  # canonical spelling
    select: list[str]  # canonical column names
    columns: Mapping[str, ArchiveColumn[Ticket]]
    rows: list[Ticket]  # all matching rows, sorted


def _provider(provider: str) -> tuple[str, bool]:
    """The canonical provider name, and whether it is the recycle bin."""
    canonical = PROVIDERS.get(provider.lower())
    if canonical is None:
        raise ODataError(f"unknown archive provider {provider!r}")
    return canonical, canonical == "RecycleTicket"


def _candidates(store: TicketStore, parsed: ArchiveQuery[Ticket], recycle: bool) -> list[Ticket]:
    """The provider's tickets a query can match: by id where the filter names ids, else
    the index range of its change-time bounds (no scan of all tickets for those)."""
    node, columns = parsed.node, parsed.columns
    ids = _id_candidates(node, columns) if node is not None else None
    if ids is not None:
        found = [t for i in sorted(ids) if (t := store.get(i)) is not None]
        return [t for t in found if (t.base_status is BaseStatus.DELETED) == recycle]
    wanted = key_range(node)
    return [store.tickets[id_of(k)] for k in store.index[recycle].irange(wanted.low, wanted.high)]


def _indexed_page(
    store: TicketStore, parsed: ArchiveQuery[Ticket], recycle: bool, *, count: bool
) -> tuple[list[Ticket], int] | None:
    """The page read straight off the provider's index, when the query asks for index
    order (`lastChanged,ticketId`, or `ticketId` inside one second) and names no ids:
    a bisect to the range, `$skip` by block lengths when the range is the whole filter,
    then `$top` rows. The total (for `nextLink`) is counted only when `count`. None:
    the query needs the general path."""
    node = parsed.node
    if node is not None and _id_candidates(node, parsed.columns) is not None:
        return None
    wanted = key_range(node)
    order = list(parsed.order)
    if not any(name == "ticketId" for name, _ in order):
        order.append(("ticketId", False))
    by_change = order in ([("lastChanged", False), ("ticketId", False)],)
    if not (by_change or (order == [("ticketId", False)] and wanted.one_second)):
        return None
    index, tickets = store.index[recycle], store.tickets
    if wanted.exact:
        keys = index.irange(wanted.low, wanted.high, skip=parsed.skip)
        page = [tickets[id_of(k)] for k in islice(keys, parsed.top)]
        total = index.count(wanted.low, wanted.high) if count else parsed.skip + len(page)
        return page, total
    keep = parsed.predicate
    assert keep is not None  # not exact: there is a filter
    rows = (t for k in index.irange(wanted.low, wanted.high) if keep(t := tickets[id_of(k)]))
    page = list(islice(rows, parsed.skip, parsed.skip + parsed.top))
    total = parsed.skip + len(page) + (sum(1 for _ in rows) if count else 0)
    return page, total


def archive_rows(
    store: TicketStore,
    provider: str,
    *,
    select: str | None,
    filter_text: str | None,
    order_by: str | None,
) -> ArchiveRows:
    """Select and sort all the rows of one archive query; ODataError for a bad one."""
    canonical, recycle = _provider(provider)
    query = {"$select": select, "$filter": filter_text, "$orderBy": order_by}
    parsed = ArchiveQuery.parse(
        query, archive_columns(store), fmt=RowFormat(TimeFormat()), options=ArchiveOptions()
    )
    rows = parsed.matching(_candidates(store, parsed, recycle), "ticketId")
    return ArchiveRows(canonical, parsed.select or list(DEFAULT_SELECT), parsed.spec, rows)


def archive_page(
    store: TicketStore,
    provider: str,
    query: Mapping[str, str | None],
    *,
    fmt: RowFormat,
    api_url: str,
    options: ArchiveOptions,
) -> dict[str, Any]:
    """Answer one archive query with the `ODataSlimResponse` envelope; ODataError → 400."""
    canonical, recycle = _provider(provider)
    parsed = ArchiveQuery.parse(query, archive_columns(store), fmt=fmt, options=options)
    indexed = _indexed_page(store, parsed, recycle, count=options.next_link)
    if indexed is not None:
        page, total = indexed
    else:
        page, total = parsed.page(_candidates(store, parsed, recycle), "ticketId")
    select = parsed.select or list(DEFAULT_SELECT)
    values = parsed.values(page, select, "ticket", lambda t: t.ticket_id)
    return archive_envelope(
        values,
        canonical,
        query,
        api_url=api_url,
        options=options,
        skip=parsed.skip,
        top=parsed.top,
        total=total,
    )


def archive_output(query: Mapping[str, str | None]) -> bool:
    """Whether `$output` asks for logical values (Display, the assumed default, does not)."""
    output = (query.get("$output") or "Display").strip().lower()
    if output not in OUTPUTS:
        raise ODataError(f"unknown $output {query.get('$output')!r}: Display or Logical")
    return output == "logical"


def archive_envelope(
    values: list[dict[str, Any]],
    provider: str,
    query: Mapping[str, str | None],
    *,
    api_url: str,
    options: ArchiveOptions,
    skip: int,
    top: int,
    total: int,
) -> dict[str, Any]:
    """The `ODataSlimResponse` envelope around the page `skip`/`top` of `total` rows."""
    next_link = None
    if options.next_link and skip + top < total and top > 0:
        params = {k: v for k, v in query.items() if v is not None}
        params["$skip"] = str(skip + top)
        params["$top"] = str(top)
        next_link = f"{api_url}/v1/Archive/{provider}?{urlencode(params)}"
    return {
        "odata.metadata": f"{api_url}/v1/Archive//$metadata",
        "odata.nextLink": next_link,
        "value": values,
    }
