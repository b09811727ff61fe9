"""The "Agents" side of the SuperOffice simulator: how agent requests are read and how the
Archive agent writes its rows. Pure functions; the routes live in `simulator.py`.

Agent bodies are bound the way ASP.NET binds them, by property name *ignoring case*: the
documented casing is PascalCase (`{"TicketEntityId": 674}`), SuperOffice's own TypeScript
client (`@superoffice/webapi`) sends camelCase (`{"ticketEntityId": 674}`), and both must
work. Query string names (`?ticketEntityId=`) ignore case too.

`GetArchiveListByColumns` answers from the same rows as the REST archive
(`views.archive_rows`): its `Restriction` array becomes the equivalent `$filter` text, its
`SortOrder` the `$orderBy`, so one parser and one row selection serve both.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bridge.sandbox import Request
from bridge.vendors.superoffice.sim.odata import ColumnKind, ODataError
from bridge.vendors.superoffice.sim.store import Ticket
from bridge.vendors.superoffice.sim.views import ArchiveRows, RowFormat

__all__ = [
    "ArchiveListQuery",
    "decode_value",
    "encode_cell",
    "field",
    "list_items",
    "list_query",
    "query_arg",
    "restriction_filter",
    "sort_order_text",
]

# CultureDataFormatter encodings (SuperOffice docs, "Encoded values"): `[I:123]`,
# `[DT:11/09/2017 14:53:18]` (month first), `[D:09.11.2017]` (day first), `[F:123.4]`...
_ENCODED = re.compile(r"^\[([A-Z]{1,2}):(.*)\]$", re.DOTALL)
_DT_FORMAT = "%m/%d/%Y %H:%M:%S"
_D_FORMAT = "%d.%m.%Y"
# restriction names and operators go into filter text: only plain words pass
_NAME = re.compile(r"[A-Za-z_][\w./:\-]*")
_OPERATOR = re.compile(r"[A-Za-z]+|[<>=!]{1,2}")


def field(obj: Any, name: str) -> Any:
    """A property of a JSON object read as .NET binds it: exact name first, then any case."""
    if not isinstance(obj, Mapping):
        return None
    if name in obj:
        return obj[name]
    lowered = name.lower()
    return next((v for k, v in obj.items() if str(k).lower() == lowered), None)


def query_arg(request: Request, name: str) -> str | None:
    """A query-string parameter, its name compared ignoring case."""
    lowered = name.lower()
    for key, values in request.query.items():
        if key.lower() == lowered and values:
            return values[0]
    return None


def decode_value(value: Any) -> str:
    """A restriction value as filter text: CultureDataFormatter-encoded values (`[I:10]`,
    `[DT:05/01/2024 12:00:00]`, `[D:01.05.2024]`, `[F:1.5]`) decoded, plain ones as sent."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return str(value)
    if not isinstance(value, str):
        raise ODataError(f"restriction values must be strings, got {value!r}")
    match = _ENCODED.match(value.strip())
    if match is None:
        return value
    marker, body = match.group(1), match.group(2).strip()
    if marker in {"I", "F", "M", "TS"}:
        return body
    try:
        if marker == "DT":
            return datetime.strptime(body, _DT_FORMAT).isoformat()
        if marker == "D":
            return datetime.strptime(body, _D_FORMAT).date().isoformat()
    except ValueError:
        raise ODataError(f"bad encoded date {value!r}") from None
    raise ODataError(f"unsupported encoded value {value!r}")


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _comparison(item: Mapping[str, Any]) -> str:
    name, operator = field(item, "Name"), field(item, "Operator")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ODataError(f"bad restriction name {name!r}")
    if not isinstance(operator, str) or not _OPERATOR.fullmatch(operator):
        raise ODataError(f"bad restriction operator {operator!r} on {name!r}")
    if field(item, "SubRestrictions"):
        raise ODataError("SubRestrictions are not supported by the simulator")
    values = field(item, "Values")
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list) or not values:
        raise ODataError(f"restriction {name!r} needs Values")
    texts = [_quoted(decode_value(v)) for v in values]
    operand = texts[0] if len(texts) == 1 else "(" + ", ".join(texts) + ")"
    return f"{name} {operator} {operand}"


def _joins_with_or(item: Mapping[str, Any]) -> bool:
    inter = field(item, "InterOperator")
    return inter == 2 or (isinstance(inter, str) and inter.strip().lower() == "or")


def restriction_filter(restrictions: Any) -> str | None:
    """The `$filter` text equivalent to an `ArchiveRestrictionInfo` array, or None.

    Inactive restrictions (`IsActive: false`) are left out; a restriction without
    `IsActive` counts as active (assumed). `InterOperator` (And, the default, or Or) joins a
    restriction to the next one; `InterParenthesis` opens (positive) or closes (negative)
    that many parentheses around it."""
    if restrictions is None:
        return None
    if not isinstance(restrictions, list):
        raise ODataError("Restriction must be an array")
    text = ""
    joiner = ""
    for item in restrictions:
        if not isinstance(item, Mapping):
            raise ODataError("each restriction must be an object")
        if field(item, "IsActive") is False:
            continue
        depth = field(item, "InterParenthesis") or 0
        if not isinstance(depth, int) or isinstance(depth, bool):
            raise ODataError("InterParenthesis must be an integer")
        term = "(" * max(depth, 0) + _comparison(item) + ")" * max(-depth, 0)
        text += joiner + term
        joiner = " or " if _joins_with_or(item) else " and "
    return text or None


def sort_order_text(sort_order: Any) -> str | None:
    """The `$orderBy` text equivalent to an `ArchiveOrderByInfo` array (Direction ASC/DESC,
    or 0/1), or None."""
    if sort_order is None:
        return None
    if not isinstance(sort_order, list):
        raise ODataError("SortOrder must be an array")
    terms: list[str] = []
    for item in sort_order:
        name = field(item, "Name")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ODataError(f"bad SortOrder name {name!r}")
        direction = field(item, "Direction")
        descending = direction == 1 or (
            isinstance(direction, str) and direction.strip().upper() == "DESC"
        )
        terms.append(f"{name} {'desc' if descending else 'asc'}")
    return ", ".join(terms) or None


@dataclass(frozen=True, slots=True)
class ArchiveListQuery:
    """A `GetArchiveListByColumns` request, read into archive query terms."""

    provider: str
    select: str | None
    filter_text: str | None
    order_by: str | None
    skip: int
    size: int


def _int(body: Mapping[str, Any], name: str, default: int) -> int:
    value = field(body, name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ODataError(f"{name} must be an integer")
    return value


def list_query(body: Mapping[str, Any], size_max: int) -> ArchiveListQuery:
    """Read a `GetArchiveListByColumns(WithHeader)` body. `Page` 0 is the first page and a
    negative page skips that many rows (the client's documentation); `PageSize` is capped
    at `size_max`, as `$top` is. `Entities` is not checked (both providers have one entity,
    `ticket`), as the REST archive ignores `$entities`."""
    provider = field(body, "ProviderName")
    if not isinstance(provider, str) or not provider:
        raise ODataError("ProviderName is required")
    columns = field(body, "Columns")
    if columns is not None and (
        not isinstance(columns, list) or not all(isinstance(c, str) for c in columns)
    ):
        raise ODataError("Columns must be an array of column names")
    page = _int(body, "Page", 0)
    size = min(max(_int(body, "PageSize", 50), 0), size_max)
    return ArchiveListQuery(
        provider=provider,
        select=",".join(columns) if columns else None,
        filter_text=restriction_filter(field(body, "Restriction")),
        order_by=sort_order_text(field(body, "SortOrder")),
        skip=page * size if page >= 0 else -page,
        size=size,
    )


def encode_cell(kind: ColumnKind, value: Any, display: str) -> str:
    """A cell's `DisplayValue`: CultureDataFormatter-encoded except strings (`[I:5]`,
    `[DT:05/01/2024 12:00:00]` in UTC, whole seconds); list columns give their display text
    in the request's culture (assumed)."""
    if kind is ColumnKind.INT:
        return f"[I:{int(value)}]"
    if kind is ColumnKind.DATETIME:
        return f"[DT:{value.astimezone(UTC).strftime(_DT_FORMAT)}]"
    if kind is ColumnKind.LIST:
        return display
    return "" if value is None else str(value)


def _item(ticket: Ticket, found: ArchiveRows, fmt: RowFormat) -> dict[str, Any]:
    cells: dict[str, Any] = {}
    for name in found.select:
        spec = found.columns[name]
        display = spec.render(ticket, fmt)
        value = encode_cell(spec.column.kind, spec.column.get(ticket), str(display))
        cells[name] = {"DisplayValue": value, "TooltipHint": "", "LinkHint": ""}
    return {
        "EntityName": "ticket",
        "PrimaryKey": ticket.ticket_id,
        "ColumnData": cells,
        "LinkHint": "",
        "StyleHint": "",
        "TableRight": None,
        "FieldProperties": {},
    }


def list_items(found: ArchiveRows, query: ArchiveListQuery, fmt: RowFormat) -> list[Any]:
    """One page of `ArchiveListItem`s (`PrimaryKey` an int, as documented for the agent)."""
    display = RowFormat(fmt.time, fmt.culture, logical=False)
    page = found.rows[query.skip : query.skip + query.size]
    return [_item(t, found, display) for t in page]
