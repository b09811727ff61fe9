"""What a first sync writes on PostgreSQL, and what it may skip (schema v6 and lazy commits;
bench/large_tenant.py --backends, issue 18): on a real server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Connection, event

from bridge.core.model import Cause, Decision, Observation, Outcome, Side, State, Transition
from bridge.ledger import LATEST_VERSION, Ledger, LinkRow
from bridge.ledger.sync import PlannedDecision
from bridge.vendors.registry import SIDES, ZENDESK
from tests.postgres.cluster import Cluster

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


def _observed(side: str, links: range, state: State = State.ACTIVE) -> list[Observation]:
    base = 1000 if side == SIDES.first else 5000
    return [Observation(n, side, base + n, state, NOW, read="export") for n in links]  # type: ignore[arg-type]


@pytest.fixture
def ledger(postgres_url: str) -> Iterator[Ledger]:
    with Ledger.open(postgres_url, sides=SIDES) as opened:
        # the tests' cluster commits lazily throughout (tests/postgres/cluster.py): this
        # database waits for the disk, as a durable server does
        with opened.engine.begin() as c:
            c.exec_driver_sql(
                "DO $$ BEGIN EXECUTE format('ALTER DATABASE %%I SET synchronous_commit = on', "
                "current_database()); END $$"
            )
        opened.engine.dispose()
        rows = [LinkRow(n, 1000 + n, 5000 + n) for n in range(1, 41)]
        assert opened.import_links(rows, origin="csv").created == 40
        yield opened


def test_only_observations_that_touch_no_operation_commit_without_waiting_for_the_disk(
    ledger: Ledger,
) -> None:
    # a lost observation is read again with its cursor; a lost `sent` mark or planned
    # operation is not: every transaction that writes an operation waits for its commit
    settings: list[str] = []

    @event.listens_for(ledger.engine, "commit")
    def _setting(connection: Connection) -> None:
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.execute("SELECT current_setting('synchronous_commit')")
        settings.append(str(cursor.fetchone()[0]))
        cursor.close()

    run = ledger.start_run("sync", holder="test")
    assert set(settings) == {"on"}
    settings.clear()
    first = _observed(SIDES.first, range(1, 41))
    ledger.record_observations(run.id, first, cursors={SIDES.first: "c1"})
    ledger.record_observations(run.id, _observed(SIDES.second, range(1, 41)))
    assert settings == ["off", "off"]

    settings.clear()
    pair = ledger.load_pairs([3])[3]
    apply = Decision(Outcome.APPLY, ZENDESK, (Transition.SOFT_DELETE,), State.SOFT_DELETED, "c")
    assert ledger.record_decisions(run.id, [PlannedDecision(pair, apply, Cause.USER)]) == 1
    [op] = ledger.ready_operations()
    ledger.mark_sent([op.id], run_id=run.id, batch="b1")
    assert set(settings) == {"on"}  # planning, mark_sent (and a read of the outbox)

    # the write comes back (its link has an open operation) with links that have none:
    # the batch confirms an operation, and waits
    settings.clear()
    back = _observed(ZENDESK, range(1, 6))
    back[2] = _observed(ZENDESK, range(3, 4), State.SOFT_DELETED)[0]
    assert ledger.record_observations(run.id, back)[1] == 1
    assert settings == ["on"]
    # and a later batch of plain observations commits lazily again
    settings.clear()
    ledger.record_observations(run.id, _observed(SIDES.first, range(10, 20), State.SOFT_DELETED))
    assert settings == ["off"]
    # a lazy commit is one transaction's: the session is back to the server's setting
    with ledger.engine.connect() as connection:
        assert connection.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"


def _indexes(connection: Connection) -> dict[str, str]:
    rows = connection.exec_driver_sql(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
        "AND tablename IN ('pair_state', 'event', 'run')"
    )
    return {str(name): str(definition) for name, definition in rows}


def _references(connection: Connection, table: str) -> int:
    count = connection.exec_driver_sql(
        f"SELECT count(*) FROM pg_constraint WHERE conrelid = '{table}'::regclass AND contype = 'f'"
    ).scalar_one()
    return int(count)


def test_a_v5_ledger_is_upgraded_to_the_fresh_ledgers_indexes_and_references(
    postgres_url: str, pg_cluster: Cluster
) -> None:
    fresh_url = pg_cluster.url(pg_cluster.create_database())
    Ledger.open(fresh_url, sides=SIDES).close()
    # a ledger as schema v5 made it: whole indexes, the event log's references enforced
    with Ledger.open(postgres_url, sides=SIDES) as ledger, ledger.engine.begin() as c:
        for name, table, column in (
            ("ix_pair_state_attention", "pair_state", "attention"),
            ("ix_pair_state_first_purge_due", "pair_state", "first_purge_due"),
            ("ix_pair_state_pending", "pair_state", "pending_decision"),
            ("ix_pair_state_first_state", "pair_state", "first_state"),
            ("ix_event_kind", "event", "kind"),
        ):
            c.exec_driver_sql(f"DROP INDEX {name}")
            c.exec_driver_sql(f"CREATE INDEX {name} ON {table} ({column})")
        for name in ("ix_run_running", "ix_run_kind"):  # schema v8's
            c.exec_driver_sql(f"DROP INDEX {name}")
        for column, parent in (("run_id", "run"), ("link_id", "link")):
            c.exec_driver_sql(
                f"ALTER TABLE event ADD FOREIGN KEY ({column}) REFERENCES {parent} (id)"
            )
        c.exec_driver_sql("UPDATE meta SET value = '5' WHERE key = 'schema_version'")
        assert " WHERE " not in _indexes(c)["ix_pair_state_pending"]
    with Ledger.open(postgres_url, sides=SIDES) as ledger, ledger.engine.connect() as c:
        assert ledger.schema_version() == LATEST_VERSION
        upgraded, references = _indexes(c), _references(c, "event")
    with Ledger.open(fresh_url, sides=SIDES) as fresh, fresh.engine.connect() as c:
        assert upgraded == _indexes(c)
        assert references == _references(c, "event") == 0
        # the other tables keep theirs
        assert _references(c, "pair_state") == 1
        assert _references(c, "operation") == 2
    assert "WHERE pending_decision" in upgraded["ix_pair_state_pending"]
    assert "WHERE (attention IS NOT NULL)" in upgraded["ix_pair_state_attention"]
    assert "WHERE ((outcome)::text = 'running'::text)" in upgraded["ix_run_running"]
    assert "WHERE (first_state IS NULL)" in upgraded["ix_pair_state_first_unread"]
    soft_deleted = "WHERE ((first_state)::text = 'soft_deleted'::text)"
    assert soft_deleted in upgraded["ix_pair_state_first_state"]


def test_bridge_check_finds_an_event_naming_a_link_or_run_that_does_not_exist(
    ledger: Ledger,
) -> None:
    # not enforced on every insert any more: checked instead
    assert ledger.check() == []
    with ledger.engine.begin() as c:
        c.exec_driver_sql("INSERT INTO event (at, kind, link_id) VALUES (1, 'observed', 999)")
        c.exec_driver_sql("INSERT INTO event (at, kind, run_id) VALUES (1, 'run_started', 77)")
        c.exec_driver_sql("INSERT INTO event (at, kind, run_id) VALUES (1, 'run_started', 78)")
    assert ledger.check() == [
        "1 events name a link that does not exist",
        "2 events name a run that does not exist",
    ]


def _import(ledger: Ledger, links: int) -> None:
    rows = (LinkRow(n, 100_000 + n, 200_000 + n) for n in range(1, links + 1))
    assert ledger.import_links(rows, origin="csv").created == links


def _first_read(ledger: Ledger, links: int, sides: tuple[Side, Side]) -> None:
    """Every link read active on each of `sides` in turn, 5,000 a batch (a first sync)."""
    for side in sides:
        base = 100_000 if side == SIDES.first else 200_000
        for start in range(1, links + 1, 5_000):
            observed = [
                Observation(n, side, base + n, State.ACTIVE, NOW)
                for n in range(start, start + 5_000)
            ]
            ledger.record_observations(None, observed)


def _plan(connection: Connection, sql: str) -> str:
    rows = connection.exec_driver_sql("EXPLAIN " + sql).scalars().all()
    return "\n".join(str(row) for row in rows)


def test_the_partial_indexes_serve_the_queries_that_look_for_their_few_rows(
    postgres_url: str,
) -> None:
    links = 20_000
    with Ledger.open(postgres_url, sides=SIDES) as ledger:
        _import(ledger, links)
        _first_read(ledger, links, (SIDES.first, SIDES.second))
        assert ledger.agree_where_equal(unsettled=False) == links
        # a day's few changes: a deletion, a pair in conflict, a purge waiting
        ledger.record_observations(None, _observed(SIDES.first, range(7, 8), State.SOFT_DELETED))
        with ledger.engine.begin() as c:
            c.exec_driver_sql("UPDATE pair_state SET attention = 'conflict' WHERE link_id = 9")
            c.exec_driver_sql("UPDATE pair_state SET first_purge_due = 5 WHERE link_id = 11")
            c.exec_driver_sql("ANALYZE pair_state, event")
            indexes = _indexes(c)
            uses = {
                "ix_pair_state_pending": "SELECT link_id FROM pair_state WHERE pending_decision",
                "ix_pair_state_attention": (
                    "SELECT link_id FROM pair_state WHERE attention IN ('conflict', 'divergence')"
                ),
                "ix_pair_state_first_purge_due": (
                    "SELECT link_id FROM pair_state WHERE first_purge_due <= 10"
                ),
                "ix_pair_state_first_state": (
                    "SELECT link_id FROM pair_state WHERE first_state = 'soft_deleted'"
                ),
                "ix_event_kind": "SELECT count(*) FROM event WHERE kind = 'anomaly'",
            }
            for name, sql in uses.items():
                assert " WHERE " in indexes[name], indexes[name]
                assert name in _plan(c, sql), (name, _plan(c, sql))
            # the decision's candidates of a day: found through the two small indexes
            candidates = _plan(
                c,
                "SELECT link_id FROM pair_state WHERE pending_decision "
                "OR attention IN ('conflict', 'divergence')",
            )
            assert "Seq Scan" not in candidates, candidates
        # the pairs a first sync agreed on are in none of them: once vacuumed, each index
        # holds the one pair it is for
        with ledger.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("VACUUM pair_state")
            entries = dict(
                c.exec_driver_sql(
                    "SELECT relname, reltuples FROM pg_class WHERE relname IN "
                    "('ix_pair_state_pending', 'ix_pair_state_attention', 'pair_state_pkey')"
                ).all()
            )
        assert entries == {
            "ix_pair_state_pending": 1,
            "ix_pair_state_attention": 1,
            "pair_state_pkey": links,
        }
        pending = [p.ids.link_id for page in ledger.decision_candidates(batch=10) for p in page]
        assert pending == [7, 9]


@contextmanager
def _sent(ledger: Ledger) -> Iterator[list[tuple[str, Any]]]:
    """The statements (with their parameters) the ledger sends inside the block."""
    statements: list[tuple[str, Any]] = []

    def _grab(_c: object, _cur: object, sql: str, params: object, *_rest: object) -> None:
        statements.append((sql, params))

    event.listen(ledger.engine, "before_cursor_execute", _grab)
    try:
        yield statements
    finally:
        event.remove(ledger.engine, "before_cursor_execute", _grab)


def _buffers(connection: Connection, sql: str, params: object) -> int:
    """The shared buffers `sql` reads when run (EXPLAIN ANALYZE)."""
    plan = connection.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + sql, params).scalars()
    return sum(
        int(line.split("shared hit=")[1].split()[0])
        for line in plan
        if line.lstrip().startswith("Buffers: shared hit=")
    )


def test_the_links_a_first_sync_read_leave_the_first_sides_unread_index_for_good(
    postgres_url: str,
) -> None:
    # statistics of a link import (every state NULL, as autovacuum finds them), then a
    # first read of every link: the look for links still unread must walk its own index
    # in link order, which clears each dead entry as it passes, so the next run's look
    # reads an index of none instead of the first sync's 40,000 dead ones
    links = 20_000
    with Ledger.open(postgres_url, sides=SIDES) as ledger:
        _import(ledger, links)
        with ledger.engine.begin() as c:
            c.exec_driver_sql("ANALYZE pair_state")
        _first_read(ledger, links, (SIDES.second, SIDES.first))
        with _sent(ledger) as statements:
            assert list(ledger.unobserved(SIDES.first)) == []
        [(sql, params)] = [(s, p) for s, p in statements if "first_state IS NULL" in s]
        with ledger.engine.connect() as c:
            plan = "\n".join(c.exec_driver_sql("EXPLAIN " + sql, params).scalars())
            assert "ix_pair_state_first_unread" in plan, plan
            assert "Bitmap" not in plan, plan
            # the next look reads the index's pages, not a heap page per dead entry (the
            # first look read about 6 buffers a link)
            assert _buffers(c, sql, params) < links // 10


def test_a_batch_looks_each_of_its_pairs_up_by_key_on_the_statistics_an_import_leaves(
    postgres_url: str,
) -> None:
    # a thousand ids of 20,000 pairs, as a link import leaves the table's statistics (a
    # first sync starts before autovacuum looks; analyzed ones: test_dialect_costs.py): a
    # plan free to choose scanned every pair (comparing each with the batch's ids) for
    # each batch, a third of a first sync's batch on the server (docs/performance.md)
    links = 20_000
    with Ledger.open(postgres_url, sides=SIDES) as ledger:
        _import(ledger, links)
        observed = [
            Observation(n, SIDES.first, 100_000 + n, State.ACTIVE, NOW) for n in range(5_001, 6_001)
        ]
        with _sent(ledger) as statements:
            pending, _ = ledger.record_observations(None, observed)
        assert pending == set(range(5_001, 6_001))
        [(sql, params)] = [(s, p) for s, p in statements if s.startswith("WITH busy")]
        with ledger.engine.connect() as c:
            plan = "\n".join(c.exec_driver_sql("EXPLAIN " + sql, params).scalars())
        # the pairs' previous states (`staged`): a key lookup per observation
        staged = plan.split("CTE staged")[1].split("CTE logged")[0]
        assert "Index Scan using pair_state_pkey on pair_state" in staged, plan
        assert "Seq Scan" not in staged, plan


def test_a_runs_reads_do_not_wait_for_another_writers_transaction(ledger: Ledger) -> None:
    # the write lock is for writers; a page of pairs or links read meanwhile sees what
    # was committed (MVCC) instead of a round trip to wait for the lock
    ledger.record_observations(None, _observed(SIDES.first, range(1, 41)))
    read: dict[str, object] = {}

    def reads() -> None:
        read["links"] = len(ledger.links_for_tickets(SIDES.first, [1001, 1002]))
        read["pairs"] = len(ledger.load_pairs(range(1, 41)))
        read["states"] = len(ledger.side_states(SIDES.first, range(1, 41)))
        read["candidates"] = sum(len(page) for page in ledger.decision_candidates(batch=15))

    with ledger.engine.begin() as writer:  # holds the ledger's lock until it ends
        writer.exec_driver_sql("UPDATE pair_state SET attention = 'conflict' WHERE link_id = 1")
        thread = threading.Thread(target=reads)
        thread.start()
        thread.join(timeout=10)
        assert not thread.is_alive(), "a read waited for the writer's lock"
    assert read == {"links": 2, "pairs": 40, "states": 40, "candidates": 40}
    # a writer still waits for the lock: one writer at a time
    with ledger.engine.begin():
        raw = ledger.engine.raw_connection()
        try:
            with pytest.raises(psycopg.errors.LockNotAvailable):
                ledger.dialect.probe_write_lock(raw.cursor(), wait_seconds=0.2)
        finally:
            raw.close()


def test_a_runs_reads_are_a_round_trip_each_outside_any_transaction(
    ledger: Ledger, tmp_path: Path
) -> None:
    # BEGIN and COMMIT were two of a page lookup's three round trips, on the run's thread
    ledger.record_observations(None, _observed(SIDES.first, range(1, 41)))
    trace = tmp_path / "protocol.trace"
    ledger.engine.dispose()

    @event.listens_for(ledger.engine, "connect")
    def _traced(dbapi_connection: psycopg.Connection[Any], _record: object) -> None:
        dbapi_connection.pgconn.trace(out.fileno())

    with trace.open("w") as out:
        links, held = ledger.links_and_states(SIDES.first, [1001, 1002, 9999])
        assert len(ledger.load_pairs(range(1, 41))) == 40
        ledger.engine.dispose()
    assert (links, set(held)) == ({1001: 1, 1002: 2}, {1, 2})
    sent = [line for line in trace.read_text().splitlines() if "\tF\t" in line]
    assert sent, "nothing traced"
    assert not [line for line in sent if '"BEGIN' in line or '"COMMIT' in line], sent
    # and a write still takes the ledger's lock in a transaction of its own
    with trace.open("w") as out:
        ledger.record_observations(None, _observed(SIDES.first, range(1, 2), State.SOFT_DELETED))
        ledger.engine.dispose()
    written = trace.read_text()
    for part in ('"BEGIN', "pg_advisory_xact_lock", '"COMMIT'):
        assert part in written


@pytest.mark.parametrize(
    "values",
    [
        [1, None, 2**62, -5, 0],
        ["soft_deleted", None, 'a "quoted", {braced} value', "back\\slash\\", "NULL"],
        ["", " é ", "x,y", None],
        # a batch's few values, many times over: each written once (`array_value`)
        ["soft_deleted", None, 'a "q" \\ {b}', "NULL"] * 8,
        [7, None, 2**62] * 9,
    ],
)
def test_a_batch_bound_as_an_array_reads_back_every_value(
    ledger: Ledger, values: list[int | str | None]
) -> None:
    # a batch of observations reaches the server as one array literal per column
    # (`_batch_sql`): whatever a value holds, the server reads back the same list
    kind = "bigint" if isinstance(values[0], int) else "text"
    with ledger.engine.connect() as connection:
        read = connection.exec_driver_sql(
            f"SELECT CAST(%(v)s AS {kind}[])", {"v": ledger.dialect.array_value(values)}
        ).scalar_one()
    assert read == values


def test_a_batch_of_observations_is_one_statement_with_no_staging_table(ledger: Ledger) -> None:
    statements: list[str] = []

    @event.listens_for(ledger.engine, "before_cursor_execute")
    def _seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    run = ledger.start_run("sync", holder="test")
    statements.clear()
    observed = _observed(SIDES.first, range(1, 41))
    pending, _ = ledger.record_observations(run.id, observed, cursors={SIDES.first: "c-1"})
    assert pending == set(range(1, 41))
    # the write lock (the lazy commit set with it) and the batch (its open operations
    # looked for, its cursor moved, in it): no probe, no cursor statement, no stage
    assert [s.split()[0] for s in statements] == ["SELECT", "WITH"], statements
    assert "pg_advisory_xact_lock" in statements[0]
    assert "set_config('synchronous_commit', 'off', true)" in statements[0]
    assert ledger.get_cursor(SIDES.first) == "c-1"
    states = {p.ids.link_id: p.state(SIDES.first) for p in ledger.load_pairs(range(1, 41)).values()}
    assert states == dict.fromkeys(range(1, 41), State.ACTIVE)
