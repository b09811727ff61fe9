"""A change stream's pages recorded behind the run (`bridge.ledger.behind`, issue 18): on a
server ledger the next page is looked up while the last is written. What the run learns
must be what it learnt when each write came first: on both backends, with the writes
slowed so that any read that overtook one would see the ledger as it was before it."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from bridge.core.contract import ChangePage, TicketView
from bridge.core.model import Cause, Observation, State
from bridge.ledger import Ledger
from bridge.ledger.behind import WRITER_THREAD
from bridge.ledger.engine import create_ledger_engine, ledger_dialect
from tests.reconcile.fake_world import SO, World, fake_world

#: how long each write behind the run waits before it starts (long enough for a read that
#: did not wait for it to be seen doing so)
_SLOW = 0.3


@pytest.fixture
def world(ledger_url: str) -> Iterator[World]:
    yield from fake_world(ledger_url, World)


@pytest.fixture
def engine(ledger_url: str) -> Iterator[Engine]:
    """An engine made as the ledger's is, on each backend in turn: a write-behind holds
    back the checkouts of its pool (SQLite's, or the server's)."""
    engine = create_ledger_engine(ledger_url, ledger_dialect(ledger_url))
    try:
        yield engine
    finally:
        engine.dispose()


def _slow_writes(ledger: Ledger) -> list[str]:
    """Slow the ledger's observation writes made behind the run; the threads that made
    each (to tell that the writes did go behind, where the backend does that)."""
    threads: list[str] = []
    record = ledger.record_observations

    def slowed(run_id: int | None, observations: Sequence[Observation], **kw: Any) -> Any:
        threads.append(threading.current_thread().name)
        if threading.current_thread().name.startswith(WRITER_THREAD):
            time.sleep(_SLOW)
        return record(run_id, observations, **kw)

    ledger.record_observations = slowed  # type: ignore[method-assign]
    return threads


def _pages(world: World, *pages: list[TicketView]) -> None:
    """The SuperOffice stream shows these pages, once, one after the other: Zendesk's
    stream waits a minute (its pages would come between them, and each write waits for
    the one before it)."""

    last: list[bool] = []

    def changes(cursor: str | None, *, read_ahead: bool = False) -> Generator[ChangePage]:
        for n, views in enumerate(pages, 1):
            if n == len(pages):
                last.append(True)
            yield ChangePage(views, f"page-{n}", n == len(pages))

    world.so.changes = changes  # type: ignore[method-assign]
    world.zd.changes_ready_in = lambda: 0.0 if last else 60.0  # type: ignore[method-assign]


@pytest.mark.parametrize("between", [0, 1], ids=["in-a-row", "a-page-between"])
def test_a_ticket_on_two_pages_is_read_after_the_first_is_written(
    world: World, ledger_url: str, between: int
) -> None:
    # page 1 soft-deletes the ticket, page 2 shows it purged a retention period later: the
    # purge's cause comes from what the ledger holds when page 2 is looked up, so a lookup
    # that overtook page 1's write would call the vendor's retention job a person's purge.
    # With a page between them, page 1 is the older of two writes in flight.
    world.link((1, 101), (2, 102), (3, 103))
    assert world.sync().outcome == "converged"
    deleted_at = world.clock.now + timedelta(hours=1)
    purged_at = deleted_at + timedelta(days=15)  # SuperOffice's retention: 14 days
    threads = _slow_writes(world.ledger)
    _pages(
        world,
        [TicketView(1, State.SOFT_DELETED, deleted_at, actor_id=7), TicketView(2, State.ACTIVE)],
        *([TicketView(3, State.ACTIVE)] for _ in range(between)),
        [TicketView(1, State.PURGED, purged_at)],
    )
    world.clock.advance(days=16)
    world.sync()
    [purge] = [e for e in world.events("observed") if e.to_state == State.PURGED.value]
    assert purge.side == SO
    assert purge.from_state == State.SOFT_DELETED.value
    assert purge.cause == Cause.RETENTION.value
    behind = any(name.startswith(WRITER_THREAD) for name in threads)
    assert behind is ledger_url.startswith("postgresql")


def test_what_follows_the_stream_reads_what_its_last_page_wrote(world: World) -> None:
    # a first sync: the stream's pages show every SuperOffice ticket, and the links its
    # last page (still being written when the stream ends) holds must not look unread
    # (each would be looked up again), nor undecided
    for so_id, zd_id in ((1, 101), (2, 102), (3, 103)):
        world.so.seed(so_id)
        world.zd.seed(zd_id)
    from bridge.ledger import LinkRow

    rows = [LinkRow(n, so, zd) for n, (so, zd) in enumerate(((1, 101), (2, 102), (3, 103)), 1)]
    assert world.ledger.import_links(rows, origin="csv").ok
    _slow_writes(world.ledger)
    _pages(world, [TicketView(1, State.ACTIVE)], [TicketView(2, State.ACTIVE)],
           [TicketView(3, State.ACTIVE)])  # fmt: skip
    result = world.sync()
    assert result.outcome == "converged"
    assert world.so.calls["lookup"] == 0
    assert result.counts["decision.agree"] == 3
    assert world.ledger.get_cursor(SO) == "page-3"


def test_a_write_that_fails_behind_the_run_fails_the_run_and_moves_no_cursor(
    world: World,
) -> None:
    world.link((1, 101), (2, 102))
    assert world.sync().outcome == "converged"
    cursor = world.ledger.get_cursor(SO)
    record = world.ledger.record_observations

    def failing(run_id: int | None, observations: Sequence[Observation], **kw: Any) -> Any:
        if any(o.ticket_id == 2 for o in observations):
            raise RuntimeError("the server went away")
        return record(run_id, observations, **kw)

    world.ledger.record_observations = failing  # type: ignore[method-assign]
    changed = world.clock.now + timedelta(minutes=5)
    _pages(
        world,
        [TicketView(1, State.SOFT_DELETED, changed, actor_id=7)],
        [TicketView(2, State.SOFT_DELETED, changed, actor_id=7)],
    )
    world.clock.advance(minutes=10)
    with pytest.raises(RuntimeError, match="went away"):
        world.sync()
    # page 1 was recorded with its cursor; page 2 was not, and nothing was written
    assert world.ledger.get_cursor(SO) == "page-1" != cursor
    assert world.zd.submitted == []
    [run] = world.ledger.recent_runs(1)
    assert run.outcome == "failed"


def test_a_write_that_fails_stops_the_page_handed_over_after_it(world: World) -> None:
    # page 3 is handed over while page 2 is still being written (two writes in flight):
    # page 2 fails, so page 3 must not be recorded, nor its cursor move past page 2's
    world.link((1, 101), (2, 102), (3, 103))
    assert world.sync().outcome == "converged"
    _slow_writes(world.ledger)
    record = world.ledger.record_observations
    written: list[int] = []

    def failing(run_id: int | None, observations: Sequence[Observation], **kw: Any) -> Any:
        if any(o.ticket_id == 2 for o in observations):
            raise RuntimeError("the server went away")
        written.extend(o.ticket_id for o in observations)
        return record(run_id, observations, **kw)

    world.ledger.record_observations = failing  # type: ignore[method-assign]
    changed = world.clock.now + timedelta(minutes=5)
    _pages(world, *([TicketView(n, State.SOFT_DELETED, changed, actor_id=7)] for n in (1, 2, 3)))
    world.clock.advance(minutes=10)
    with pytest.raises(RuntimeError, match="went away"):
        world.sync()
    assert world.ledger.get_cursor(SO) == "page-1"
    assert written == [1]
    assert world.ledger.side_states(SO, [3])[3][0] is State.ACTIVE
    assert world.zd.submitted == []


def test_writes_behind_come_back_in_order_and_an_error_is_raised_once(engine: Engine) -> None:
    from bridge.ledger.behind import DEPTH, SWITCH_INTERVAL, WriteBehind

    assert DEPTH == 2
    writer: WriteBehind[int] = WriteBehind(engine)
    results: list[int] = []
    ran: list[int] = []
    release = threading.Event()

    def held() -> int:
        release.wait(5)
        ran.append(1)
        return 1

    interval = sys.getswitchinterval()
    writer.submit(held, results.append, label=1)
    assert sys.getswitchinterval() == pytest.approx(min(interval, SWITCH_INTERVAL))
    # a connection wanted meanwhile waits for the write in flight
    waited = threading.Thread(target=lambda: engine.connect().close())
    waited.start()
    waited.join(0.2)
    assert waited.is_alive()

    def broken() -> int:
        ran.append(2)
        raise ValueError("refused")

    # a second write is handed over without waiting for the first (two in flight)
    handed = threading.Thread(target=writer.submit, args=(broken, results.append, 2))
    handed.start()
    handed.join(5)
    assert not handed.is_alive()
    assert writer.labels == (1, 2)
    release.set()
    waited.join(5)
    assert not waited.is_alive()  # ... and the connection waited for both
    assert ran == [1, 2]
    assert results == []  # each result is its caller's, when settled

    def third() -> int:
        ran.append(3)
        return 3

    # a third waits for the oldest (settled: its result handed back); it never runs, for
    # the write before it failed, and that failure is raised once, at the next settle
    writer.submit(third, results.append, label=3)
    assert results == [1]
    with pytest.raises(ValueError, match="refused"):
        writer.settle()
    assert writer.labels == ()
    writer.settle()
    assert ran == [1, 2]
    assert results == [1]
    # the writer goes on after a failure was heard of
    writer.submit(lambda: 4, results.append, label=4)
    writer.close()
    assert results == [1, 4]
    assert sys.getswitchinterval() == interval
    engine.connect().close()  # closed: nothing left to wait for


def test_one_write_in_flight_at_depth_one(engine: Engine) -> None:
    from bridge.ledger.behind import WriteBehind

    writer: WriteBehind[int] = WriteBehind(engine, depth=1)
    results: list[int] = []
    writer.submit(lambda: 1, results.append, label=1)
    writer.submit(lambda: 2, results.append, label=2)
    assert results == [1]
    assert writer.labels == (2,)
    writer.close()
    assert results == [1, 2]


def test_a_write_stays_in_flight_when_the_wait_for_it_is_interrupted(engine: Engine) -> None:
    # Ctrl-C while the run waits for a write: the run's last writes (its outcome) must
    # still come after it, so the write is not forgotten
    import signal

    from bridge.ledger.behind import WriteBehind

    writer: WriteBehind[int] = WriteBehind(engine)
    release = threading.Event()
    results: list[int] = []
    writer.submit(lambda: int(release.wait(5)), results.append, label=7)

    def interrupt(*_args: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        with pytest.raises(KeyboardInterrupt):
            writer.settle()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    labels = [writer.labels]
    waited = threading.Thread(target=lambda: engine.connect().close())
    waited.start()
    waited.join(0.2)
    assert waited.is_alive()  # still waits for the write
    release.set()
    waited.join(5)
    writer.close()
    assert labels == [(7,)]
    assert results == [1]
