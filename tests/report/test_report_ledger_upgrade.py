"""Schema v5: a ledger from before operators were recorded is upgraded in place, keeps its
history (bridge's own, so no operator), and records operators from then on.

SQLite only: the old-version ledger is a SQLite file (tests/test_ledger.py's v2 schema, a
dump of SQLite's sqlite_master), and its layout is read from that file.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from bridge.ledger import LATEST_VERSION, Ledger, migrations
from bridge.ledger.dialect import SQLiteDialect
from bridge.vendors.registry import SIDES
from tests.test_ledger import _layout, _v2_ledger


def _v4_ledger(path: Path) -> str:
    """A schema v4 ledger as bridge made it (the v2 one brought up by its own steps), with
    a run and its events written as v4 wrote them: no operator column anywhere."""
    url = _v2_ledger(path)
    engine = create_engine(url)
    with engine.begin() as c:
        for version in (2, 3, 4):
            migrations.MIGRATIONS[version](c, SQLiteDialect())
        c.exec_driver_sql("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
        c.exec_driver_sql(
            "INSERT INTO run (id, kind, holder, started_at, outcome, dry_run, counts) "
            "VALUES (7, 'sync', 'h', 1767484800000000, 'attention', 0, '{}')"
        )
        c.exec_driver_sql(
            "INSERT INTO event (id, at, run_id, link_id, kind, detail) "
            "VALUES (9, 1767484800000001, 7, 1, 'conflict', 'both changed')"
        )
    engine.dispose()
    return url


def test_a_v4_ledger_gains_the_operator_columns_and_keeps_its_history(tmp_path: Path) -> None:
    url = _v4_ledger(tmp_path / "v4.db")
    before = _layout(url)
    assert "operator" not in before["run"]  # type: ignore[operator]
    assert "operator" not in before["event"]  # type: ignore[operator]
    with Ledger.open(url, sides=SIDES) as ledger:
        assert ledger.schema_version() == LATEST_VERSION
        assert ledger.check() == []
        with ledger.engine.connect() as c:
            old_run = c.exec_driver_sql("SELECT kind, operator FROM run WHERE id = 7").one()
            old_event = c.exec_driver_sql("SELECT kind, operator FROM event WHERE id = 9").one()
        assert tuple(old_run) == ("sync", None)
        assert tuple(old_event) == ("conflict", None)
        # the event log is still append-only
        with pytest.raises(IntegrityError, match="append-only"), ledger.engine.begin() as c:
            c.execute(text("UPDATE event SET operator = 'x' WHERE id = 9"))
        # and operators are recorded from now on
        run = ledger.start_run("sync", holder="h", operator="Jane Roe", override="allow_mass_purge")
        with ledger.engine.connect() as c:
            stored = c.exec_driver_sql(
                "SELECT operator FROM run WHERE id = :id", {"id": run.id}
            ).scalar()
            override = c.exec_driver_sql(
                "SELECT detail, operator FROM event WHERE run_id = :id AND kind = 'override'",
                {"id": run.id},
            ).one()
        assert stored == "Jane Roe"
        assert tuple(override) == ("allow_mass_purge", "Jane Roe")
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    Ledger.open(fresh, sides=SIDES).close()
    assert _layout(url) == _layout(fresh)


def test_the_v5_step_can_run_again_after_an_interruption(tmp_path: Path) -> None:
    """A step that ran but whose version stamp was lost (killed in between) runs again:
    it adds only the columns that are missing."""
    url = _v4_ledger(tmp_path / "v4.db")
    engine = create_engine(url)
    with engine.begin() as c:
        migrations.MIGRATIONS[5](c, SQLiteDialect())
    with engine.begin() as c:
        migrations.MIGRATIONS[5](c, SQLiteDialect())
    engine.dispose()
    with Ledger.open(url, sides=SIDES) as ledger:
        assert ledger.schema_version() == LATEST_VERSION
    columns = [
        row[1] for row in sqlite3.connect(tmp_path / "v4.db").execute("PRAGMA table_info(run)")
    ]
    assert columns.count("operator") == 1
