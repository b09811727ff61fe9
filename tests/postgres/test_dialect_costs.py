"""What the PostgreSQL dialect does so that a large sync is not paid for twice on the server
(bridge/ledger/dialect.py; found by bench/large_tenant.py --backends, issue 18)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event

from bridge.core.model import Observation, State
from bridge.ledger import Ledger, LinkRow, sync
from bridge.vendors.registry import SIDES

BATCH = 2_000
BATCHES = 10


def test_a_ledger_session_waits_30_s_for_a_lock_and_never_jit_compiles(
    postgres_url: str,
) -> None:
    # JIT compiled a staged batch's statements for ~200 ms each, for 1 ms of work
    ledger = Ledger.open(postgres_url, sides=SIDES)
    try:
        with ledger.engine.connect() as connection:
            assert connection.exec_driver_sql("SHOW jit").scalar() == "off"
            assert connection.exec_driver_sql("SHOW lock_timeout").scalar() == "30s"
    finally:
        ledger.close()


def test_a_staging_table_emptied_batch_after_batch_does_not_grow(postgres_url: str) -> None:
    # autovacuum never vacuums a TEMP table: rows deleted batch after batch stayed as dead
    # tuples that every later statement scanned; emptied by the dialect, it keeps one
    # batch's size
    ledger = Ledger.open(postgres_url, sides=SIDES)
    dialect = ledger.dialect
    try:
        with ledger.engine.connect() as connection:
            sizes = []
            for batch in range(BATCHES):
                with connection.begin():
                    dialect.create_staging(connection, "probe_stage", "n BIGINT NOT NULL")
                    dialect.clear_staging(connection, "probe_stage")
                    rows = [(batch * BATCH + n,) for n in range(BATCH)]
                    dialect.bulk_insert(connection, "probe_stage", ("n",), rows)
                    count = connection.exec_driver_sql("SELECT count(*) FROM probe_stage")
                    assert count.scalar() == BATCH
                    size = connection.exec_driver_sql("SELECT pg_relation_size('probe_stage')")
                    sizes.append(int(size.scalar() or 0))
                    dialect.clear_staging(connection, "probe_stage")
            assert sizes[0] > 0
            assert max(sizes) <= sizes[0], sizes
    finally:
        ledger.close()


def _explained(ledger: Ledger) -> tuple[list[str], Callable[[], None]]:
    """The plans of the statements `ledger` sends on pair_state or link, each explained on
    its own cursor just before it runs (a plain EXPLAIN does not run it); and a function
    that stops listening."""
    plans: list[str] = []

    def explain(
        _conn: Any, cursor: Any, statement: str, params: Any, _context: Any, many: bool
    ) -> None:
        words = statement.lstrip().split(None, 1)[0].upper()
        if many or words not in ("SELECT", "UPDATE", "WITH") or "pg_advisory" in statement:
            return
        if "pair_state" in statement or "link" in statement:
            cursor.execute("EXPLAIN " + statement, params)
            plan = "\n".join(str(row[0]) for row in cursor.fetchall())
            plans.append(" ".join(statement.split())[:80] + "\n" + plan)

    event.listen(ledger.engine, "before_cursor_execute", explain)
    return plans, lambda: event.remove(ledger.engine, "before_cursor_execute", explain)


def test_a_first_syncs_batches_find_their_pairs_by_key_on_the_imports_statistics(
    postgres_url: str,
) -> None:
    # autovacuum analyzes a fresh import (every state NULL, nothing pending) before the
    # first sync runs; planned on those statistics, recording a batch scanned the whole of
    # pair_state (a hash join per batch) and read `first_state IS NOT NULL` as an index
    # range that grew batch after batch, and a second side's link lookup scanned link
    links, page = 20_000, 1_000
    ledger = Ledger.open(postgres_url, sides=SIDES)
    try:
        rows = (LinkRow(n, 100_000 + n, 200_000 + n) for n in range(1, links + 1))
        assert ledger.import_links(rows, origin="csv").created == links
        with ledger.engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE link, pair_state")
        now = datetime(2026, 3, 2, 9, tzinfo=UTC)
        plans, stop = _explained(ledger)
        try:
            for side, base in ((SIDES.first, 100_000), (SIDES.second, 200_000)):
                for start in (1, links // 2):
                    ids = range(start, start + page)
                    ledger.links_for_tickets(side, [base + n for n in ids])
                    ledger.side_states(side, ids)
                    ledger.links_and_states(side, [base + n for n in ids])  # both, joined
                    observed = [
                        Observation(n, side, base + n, State.ACTIVE, now, status_id=3, read="r")
                        for n in ids
                    ]
                    ledger.record_observations(None, observed)
        finally:
            stop()
        kinds = {plan.split("\n", 1)[0][:40] for plan in plans}
        assert len(kinds) >= 4, kinds  # the lookups, the states, the batch's update
        for plan in plans:
            assert "Seq Scan on pair_state" not in plan, plan
            assert "Seq Scan on link" not in plan, plan
            assert "ix_pair_state_first_state" not in plan, plan
        # and what the batches recorded is there
        pairs = ledger.load_pairs([1, links // 2 + page - 1])
        assert all(p.state(side) is State.ACTIVE for p in pairs.values() for side in SIDES)
    finally:
        ledger.close()


def test_a_bulk_agreement_of_a_whole_tenant_refreshes_the_planners_statistics(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a first sync decides every pair at once: the next run was planned on statistics from
    # before it, and walked the old row versions' index entries; a day's agreements leave
    # autovacuum to it
    monkeypatch.setattr(sync, "_RESHAPED", 50)
    ledger = Ledger.open(postgres_url, sides=SIDES)
    now = datetime(2026, 3, 2, 9, tzinfo=UTC)

    def analyzed() -> tuple[int, int]:
        with ledger.engine.connect() as connection:
            row = connection.exec_driver_sql(
                "SELECT analyze_count, vacuum_count FROM pg_stat_user_tables "
                "WHERE relname = 'pair_state'"
            ).one()
        return int(row[0] or 0), int(row[1] or 0)

    def agree(first: int, last: int) -> int:
        ledger.record_observations(
            None,
            [
                Observation(n, side, n, State.ACTIVE, now)
                for side in SIDES
                for n in range(first, last + 1)
            ],
        )
        return ledger.agree_where_equal(unsettled=False)

    try:
        rows = (LinkRow(n, n, n) for n in range(1, 81))
        assert ledger.import_links(rows, origin="csv").created == 80
        analyzes, vacuums = analyzed()
        assert agree(1, 30) == 30
        assert analyzed() == (analyzes, vacuums)
        assert agree(31, 80) == 50
        assert analyzed() == (analyzes + 1, vacuums + 1)
    finally:
        ledger.close()


def test_a_run_reads_no_whole_run_table_for_dead_runs_or_serve_runs(postgres_url: str) -> None:
    # each run looked for runs left `running` and for a `bridge serve` run by reading every
    # run the pair ever made (a run a minute: half a million a year)
    runs = 50_000
    ledger = Ledger.open(postgres_url, sides=SIDES)
    try:
        with ledger.engine.begin() as connection:
            connection.exec_driver_sql(
                "INSERT INTO run (kind, holder, started_at, outcome, dry_run, counts) "
                f"SELECT 'sync', 'h', n, 'converged', false, '{{}}' "
                f"FROM generate_series(1, {runs}) n"
            )
            connection.exec_driver_sql("ANALYZE run")
        plans: list[str] = []

        def explain(
            _conn: Any, cursor: Any, statement: str, params: Any, _context: Any, many: bool
        ) -> None:
            if not many and statement.lstrip().upper().startswith("SELECT") and "run" in statement:
                cursor.execute("EXPLAIN " + statement, params)
                plans.append("\n".join(str(row[0]) for row in cursor.fetchall()))

        event.listen(ledger.engine, "before_cursor_execute", explain)
        try:
            run = ledger.start_run("sync", holder="test")
            assert ledger.run_facts(ran="hints").ran is False
        finally:
            event.remove(ledger.engine, "before_cursor_execute", explain)
        assert run.outcome == "running"
        assert len(plans) >= 2, plans
        for plan in plans:
            assert "Seq Scan on run" not in plan, plan
            assert "Seq Scan on pair_state" not in plan, plan
    finally:
        ledger.close()


def test_a_pages_lookup_reads_each_pair_once(postgres_url: str) -> None:
    # a subquery per column looked each link's pair up twice (its state, and the time of a
    # soft delete): a third of the look-up's buffers in a first sync; one LATERAL reads it
    # once, and the rows are as they were
    links = 3_000
    ledger = Ledger.open(postgres_url, sides=SIDES)
    try:
        rows = (LinkRow(n, 100_000 + n, 200_000 + n) for n in range(1, links + 1))
        assert ledger.import_links(rows, origin="csv").created == links
        now = datetime(2026, 3, 2, 9, tzinfo=UTC)
        side = SIDES.first
        ledger.record_observations(
            None,
            [
                Observation(n, side, 100_000 + n, state, now, vendor_time=deleted)
                for n, state, deleted in ((1, State.ACTIVE, None), (2, State.SOFT_DELETED, now))
            ],
        )
        with ledger.engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE link, pair_state")
        plans, stop = _explained(ledger)
        try:
            found, held = ledger.links_and_states(side, [100_001, 100_002, 100_003, 999])
        finally:
            stop()
        assert found == {100_001: 1, 100_002: 2, 100_003: 3}
        assert held == {1: (State.ACTIVE, None), 2: (State.SOFT_DELETED, now)}
        [plan] = plans
        assert plan.count("on pair_state") == 1, plan
    finally:
        ledger.close()
