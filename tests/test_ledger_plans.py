# SQLite only: asserts SQLite's query plans (PostgreSQL's: tests/postgres/test_dialect_costs.py).
"""What an idle run asks the SQLite ledger for is found by an index, not by reading every
pair (issue 16: at 5,000,000 links each whole read cost about a second of an idle run).

SQLite plans without statistics (bridge never runs ANALYZE), so a plan taken on a small
ledger is the plan of a large one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event
from sqlmodel import SQLModel

from bridge.core.model import Observation, State
from bridge.ledger import LATEST_VERSION, Ledger, LinkRow
from bridge.ledger.tables import PARTIAL
from bridge.vendors.registry import SIDES, SUPEROFFICE, ZENDESK
from tests.test_ledger_bulk import T0

LINKS = 40


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    """Every link read on both sides (what an idle run finds), two flagged for attention."""
    with Ledger.open(f"sqlite:///{tmp_path / 'bridge.db'}", sides=SIDES) as opened:
        rows = [LinkRow(n, 1000 + n, 5000 + n) for n in range(1, LINKS + 1)]
        opened.import_links(rows, origin="csv")
        seen = [
            Observation(link_id=n, side=side, ticket_id=n, state=State.ACTIVE, seen_at=T0)
            for n in range(1, LINKS + 1)
            for side in (SUPEROFFICE, ZENDESK)
        ]
        opened.record_observations(None, seen, cursors={})
        with opened.engine.begin() as c:
            flag = "UPDATE pair_state SET attention = 'conflict' WHERE link_id IN (7, 3)"
            c.exec_driver_sql(flag)
        yield opened


def _plans(ledger: Ledger, work: Callable[[], Any]) -> tuple[Any, list[list[str]]]:
    """`work`'s result, and the query plan of every statement it ran."""
    statements: list[tuple[str, Any]] = []

    def grab(_c: Any, _cursor: Any, statement: str, params: Any, *_rest: Any) -> None:
        statements.append((statement, params))

    event.listen(ledger.engine, "before_cursor_execute", grab)
    try:
        result = work()
    finally:
        event.remove(ledger.engine, "before_cursor_execute", grab)
    plans = []
    with ledger.engine.connect() as c:
        for statement, params in statements:
            rows = c.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params).fetchall()
            plans.append([str(row[3]) for row in rows])
    return result, plans


def _whole_reads(plans: list[list[str]]) -> list[str]:
    """Plan steps that read every row of `link` or `pair_state` (a SCAN of the table or of
    a whole index; a partial index holds only the rows looked for)."""
    return _scans(plans, ("SCAN link", "SCAN pair_state"), "pair_state")


def _scans(plans: list[list[str]], reads: tuple[str, ...], table: str) -> list[str]:
    """The plan steps that start with one of `reads` and use none of `table`'s partial
    indexes on SQLite."""
    partial = {
        str(index.name)
        for index in SQLModel.metadata.tables[table].indexes
        if index.info.get(PARTIAL, {}).get("sqlite")
    }
    return [
        step
        for plan in plans
        for step in plan
        if step.startswith(reads) and not any(f"INDEX {name}" in step for name in partial)
    ]


@pytest.mark.parametrize("side", [SUPEROFFICE, ZENDESK])
def test_the_links_never_read_on_a_side_are_found_by_index(ledger: Ledger, side: str) -> None:
    pages, plans = _plans(ledger, lambda: list(ledger.unobserved(side)))  # type: ignore[arg-type]
    assert pages == []
    assert plans
    assert _whole_reads(plans) == []


def test_the_pairs_flagged_for_attention_are_found_by_index_in_link_order(ledger: Ledger) -> None:
    flagged, plans = _plans(ledger, ledger.attention)
    assert [view.ids.link_id for view in flagged] == [3, 7]
    assert _whole_reads(plans) == []


def test_a_v6_ledger_gains_the_partial_indexes(tmp_path: Path) -> None:
    upgraded = _upgraded(
        tmp_path,
        6,
        "DROP INDEX ix_pair_state_second_unread",
        "DROP INDEX ix_pair_state_attention",
        "CREATE INDEX ix_pair_state_attention ON pair_state (attention)",
    )
    assert "WHERE attention IS NOT NULL" in upgraded["ix_pair_state_attention"]


def _upgraded(tmp_path: Path, version: int, *made_older: str) -> dict[str, str]:
    """The indexes of a ledger made as schema `version` made it (a fresh one, undone by
    `made_older`) and opened by this bridge, which must upgrade it to a fresh ledger's."""
    url = f"sqlite:///{tmp_path / f'v{version}.db'}"
    Ledger.open(url, sides=SIDES).close()
    engine = create_engine(url)
    with engine.begin() as c:
        for statement in made_older:
            c.exec_driver_sql(statement)
        c.exec_driver_sql(f"UPDATE meta SET value = '{version}' WHERE key = 'schema_version'")
    engine.dispose()
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    Ledger.open(fresh, sides=SIDES).close()
    with Ledger.open(url, sides=SIDES) as ledger:
        assert ledger.schema_version() == LATEST_VERSION
        assert ledger.check() == []
    assert _index_sql(url) == _index_sql(fresh)
    return _index_sql(url)


def _index_sql(url: str) -> dict[str, str]:
    engine = create_engine(url)
    with engine.connect() as c:
        rows = c.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        ).fetchall()
    engine.dispose()
    return {str(name): str(sql) for name, sql in rows}


def _run_table_reads(plans: list[list[str]]) -> list[str]:
    """Plan steps that read every row of the run table (the table or a whole index
    scanned; a partial index holds only the rows looked for): what grows with every run
    the pair ever made."""
    return _scans(plans, ("SCAN run",), "run")


def test_a_run_finds_runs_left_running_and_serves_runs_by_index(ledger: Ledger) -> None:
    """Each run looks for runs a dead process left `running` and for a `bridge serve`
    run; with a run a minute the table holds half a million rows a year."""
    for _ in range(3):
        done = ledger.start_run("sync", holder="test")
        assert done.id is not None
        ledger.finish_run(done.id, outcome="converged", counts={})
    dead = ledger.start_run("sync", holder="killed")  # its process died: left running
    started, plans = _plans(ledger, lambda: ledger.start_run("sync", holder="test"))
    assert _run_table_reads(plans) == []
    (aborted,) = [run for run in ledger.recent_runs(10) if run.id == dead.id]
    assert aborted.outcome == "aborted"
    assert started.outcome == "running"
    facts, plans = _plans(ledger, lambda: ledger.run_facts(ran="hints"))
    assert facts.ran is False
    assert facts.unread == frozenset()
    assert plans
    assert _run_table_reads(plans) == []
    assert _whole_reads(plans) == []
    assert ledger.run_facts(ran="sync").ran is True


def test_a_v7_ledger_gains_the_run_indexes(tmp_path: Path) -> None:
    upgraded = _upgraded(tmp_path, 7, "DROP INDEX ix_run_running", "DROP INDEX ix_run_kind")
    assert "WHERE outcome = 'running'" in upgraded["ix_run_running"]
