"""The set-based agreement pass (`Ledger.agree_where_equal`) decides exactly as the decision
per link does: two ledgers holding every combination of base, side states, pending flag,
attention and open operation, one decided with the pass (info level) and one link by link
(debug level, where the pass is off), end with the same pairs, events and outbox."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog
from sqlalchemy import event, text

from bridge.core.decide import Policy
from bridge.core.model import State
from bridge.ledger import Ledger, LinkRow
from bridge.run.decide import Decider, Planner, ThreeWay
from bridge.run.migrate import MigrationOptions, MigrationPlanner
from bridge.run.state import RunContext, RunOptions
from bridge.vendors.registry import SIDES, SUPEROFFICE, ZENDESK

STATES = (None, State.ACTIVE, State.SOFT_DELETED, State.PURGED)
#: base, first, second, pending, attention, an open operation
CASES = list(
    itertools.product(
        STATES, STATES, STATES, (False, True), (None, "conflict", "failed"), (False, True)
    )
)


def _value(state: State | None) -> str | None:
    return None if state is None else state.value


def _seed(ledger: Ledger) -> None:
    rows = [LinkRow(n, 1000 + n, 5000 + n) for n in range(1, len(CASES) + 1)]
    assert ledger.import_links(rows, origin="csv").created == len(CASES)
    with ledger.session() as session:
        connection = session.connection()
        for link, (base, first, second, pending, attention, busy) in enumerate(CASES, 1):
            connection.execute(
                text(
                    "UPDATE pair_state SET base = :base, base_version = 3, first_state = "
                    ":first, second_state = :second, pending_decision = :pending, "
                    "attention = :attention, attention_reason = :reason WHERE link_id = :link"
                ),
                {
                    "base": _value(base),
                    "first": _value(first),
                    "second": _value(second),
                    "pending": pending,
                    "attention": attention,
                    "reason": attention and f"{attention} before",
                    "link": link,
                },
            )
            if busy:
                connection.execute(
                    text(
                        "INSERT INTO operation (key, link_id, target, ticket_id, transition, "
                        "step, base_version, cause, status, attempts, created_at, updated_at) "
                        "VALUES (:key, :link, :target, :ticket, 'soft_delete', 0, 3, 'user', "
                        "'sent', 1, 0, 0)"
                    ),
                    {"key": f"{link}:x", "link": link, "target": ZENDESK, "ticket": 5000 + link},
                )


def _snapshot(ledger: Ledger) -> dict[str, list[tuple[Any, ...]]]:
    """Every row a decision may write, without the times it was written at."""
    queries = {
        "pairs": "SELECT link_id, base, base_version, base_at IS NULL, pending_decision, "
        "attention, attention_reason FROM pair_state ORDER BY link_id",
        "events": "SELECT link_id, kind, side, transition, detail FROM event "
        "WHERE link_id IS NOT NULL ORDER BY link_id, id",
        "operations": "SELECT key, link_id, target, transition, step, base_version, status "
        "FROM operation ORDER BY key",
    }
    with ledger.session() as session:
        connection = session.connection()
        return {
            name: [tuple(r) for r in connection.execute(text(q))] for name, q in queries.items()
        }


@pytest.fixture
def ledgers(
    ledger_url: str, more_ledger_urls: Callable[[], str]
) -> Iterator[tuple[Ledger, Ledger]]:
    """Two ledgers seeded alike, on each backend in turn (tests/conftest.py)."""
    with (
        Ledger.open(ledger_url, sides=SIDES) as bulk,
        Ledger.open(more_ledger_urls(), sides=SIDES) as each,
    ):
        _seed(bulk)
        _seed(each)
        yield bulk, each


def _decide(ledger: Ledger, planner: Planner, *, level: int, kind: str) -> dict[str, int]:
    ctx = RunContext(ledger, {}, SIDES, RunOptions(kind=kind))
    ctx.state.run_id = ledger.start_run(kind, holder="test").id
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(level))
    try:
        Decider(ctx, planner).decide_pending()
    finally:
        structlog.reset_defaults()
    return dict(ctx.state.counts)


PLANNERS: dict[str, Planner] = {
    "sync": ThreeWay(Policy(), SIDES),
    "migrate": MigrationPlanner(MigrationOptions(source=SUPEROFFICE, target=ZENDESK)),
}


@pytest.mark.parametrize("kind", PLANNERS)
def test_the_bulk_pass_decides_as_each_link_would(
    ledgers: tuple[Ledger, Ledger], kind: str
) -> None:
    bulk, each = ledgers
    planner = PLANNERS[kind]
    with_pass = _decide(bulk, planner, level=logging.INFO, kind=kind)
    link_by_link = _decide(each, planner, level=logging.DEBUG, kind=kind)
    assert with_pass == link_by_link
    assert with_pass["decision.agree"] > 0
    assert _snapshot(bulk) == _snapshot(each)


def test_the_pass_leaves_excluded_links_and_counts_what_it_decided(
    ledgers: tuple[Ledger, Ledger],
) -> None:
    bulk, _ = ledgers
    agreeing = [
        link
        for link, (_, first, second, pending, attention, busy) in enumerate(CASES, 1)
        if first is not None and first == second and pending and not attention and not busy
    ]
    decided = bulk.agree_where_equal(unsettled=False, exclude=agreeing[:2])
    assert decided == len(agreeing) - 2
    pairs = bulk.load_pairs(agreeing)
    assert [pairs[link].pending_decision for link in agreeing[:2]] == [True, True]
    assert not any(pairs[link].pending_decision for link in agreeing[2:])
    assert all(pairs[link].base == pairs[link].first_state for link in agreeing[2:])
    assert bulk.agree_where_equal(unsettled=False) == 2


def test_with_no_pair_pending_the_pass_writes_nothing(ledgers: tuple[Ledger, Ledger]) -> None:
    # an idle run's: one read by the pending index, no write transaction (on PostgreSQL
    # the lock, the UPDATE and COMMIT were four round trips, twice a run)
    bulk, _ = ledgers
    assert bulk.agree_where_equal(unsettled=False) > 0
    with bulk.engine.begin() as c:
        c.execute(text("UPDATE pair_state SET pending_decision = false"))
    statements: list[str] = []

    def grab(_c: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        statements.append(statement)

    event.listen(bulk.engine, "before_cursor_execute", grab)
    try:
        assert bulk.agree_where_equal(unsettled=False) == 0
    finally:
        event.remove(bulk.engine, "before_cursor_execute", grab)
    # (SQLite begins each transaction, a read's too, with BEGIN IMMEDIATE)
    [read] = [s for s in statements if s != "BEGIN IMMEDIATE"]
    assert read.startswith("SELECT pair_state.link_id"), statements
