"""Looking up soft-deleted Zendesk tickets in chunks: one walk of the deleted list serves a
run's chunks, and what was deleted after the walk began is still found (no clock is
compared, no stale answer is given after our own write)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime

import pytest

from bridge.core.model import State, Transition
from bridge.sandbox import SimClock
from bridge.vendors.zendesk.adapter import DELETED_LIST_BUDGET, ZendeskAdapter
from bridge.vendors.zendesk.sim.simulator import ZendeskSimulator

START = datetime(2024, 5, 1, 12, tzinfo=UTC)
LISTING = "GET deleted_tickets"


@pytest.fixture
def sim() -> Iterator[ZendeskSimulator]:
    sim = ZendeskSimulator(clock=SimClock(START, frozen=True))
    sim.configure({"rate_limits": False})
    with sim:
        yield sim


def adapter(sim: ZendeskSimulator) -> ZendeskAdapter:
    return ZendeskAdapter(
        base_url=sim.base_url,
        email=sim.email,
        token="sandbox-token",
        sleep=sim.advance,
        clock=sim.clock.now,
    )


def listing_pages(sim: ZendeskSimulator) -> int:
    routes: dict[str, int] = sim.counts()["routes"]
    return routes.get(LISTING, 0)


def deleted(sim: ZendeskSimulator, count: int) -> list[int]:
    ids = sim.seed_tickets(count=count)
    sim.agent_act("delete", ids, agent=(7, "Ann"))
    sim.advance(1)
    return ids


def test_a_runs_chunks_share_one_walk_of_the_deleted_list(sim: ZendeskSimulator) -> None:
    ids = deleted(sim, 300)  # three pages of the listing
    zendesk = adapter(sim)
    sim.counters.reset()
    views = {}
    for start in range(0, 300, 100):
        views.update(zendesk.lookup(ids[start : start + 100]))
    assert {views[i].state for i in ids} == {State.SOFT_DELETED}
    # one pass over three pages (and the page that says there is no more), not one per chunk
    assert listing_pages(sim) <= 4


def test_a_deletion_after_the_walk_began_is_still_found(sim: ZendeskSimulator) -> None:
    early = deleted(sim, 250)
    zendesk = adapter(sim)
    assert zendesk.lookup(early[:100])[early[0]].state is State.SOFT_DELETED
    late = deleted(sim, 1)
    sim.counters.reset()
    view = zendesk.lookup(late)[late[0]]
    assert view.state is State.SOFT_DELETED
    assert view.actor_id == 7
    # the earlier walk read on to its end (two pages), then one fresh page found it
    assert listing_pages(sim) <= 3
    assert sim.counts()["routes"].get("GET tickets/{id}", 0) == 0


def test_our_own_write_ends_the_walks_reuse(sim: ZendeskSimulator) -> None:
    ids = deleted(sim, 5)
    zendesk = adapter(sim)
    assert zendesk.lookup(ids)[ids[0]].state is State.SOFT_DELETED
    zendesk.submit(Transition.RESTORE, ids[:1])
    sim.counters.reset()
    assert zendesk.lookup(ids[:2])[ids[1]].state is State.SOFT_DELETED
    assert listing_pages(sim) == 1  # read anew from the top


class _Recorded:
    """A shared budget that only records what it is asked for."""

    def __init__(self) -> None:
        self.kinds: list[str] = []

    def take_call(self, kind: str = "calls") -> None:
        self.kinds.append(kind)

    def waiting(self) -> AbstractContextManager[None]:
        return nullcontext()

    def jobs_running(self) -> int:
        return 0

    def hold_job(self, job_id: str) -> None:
        del job_id

    def release_jobs(self, job_ids: list[str]) -> None:
        del job_ids


def test_with_a_shared_budget_each_listing_page_is_counted_in_its_own_kind(
    sim: ZendeskSimulator,
) -> None:
    """The deleted list has its own 10 a minute per account: pairs sharing the account
    count its pages apart from their other calls."""
    ids = deleted(sim, 150)  # two pages
    budget = _Recorded()
    zendesk = ZendeskAdapter(
        base_url=sim.base_url,
        email=sim.email,
        token="sandbox-token",
        sleep=sim.advance,
        clock=sim.clock.now,
        budget=budget,
    )
    sim.counters.reset()
    zendesk.lookup(ids[-100:])
    assert budget.kinds.count(DELETED_LIST_BUDGET) == listing_pages(sim) >= 1
    assert budget.kinds.count("calls") == sum(sim.counts()["routes"].values())
