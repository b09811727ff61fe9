"""The ledger: file safety, pragmas, schema versions, transactions, links, leases."""

from __future__ import annotations

import multiprocessing
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError, OperationalError

from bridge.ledger import LATEST_VERSION, LeaseHeldError, Ledger, LinkRow, SchemaError, migrations
from bridge.ledger.tables import Event, Link, utcnow


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}") as opened:
        yield opened


def test_database_file_is_private_to_its_owner(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        path = tmp_path / "sub" / "ledger.db"
        Ledger.open(f"sqlite:///{path}").close()
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_pragmas_are_set_on_every_connection(ledger: Ledger) -> None:
    with ledger.engine.connect() as connection:

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
        Ledger.open(f"sqlite:///{tmp_path / 'absent.db'}", create=False)


def test_fresh_ledger_is_stamped_with_the_latest_schema(ledger: Ledger) -> None:
    assert ledger.schema_version() == LATEST_VERSION
    assert ledger.check() == []


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    with Ledger.open(url) as ledger, ledger.engine.begin() as connection:
        connection.exec_driver_sql("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(SchemaError, match="newer"):
        Ledger.open(url)


def test_older_ledgers_run_each_later_step_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    Ledger.open(url).close()
    calls: list[int] = []

    nxt = LATEST_VERSION + 1

    def step(connection: Connection) -> None:
        calls.append(nxt)
        connection.exec_driver_sql("ALTER TABLE link ADD COLUMN note TEXT")

    monkeypatch.setitem(migrations.MIGRATIONS, nxt, step)
    monkeypatch.setattr(migrations, "LATEST_VERSION", nxt)
    with Ledger.open(url) as ledger, ledger.engine.connect() as connection:
        columns = [row[1] for row in connection.exec_driver_sql("PRAGMA table_info(link)")]
        assert "note" in columns
        assert migrations.schema_version(connection) == nxt
    Ledger.open(url).close()
    assert calls == [nxt]


def _write_then_fail(ledger: Ledger) -> None:
    with ledger.session() as session:
        session.add(Link(superoffice_id=1, zendesk_id=2, origin="csv"))
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
        session.add(Link(superoffice_id=1, zendesk_id=2, origin="csv"))
    with pytest.raises(IntegrityError), ledger.session() as session:
        session.add(Link(superoffice_id=3, zendesk_id=2, origin="csv"))
    with pytest.raises(IntegrityError), ledger.session() as session:
        session.add(Link(superoffice_id=1, zendesk_id=4, origin="csv"))


def test_event_log_is_append_only(ledger: Ledger) -> None:
    with ledger.session() as session:
        session.add(Event(kind="observed"))
    for statement in ("UPDATE event SET kind = 'x'", "DELETE FROM event"):
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
    assert sorted(link.superoffice_id for link in ledger.iter_links()) == [10, 11, 12]


def test_every_link_gets_a_pair_state(ledger: Ledger) -> None:
    ledger.import_links([LinkRow(2, 10, 20)], origin="csv")
    status = ledger.status()
    assert status["links"] == 1
    assert status["superoffice"] == {"unknown": 1}
    assert ledger.check() == []


def _import_range(url: str, start: int, count: int) -> None:
    with Ledger.open(url) as ledger:
        for offset in range(0, count, 10):
            rows = [
                LinkRow(i, start + offset + i, 1_000_000 + start + offset + i) for i in range(10)
            ]
            report = ledger.import_links(rows, origin="csv")
            assert report.ok, report.problems
            run = ledger.start_run("sync", holder=f"p{start}")
            assert run.id is not None
            ledger.finish_run(run.id, outcome="converged", counts={"n": offset})


def test_two_processes_writing_at_once_both_succeed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    Ledger.open(url).close()
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_import_range, args=(url, s, 200)) for s in (1, 10_001)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [worker.exitcode for worker in workers] == [0, 0]
    with Ledger.open(url) as ledger:
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
    with Ledger.open("sqlite://") as ledger:
        assert ledger.path is None
        ledger.import_links([LinkRow(1, 1, 2)], origin="csv")
        assert ledger.count_links() == 1


def test_statement_errors_surface(ledger: Ledger) -> None:
    with pytest.raises(OperationalError), ledger.engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO nowhere VALUES (1)")
