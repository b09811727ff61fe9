"""SuperOffice archive pages have two readers: the msgspec shape for the form bridge asks
for (`LogicalArchiveRow`, tried first) and the lenient row parser for every other form
(`_row_view`). Whatever a page holds, the adapter must read it exactly as the lenient
parser alone would: the same rows, keys and views, or the same failed read naming the
column. A row is never skipped."""

from __future__ import annotations

import itertools
import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bridge.core.contract import TicketView, UnreadableAnswerError
from bridge.vendors import wire
from bridge.vendors.superoffice import MAX_TICKET_ID
from bridge.vendors.superoffice import wire as shapes
from bridge.vendors.superoffice.adapter import _logical_rows, _row_view
from bridge.vendors.superoffice.cursor import Key

PATH = "Archive/Ticket"
ABSENT = object()
CASSETTES = Path(__file__).resolve().parents[2] / "cassettes" / "superoffice"

#: each column's values: the logical form, the other forms archives give, and junk
COLUMNS: dict[str, list[Any]] = {
    "ticketId": [ABSENT, 1, 7, MAX_TICKET_ID, MAX_TICKET_ID + 1, 0, -3, "7", "[I:7]", 7.0, True],
    "status": [ABSENT, None, 0, 1, 2, 3, 4, 5, 6, -1, "[I:4]", "4", "Active", 4.0, True],
    "ticketStatusName": [ABSENT, None, 0, 3, -1, "[I:3]", "x", 3.5, False],
    "lastChanged": [
        ABSENT,
        None,
        "",
        "0001-01-01T00:00:00",
        "2026-12-03T11:00:00Z",
        "2026-12-03T11:00:00.250+02:00",
        "2026-12-03T11:00:00",
        "2026-12-03 11:00:00Z",
        "soon",
        5,
    ],
    "connectId": [ABSENT, None, 9, -1, 0, "[I:9]", "x"],
}


def _row(values: tuple[Any, ...]) -> dict[str, Any]:
    row = {name: value for name, value in zip(COLUMNS, values, strict=True) if value is not ABSENT}
    row["PrimaryKey"] = "11"  # what a row without `ticketId` falls back to
    row["EntityName"] = "ticket"
    return row


def _lenient(rows: list[dict[str, Any]], recycled: bool) -> list[tuple[Key, TicketView | None]]:
    return [_row_view(row, recycled=recycled, path=PATH) for row in rows]


def _read(rows: list[Any], recycled: bool) -> tuple[bool, Any]:
    """What the adapter makes of a page (`_archive_rows`: the shape when it fits, else
    the lenient parser), and whether the shape took it."""
    content = json.dumps({"odata.nextLink": None, "value": rows}).encode()
    logical = wire.fits(shapes.ARCHIVE_PAGE, content)
    try:
        if logical is not None:
            return True, _logical_rows(logical.value, recycled=recycled, path=PATH)
        return False, _lenient(rows, recycled)
    except UnreadableAnswerError as exc:
        return logical is not None, str(exc)


def _expected(rows: list[Any], recycled: bool) -> Any:
    try:
        return _lenient(rows, recycled)
    except UnreadableAnswerError as exc:
        return str(exc)


#: every column's every value at least once, and a seeded sample of their combinations
_ALL = list(itertools.product(*COLUMNS.values()))
SAMPLE = random.Random(16).sample(_ALL, 1500) + [
    tuple(values[i % len(values)] for values in COLUMNS.values())
    for i in range(max(map(len, COLUMNS.values())))
]


@pytest.mark.parametrize("recycled", [False, True])
def test_a_row_in_any_form_is_read_as_the_lenient_parser_reads_it(recycled: bool) -> None:
    took = 0
    for values in SAMPLE:
        row = _row(values)
        fast, got = _read([row], recycled)
        took += fast
        assert got == _expected([row], recycled), row
    # the shape takes the logical form, and only it (else this compared a reader with itself)
    assert 0 < took < len(SAMPLE)


def test_the_logical_form_is_taken_by_the_shape() -> None:
    row = {"ticketId": 7, "lastChanged": "2026-12-03T11:00:00Z", "status": 4}
    fast, views = _read([{**row, "ticketStatusName": 3, "connectId": -1}], recycled=False)
    assert fast
    assert views == _expected([row | {"ticketStatusName": 3}], recycled=False)


@pytest.mark.parametrize(
    ("odd", "column"),
    [
        ({"ticketId": "abc"}, "ticketId"),
        ({"status": "Exploded"}, "status"),
        ({"status": None}, "status"),
        ({"ticketStatusName": "Open"}, "ticketStatusName"),
        ({"lastChanged": "soon"}, "lastChanged"),
    ],
)
def test_one_unreadable_row_fails_the_whole_page_naming_its_column(
    odd: dict[str, Any], column: str
) -> None:
    """A misfit in the middle of a page of good rows is a failed read, never a row left
    out (the cursor would move past a change never seen)."""
    good = [
        {"ticketId": n, "lastChanged": "2026-12-03T11:00:00Z", "status": 1} for n in range(1, 6)
    ]
    rows = [*good[:2], good[2] | odd, *good[3:]]
    _fast, got = _read(rows, recycled=False)
    assert isinstance(got, str)
    assert f"'value[].{column}'" in got
    assert got.startswith(PATH)


def test_a_page_of_many_dates_keeps_each_rows_own() -> None:
    """Dates are parsed once per distinct value in a page: each row still gets its own."""
    undated = [{"ticketId": 40, "status": 4}, {"ticketId": 41, "lastChanged": None, "status": 1}]
    rows = undated + [
        {"ticketId": n, "lastChanged": f"2026-12-03T11:00:{n % 3:02d}Z", "status": 1 + n % 2}
        for n in range(1, 40)
    ]
    for recycled in (False, True):
        fast, got = _read(rows, recycled)
        assert fast
        assert got == _expected(rows, recycled)


def _recorded_archive_bodies() -> list[str]:
    bodies: list[str] = []
    for path in sorted(CASSETTES.glob("*.yaml")):
        for interaction in yaml.safe_load(path.read_text(encoding="utf-8"))["interactions"]:
            uri = interaction["request"]["uri"]
            if re.search(r"/Archive/(Recycle)?Ticket\b", uri, re.IGNORECASE):
                body = interaction["response"]["body"]["string"]
                if interaction["response"]["status"]["code"] == 200 and '"value"' in body:
                    bodies.append(body)
    return bodies


def test_every_recorded_archive_page_is_taken_by_the_shape() -> None:
    """The shape is for the form SuperOffice answers in: every recorded archive page fits
    it (a recording that does not would mean the fast path is never the usual one)."""
    bodies = _recorded_archive_bodies()
    assert len(bodies) >= 5
    for body in bodies:
        page = json.loads(body)
        fast, got = _read(page["value"], recycled=False)
        assert fast, body[:200]
        assert got == _expected(page["value"], recycled=False)
