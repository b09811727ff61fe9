"""`copy_ledger` and the PostgreSQL ledger's own refusals, on real databases: a copy is
all or nothing and proves itself; a server database is checked before it is believed."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from bridge.ledger import Ledger, LedgerURLError, LinkRow
from bridge.ledger.copy import COPIED_TABLES, LedgerCopyError, copy_ledger
from bridge.vendors.registry import SIDES
from tests.report.conftest import fill_synthetic


def _history(url: str) -> None:
    """A ledger with some of everything: links, runs, events, operations, a cursor."""
    with Ledger.open(url, sides=SIDES) as ledger:
        fill_synthetic(ledger)
        ledger.import_links([LinkRow(1, 2**40, 2**62)], origin="csv")  # 64-bit vendor ids
        with ledger.engine.begin() as connection:
            connection.execute(
                text("INSERT INTO cursor (side, value, updated_at) VALUES ('zendesk', 'c1', 0)")
            )


def _rows(url: str, table: str) -> list[tuple[object, ...]]:
    with Ledger.open(url, sides=SIDES) as ledger, ledger.engine.connect() as connection:
        return [tuple(r) for r in connection.execute(text(f"SELECT * FROM {table} ORDER BY 1"))]


def test_a_copy_there_and_back_keeps_every_row(postgres_url: str, tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'source.db'}"
    back = f"sqlite:///{tmp_path / 'back.db'}"
    _history(source)
    with Ledger.open(source, sides=SIDES) as ledger:
        up = copy_ledger(ledger, postgres_url)
    with Ledger.open(postgres_url, sides=SIDES) as ledger:
        down = copy_ledger(ledger, back)
        assert ledger.check() == []
    assert [t.table for t in up] == list(COPIED_TABLES)
    assert up == down  # the same counts and checksums each way
    assert {t.table: t.rows for t in up}["event"] > 10
    for table in COPIED_TABLES:
        assert _rows(back, table) == _rows(source, table), table


def test_the_copy_continues_ids_and_stays_append_only(postgres_url: str, tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'source.db'}"
    _history(source)
    with Ledger.open(source, sides=SIDES) as ledger:
        copy_ledger(ledger, postgres_url)
        largest = ledger.count_links()
    with Ledger.open(postgres_url, sides=SIDES) as ledger:
        assert ledger.import_links([LinkRow(1, 7, 7)], origin="csv").created == 1
        run = ledger.start_run("sync", holder="test")  # event and run ids: new ones
        assert run.id is not None
        assert max(link.id or 0 for link in ledger.iter_links()) == largest + 1
        with pytest.raises(IntegrityError, match="append-only"), ledger.engine.begin() as c:
            c.execute(text("DELETE FROM event"))


def test_a_target_with_history_is_refused_and_left_as_it_was(
    postgres_url: str, tmp_path: Path
) -> None:
    source = f"sqlite:///{tmp_path / 'source.db'}"
    _history(source)
    with Ledger.open(postgres_url, sides=SIDES) as target:
        target.import_links([LinkRow(1, 5, 6)], origin="csv")
    with (
        Ledger.open(source, sides=SIDES) as ledger,
        pytest.raises(LedgerCopyError, match="not empty"),
    ):
        copy_ledger(ledger, postgres_url)
    assert [r[1:3] for r in _rows(postgres_url, "link")] == [(5, 6)]


def test_a_copy_that_does_not_read_back_the_same_is_rolled_back(
    postgres_url: str, tmp_path: Path
) -> None:
    """A target that alters what it stores (here a trigger; in life a bad column type or
    a collation) is caught by the read-back, and nothing of the copy stays."""
    source = f"sqlite:///{tmp_path / 'source.db'}"
    _history(source)
    Ledger.open(postgres_url, sides=SIDES).close()
    engine = create_engine(postgres_url)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE FUNCTION tamper() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "NEW.origin := 'tampered'; RETURN NEW; END $$"
        )
        connection.exec_driver_sql(
            "CREATE TRIGGER tamper BEFORE INSERT ON link FOR EACH ROW EXECUTE FUNCTION tamper()"
        )
    engine.dispose()
    with Ledger.open(source, sides=SIDES) as ledger, pytest.raises(LedgerCopyError, match="link"):
        copy_ledger(ledger, postgres_url)
    with Ledger.open(postgres_url, sides=SIDES) as target:
        assert target.count_links() == 0
        assert target.recent_runs() == []


def test_a_database_of_another_program_is_refused(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE invoices (id INTEGER)")
    engine.dispose()
    with pytest.raises(LedgerURLError, match="not a bridge ledger"):
        Ledger.open(postgres_url, sides=SIDES)


def test_an_unreachable_server_is_named_without_secrets(pg_cluster: object) -> None:
    url = "postgresql+psycopg://bridge@127.0.0.1:1/nothing"
    with pytest.raises(LedgerURLError, match="cannot connect to the ledger") as raised:
        Ledger.open(url, sides=SIDES)
    assert "127.0.0.1:1/nothing" in str(raised.value)


def test_check_names_a_missing_guard_on_the_event_log(postgres_url: str) -> None:
    with Ledger.open(postgres_url, sides=SIDES) as ledger:
        assert ledger.check() == []
        with ledger.engine.begin() as connection:
            connection.exec_driver_sql("DROP TRIGGER event_no_truncate ON event")
        assert ledger.check() == [
            "the event log's append-only guard is missing (event_no_truncate)"
        ]
