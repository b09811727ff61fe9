"""The archive query language: parsing, evaluation, ordering, options."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from bridge.vendors.superoffice.sim.odata import (
    And,
    Column,
    ColumnKind,
    Comparison,
    Not,
    ODataError,
    Or,
    compile_filter,
    conjuncts,
    parse_datetime,
    parse_filter,
    parse_int_option,
    parse_order_by,
    parse_select,
    sort_rows,
)


@dataclass
class Row:
    id: int
    title: str
    changed: datetime
    status: int  # 1 Active, 4 Deleted


STATUS_NAMES = {"active": 1, "deleted": 4}


def _status(value: object) -> int:
    if isinstance(value, int):
        return value
    return STATUS_NAMES[str(value).lower()]


COLUMNS: dict[str, Column[Row]] = {
    "ticketId": Column("ticketId", ColumnKind.INT, lambda r: r.id),
    "title": Column("title", ColumnKind.STRING, lambda r: r.title),
    "lastChanged": Column("lastChanged", ColumnKind.DATETIME, lambda r: r.changed),
    "status": Column("status", ColumnKind.LIST, lambda r: r.status, _status),
}

T0 = datetime(2024, 5, 1, tzinfo=UTC)
ROWS = [
    Row(
        i, f"Printer {i}" if i % 2 else f"Mail {i}", T0 + timedelta(hours=i), 4 if i % 3 == 0 else 1
    )
    for i in range(1, 13)
]


def ids(text: str) -> list[int]:
    predicate = compile_filter(parse_filter(text), COLUMNS)
    return [r.id for r in ROWS if predicate(r)]


def test_parse_builds_precedence_and_before_or() -> None:
    node = parse_filter("ticketId eq 1 or ticketId eq 2 and status eq 4")
    assert node == Or(
        (
            Comparison("ticketId", "eq", (1,)),
            And((Comparison("ticketId", "eq", (2,)), Comparison("status", "eq", (4,)))),
        )
    )


def test_parse_lists_strings_and_not() -> None:
    node = parse_filter("not (title eq 'O''Brien') and ticketId oneOf (1, 2,3)")
    assert node == And(
        (
            Not(Comparison("title", "eq", ("O'Brien",))),
            Comparison("ticketId", "in", (1, 2, 3)),
        )
    )
    assert conjuncts(node)[1] == Comparison("ticketId", "in", (1, 2, 3))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ticketId eq 3", [3]),
        ("ticketId = 3", [3]),
        ("ticketId ne 3 and ticketId lt 5", [1, 2, 4]),
        ("ticketId gt 10", [11, 12]),
        ("ticketId ge 11", [11, 12]),
        ("ticketId le 2", [1, 2]),
        ("ticketId in (2, 4, 99)", [2, 4]),
        ("ticketId oneOf (5)", [5]),
        ("ticketId notOneOf (1,2,3,4,5,6,7,8,9,10)", [11, 12]),
        ("ticketId between (3, 5)", [3, 4, 5]),
        ("ticketId between 3 and 5", [3, 4, 5]),
        ("status eq 4", [3, 6, 9, 12]),
        ("status eq 'Deleted'", [3, 6, 9, 12]),
        ("status oneOf (4) and ticketId gt 6", [9, 12]),
        ("(ticketId eq 1 or ticketId eq 2) and status eq 1", [1, 2]),
        ("not status eq 1", [3, 6, 9, 12]),
        ("title begins 'print' and ticketId lt 4", [1, 3]),
        ("title contains 'MAIL 1'", [10, 12]),
        ("lastChanged afterTime '2024-05-01T10:00:00'", [11, 12]),
        ("lastChanged afterTime '2024-05-01T10:00:00Z' and status eq 4", [12]),
        ("lastChanged beforeTime '2024-05-01T02:00:00+00:00'", [1]),
        ("lastChanged afterTime '2024-05-01Z10:00:00'", [11, 12]),
        ("lastChanged between ('2024-05-01T02:00:00', '2024-05-01T03:00:00')", [2, 3]),
        ("lastChanged gt '2024-05-01T13:00:00+02:00'", [12]),
        ("ticketId eq '[I:7]'", [7]),
    ],
)
def test_filters_select_the_right_rows(text: str, expected: list[int]) -> None:
    assert ids(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ticketId",
        "ticketId eq",
        "ticketId frobs 3",
        "(ticketId eq 3",
        "ticketId eq 3 and",
        "ticketId between (1, 2, 3)",
        "ticketId eq 3 ticketId eq 4",
        "ticketId eq 3 # comment",
    ],
)
def test_malformed_filters_are_rejected(text: str) -> None:
    with pytest.raises(ODataError):
        compile_filter(parse_filter(text), COLUMNS)


@pytest.mark.parametrize(
    "text",
    [
        "nosuch eq 1",
        "ticketId eq 'abc'",
        "ticketId afterTime '2024-01-01'",
        "lastChanged afterTime 'yesterday'",
        "ticketId contains '1'",
    ],
)
def test_unknown_columns_and_type_mismatches_fail_at_compile_time(text: str) -> None:
    with pytest.raises(ODataError):
        compile_filter(parse_filter(text), COLUMNS)


def test_column_names_are_case_insensitive() -> None:
    assert ids("TICKETID eq 2") == [2]
    assert parse_select("ticketid, LastChanged", COLUMNS) == ["ticketId", "lastChanged"]


def test_parse_datetime_forms() -> None:
    expected = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    assert parse_datetime("2024-05-01T12:30:00") == expected
    assert parse_datetime("2024-05-01T14:30:00+02:00") == expected
    assert parse_datetime("2024-05-01Z12:30:00") == expected
    assert parse_datetime("2024.05.01T12:30") == expected
    assert parse_datetime("2024-05-01") == datetime(2024, 5, 1, tzinfo=UTC)
    assert parse_datetime("2016-05-29T14:28:22.5709961+02:00").microsecond == 570996
    with pytest.raises(ODataError):
        parse_datetime(42)


def test_order_by_several_keys_and_directions() -> None:
    order = parse_order_by("status desc, ticketId", COLUMNS)
    assert order == [("status", True), ("ticketId", False)]
    rows = sort_rows(ROWS, order, COLUMNS)
    assert [r.id for r in rows] == [3, 6, 9, 12, 1, 2, 4, 5, 7, 8, 10, 11]
    with pytest.raises(ODataError):
        parse_order_by("ticketId sideways", COLUMNS)
    with pytest.raises(ODataError):
        parse_order_by("nosuch", COLUMNS)


def test_select_and_int_options() -> None:
    assert parse_select(None, COLUMNS) is None
    with pytest.raises(ODataError):
        parse_select("ticketId,nosuch", COLUMNS)
    assert parse_int_option("$top", None, 50, 100) == 50
    assert parse_int_option("$top", "500", 50, 100) == 100
    assert parse_int_option("$skip", "7", 0) == 7
    with pytest.raises(ODataError):
        parse_int_option("$top", "-1", 50)
    with pytest.raises(ODataError):
        parse_int_option("$top", "ten", 50)
