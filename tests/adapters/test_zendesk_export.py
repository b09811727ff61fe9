"""The Zendesk adapter's incremental export at page boundaries, against the simulator over
real HTTP (frozen clock): nothing lost, nothing read again forever, the export's own limit
kept without a 429, an idle read one call."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bridge.budgets import Budgets, TurnTaking
from bridge.core.contract import AccountBusyError, ChangePage, PermanentError
from bridge.core.model import State
from bridge.sandbox import SimClock
from bridge.vendors.zendesk.adapter import EXPORT_BUDGET, ZendeskAdapter
from bridge.vendors.zendesk.sim.simulator import ZendeskSimulator

START = datetime(2024, 5, 1, 12, tzinfo=UTC)
ANN = (7, "Ann Agent")
EXPORT = "GET incremental/tickets/cursor"


@pytest.fixture
def sim() -> Iterator[ZendeskSimulator]:
    sim = ZendeskSimulator(clock=SimClock(START, frozen=True))
    sim.configure({"rate_limits": False})
    with sim:
        yield sim


class Sleeps(list[float]):
    def __init__(self, sim: ZendeskSimulator) -> None:
        super().__init__()
        self._sim = sim

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        self._sim.advance(seconds)


def adapter(sim: ZendeskSimulator, *, per_page: int = 10) -> ZendeskAdapter:
    return ZendeskAdapter(
        base_url=sim.base_url,
        email=sim.email,
        token="sandbox-token",
        sleep=Sleeps(sim),
        clock=sim.clock.now,
        bridge_user_id=1,
        export_per_page=per_page,
    )


def states(pages: list[ChangePage]) -> dict[int, State]:
    """The newest state each ticket was read in, over the pages in order."""
    return {v.ticket_id: v.state for page in pages for v in page.views}


def export_requests(sim: ZendeskSimulator) -> int:
    return int(sim.counts()["routes"].get(EXPORT, 0))


def test_one_second_across_many_pages_is_read_once(sim: ZendeskSimulator) -> None:
    """35 tickets sharing one `generated_timestamp`, read 10 a page: each once, in order,
    and the read after it is one call that finds nothing."""
    ids = sim.seed_tickets(count=35)
    sim.advance(120)
    pages = list(adapter(sim).changes(None))
    assert [v.ticket_id for page in pages for v in page.views] == ids
    assert [page.complete for page in pages] == [False] * 3 + [True]
    sim.counters.reset()
    idle = adapter(sim)
    again = list(idle.changes(pages[-1].cursor))
    assert [v for page in again for v in page.views] == []
    assert idle.http.calls == 1
    assert export_requests(sim) == 1
    assert again[-1].cursor == pages[-1].cursor


def test_a_read_stopped_between_pages_resumes_without_loss(sim: ZendeskSimulator) -> None:
    """A page's stored cursor is where it began: resuming from any page's cursor reads that
    page again and everything after it."""
    ids = sim.seed_tickets(count=35)
    sim.advance(120)
    pages = list(adapter(sim).changes(None))
    for stopped in pages[:-1]:
        resumed = list(adapter(sim).changes(stopped.cursor))
        read = {v.ticket_id for page in resumed for v in page.views}
        index = pages.index(stopped)
        assert read == {v.ticket_id for page in pages[index:] for v in page.views}
    assert {v.ticket_id for v in pages[0].views} == set(ids[:10])


def test_a_ticket_changed_while_pages_are_read(sim: ZendeskSimulator) -> None:
    """One ticket already read and one not yet read change between pages: both come again
    later in the same read, with their new state."""
    ids = sim.seed_tickets(count=30)
    sim.advance(120)
    cursor = list(adapter(sim).changes(None))[-1].cursor
    sim.agent_act("update", ids, fields={"priority": "low"})
    sim.advance(120)
    reader = adapter(sim).changes(cursor)
    pages = [next(reader)]
    sim.agent_act("delete", [ids[0], ids[25]], agent=ANN)
    sim.advance(1)
    pages += list(reader)
    read = states(pages)
    assert set(read) == set(ids)
    assert (read[ids[0]], read[ids[25]]) == (State.SOFT_DELETED, State.SOFT_DELETED)
    assert pages[-1].complete


@pytest.mark.parametrize("stop_after", [2, None])
def test_the_running_second_is_stored_as_a_start_time(
    sim: ZendeskSimulator, stop_after: int | None
) -> None:
    """Rows of the second still running: a change later in that second to a lower id sorts
    before any cursor inside it, so the position stored is the second's start time; the
    change is read next time, whether the read ended or stopped between pages."""
    ids = sim.seed_tickets(count=25)
    sim.advance(120)
    first = adapter(sim)
    cursor = list(first.changes(None))[-1].cursor
    sim.agent_act("update", ids, fields={"priority": "low"})  # all in the running second
    pages = list(adapter(sim).changes(cursor))
    stored = (pages[stop_after - 1] if stop_after else pages[-1]).cursor
    now = int(sim.clock.now().timestamp())
    if stop_after is None:
        assert stored == f"t:{now}"
    sim.agent_act("delete", [ids[2]], agent=ANN)  # same second, a low id
    sim.advance(5)
    later = states(list(adapter(sim).changes(stored)))
    assert later[ids[2]] is State.SOFT_DELETED
    settled = list(adapter(sim).changes(stored))[-1].cursor
    assert settled.startswith("c:")  # the second is over: a cursor again
    idle = adapter(sim)
    assert [v for page in idle.changes(settled) for v in page.views] == []
    assert idle.http.calls == 1


def test_a_refused_cursor_falls_back_to_the_last_rows_second(sim: ZendeskSimulator) -> None:
    """The export refuses the stored cursor (expired): the read starts again from the
    export time of the last row read before it, once; nothing after it is lost."""
    ids = sim.seed_tickets(count=12)
    sim.advance(120)
    pages = list(adapter(sim).changes(None))
    cursor = pages[-1].cursor
    stamp = int(START.timestamp())
    assert cursor.endswith(f"@{stamp}")
    sim.agent_act("delete", ids[:3], agent=ANN)
    sim.advance(60)
    sim.add_fault("status", status=400, route=EXPORT, count=1)
    reader = adapter(sim)
    read = states(list(reader.changes(cursor)))
    assert {i: read[i] for i in ids[:3]} == dict.fromkeys(ids[:3], State.SOFT_DELETED)
    assert set(read) == set(ids)  # the second of the last row read, again: harmless
    # refused once, then the 12 rows from the start time: two pages
    assert export_requests(sim) == len(pages) + 1 + 2


def test_an_old_cursor_without_its_second_falls_back_to_the_configured_start(
    sim: ZendeskSimulator,
) -> None:
    """A cursor stored before positions carried their second, and unreadable: the
    export answers 400 and the read starts from the configured start time."""
    ids = sim.seed_tickets(count=3)
    sim.advance(120)
    read = states(list(adapter(sim).changes("c:bm90LWEtY3Vyc29y")))
    assert set(read) == set(ids)


def test_a_cursor_refused_twice_fails_the_read(sim: ZendeskSimulator) -> None:
    sim.seed_tickets(count=3)
    sim.advance(120)
    cursor = list(adapter(sim).changes(None))[-1].cursor
    sim.add_fault("status", status=400, route=EXPORT, count=1)
    sim.add_fault("status", status=422, route=EXPORT, count=1)
    with pytest.raises(PermanentError):
        list(adapter(sim).changes(cursor))


def test_the_export_limit_is_kept_without_a_429(sim: ZendeskSimulator) -> None:
    """25 pages under the export's 10 a minute: the adapter waits for the window itself
    (as the header says), so no request is refused and none is retried."""
    sim.seed_tickets(count=250)
    sim.advance(120)
    sim.configure({"rate_limits": True})
    reader = adapter(sim)
    began = sim.clock.now()
    pages = list(reader.changes(None))
    assert len(pages) == 25
    assert reader.http.calls == 25
    assert "429" not in sim.counts()["statuses"]
    assert (sim.clock.now() - began).total_seconds() >= 120  # three windows of ten


def test_a_worker_run_gives_back_a_far_turn_before_a_read_not_midway(
    sim: ZendeskSimulator, tmp_path: Path
) -> None:
    """On an account whose export pages a minute are shared (here: one), a worker's run
    gives a far turn back before it reads a page, but waits for the turns of the pages
    after the first: ending midway would read the last page again (its cursor is where
    it began), and a run given one page a turn would never get on."""
    sim.seed_tickets(count=25)
    sim.advance(120)
    sleeps = Sleeps(sim)
    budgets = Budgets(f"sqlite:///{tmp_path / 'ledger.db'}", clock=sim.clock.now, sleep=sleeps)

    def worker_run() -> ZendeskAdapter:
        budget = TurnTaking(budgets, give_back_after=5.0).account(
            "zendesk:x",
            limits={"calls": lambda: 700, EXPORT_BUDGET: lambda: 1},
            job_limit=30,
        )
        return ZendeskAdapter(
            base_url=sim.base_url,
            email=sim.email,
            token="sandbox-token",
            sleep=sleeps,
            clock=sim.clock.now,
            bridge_user_id=1,
            export_per_page=10,
            budget=budget,
        )

    pages = list(worker_run().changes(None))  # three pages, one a minute: waited for
    assert [page.complete for page in pages] == [False, False, True]
    assert sum(len(page.views) for page in pages) == 25
    assert 60 <= sum(sleeps) <= 180, sleeps
    waited = len(sleeps)
    with pytest.raises(AccountBusyError):  # this minute's page is spent: not waited for
        list(worker_run().changes(pages[-1].cursor))
    assert len(sleeps) == waited
    budgets.close()
