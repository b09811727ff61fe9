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
    ReadBounds,
    Span,
    next_position,
    page_query,
)
from bridge.vendors.superoffice.sim.simulator import SuperOfficeSimulator

START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
S = START + timedelta(seconds=7)
ARCHIVE = "GET Archive/{provider}"


# --------------------------------------------------------------------------- pure


def test_a_cursor_reads_back_what_it_wrote() -> None:
    cursor = ChangeCursor(Position(S, 41), Position(S + timedelta(seconds=3)), 700, Position(S))
    text = cursor.encode()
    assert text == (
        "so3 settled=2024-05-01T12:00:07Z/41 read=2024-05-01T12:00:10Z unsettled=700 "
        "due=2024-05-01T12:00:07Z"
    )
    assert ChangeCursor.parse(text, old_overlap=timedelta(minutes=1)) == cursor
    fresh = ChangeCursor(None, None)
    assert ChangeCursor.parse(fresh.encode(), old_overlap=timedelta(0)) == fresh


def test_a_cursor_of_the_version_before_starts_settled_at_its_earlier_position() -> None:
    """`so2` kept a settled position per provider: both are read from the earlier."""
    old = "so2 Ticket=2024-05-01T12:00:07Z/41 RecycleTicket=2024-05-01T12:00:05Z"
    parsed = ChangeCursor.parse(old, old_overlap=timedelta(minutes=1))
    start = Position(START + timedelta(seconds=5))
    assert parsed == ChangeCursor(start, start)


@pytest.mark.parametrize(
    "old", ["2024-05-01T12:00:07+00:00", "2024-05-01T12:00:07.600000+00:00", "2024-05-01T12:00:07Z"]
)
def test_an_old_cursor_starts_where_its_version_read_next(old: str) -> None:
    """A ledger from before stored the newest `lastChanged` seen; that version read
    `afterTime` (mark - change_overlap) next: the position starts there."""
    parsed = ChangeCursor.parse(old, old_overlap=timedelta(minutes=1))
    start = Position(START + timedelta(seconds=7 - 60))
    assert parsed == ChangeCursor(start, start)


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "yesterday",
        "so2 Ticket=bad RecycleTicket=-",
        "so3 settled=- read=- unsettled=-4 due=-",
        "so3 settled=2024-05-01T12:00:07Z read=- unsettled=0 due=-",
        "so3 settled=- read=2024-05-01T12:00:07Z",
    ],
)
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


def test_few_unsettled_rows_are_read_again_with_every_run_many_once_when_all_closed() -> None:
    """The rule of `settled`: rows read in the last `change_overlap` are read once more
    when a read begins after it; a run reads them again with each run while they fit one
    page, and a bulk change's many once, when the last of them is past `change_overlap`."""
    overlap = timedelta(minutes=1)
    first = ChangeCursor(None, None)
    at = START + timedelta(minutes=10)
    bounds = ReadBounds.at(at, overlap)
    assert bounds.over == Position(at - timedelta(seconds=2))
    assert bounds.closed == Position(at - timedelta(seconds=61))
    assert first.settles(bounds, each_run=500)  # from the start
    # the read found 100,000 rows changed five seconds before it began
    after = first.after(bounds, settles=True, counted=100_000, each_run=500)
    assert after == ChangeCursor(bounds.closed, bounds.over, 100_000, bounds.over)
    # ten seconds later: not all closed, so the run reads only what is new
    soon = ReadBounds.at(at + timedelta(seconds=10), overlap)
    assert not after.settles(soon, each_run=500)
    assert after.start(settles=False) == bounds.over
    quiet = after.after(soon, settles=False, counted=3, each_run=500)
    assert quiet == ChangeCursor(bounds.closed, soon.over, 100_003, bounds.over)
    # a minute after the bulk second: read again from `settled`, once
    late = ReadBounds.at(at + timedelta(seconds=62), overlap)
    assert quiet.settles(late, each_run=500)
    assert quiet.start(settles=True) == bounds.closed
    settled = quiet.after(late, settles=True, counted=2, each_run=500)
    assert settled == ChangeCursor(late.closed, late.over, 2, None)
    # few rows: settled with every run
    assert settled.settles(ReadBounds.at(at + timedelta(seconds=70), overlap), each_run=500)


def test_no_overlap_closes_no_more_than_is_over() -> None:
    at = START + timedelta(seconds=30, milliseconds=400)
    bounds = ReadBounds.at(at, timedelta(0))
    assert bounds.closed == bounds.over == Position(START + timedelta(seconds=28))


def test_a_span_counts_rows_after_its_start_up_to_its_end() -> None:
    span = Span(Position(S, 4), Position(S + timedelta(seconds=1)))
    t1 = S + timedelta(seconds=1)
    keys = [(S, 3), (S, 4), (S, 5), (t1, 1), (t1, 99), (t1 + timedelta(seconds=1), 1)]
    assert span.count(keys) == 3
    assert Span(None, Position(S)).count(keys) == 3


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


def test_a_bulk_second_costs_the_run_right_after_nothing_and_is_settled_once(
    sim: SuperOfficeSimulator,
) -> None:
    """1,234 tickets changed in one second, read five seconds later: the runs within the
    next minute read one empty page a provider; the first run a minute after it reads them
    once more (a write committed late into that second would be among them), and the runs
    after that nothing again."""
    sim.advance(120)
    crowd = sim.seed_tickets(1234)
    sim.advance(5)
    adapter = make_adapter(sim, page_size=100)
    pages, cursor = read(adapter, None)
    assert len({v.ticket_id for p in pages for v in p.views}) == len(crowd)
    for _ in range(3):
        sim.advance(10)
        sim.counters.reset()
        pages, cursor = read(adapter, cursor)
        assert [v for p in pages for v in p.views] == []
        assert archive_calls(sim) == 2
    sim.advance(30)  # the bulk second is over by more than `change_overlap`
    sim.counters.reset()
    pages, cursor = read(adapter, cursor)
    assert {v.ticket_id for p in pages for v in p.views} == set(crowd)
    assert archive_calls(sim) <= 1234 // 100 + 4
    sim.advance(10)
    sim.counters.reset()
    pages, cursor = read(adapter, cursor)
    assert [v for p in pages for v in p.views] == []
    assert archive_calls(sim) == 2


def late_delete(sim: SuperOfficeSimulator, ticket_id: int, stamped: datetime) -> None:
    """A delete stamped `stamped` that becomes visible only now (committed late)."""
    now = sim.clock.now()
    sim.clock.set(stamped)
    sim.soft_delete([ticket_id])
    sim.clock.set(now)


def test_a_write_committed_late_into_a_passed_second_is_read(sim: SuperOfficeSimulator) -> None:
    """Writes that become visible after a read passed their second: found by the next
    run while the unsettled rows are few, and by the run that settles a bulk change
    (a minute after it) when they are many."""
    ids = sim.seed_tickets(20)
    sim.advance(120)
    adapter = make_adapter(sim, page_size=100)
    _, cursor = read(adapter, None)
    read_at = sim.clock.now()
    sim.advance(10)
    late_delete(sim, ids[0], read_at - timedelta(seconds=3))
    pages, cursor = read(adapter, cursor)
    assert [(v.ticket_id, v.state) for p in pages for v in p.views] == [
        (ids[0], State.SOFT_DELETED)
    ]
    sim.advance(60)
    crowd = sim.seed_tickets(1234)  # a bulk change, read five seconds later
    sim.advance(5)
    _, cursor = read(adapter, cursor)
    read_at = sim.clock.now()
    sim.advance(10)
    late_delete(sim, ids[1], read_at - timedelta(seconds=4))
    pages, cursor = read(adapter, cursor)  # within the minute: only what is new
    assert [v for p in pages for v in p.views] == []
    sim.advance(60)
    pages, cursor = read(adapter, cursor)  # the bulk change settles: the late write too
    states = {v.ticket_id: v.state for p in pages for v in p.views}
    assert states[ids[1]] is State.SOFT_DELETED
    assert set(states) == {ids[1], *crowd}


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
    assert cursor.startswith("so3 ")
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
