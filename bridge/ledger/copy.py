"""A whole ledger copied to another database (`bridge ledger copy`): SQLite to PostgreSQL
when a pair outgrows a file, and back. The audit trail is the point of the ledger, so the
copy is all or nothing and proves itself: every table is read in key order inside one
transaction of the source (which holds back any writer), written inside one transaction of
the target, read back from it, and committed only when each table's row count and
checksum match the source's."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, Table, func, select
from sqlmodel import SQLModel

from bridge.errors import BridgeError
from bridge.ledger.store import Ledger

__all__ = ["COPIED_TABLES", "LedgerCopyError", "TableCopy", "copy_ledger"]

#: what is copied, parents before children (foreign keys). Not `lease`: it names who runs
#: against the source now, and the copy holds it itself while it reads.
COPIED_TABLES = ("meta", "link", "run", "pair_state", "event", "operation", "cursor")
#: tables a target must have no row in (its `meta` is bridge's own, and replaced)
_DATA_TABLES = (*COPIED_TABLES[1:], "lease")
_CHUNK = 10_000


class LedgerCopyError(BridgeError, RuntimeError):
    """The target cannot take the copy, or the copy did not match: nothing was committed."""


@dataclass(frozen=True, slots=True)
class TableCopy:
    """One table copied: its rows and the checksum both databases agree on."""

    table: str
    rows: int
    checksum: str


def _table(name: str) -> Table:
    table = SQLModel.metadata.tables[name]
    assert isinstance(table, Table)
    return table


def _chunks(connection: Connection, table: Table) -> Iterator[Sequence[Row[Any]]]:
    """The table's rows in primary-key order, a chunk at a time (keyset paging: each query
    starts where the last ended, so a million rows never sit in memory at once)."""
    keys = list(table.primary_key.columns)
    query = select(table).order_by(*keys)
    last: Row[Any] | None = None
    while True:
        page = query
        if last is not None:
            if len(keys) != 1:  # pragma: no cover - every ledger table has one key column
                raise NotImplementedError("composite keys")
            page = query.where(keys[0] > last._mapping[keys[0].name])
        rows = connection.execute(page.limit(_CHUNK)).all()
        if not rows:
            return
        yield rows
        last = rows[-1]


def _digest(digest: Any, rows: Sequence[Row[Any]]) -> None:
    """Add rows to a checksum as their values read back (aware datetimes, bools, ints,
    text): equal on both backends exactly when the ledger would read the same."""
    for row in rows:
        digest.update(repr(tuple(row)).encode())
        digest.update(b"\n")


def _summary(connection: Connection, table: Table) -> tuple[int, str]:
    """A table's row count and checksum, as read through `connection`."""
    digest = hashlib.sha256()
    count = 0
    for rows in _chunks(connection, table):
        _digest(digest, rows)
        count += len(rows)
    return count, digest.hexdigest()


def _refuse_non_empty(target: Ledger, connection: Connection) -> None:
    filled = [
        name
        for name in _DATA_TABLES
        if connection.execute(select(func.count()).select_from(_table(name))).scalar_one()
    ]
    if filled:
        where = target.path or target.engine.url.render_as_string(hide_password=True)
        raise LedgerCopyError(
            f"the target ledger {where} is not empty (rows in {', '.join(filled)}): copy "
            "only into a new database, so that no history is mixed or overwritten"
        )


def copy_ledger(source: Ledger, target_url: str) -> list[TableCopy]:
    """Copy every table of `source` into the empty ledger at `target_url` (created there
    when missing, for the source's sides), verified table by table before the commit.
    Raises `LedgerCopyError` for a non-empty target or a mismatch (then the target holds
    nothing of the copy)."""
    with (
        Ledger.open(target_url, sides=source.sides, create=True) as target,
        target.engine.begin() as writing,
    ):
        _refuse_non_empty(target, writing)  # before the source is locked: it may be the same
        with source.engine.begin() as reading:
            copied = _copy_tables(target, reading, writing)
    return copied


def _copy_tables(target: Ledger, reading: Connection, writing: Connection) -> list[TableCopy]:
    """Each table in turn: written in chunks, counted and summed on the way, read back."""
    copied: list[TableCopy] = []
    writing.execute(_table("meta").delete())
    for name in COPIED_TABLES:
        table = _table(name)
        digest = hashlib.sha256()
        count = 0
        for rows in _chunks(reading, table):
            writing.execute(table.insert(), [dict(row._mapping) for row in rows])
            _digest(digest, rows)
            count += len(rows)
        if "id" in table.c:  # a generated id: its sequence must move past the copied ones
            target.dialect.continue_ids(writing, name, "id")
        expected = (count, digest.hexdigest())
        found = _summary(writing, table)
        if found != expected:
            raise LedgerCopyError(
                f"the copy of {name} does not match its source ({found[0]} rows read "
                f"back of {count} written, or their checksum differs): nothing was "
                "committed"
            )
        copied.append(TableCopy(name, count, expected[1]))
    return copied
