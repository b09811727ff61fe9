"""The ledger: file safety, pragmas, schema versions, transactions, links, leases.

Every test taking `ledger` or `ledger_url` runs on SQLite and on PostgreSQL (tests/conftest.py);
the rest are about SQLite's file, pragmas or its own older schemas."""

from __future__ import annotations

import multiprocessing
import os
import socket
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Connection, create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError, StatementError
from sqlmodel import select

from bridge.core.model import Cause, Side, Sides, State
from bridge.ledger import (
    LATEST_VERSION,
    LeaseHeldError,
    Ledger,
    LedgerURLError,
    LinkRow,
    SchemaError,
    SidesMismatchError,
    migrations,
)
from bridge.ledger.dialect import Dialect, SQLiteDialect
from bridge.ledger.tables import Event, Lease, Link, utcnow
from bridge.vendors.registry import SIDES, SUPEROFFICE, ZENDESK


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    with Ledger.open(ledger_url, sides=SIDES) as opened:
        yield opened


def test_database_file_is_private_to_its_owner(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        path = tmp_path / "sub" / "ledger.db"
        Ledger.open(f"sqlite:///{path}", sides=SIDES).close()
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_pragmas_are_set_on_every_connection(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with Ledger.open(url, sides=SIDES) as ledger, ledger.engine.connect() as connection:

        def pragma(name: str) -> object:
            return connection.exec_driver_sql(f"PRAGMA {name}").scalar()

        assert pragma("journal_mode") == "wal"
        assert pragma("synchronous") == 2  # FULL
        assert pragma("foreign_keys") == 1
        busy = pragma("busy_timeout")
        assert isinstance(busy, int)
        assert busy >= 1000


def test_opening_a_missing_ledger_without_create_fails(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        Ledger.open(f"sqlite:///{tmp_path / 'absent.db'}", create=False, sides=SIDES)


def test_fresh_ledger_is_stamped_with_the_latest_schema(ledger: Ledger) -> None:
    assert ledger.schema_version() == LATEST_VERSION
    assert ledger.check() == []


def test_a_newer_schema_is_refused(ledger_url: str) -> None:
    url = ledger_url
    with Ledger.open(url, sides=SIDES) as ledger, ledger.engine.begin() as connection:
        connection.exec_driver_sql("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(SchemaError, match="newer"):
        Ledger.open(url, sides=SIDES)


def test_older_ledgers_run_each_later_step_once(
    ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = ledger_url
    Ledger.open(url, sides=SIDES).close()
    calls: list[int] = []

    nxt = LATEST_VERSION + 1

    def step(connection: Connection, dialect: Dialect) -> None:
        calls.append(nxt)
        connection.exec_driver_sql("ALTER TABLE link ADD COLUMN note TEXT")

    monkeypatch.setitem(migrations.MIGRATIONS, nxt, step)
    monkeypatch.setattr(migrations, "LATEST_VERSION", nxt)
    with Ledger.open(url, sides=SIDES) as ledger, ledger.engine.connect() as connection:
        columns = [column["name"] for column in inspect(connection).get_columns("link")]
        assert "note" in columns
        assert migrations.schema_version(connection) == nxt
    Ledger.open(url, sides=SIDES).close()
    assert calls == [nxt]


def _write_then_fail(ledger: Ledger) -> None:
    with ledger.session() as session:
        session.add(Link(first_id=1, second_id=2, origin="csv"))
        session.flush()
        session.add(Event(kind="test"))
        session.flush()
        raise RuntimeError("boom")


def test_a_failure_inside_a_transaction_leaves_no_partial_write(ledger: Ledger) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        _write_then_fail(ledger)
    assert ledger.count_links() == 0
    with ledger.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT COUNT(*) FROM event").scalar() == 0


def test_links_are_unique_both_ways(ledger: Ledger) -> None:
    with ledger.session() as session:
        session.add(Link(first_id=1, second_id=2, origin="csv"))
    with pytest.raises(IntegrityError), ledger.session() as session:
        session.add(Link(first_id=3, second_id=2, origin="csv"))
    with pytest.raises(IntegrityError), ledger.session() as session:
        session.add(Link(first_id=1, second_id=4, origin="csv"))


def test_event_log_is_append_only(ledger: Ledger) -> None:
    with ledger.session() as session:
        session.add(Event(kind="observed"))
    statements = ["UPDATE event SET kind = 'x'", "DELETE FROM event"]
    if ledger.dialect.name == "postgresql":
        statements.append("TRUNCATE event")
    for statement in statements:
        with pytest.raises(IntegrityError, match="append-only"), ledger.engine.begin() as c:
            c.execute(text(statement))


def test_import_is_all_or_nothing_and_idempotent(ledger: Ledger) -> None:
    rows = [LinkRow(2, 10, 20), LinkRow(3, 11, 21), LinkRow(4, 12, 22)]
    first = ledger.import_links(rows, origin="csv")
    assert (first.created, first.unchanged, first.ok) == (3, 0, True)
    again = ledger.import_links(rows, origin="csv")
    assert (again.created, again.unchanged) == (0, 3)
    bad = ledger.import_links(
        [LinkRow(2, 13, 23), LinkRow(3, 13, 24), LinkRow(4, 10, 25), LinkRow(5, 14, 21)],
        origin="csv",
    )
    assert not bad.ok
    assert [str(p) for p in bad.problems] == [
        "line 3: superoffice_id 13 duplicates line 2",
        "line 4: superoffice_id 10 is already linked to zendesk_id 20",
        "line 5: zendesk_id 21 is already linked to superoffice_id 11",
    ]
    assert ledger.count_links() == 3
    assert sorted(link.first_id for link in ledger.iter_links()) == [10, 11, 12]


def test_every_link_gets_a_pair_state(ledger: Ledger) -> None:
    ledger.import_links([LinkRow(2, 10, 20)], origin="csv")
    status = ledger.status()
    assert status["links"] == 1
    assert status["superoffice"] == {"unknown": 1}
    assert ledger.check() == []


def test_a_finished_run_keeps_its_outcome_and_an_unknown_one_is_refused(ledger: Ledger) -> None:
    run = ledger.start_run("sync", holder="h")
    assert run.id is not None
    ledger.finish_run(run.id, outcome="failures", counts={"b": 2, "a": 1}, message="one left")
    [done] = ledger.recent_runs(1)
    assert (done.outcome, done.counts, done.message) == ("failures", '{"a": 1, "b": 2}', "one left")
    assert done.ended_at is not None
    assert done.ended_at >= done.started_at
    with pytest.raises(KeyError, match="no run"):
        ledger.finish_run(run.id + 1, outcome="converged", counts={})
    with ledger.session() as session:
        kinds = [e.kind for e in session.exec(select(Event).where(Event.run_id == run.id))]
    assert kinds == ["run_started", "run_finished"]  # the refused finish wrote nothing


def _import_range(url: str, start: int, count: int) -> None:
    with Ledger.open(url, sides=SIDES) as ledger:
        for offset in range(0, count, 10):
            rows = [
                LinkRow(i, start + offset + i, 1_000_000 + start + offset + i) for i in range(10)
            ]
            report = ledger.import_links(rows, origin="csv")
            assert report.ok, report.problems
            run = ledger.start_run("sync", holder=f"p{start}")
            assert run.id is not None
            ledger.finish_run(run.id, outcome="converged", counts={"n": offset})


def test_two_processes_writing_at_once_both_succeed(ledger_url: str) -> None:
    url = ledger_url
    Ledger.open(url, sides=SIDES).close()
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_import_range, args=(url, s, 200)) for s in (1, 10_001)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [worker.exitcode for worker in workers] == [0, 0]
    with Ledger.open(url, sides=SIDES) as ledger:
        assert ledger.count_links() == 400
        assert ledger.check() == []
        assert len(ledger.recent_runs(100)) == 40


def test_lease_is_exclusive_until_it_expires(ledger: Ledger) -> None:
    now = utcnow()
    ledger.acquire_lease("sync", "host:1", timedelta(minutes=15), now=now)
    with pytest.raises(LeaseHeldError) as raised:
        ledger.acquire_lease("sync", "host:2", timedelta(minutes=15), now=now)
    assert raised.value.holder == "host:1"
    assert "host:1" in str(raised.value)
    assert "since" in str(raised.value)
    later = now + timedelta(minutes=16)
    taken = ledger.acquire_lease("sync", "host:2", timedelta(minutes=15), now=later)
    assert taken.holder == "host:2"
    ledger.release_lease("sync", "host:1")  # not the holder: ignored
    with pytest.raises(LeaseHeldError):
        ledger.acquire_lease("sync", "host:3", timedelta(minutes=15), now=later)
    ledger.release_lease("sync", "host:2")
    assert (
        ledger.acquire_lease("sync", "host:3", timedelta(minutes=1), now=later).holder == "host:3"
    )


def test_a_lease_whose_process_is_gone_on_this_host_is_taken_over(ledger: Ledger) -> None:
    dead = f"{socket.gethostname()}:{_a_dead_pid()}"
    now = utcnow()
    ledger.acquire_lease("sync", dead, timedelta(minutes=15), now=now)
    taken = ledger.acquire_lease("sync", "me:1", timedelta(minutes=15), now=now)
    assert taken.holder == "me:1"
    alive = f"{socket.gethostname()}:{os.getpid()}"
    ledger.release_lease("sync", "me:1")
    ledger.acquire_lease("sync", alive, timedelta(minutes=15), now=now)
    with pytest.raises(LeaseHeldError):
        ledger.acquire_lease("sync", "me:1", timedelta(minutes=15), now=now)


def _a_dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_in_memory_url_works_without_a_file() -> None:
    with Ledger.open("sqlite://", sides=SIDES) as ledger:
        assert ledger.path is None
        ledger.import_links([LinkRow(1, 1, 2)], origin="csv")
        assert ledger.count_links() == 1


def test_statement_errors_surface(ledger: Ledger) -> None:
    with pytest.raises((OperationalError, ProgrammingError)), ledger.engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO nowhere VALUES (1)")


# --- schema v3: a ledger that names no vendor -----------------------------------------------

#: a schema v2 ledger as bridge made it (sqlite_master of a fresh ledger before v3)
_V2_SCHEMA = """
CREATE TABLE meta ("key" VARCHAR NOT NULL, value VARCHAR NOT NULL, PRIMARY KEY ("key"));
CREATE TABLE link (
    id INTEGER NOT NULL, superoffice_id INTEGER NOT NULL, zendesk_id INTEGER NOT NULL,
    origin VARCHAR NOT NULL, created_at DATETIME NOT NULL,
    PRIMARY KEY (id), UNIQUE (superoffice_id), UNIQUE (zendesk_id));
CREATE TABLE run (
    id INTEGER NOT NULL, kind VARCHAR NOT NULL, holder VARCHAR NOT NULL,
    started_at DATETIME NOT NULL, ended_at DATETIME, outcome VARCHAR NOT NULL,
    dry_run BOOLEAN NOT NULL, counts VARCHAR NOT NULL, message VARCHAR, PRIMARY KEY (id));
CREATE TABLE cursor (
    side VARCHAR NOT NULL, value VARCHAR NOT NULL, updated_at DATETIME NOT NULL,
    PRIMARY KEY (side));
CREATE TABLE lease (
    name VARCHAR NOT NULL, holder VARCHAR NOT NULL, acquired_at DATETIME NOT NULL,
    expires_at DATETIME NOT NULL, PRIMARY KEY (name));
CREATE TABLE pair_state (
    link_id INTEGER NOT NULL, base VARCHAR, base_version INTEGER NOT NULL, base_at DATETIME,
    so_state VARCHAR, so_vendor_time DATETIME, so_seen_at DATETIME, so_cause VARCHAR,
    so_status_id INTEGER, so_purge_due DATETIME, zd_state VARCHAR, zd_vendor_time DATETIME,
    zd_seen_at DATETIME, zd_cause VARCHAR, so_checked_at DATETIME, zd_checked_at DATETIME,
    pending_decision BOOLEAN NOT NULL, attention VARCHAR, attention_reason VARCHAR,
    attention_since DATETIME, updated_at DATETIME NOT NULL,
    PRIMARY KEY (link_id), FOREIGN KEY(link_id) REFERENCES link (id));
CREATE INDEX ix_pair_state_attention ON pair_state (attention);
CREATE INDEX ix_pair_state_so_state ON pair_state (so_state);
CREATE INDEX ix_pair_state_so_purge_due ON pair_state (so_purge_due);
CREATE INDEX ix_pair_state_pending ON pair_state (pending_decision);
CREATE TABLE event (
    id INTEGER NOT NULL, at DATETIME NOT NULL, run_id INTEGER, link_id INTEGER,
    kind VARCHAR NOT NULL, side VARCHAR, ticket_id INTEGER, transition VARCHAR,
    from_state VARCHAR, to_state VARCHAR, cause VARCHAR, actor_id INTEGER,
    vendor_time DATETIME, operation_id INTEGER, detail VARCHAR,
    PRIMARY KEY (id), FOREIGN KEY(run_id) REFERENCES run (id),
    FOREIGN KEY(link_id) REFERENCES link (id));
CREATE INDEX ix_event_kind ON event (kind);
CREATE INDEX ix_event_link ON event (link_id);
CREATE INDEX ix_event_at ON event (at);
CREATE TABLE operation (
    id INTEGER NOT NULL, "key" VARCHAR NOT NULL, link_id INTEGER NOT NULL,
    target VARCHAR NOT NULL, ticket_id INTEGER NOT NULL, transition VARCHAR NOT NULL,
    step INTEGER NOT NULL, base_version INTEGER NOT NULL, cause VARCHAR NOT NULL,
    source_event_id INTEGER, status VARCHAR NOT NULL, run_id INTEGER, batch VARCHAR,
    job_id VARCHAR, attempts INTEGER NOT NULL, restore_status_id INTEGER,
    pending_until DATETIME, error VARCHAR, created_at DATETIME NOT NULL, sent_at DATETIME,
    finished_at DATETIME, updated_at DATETIME NOT NULL,
    PRIMARY KEY (id), CONSTRAINT uq_operation_key UNIQUE ("key"),
    FOREIGN KEY(link_id) REFERENCES link (id), FOREIGN KEY(run_id) REFERENCES run (id));
CREATE INDEX ix_operation_status ON operation (status);
CREATE INDEX ix_operation_link ON operation (link_id);
CREATE TRIGGER event_no_update BEFORE UPDATE ON event
    BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER event_no_delete BEFORE DELETE ON event
    BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
INSERT INTO meta VALUES ('schema_version', '2');
INSERT INTO link VALUES (1, 1001, 52001, 'csv', '2026-01-01 00:00:00.000000');
INSERT INTO link VALUES (2, 1002, 52002, 'external_id', '2026-01-02 00:00:00.000000');
INSERT INTO pair_state VALUES (
    1, 'active', 3, '2026-01-03 00:00:00.000000',
    'soft_deleted', '2026-01-04 00:00:00.000000', '2026-01-05 00:00:00.000000', 'user',
    304, '2026-02-01 00:00:00.000000',
    'purged', '2026-01-06 00:00:00.000000', '2026-01-07 00:00:00.000000', 'retention',
    '2026-01-08 00:00:00.000000', '2026-01-09 00:00:00.000000',
    1, 'conflict', 'both changed', '2026-01-10 00:00:00.000000', '2026-01-11 00:00:00.000000');
INSERT INTO pair_state (link_id, base_version, pending_decision, updated_at)
    VALUES (2, 0, 0, '2026-01-02 00:00:00.000000');
INSERT INTO cursor VALUES ('superoffice', 'c-so', '2026-01-12 00:00:00.000000');
INSERT INTO event (id, at, link_id, kind, side, ticket_id)
    VALUES (1, '2026-01-04 00:00:00.000000', 1, 'observed', 'superoffice', 1001);
"""


def _v2_ledger(path: Path) -> str:
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.executescript(_V2_SCHEMA)
    connection.close()
    path.chmod(0o600)
    return f"sqlite:///{path}"


def _layout(url: str) -> dict[str, object]:
    """Columns (in order) of every table, and every index and trigger with its table."""
    connection = sqlite3.connect(make_url(url).database or "")
    try:
        tables = [
            r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        layout: dict[str, object] = {
            table: [r[1] for r in connection.execute(f"PRAGMA table_info({table})")]
            for table in tables
        }
        layout["objects"] = sorted(
            connection.execute(
                "SELECT type, name, tbl_name FROM sqlite_master "
                "WHERE type IN ('index', 'trigger') AND name NOT LIKE 'sqlite_%'"
            ).fetchall()
        )
        return layout
    finally:
        connection.close()


def test_a_v2_ledger_is_upgraded_to_neutral_names_with_its_data(tmp_path: Path) -> None:
    url = _v2_ledger(tmp_path / "v2.db")
    with Ledger.open(url, sides=SIDES) as ledger:
        assert ledger.schema_version() == LATEST_VERSION
        assert ledger.sides == SIDES
        assert ledger.check() == []
        links = [
            (link.id, link.first_id, link.second_id, link.origin) for link in ledger.iter_links()
        ]
        assert links == [(1, 1001, 52001, "csv"), (2, 1002, 52002, "external_id")]
        pair = ledger.load_pairs([1])[1]
        assert pair.ids.ticket(SUPEROFFICE) == 1001
        assert pair.ids.ticket(ZENDESK) == 52001
        assert (pair.base, pair.base_version) == (State.ACTIVE, 3)
        assert (pair.state(SUPEROFFICE), pair.cause(SUPEROFFICE)) == (
            State.SOFT_DELETED,
            Cause.USER,
        )
        assert (pair.state(ZENDESK), pair.cause(ZENDESK)) == (State.PURGED, Cause.RETENTION)
        assert pair.vendor_time(SUPEROFFICE) == datetime(2026, 1, 4, tzinfo=UTC)
        assert pair.vendor_time(ZENDESK) == datetime(2026, 1, 6, tzinfo=UTC)
        assert (pair.status_id(SUPEROFFICE), pair.status_id(ZENDESK)) == (304, None)
        assert (pair.attention, pair.attention_reason, pair.pending_decision) == (
            "conflict",
            "both changed",
            True,
        )
        # the purge due time and the sweep's check times came along
        now = datetime(2026, 3, 1, tzinfo=UTC)
        due = ledger.retention_candidates(SUPEROFFICE, datetime(2025, 1, 1, tzinfo=UTC), now)
        assert [(ids.link_id, expected) for page in due for ids, expected in page] == [(1, True)]
        swept = ledger.sweep_due(ZENDESK, now, 10)
        assert swept == []  # purged tickets are final
        swept = ledger.sweep_due(SUPEROFFICE, datetime(2026, 1, 8, tzinfo=UTC), 10)
        assert [(ids.link_id, state) for ids, state in swept] == [(1, State.SOFT_DELETED)]
        assert ledger.sweep_due(SUPEROFFICE, datetime(2026, 1, 7, tzinfo=UTC), 10) == []
        assert ledger.get_cursor("superoffice") == "c-so"
        assert ledger.status()["superoffice"] == {"soft_deleted": 1, "unknown": 1}
        with ledger.engine.connect() as connection:
            sides = connection.exec_driver_sql("SELECT value FROM meta WHERE key = 'sides'")
            assert sides.scalar() == "superoffice,zendesk"
        # the event log is still append-only, and new links still import
        with pytest.raises(IntegrityError, match="append-only"), ledger.engine.begin() as c:
            c.execute(text("DELETE FROM event"))
        assert ledger.import_links([LinkRow(1, 1003, 52003)], origin="csv").created == 1
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    Ledger.open(fresh, sides=SIDES).close()
    assert _layout(url) == _layout(fresh)


# --- schema v4: times as integer microseconds ------------------------------------------------


def _v3_ledger(path: Path) -> str:
    """A schema v3 ledger as bridge made it: the v2 ledger brought to v3 by its own steps,
    then history written with text times as v3 wrote them (fractions of a second too)."""
    url = _v2_ledger(path)
    dialect = SQLiteDialect()
    engine = create_engine(url)
    with engine.begin() as c:
        for version in (2, 3):
            migrations.MIGRATIONS[version](c, dialect)
        c.exec_driver_sql("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
        c.exec_driver_sql(
            "INSERT INTO run (id, kind, holder, started_at, ended_at, outcome, dry_run, counts) "
            "VALUES (1, 'sync', 'h', '2026-01-04 00:00:00.250000', "
            "'2026-01-04 00:00:07.999999', 'converged', 0, '{}')"
        )
        c.exec_driver_sql(
            "INSERT INTO event (id, at, run_id, link_id, kind, side, ticket_id, transition, "
            "from_state, to_state, vendor_time) VALUES (2, '2026-01-04 00:00:01.000001', 1, 1, "
            "'observed', 'superoffice', 1001, 'soft_delete', 'active', 'soft_deleted', "
            "'2026-01-03 23:59:59.5')"
        )
        c.exec_driver_sql(
            "INSERT INTO lease VALUES ('sync', 'h', '2026-01-04 00:00:00', '1969-12-31 23:59:59')"
        )
    engine.dispose()
    return url


def test_a_v3_ledger_keeps_every_time_to_the_microsecond_as_integers(tmp_path: Path) -> None:
    url = _v3_ledger(tmp_path / "v3.db")
    with Ledger.open(url, sides=SIDES) as ledger:
        assert ledger.schema_version() == LATEST_VERSION
        assert ledger.check() == []
        with ledger.engine.connect() as c:
            stored = c.exec_driver_sql(
                "SELECT typeof(at), at, vendor_time FROM event WHERE id = 2"
            ).one()
            lease = c.exec_driver_sql("SELECT acquired_at, expires_at FROM lease").one()
            texts = c.exec_driver_sql(
                "SELECT count(*) FROM pair_state WHERE typeof(updated_at) != 'integer'"
            ).scalar()
        at = datetime(2026, 1, 4, 0, 0, 1, 1, tzinfo=UTC)
        assert stored[0] == "integer"
        assert stored[1] == int(at.timestamp()) * 1_000_000 + 1
        assert (
            stored[2]
            == int(datetime(2026, 1, 3, 23, 59, 59, tzinfo=UTC).timestamp()) * (1_000_000) + 500_000
        )
        assert lease == (1_767_484_800_000_000, -1_000_000)  # whole seconds, before the epoch
        assert texts == 0
        pair = ledger.load_pairs([1])[1]
        assert pair.vendor_time(SUPEROFFICE) == datetime(2026, 1, 4, tzinfo=UTC)
        # the report's reads see the same times
        with ledger.audit_view() as view:
            assert view.bounds() == (datetime(2026, 1, 4, tzinfo=UTC), at)
            rows = list(view.transitions(datetime(2026, 1, 4, tzinfo=UTC), at + timedelta(1)))
            assert [(r.event_id, r.at, r.vendor_time) for r in rows] == [
                (2, at, datetime(2026, 1, 3, 23, 59, 59, 500_000, tzinfo=UTC))
            ]
            [run] = view.runs(datetime(2026, 1, 1, tzinfo=UTC), at)
            assert run.started_at == datetime(2026, 1, 4, 0, 0, 0, 250_000, tzinfo=UTC)
            assert run.ended_at == datetime(2026, 1, 4, 0, 0, 7, 999_999, tzinfo=UTC)
        # still append-only after the rewrite
        with pytest.raises(IntegrityError, match="append-only"), ledger.engine.begin() as c:
            c.execute(text("UPDATE event SET kind = 'x'"))
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    Ledger.open(fresh, sides=SIDES).close()
    assert _layout(url) == _layout(fresh)


def test_times_round_trip_exactly_and_naive_times_are_refused(ledger: Ledger) -> None:
    when = datetime(2026, 3, 2, 9, 0, 0, 123_456, tzinfo=timezone(timedelta(hours=2)))
    ledger.acquire_lease("sync", "h", timedelta(seconds=1), now=when)
    with ledger.session() as session:
        lease = session.exec(select(Lease)).one()
    assert lease.acquired_at == when
    assert lease.acquired_at.tzinfo == UTC
    with pytest.raises(StatementError, match="naive datetime"):
        ledger.acquire_lease("other", "h", timedelta(seconds=1), now=datetime(2026, 1, 1))


def test_a_fresh_ledger_records_its_sides_and_refuses_others(ledger_url: str) -> None:
    url = ledger_url
    with Ledger.open(url, sides=SIDES) as ledger, ledger.engine.connect() as connection:
        sides = connection.exec_driver_sql("SELECT value FROM meta WHERE key = 'sides'")
        assert sides.scalar() == "superoffice,zendesk"
    with pytest.raises(SidesMismatchError, match="made for the sides superoffice,zendesk"):
        Ledger.open(url, sides=Sides(ZENDESK, SUPEROFFICE))


def test_a_v2_ledger_records_the_sides_it_was_made_for(tmp_path: Path) -> None:
    with pytest.raises(SidesMismatchError):
        Ledger.open(_v2_ledger(tmp_path / "v2.db"), sides=Sides(SUPEROFFICE, Side("other")))


def test_a_backend_without_a_dialect_is_refused_before_connecting() -> None:
    with pytest.raises(LedgerURLError, match="cannot keep its ledger in 'mysql'"):
        Ledger.open("mysql://bridge@db.invalid/bridge", sides=SIDES)
