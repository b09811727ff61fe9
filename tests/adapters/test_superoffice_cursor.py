"""The SuperOffice change cursor: a (lastChanged second, ticketId) position per provider.

Pure rules first (`cursor.py`), then the adapter against the live simulator (port 0,
frozen clock), counting its archive calls through the simulator's counters.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bridge.core.contract import ChangePage, PermanentError
from bridge.core.model import State
from bridge.sandbox import SimClock
from bridge.vendors.superoffice.adapter import SuperOfficeAdapter
from bridge.vendors.superoffice.auth import SOTicketAuth
from bridge.vendors.superoffice.cursor import (
    ChangeCursor,
    Position,
    next_position,
    page_query,
)
from bridge.vendors.superoffice.sim.simulator import SuperOfficeSimulator

START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
S = START + timedelta(seconds=7)
ARCHIVE = "GET Archive/{provider}"


# --------------------------------------------------------------------------- pure


def test_a_cursor_reads_back_what_it_wrote() -> None:
    cursor = ChangeCursor(Position(S, 41), Position(S))
    text = cursor.encode()
    assert text == "so2 Ticket=2024-05-01T12:00:07Z/41 RecycleTicket=2024-05-01T12:00:07Z"
    assert ChangeCursor.parse(text, old_overlap=timedelta(minutes=1)) == cursor
    fresh = ChangeCursor(None, None)
    assert ChangeCursor.parse(fresh.encode(), old_overlap=timedelta(0)) == fresh


@pytest.mark.parametrize(
    "old", ["2024-05-01T12:00:07+00:00", "2024-05-01T12:00:07.600000+00:00", "2024-05-01T12:00:07Z"]
)
def test_an_old_cursor_starts_where_its_version_read_next(old: str) -> None:
    """A ledger from before stored the newest `lastChanged` seen; that version read
    `afterTime` (mark - change_overlap) next: the position starts there."""
    parsed = ChangeCursor.parse(old, old_overlap=timedelta(minutes=1))
    start = Position(START + timedelta(seconds=7 - 60))
    assert parsed == ChangeCursor(start, start)


@pytest.mark.parametrize("junk", ["", "yesterday", "so2 Ticket=bad RecycleTicket=-"])
def test_an_empty_or_unreadable_cursor_reads_from_the_start(junk: str) -> None:
    assert ChangeCursor.parse(junk, old_overlap=timedelta(minutes=1)).first


def test_the_page_filters_use_documented_operators_joined_by_and() -> None:
    assert page_query(None).filter is None
    assert page_query(Position(S)).filter == "lastChanged afterTime '2024-05-01T12:00:07'"
    inside = page_query(Position(S, 41))
    assert inside.filter == (
        "lastChanged afterTime '2024-05-01T12:00:06' and lastChanged beforeTime "
        "'2024-05-01T12:00:08' and ticketId gt 41"
    )
    assert inside.order_by == "ticketId"
    for query in (page_query(Position(S)), inside):
        words = (query.filter or "").split()
        assert "or" not in words
        assert not {"le", "ge"} & set(words)


def test_a_full_page_stands_before_the_second_it_cut() -> None:
    t0, t1 = S, S + timedelta(seconds=1)
    assert next_position(None, [(t0, 5), (t1, 2), (t1, 9)], full=True) == (Position(t0), False)
    # one second fills the page: go on inside it, by id
    assert next_position(Position(t0), [(t1, 2), (t1, 9)], full=True) == (Position(t1, 9), False)
    assert next_position(Position(t1, 0), [(t1, 3), (t1, 9)], full=True) == (
        Position(t1, 9),
        False,
    )
    assert next_position(Position(t1, 9), [(t1, 12)], full=False) == (Position(t1), False)
    assert next_position(Position(t1), [], full=False) == (Position(t1), True)
    assert next_position(None, [], full=False) == (None, True)


# --------------------------------------------------------------------------- live


@pytest.fixture
def sim() -> Iterator[SuperOfficeSimulator]:
    simulator = SuperOfficeSimulator(clock=SimClock(START, frozen=True), requests_per_second=None)
    with simulator:
        yield simulator


def make_adapter(sim: SuperOfficeSimulator, **options: Any) -> SuperOfficeAdapter:
    return SuperOfficeAdapter(
        sim.base_url,
        tenant=sim.tenant,
        auth=SOTicketAuth(sim.ticket, sim.app_token),
        requests_per_second=None,
        sleep=sim.clock.sleep,
        clock=sim.clock.now,
        **options,
    )


def archive_calls(sim: SuperOfficeSimulator) -> int:
    return int(sim.counts()["routes"].get(ARCHIVE, 0))


def read(adapter: SuperOfficeAdapter, cursor: str | None) -> tuple[list[ChangePage], str]:
    pages = list(adapter.changes(cursor))
    assert pages[-1].complete
    return pages, pages[-1].cursor


def test_a_crowded_second_across_pages_is_read_once_and_never_again(
    sim: SuperOfficeSimulator,
) -> None:
    """1,234 tickets share one second (a bulk import), between quieter seconds: every row
    is read once across page boundaries, and once the second is over an idle run reads
    nothing (one empty page per provider)."""
    early = sim.seed_tickets(7)
    sim.advance(1)
    crowd = sim.seed_tickets(1234)
    sim.advance(1)
    late = sim.seed_tickets(3)
    sim.advance(0.4)
    sim.soft_delete(crowd[100:400])  # many deletes in one second too
    sim.advance(120)
    adapter = make_adapter(sim, page_size=100)
    pages, cursor = read(adapter, None)
    views = [v for p in pages for v in p.views]
    assert sorted(v.ticket_id for v in views) == sorted([*early, *crowd, *late])
    deleted = {v.ticket_id for v in views if v.state is State.SOFT_DELETED}
    assert deleted == set(crowd[100:400])
    # about a page per 100 rows, and no page read twice over
    assert archive_calls(sim) <= (1244 // 100 + 4) + (300 // 100 + 4)
    sim.counters.reset()
    for _ in range(3):
        sim.advance(300)
        pages, cursor = read(adapter, cursor)
        assert [v for p in pages for v in p.views] == []
    assert archive_calls(sim) == 3 * 2


def test_a_change_later_in_the_cursors_second_is_not_lost(sim: SuperOfficeSimulator) -> None:
    """The read runs in the very second of the changes it reads; afterwards, in that same
    second, a lower id changes, and a ticket read in it changes again: the next read has
    both (the second was open), and the one after reads nothing."""
    ids = sim.seed_tickets(20)
    sim.advance(120.1)
    sim.soft_delete(ids[10:15])
    adapter = make_adapter(sim, page_size=3, change_overlap=timedelta(0))
    pages, cursor = read(adapter, None)
    assert {v.ticket_id for p in pages for v in p.views if v.state is State.SOFT_DELETED} == set(
        ids[10:15]
    )
    sim.advance(0.5)  # the same second
    sim.soft_delete(ids[:2])  # lower ids
    sim.restore([ids[12]])  # read deleted; restored in the same second
    sim.advance(2)
    pages, cursor = read(adapter, cursor)
    states = {v.ticket_id: v.state for p in pages for v in p.views}
    assert {i for i, s in states.items() if s is State.SOFT_DELETED} >= {*ids[:2]}
    assert states[ids[12]] is State.ACTIVE
    sim.counters.reset()
    pages, cursor = read(adapter, cursor)
    assert [v for p in pages for v in p.views] == []
    assert archive_calls(sim) == 2


def test_an_old_cursor_is_read_and_replaced(sim: SuperOfficeSimulator) -> None:
    ids = sim.seed_tickets(4)
    sim.advance(600)
    sim.soft_delete(ids[:1])
    sim.advance(600)
    adapter = make_adapter(sim)
    old = (START + timedelta(seconds=600)).isoformat()  # the mark the old version stored
    pages, cursor = read(adapter, old)
    assert [(v.ticket_id, v.state) for p in pages for v in p.views] == [
        (ids[0], State.SOFT_DELETED)
    ]
    assert cursor.startswith("so2 ")
    pages, _ = read(adapter, cursor)
    assert [v for p in pages for v in p.views] == []


def test_a_read_that_fails_midway_keeps_its_cursor(sim: SuperOfficeSimulator) -> None:
    """Only the last page moves the cursor: a read that fails in the recycle bin leaves
    the cursor where it was, and the next read replays everything after it."""
    ids = sim.seed_tickets(250)
    sim.advance(1)
    sim.soft_delete(ids[:60])
    sim.advance(120)
    _, cursor = read(make_adapter(sim, page_size=40), None)
    sim.soft_delete(ids[60:70])
    sim.restore(ids[:2])
    sim.advance(120)
    sim.add_fault("status", path="Archive/RecycleTicket", status=400, count=1)
    adapter = make_adapter(sim, page_size=40)
    pages: list[ChangePage] = []
    with pytest.raises(PermanentError):
        pages.extend(adapter.changes(cursor))
    assert pages
    assert {p.cursor for p in pages} == {cursor}
    rest, _ = read(adapter, cursor)
    seen = {v.ticket_id: v.state for p in rest for v in p.views}
    assert seen == {
        **dict.fromkeys(ids[60:70], State.SOFT_DELETED),
        **dict.fromkeys(ids[:2], State.ACTIVE),
    }


def test_a_tenant_clock_behind_bridges_closes_no_second_early(sim: SuperOfficeSimulator) -> None:
    """The tenant's clock (its answers' `Date`) is a day behind bridge's: seconds are
    closed by the tenant's clock, so a change the tenant stamps "in the past" is read."""
    ids = sim.seed_tickets(3)
    sim.advance(120)
    ahead = make_adapter(sim)
    ahead._clock = lambda: sim.clock.now() + timedelta(days=1)
    _, cursor = read(ahead, None)
    sim.soft_delete(ids[:1])
    sim.advance(1)
    pages, cursor = read(ahead, cursor)
    assert [(v.ticket_id, v.state) for p in pages for v in p.views] == [
        (ids[0], State.SOFT_DELETED)
    ]
