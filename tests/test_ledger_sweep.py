"""The sweep's due links, and what an idle run reads to find that none is due (issue 18:
each idle run read every pair twice, once a side, to find none)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from bridge.core.model import Cause, Decision, Observation, Outcome, Side, State, Transition
from bridge.ledger import Ledger, LinkRow
from bridge.ledger.sync import PlannedDecision, RunFacts
from bridge.ledger.times import to_micros
from bridge.vendors.registry import SIDES, SUPEROFFICE, ZENDESK
from tests.test_ledger_bulk import T0

HOUR = timedelta(hours=1)


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    """Three links: found on Zendesk at T0, T0 + 1 h and T0 + 2 h; the third one purged."""
    with Ledger.open(ledger_url, sides=SIDES) as opened:
        opened.import_links([LinkRow(n, 1000 + n, 5000 + n) for n in (1, 2, 3)], origin="csv")
        for n, state in ((1, State.ACTIVE), (2, State.SOFT_DELETED), (3, State.PURGED)):
            seen = Observation(
                link_id=n, side=ZENDESK, ticket_id=5000 + n, state=state, seen_at=T0 + n * HOUR
            )
            opened.record_observations(None, [seen], cursors={})
        yield opened


def _due(ledger: Ledger, side: Side, before: datetime, **options: Any) -> list[int]:
    return [ids.link_id for ids, _state in ledger.sweep_due(side, before, 10, **options)]


def _pair_reads(ledger: Ledger, side: Side, before: datetime) -> tuple[list[int], list[str]]:
    """The links due, and the statements that named pair_state on the way."""
    statements: list[str] = []

    def grab(_c: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if "pair_state" in statement:
            statements.append(statement)

    event.listen(ledger.engine, "before_cursor_execute", grab)
    try:
        return _due(ledger, side, before), statements
    finally:
        event.remove(ledger.engine, "before_cursor_execute", grab)


def test_an_idle_sweep_reads_no_pair_until_the_oldest_is_due(ledger: Ledger) -> None:
    due, reads = _pair_reads(ledger, ZENDESK, T0)
    assert (due, len(reads)) == ([], 2)  # none due: the look, then the oldest's time noted
    due, reads = _pair_reads(ledger, ZENDESK, T0 + HOUR - timedelta(microseconds=1))
    assert (due, reads) == ([], [])
    # the oldest is due to the microsecond, and the rest in their turn; purged stays out
    assert _due(ledger, ZENDESK, T0 + HOUR) == [1]
    assert _due(ledger, ZENDESK, T0 + 9 * HOUR) == [1, 2]


def test_the_pairs_found_again_move_the_noted_time_only_forward(ledger: Ledger) -> None:
    assert _due(ledger, ZENDESK, T0) == []  # the oldest (link 1, T0 + 1 h) noted
    ledger.mark_checked(ZENDESK, [1], T0 + 5 * HOUR)
    # link 2 is now the oldest: the note (T0 + 1 h) still holds below it
    assert _due(ledger, ZENDESK, T0 + 2 * HOUR) == [2]
    ledger.mark_checked(ZENDESK, [2], T0 + 6 * HOUR)
    assert _due(ledger, ZENDESK, T0 + 4 * HOUR) == []  # noted again: T0 + 5 h
    _, reads = _pair_reads(ledger, ZENDESK, T0 + 5 * HOUR - timedelta(microseconds=1))
    assert reads == []
    assert _due(ledger, ZENDESK, T0 + 5 * HOUR) == [1]


def test_each_side_and_a_dry_run_keep_their_own(ledger: Ledger) -> None:
    # a dry run notes nothing: the next look reads the pairs again
    assert _due(ledger, ZENDESK, T0, remember=False) == []
    assert len(_pair_reads(ledger, ZENDESK, T0)[1]) == 2
    # a side never read has no pair to sweep, and no note of the other side's
    assert _due(ledger, SUPEROFFICE, T0 + 9 * HOUR) == []
    seen = Observation(link_id=1, side=SUPEROFFICE, ticket_id=1001, state=State.ACTIVE, seen_at=T0)
    ledger.record_observations(None, [seen], cursors={})
    assert _due(ledger, SUPEROFFICE, T0) == [1]


def test_a_runs_facts_hold_what_each_read_would_find(ledger: Ledger) -> None:
    # one statement for the cursors, the sweep floors, the sides with a link never read
    # and whether `bridge serve` ever ran: each as its own read finds it
    assert ledger.run_facts(ran="hints") == RunFacts(
        {}, {}, frozenset({SUPEROFFICE}), ran=False, sent=False
    )
    assert _due(ledger, ZENDESK, T0) == []  # none due: the floor noted
    seen = [
        Observation(link_id=n, side=SUPEROFFICE, ticket_id=1000 + n, state=State.ACTIVE, seen_at=T0)
        for n in (1, 2, 3)
    ]
    ledger.record_observations(None, seen, cursors={SUPEROFFICE: "c-1"})
    served = ledger.start_run("hints", holder="test")
    assert served.id is not None
    ledger.finish_run(served.id, outcome="converged", counts={}, cursors={ZENDESK: "z-1"})
    facts = ledger.run_facts(ran="hints")
    assert facts == RunFacts(
        {SUPEROFFICE: "c-1", ZENDESK: "z-1"},
        {ZENDESK: to_micros(T0 + HOUR)},
        frozenset(),
        ran=True,
        sent=False,
    )
    assert list(ledger.unobserved(SUPEROFFICE)) == list(ledger.unobserved(ZENDESK)) == []
    for before in (T0 + HOUR / 2, T0 + HOUR, T0 + 2 * HOUR):
        read_here = _due(ledger, ZENDESK, before, remember=False)
        assert _due(ledger, ZENDESK, before, floors=facts.sweep_floors) == read_here
    assert _due(ledger, ZENDESK, T0 + HOUR / 2, floors=facts.sweep_floors) == []
    assert _due(ledger, ZENDESK, T0 + HOUR, floors=facts.sweep_floors) == [1]


def test_a_runs_facts_say_whether_an_operation_is_sent(ledger: Ledger) -> None:
    # a run looks for its predecessors' sent operations (to follow their jobs) only when
    # one is: planned ones are not
    apply = Decision(Outcome.APPLY, ZENDESK, (Transition.SOFT_DELETE,), State.SOFT_DELETED, "c")
    pair = ledger.load_pairs([1])[1]
    assert ledger.record_decisions(None, [PlannedDecision(pair, apply, Cause.USER)]) == 1
    assert ledger.run_facts(ran="hints").sent is False
    planned = [op.id for op in ledger.operations(["planned"])]
    ledger.mark_sent(planned, run_id=None, batch="b1")
    assert ledger.run_facts(ran="hints").sent is True
