"""The SuperOffice simulator's (lastChanged, ticketId) index: pages read off it are the
pages a scan and sort of every ticket gives, whatever changed in between."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from bridge.sandbox import SimClock
from bridge.vendors.superoffice.sim.index import SortedKeys
from bridge.vendors.superoffice.sim.odata import parse_filter
from bridge.vendors.superoffice.sim.store import BaseStatus, TicketStore
from bridge.vendors.superoffice.sim.views import (
    ArchiveOptions,
    ArchiveQuery,
    RowFormat,
    TimeFormat,
    archive_columns,
    archive_page,
    key_range,
)

START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_sorted_keys_keep_order_through_adds_and_removes() -> None:
    rng = random.Random(7)
    keys = SortedKeys(load=8)
    model: set[int] = set()
    for _ in range(3000):
        key = rng.randrange(500)
        if key in model and rng.random() < 0.5:
            keys.remove(key)
            model.discard(key)
        elif key not in model:
            keys.add(key)
            model.add(key)
    ordered = sorted(model)
    assert list(keys.irange(None, None)) == ordered
    assert len(keys) == len(ordered)
    for low, high, skip in [(100, 300, 0), (100, 300, 17), (None, 50, 3), (450, None, 0)]:
        want = [k for k in ordered if (low is None or k >= low) and (high is None or k < high)]
        assert list(keys.irange(low, high, skip=skip)) == want[skip:]
        assert keys.count(low, high) == len(want)
    with pytest.raises(KeyError):
        keys.remove(10_000)


def _store() -> tuple[TicketStore, SimClock]:
    """A store whose tickets changed in many seconds, many of them sharing one, then were
    deleted, restored, re-deleted, edited and purged at random."""
    clock = SimClock(START, frozen=True)
    store = TicketStore(now=clock.now)
    rng = random.Random(11)
    for n in range(400):
        store.create(title=f"t{n}")
        if n % 50 == 49:
            clock.advance(rng.choice([0.3, 1, 1, 7]))
    ids = list(store.tickets)
    for _ in range(600):
        clock.advance(rng.choice([0, 0, 0.4, 1, 3]))
        live = [i for i in ids if i in store.tickets]
        pick = rng.sample(live, 5)
        action = rng.random()
        if action < 0.4:
            store.soft_delete(pick, actor=7)
        elif action < 0.7:
            store.undelete(pick, actor=7)
        elif action < 0.9:
            store.update(store.tickets[pick[0]], 7, title="edited")
        else:
            store.purge(pick[:1])
    return store, clock


FILTERS = [
    None,
    "lastChanged afterTime '2024-05-01T12:00:30'",
    "lastChanged afterTime '2024-05-01T12:00:30.5'",
    "lastChanged afterTime '2024-05-01T12:00:29' and lastChanged beforeTime "
    "'2024-05-01T12:00:31' and ticketId gt 120",
    "lastChanged between ('2024-05-01T12:00:10', '2024-05-01T12:01:00')",
    "lastChanged beforeOrEqual '2024-05-01T12:00:40'",
    "lastChanged eq '2024-05-01T12:00:30' and ticketId lt 300",
    "lastChanged afterTime '2024-05-01T12:00:05' and status eq 1",
    "ticketId gt 200",
    "lastChanged afterTime '2024-05-01T12:00:05' or ticketId lt 9",
]


@pytest.mark.parametrize("recycle", [False, True])
@pytest.mark.parametrize("order", ["lastChanged,ticketId", "lastChanged", "ticketId", None])
def test_indexed_pages_equal_a_scan_and_sort(recycle: bool, order: str | None) -> None:
    store, _clock = _store()
    provider = "RecycleTicket" if recycle else "Ticket"
    fmt, options = RowFormat(TimeFormat(), logical=True), ArchiveOptions(next_link=True)
    members = [
        t for t in store.tickets.values() if (t.base_status is BaseStatus.DELETED) == recycle
    ]
    for text in FILTERS:
        for skip, top in [(0, 1000), (0, 7), (13, 7), (5000, 7)]:
            query = {"$select": "ticketId", "$filter": text, "$orderBy": order}
            query |= {"$top": str(top), "$skip": str(skip), "$output": "Logical"}
            parsed = ArchiveQuery.parse(query, archive_columns(store), fmt=fmt, options=options)
            want, total = parsed.page(members, "ticketId")
            got = archive_page(store, provider, query, fmt=fmt, api_url="x", options=options)
            assert [row["ticketId"] for row in got["value"]] == [t.ticket_id for t in want], (
                text,
                skip,
            )
            assert (got["odata.nextLink"] is not None) == (skip + top < total)


def test_the_key_range_is_the_whole_filter_only_when_it_says_nothing_else() -> None:
    exact = key_range(parse_filter("lastChanged afterTime '2024-05-01T12:00:00'"))
    assert (exact.exact, exact.high, exact.one_second) == (True, None, False)
    inside = key_range(
        parse_filter(
            "lastChanged afterTime '2024-05-01T11:59:59' and lastChanged beforeTime "
            "'2024-05-01T12:00:01' and ticketId gt 41"
        )
    )
    assert (inside.exact, inside.one_second) == (True, True)
    assert not key_range(parse_filter("lastChanged afterTime '2024-05-01' and status eq 4")).exact
    assert not key_range(parse_filter("ticketId gt 4")).exact  # ids across seconds: a filter


def test_a_page_of_a_large_tenant_is_read_off_the_index() -> None:
    """Behaviour at size, not speed: a page in the middle of a large tenant, and the rows
    of one crowded second after an id, are the right rows."""
    clock = SimClock(START, frozen=True)
    store = TicketStore(now=clock.now)
    for _ in range(20):
        for _ in range(5_000):
            store.create(title="")
        clock.advance(1)
    fmt, options = RowFormat(TimeFormat(), logical=True), ArchiveOptions()
    second = (START + timedelta(seconds=7)).strftime("%Y-%m-%dT%H:%M:%S")
    before = (START + timedelta(seconds=6)).strftime("%Y-%m-%dT%H:%M:%S")
    after = (START + timedelta(seconds=8)).strftime("%Y-%m-%dT%H:%M:%S")
    query = {
        "$select": "ticketId,lastChanged",
        "$filter": f"lastChanged afterTime '{before}' and lastChanged beforeTime '{after}' "
        "and ticketId gt 37000",
        "$orderBy": "ticketId",
        "$top": "500",
    }
    rows = archive_page(store, "Ticket", query, fmt=fmt, api_url="x", options=options)["value"]
    assert [r["ticketId"] for r in rows] == list(range(37_001, 37_501))
    assert {r["lastChanged"] for r in rows} == {second + "Z"}
