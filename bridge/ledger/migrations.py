"""A small versioned migrator for the ledger schema.

Why not Alembic: the ledger is one embedded SQLite file shipped inside a CLI, its schema is
owned by this package alone, and upgrades must run unattended at open time on the user's
machine. Alembic would add a second configuration tree, a script directory to package and
autogeneration we would not use. Here, the schema version lives in the `meta` table (so
any SQLAlchemy backend works), a fresh ledger is created from the current table
declarations and stamped with the latest version, and an older ledger runs each numbered
step after its version, each in its own transaction.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, Engine, inspect
from sqlmodel import SQLModel, col, select

from bridge.errors import BridgeError
from bridge.ledger import tables
from bridge.ledger.tables import Meta

__all__ = ["LATEST_VERSION", "MIGRATIONS", "SchemaError", "migrate", "schema_version"]


class SchemaError(BridgeError, RuntimeError):
    """The ledger's schema is newer than this version of bridge understands, or broken."""


def _append_only_triggers(connection: Connection) -> None:
    if connection.dialect.name != "sqlite":
        return
    for action in ("UPDATE", "DELETE"):
        connection.exec_driver_sql(
            f"CREATE TRIGGER IF NOT EXISTS event_no_{action.lower()} BEFORE {action} ON event "
            f"BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END"
        )


def _v1(connection: Connection) -> None:
    SQLModel.metadata.create_all(connection)
    _append_only_triggers(connection)


def _v2(connection: Connection) -> None:
    """The vanished-ticket sweep's per-side check times."""
    present = {c["name"] for c in inspect(connection).get_columns("pair_state")}
    for column in ("so_checked_at", "zd_checked_at"):
        if column not in present:
            connection.exec_driver_sql(f"ALTER TABLE pair_state ADD COLUMN {column} DATETIME")


#: version → step that brings a ledger from version-1 to version. Never edit a released step.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _v1, 2: _v2}
LATEST_VERSION = max(MIGRATIONS)

_ = tables  # the table declarations must be imported before create_all


def schema_version(connection: Connection) -> int:
    """0 for an empty database."""
    if not inspect(connection).has_table("meta"):
        return 0
    value = connection.execute(select(Meta.value).where(col(Meta.key) == "schema_version")).scalar()
    return int(value) if value is not None else 0


def _stamp(connection: Connection, version: int) -> None:
    table = Meta.__table__  # type: ignore[attr-defined]
    connection.execute(table.delete().where(table.c.key == "schema_version"))
    connection.execute(table.insert().values(key="schema_version", value=str(version)))


def migrate(engine: Engine) -> int:
    """Bring the ledger to LATEST_VERSION; return the version it had before."""
    with engine.begin() as connection:
        before = schema_version(connection)
        if before > LATEST_VERSION:
            raise SchemaError(
                f"the ledger has schema version {before}, newer than this bridge "
                f"(which knows up to {LATEST_VERSION}); upgrade bridge"
            )
        if before == 0:
            SQLModel.metadata.create_all(connection)
            _append_only_triggers(connection)
            _stamp(connection, LATEST_VERSION)
            return 0
    for version in range(before + 1, LATEST_VERSION + 1):
        with engine.begin() as connection:
            MIGRATIONS[version](connection)
            _stamp(connection, version)
    return before
