"""A small versioned migrator for the ledger schema (docs/design.md, "The ledger").

Kept rather than Alembic: the ledger is a database owned by this package alone, upgraded
unattended when any command opens it, on a user's machine or a server; Alembic would add a
configuration tree and a script folder to package, and autogeneration we would not use. The
schema version lives in the `meta` table (any backend has one), a fresh ledger is created
from the current table declarations and stamped with the latest version, and an older one
runs each numbered step after its version, each in its own transaction. A step speaks
portable SQL, and asks its `Dialect` for whatever its backend spells differently.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, DateTime, Engine, Integer, String, inspect
from sqlalchemy.types import TypeEngine
from sqlmodel import SQLModel, col, select

from bridge.core.model import Side, Sides
from bridge.errors import BridgeError
from bridge.ledger import tables
from bridge.ledger.dialect import Dialect
from bridge.ledger.tables import Meta

__all__ = [
    "LATEST_VERSION",
    "MIGRATIONS",
    "SchemaError",
    "SidesMismatchError",
    "migrate",
    "recorded_sides",
    "schema_version",
]

#: a step brings a ledger from version-1 to its version
Step = Callable[[Connection, Dialect], None]

_VERSION_KEY = "schema_version"
#: the ledger's two sides, first then second, as "first,second"
_SIDES_KEY = "sides"


class SchemaError(BridgeError, RuntimeError):
    """The ledger's schema is newer than this version of bridge understands, or broken."""


class SidesMismatchError(SchemaError):
    """The ledger was made for other sides (or another order of them) than this bridge
    pairs: its columns would be read as the wrong vendor's."""


def _add_column(connection: Connection, table: str, column: str, type_: TypeEngine[Any]) -> None:
    """ALTER TABLE … ADD COLUMN, with the type spelled as the backend spells it."""
    spelled = type_.compile(dialect=connection.dialect)
    connection.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {spelled}")


def _rename_column(connection: Connection, table: str, old: str, new: str) -> None:
    """ALTER TABLE … RENAME COLUMN (SQL standard; SQLite has it since 3.25)."""
    connection.exec_driver_sql(f"ALTER TABLE {table} RENAME COLUMN {old} TO {new}")


def _columns(connection: Connection, table: str) -> set[str]:
    return {c["name"] for c in inspect(connection).get_columns(table)}


# --- history -------------------------------------------------------------------------------
# Before schema v3 the ledger named its vendors (the first side and the second), and the
# columns said so. These names are facts about ledgers already out there; they appear nowhere
# else in the ledger (tests/test_architecture.py allows them on lines marked legacy schema).

#: the sides every ledger before v3 was made for
_V2_SIDES = "superoffice,zendesk"  # legacy schema
#: v2's link columns, first side then second
_V2_LINK_IDS = ("superoffice_id", "zendesk_id")  # legacy schema
#: v2's prefixes of the per-side pair_state columns, first side then second
_V2_PREFIXES = ("so", "zd")


def _v2(connection: Connection, dialect: Dialect) -> None:
    """The vanished-ticket sweep's per-side check times."""
    present = _columns(connection, "pair_state")
    for prefix in _V2_PREFIXES:
        column = f"{prefix}_checked_at"
        if column not in present:
            _add_column(connection, "pair_state", column, DateTime())


def _v3(connection: Connection, dialect: Dialect) -> None:
    """Positional, vendor-neutral names: `link.first_id`/`second_id`, `pair_state.first_*`/
    `second_*` (what was the first side's only, status id and purge due time, now for both
    sides), indexes to match, and the two sides recorded in `meta`."""
    for old, new in zip(_V2_LINK_IDS, ("first_id", "second_id"), strict=True):
        _rename_column(connection, "link", old, new)
    present = _columns(connection, "pair_state")
    fields = ("state", "vendor_time", "seen_at", "cause", "status_id", "purge_due", "checked_at")
    for prefix, position in zip(_V2_PREFIXES, ("first", "second"), strict=True):
        for field in fields:
            if f"{prefix}_{field}" in present:
                _rename_column(connection, "pair_state", f"{prefix}_{field}", f"{position}_{field}")
    _add_column(connection, "pair_state", "second_status_id", Integer())
    _add_column(connection, "pair_state", "second_purge_due", DateTime())
    for field in ("state", "purge_due"):
        old, new = f"ix_pair_state_{_V2_PREFIXES[0]}_{field}", f"ix_pair_state_first_{field}"
        dialect.rename_index(connection, "pair_state", old, new, [f"first_{field}"])
    set_meta(connection, _SIDES_KEY, _V2_SIDES)


#: every time column of schema v3, by table: kept as text ('YYYY-MM-DD HH:MM:SS.ffffff', UTC)
_V3_TIMES: dict[str, tuple[str, ...]] = {
    "link": ("created_at",),
    "pair_state": (
        "base_at",
        "first_vendor_time",
        "first_seen_at",
        "first_purge_due",
        "second_vendor_time",
        "second_seen_at",
        "first_checked_at",
        "second_checked_at",
        "attention_since",
        "updated_at",
        "second_purge_due",
    ),
    "run": ("started_at", "ended_at"),
    "event": ("at", "vendor_time"),
    "operation": ("pending_until", "created_at", "sent_at", "finished_at", "updated_at"),
    "cursor": ("updated_at",),
    "lease": ("acquired_at", "expires_at"),
}


def _v4(connection: Connection, dialect: Dialect) -> None:
    """Times as integer microseconds since the epoch (`bridge.ledger.times`) instead of
    text: a large first sync spent most of its ledger time formatting and parsing them.
    Rewritten in place, so the columns keep their names, order and declared type (SQLite
    stores an integer as an integer in a DATETIME column); the event log's guard is lifted
    for the rewrite only, in the same transaction."""
    dialect.lift_append_only(connection, "event")
    for table, columns in _V3_TIMES.items():
        values = ", ".join(f"{column} = {dialect.micros_from_text(column)}" for column in columns)
        connection.exec_driver_sql(f"UPDATE {table} SET {values}")
    dialect.guard_append_only(connection, "event")


def _v5(connection: Connection, dialect: Dialect) -> None:
    """Who did it, for what a person asked bridge to do: `run.operator` (who authorised a
    run's override, such as `--allow-mass-purge`) and `event.operator` (on the events a
    person's command wrote: `conflicts resolve`, a run's `override`). Both NULL in the
    history before: those runs and events were bridge's own. Adding a column touches no
    row, so the event log's guard stays as it is."""
    for table in ("run", "event"):
        if "operator" not in _columns(connection, table):
            _add_column(connection, table, "operator", String())


#: the indexes schema v6 made partial on PostgreSQL, by table (their condition: `tables.partial`)
_V6_PARTIAL = {
    "pair_state": (
        "ix_pair_state_attention",
        "ix_pair_state_first_purge_due",
        "ix_pair_state_pending",
        "ix_pair_state_first_state",
    ),
    "event": ("ix_event_kind",),
}


def _v6(connection: Connection, dialect: Dialect) -> None:
    """What a large first sync wrote per row, cut where the backend lets it (issue 18):
    on PostgreSQL the pair_state indexes and the event log's kind index become partial
    (an update whose new row none of them looks for writes no entry in them), and the
    event log's references are checked by `bridge check` instead of a row lock per
    insert (`Dialect.unenforce_references`). SQLite's schema stays as it was."""
    for table, names in _V6_PARTIAL.items():
        declared = {str(index.name): index for index in SQLModel.metadata.tables[table].indexes}
        for name in names:
            dialect.reshape_index(connection, declared[name])
    dialect.unenforce_references(connection, "event")


def _v7(connection: Connection, dialect: Dialect) -> None:
    """What an idle run read every pair for, found by partial indexes on both backends
    (issue 16): the links never read on the second side (a new index), and the pairs
    flagged for attention (SQLite's whole index made partial: its planner never used it
    for `IS NOT NULL`). Each reads pair_state once, here."""
    declared = {str(i.name): i for i in SQLModel.metadata.tables["pair_state"].indexes}
    dialect.reshape_index(connection, declared["ix_pair_state_attention"])
    declared["ix_pair_state_second_unread"].create(connection, checkfirst=True)


def _v8(connection: Connection, dialect: Dialect) -> None:
    """What every run asks of the run table, found by index on both backends (issue 16:
    an idle run read every run twice, for a run left `running` and for a `bridge serve`
    run): the runs left running (a partial index) and the runs by kind."""
    for index in SQLModel.metadata.tables["run"].indexes:
        index.create(connection, checkfirst=True)


def _v9(connection: Connection, dialect: Dialect) -> None:
    """The links never read on the first side found by an index of their own on
    PostgreSQL (issue 18: the first idle run after a first sync read the state index's
    dead entries), whose state index then keeps only the soft-deleted. SQLite's schema
    stays as it was."""
    declared = {str(i.name): i for i in SQLModel.metadata.tables["pair_state"].indexes}
    declared["ix_pair_state_first_unread"].create(connection, checkfirst=True)
    dialect.reshape_index(connection, declared["ix_pair_state_first_state"])


#: version → the step that brings a ledger from version-1 to it. Never edit a released step.
#: (Version 1 has no step: a ledger is created at the latest version, never at 1.)
MIGRATIONS: dict[int, Step] = {2: _v2, 3: _v3, 4: _v4, 5: _v5, 6: _v6, 7: _v7, 8: _v8, 9: _v9}
LATEST_VERSION = max(MIGRATIONS)

_ = tables  # the table declarations must be imported before create_all


def schema_version(connection: Connection) -> int:
    """0 for an empty database."""
    if not inspect(connection).has_table("meta"):
        return 0
    value = meta_value(connection, _VERSION_KEY)
    return int(value) if value is not None else 0


def recorded_sides(connection: Connection) -> Sides | None:
    """The sides the ledger was created for (None: not recorded)."""
    value = meta_value(connection, _SIDES_KEY)
    if value is None:
        return None
    first, _, second = value.partition(",")
    return Sides(Side(first), Side(second))


def _check_sides(connection: Connection, sides: Sides) -> None:
    recorded = meta_value(connection, _SIDES_KEY)
    if recorded != _sides_value(sides):
        raise SidesMismatchError(
            f"the ledger was made for the sides {recorded or '(none recorded)'}, not "
            f"{_sides_value(sides)}: use the ledger made for these vendors"
        )


def _sides_value(sides: Sides) -> str:
    return f"{sides.first},{sides.second}"


def meta_value(connection: Connection, key: str) -> str | None:
    """A fact the ledger keeps about itself (`meta`), None when it keeps none."""
    return connection.execute(select(Meta.value).where(col(Meta.key) == key)).scalar()


def set_meta(connection: Connection, key: str, value: str) -> None:
    table = Meta.__table__  # type: ignore[attr-defined]
    connection.execute(table.delete().where(table.c.key == key))
    connection.execute(table.insert().values(key=key, value=value))


def _create(connection: Connection, dialect: Dialect, sides: Sides) -> None:
    """A fresh ledger: the tables as declared, the event log guarded (and its references
    left to `bridge check` where the backend asks), version and sides."""
    SQLModel.metadata.create_all(connection)
    dialect.guard_append_only(connection, "event")
    dialect.unenforce_references(connection, "event")
    set_meta(connection, _VERSION_KEY, str(LATEST_VERSION))
    set_meta(connection, _SIDES_KEY, _sides_value(sides))


def migrate(engine: Engine, dialect: Dialect, *, sides: Sides) -> int:
    """Bring the ledger to LATEST_VERSION, creating it for `sides` when empty, and make sure
    it was made for `sides`; return the version it had before."""
    with engine.begin() as connection:
        before = schema_version(connection)
        if before > LATEST_VERSION:
            raise SchemaError(
                f"the ledger has schema version {before}, newer than this bridge "
                f"(which knows up to {LATEST_VERSION}); upgrade bridge"
            )
        if before == 0:
            _create(connection, dialect, sides)
            return 0
        if before == LATEST_VERSION:
            _check_sides(connection, sides)
            return before
    for version in range(before + 1, LATEST_VERSION + 1):
        with engine.begin() as connection:
            MIGRATIONS[version](connection, dialect)
            set_meta(connection, _VERSION_KEY, str(version))
    with engine.begin() as connection:
        _check_sides(connection, sides)
    return before
