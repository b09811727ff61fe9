"""What the ledger does differently per database backend, in one place.

The rest of `bridge.ledger` speaks SQLAlchemy Core/ORM and portable SQL with bound `:name`
parameters; whatever one backend spells its own way is a method of `Dialect` here:
connection set-up, how a write transaction begins, the append-only guard on the event log,
the staging table of a link import and the bulk insert that fills it, joining text with a
separator, a list of ids bound as one value, the health checks, the read snapshot of a
report, and the one DDL statement that is not portable (renaming an index). Two backends:
`SQLiteDialect` (a file beside the CLI) and `PostgreSQLDialect` (a server, through psycopg
3); another is one more class and one more entry in `DIALECTS` (the URL's backend name
chooses, in `dialect_for`).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    Index,
    Text,
    any_,
    bindparam,
    cast,
    event,
    func,
    select,
    text,
)
from sqlalchemy.engine import URL
from sqlalchemy.engine.interfaces import DBAPICursor
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from bridge.ledger.tables import PARTIAL
from bridge.ledger.times import to_micros

__all__ = [
    "BUSY_TIMEOUT_MS",
    "DIALECTS",
    "FIELD_SEPARATOR",
    "LAZY_COMMIT",
    "READS_ONLY",
    "Dialect",
    "PostgreSQLDialect",
    "RowSource",
    "SQLiteDialect",
    "dialect_for",
]

#: an execution option marking a connection that only reads, each statement on its own
#: (a run's page of pairs or links): on a backend whose readers never wait for a writer
#: it takes no write lock; SQLite's `BEGIN IMMEDIATE` stays as for every transaction
READS_ONLY = "bridge_reads_only"
#: execution option: a transaction that records only what the vendors can show again
#: (observations and the change cursor that moves with them), unless it says otherwise
#: (`Dialect.commit_durably`): where the backend allows, its commit need not wait for the
#: disk (docs/design.md, "The ledger")
LAZY_COMMIT = "bridge_lazy_commit"
#: how long a writer waits for another process's transaction before giving up
BUSY_TIMEOUT_MS = 30_000
#: what `Dialect.join_fields` puts between two values (ASCII unit separator: never in text
#: the ledger keeps, so splitting on it is safe)
FIELD_SEPARATOR = "\x1f"
#: rows fetched at a time by a report's streaming reads
_FETCH = 2_000


class RowSource(Protocol):
    """Raw, read-only SQL inside one snapshot: rows streamed in batches."""

    def rows(self, sql: str, params: Mapping[str, Any]) -> Iterator[Sequence[Any]]: ...


class Dialect(Protocol):
    """Everything the ledger does that its backend spells its own way."""

    #: the SQLAlchemy backend name this dialect serves (`URL.get_backend_name()`)
    name: str
    #: the ledger lives on a database server (checked by connecting before it is believed),
    #: not in a file or in memory
    server: bool
    #: a batch of observations is recorded by one statement, bound to it as arrays
    #: (`array_value`; data-modifying CTEs: previous states, the changes' events, one
    #: `UPDATE … FROM` of the pairs; `bridge.ledger.sync._batch_sql`), not staged in a
    #: table and recorded a statement per step (`_pair_update_sql`)
    one_statement_batch: bool
    #: where a batch is recorded a statement per step, its pairs are updated by one
    #: `UPDATE … FROM` the staged batch (`_pair_update_from_sql`), not by a statement per
    #: kind of change with a correlated subquery per column (`_pair_update_sql`)
    update_from: bool
    #: a run records a page of observations on a thread and connection of its own while
    #: it reads the next (`bridge.ledger.behind`): the server's work on one page and the
    #: run's on the next overlap (issue 18)
    writes_behind: bool
    #: a read-only connection (`READS_ONLY`) runs each statement on its own, outside a
    #: transaction: on a server, BEGIN and COMMIT are each a round trip, for reads that
    #: see each statement's committed state either way (READ COMMITTED)
    reads_autocommit: bool
    #: `LATERAL` subqueries: a row's several columns of another table by one look-up of
    #: its key, where a scalar subquery per column looks it up once each
    lateral: bool

    # --- opening ---------------------------------------------------------------------

    def database_file(self, url: URL) -> Path | None:
        """The file the database lives in (None: a server, or in memory)."""
        ...

    def namespaced(self, url: URL, pair: str) -> URL:
        """The URL of a named pair's ledger beside the one `url` names: its own rows,
        reachable by no query of another pair's (docs/pairs.md)."""
        ...

    def create_namespace(self, cursor: DBAPICursor, url: URL) -> None:
        """Make the place a new pair's ledger goes in (a server's schema), if missing."""
        ...

    def connect_args(self) -> dict[str, Any]:
        """Driver arguments for `create_engine`."""
        ...

    def prepare_engine(self, engine: Engine, *, new_file: bool) -> None:
        """Set up every new connection, and make each transaction take the write lock up
        front (two writers queue instead of deadlocking). `new_file`: the ledger is being
        created here, so file-wide settings may be made."""
        ...

    def table_names(self, cursor: DBAPICursor) -> set[str]:
        """The tables of an existing database, read before anything else touches it."""
        ...

    def quick_check(self, cursor: DBAPICursor) -> list[str]:
        """The database's own quick consistency check: its findings, empty when fine."""
        ...

    def probe_write_lock(self, cursor: DBAPICursor, *, wait_seconds: float) -> None:
        """Take and release the write lock, waiting at most `wait_seconds` for it (raises
        the driver's error when another process holds it longer)."""
        ...

    # --- schema ----------------------------------------------------------------------

    def guard_append_only(self, connection: Connection, table: str) -> None:
        """Make the database itself refuse UPDATE and DELETE on `table`."""
        ...

    def lift_append_only(self, connection: Connection, table: str) -> None:
        """Remove `guard_append_only`'s guard: only a schema migration that rewrites the
        table's stored form does, and guards it again in the same transaction."""
        ...

    def rename_index(
        self, connection: Connection, table: str, old: str, new: str, columns: Sequence[str]
    ) -> None:
        """Rename the index `old` on `table` (over `columns`) to `new`."""
        ...

    def continue_ids(self, connection: Connection, table: str, column: str) -> None:
        """After rows were written with their ids given (a copy of a ledger), make the next
        generated id of `table` follow the largest one."""
        ...

    def reshape_index(self, connection: Connection, index: Index) -> None:
        """Make an existing index take the form its declaration gives on this backend (a
        partial one, where `tables.partial` gives it a condition here), when that form
        changed."""
        ...

    def unenforce_references(self, connection: Connection, table: str) -> None:
        """Where enforcing `table`'s foreign keys costs more than the ledger can pay on every
        insert, drop them (`health` then checks them instead)."""
        ...

    def micros_from_text(self, column: str) -> str:
        """A SQL expression: `column`, a time stored as text before schema v4, as integer
        microseconds since the epoch (NULL stays NULL, an integer stays as it is)."""
        ...

    # --- queries ---------------------------------------------------------------------

    def create_staging(self, connection: Connection, table: str, columns: str) -> None:
        """A scratch table private to this connection (`columns`: the column list in
        portable DDL), created when missing; the caller empties it before use
        (`clear_staging`) and says when it is done with it (`release_staging`)."""
        ...

    def clear_staging(self, connection: Connection, table: str) -> None:
        """Empty a staging table before use, inside the caller's transaction."""
        ...

    def release_staging(self, connection: Connection, table: str) -> None:
        """The caller is done with the staging table's rows in this transaction: none of
        them stays with the connection after it ends."""
        ...

    def reshaped(self, engine: Engine, table: str) -> None:
        """`table` has just had most of its rows changed, committed: refresh what the
        next statements are planned on, and clear what they would wade through."""
        ...

    def commit_durably(self, connection: Connection) -> None:
        """The caller's transaction, begun to commit lazily (`LAZY_COMMIT`), writes more than
        the vendors can show again after all (an operation): its commit waits for the disk
        as every other does."""
        ...

    def index_staging(self, connection: Connection, table: str, column: str) -> None:
        """An index on one column of a staging table, created when missing."""
        ...

    def bulk_insert(
        self,
        connection: Connection,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
    ) -> None:
        """Append many rows of plain values (ints, strings) by the driver's fastest path: a
        million-row link import spends its time here, and binding each row through
        SQLAlchemy would cost several times the insert itself."""
        ...

    def array_value(self, values: Sequence[int | str | None]) -> str:
        """A list of plain values (ints, strings, None) as one bound value, in the form
        the backend reads a list in (`ids_value`'s, for any of these values): a batch
        bound to one statement as a few lists instead of a row per observation
        (`one_statement_batch`)."""
        ...

    def join_fields(self, *expressions: str) -> str:
        """A SQL text expression: the values of `expressions` joined by FIELD_SEPARATOR."""
        ...

    def in_ids(
        self, column: ColumnElement[Any], ids: Sequence[int] | BindParameter[str]
    ) -> ColumnElement[bool]:
        """`column IN ids` with the ids bound as one value: a plain `in_` binds each id
        as a parameter of its own, which SQLAlchemy renders per statement, element by
        element (on a first sync of 100,000 links that cost more than the queries).
        `ids` may be a named parameter (`bindparam(name, type_=Text())`), given
        `ids_value(...)` when the statement runs: a statement run once a page is then
        built once, not once a page."""
        ...

    def ids_value(self, ids: Sequence[int]) -> str:
        """The one value `in_ids` binds for these ids."""
        ...

    def health(self, connection: Connection, *, file_backed: bool) -> list[str]:
        """Problems the database finds in itself (integrity, foreign keys, journal), each a
        sentence; empty when healthy."""
        ...

    # --- the run lease ------------------------------------------------------------------

    def hold_lease_lock(
        self, engine: Engine, name: str, holder: str
    ) -> PoolProxiedConnection | None:
        """A connection of its own whose session holds `holder`'s lock on the lease `name`
        until it is closed, or dies with its process; None where the backend has no
        sessions (the lease then ends only when it expires, or its process is seen gone)."""
        ...

    def lease_holder_alive(self, connection: Connection, name: str, holder: str) -> bool | None:
        """Whether `holder`'s session still holds its lock on the lease `name` (inside the
        ledger's write transaction); None where the backend cannot tell."""
        ...

    def read_snapshot(self, engine: Engine) -> AbstractContextManager[RowSource]:
        """One consistent read-only view of the database for a whole report, which never
        holds back a writer."""
        ...


class _SQLiteRows:
    """Raw DB-API reads on one SQLite connection: named parameters, times bound as the
    ledger stores them (integer microseconds, `bridge.ledger.times`)."""

    def __init__(self, connection: PoolProxiedConnection) -> None:
        self.connection = connection

    def rows(self, sql: str, params: Mapping[str, Any]) -> Iterator[Sequence[Any]]:
        bound = {k: to_micros(v) if isinstance(v, datetime) else v for k, v in params.items()}
        cursor = self.connection.cursor()
        try:
            cursor.execute(sql, bound)
            while True:
                batch = cursor.fetchmany(_FETCH)
                if not batch:
                    return
                yield from batch
        finally:
            cursor.close()


class SQLiteDialect:
    """SQLite: one file beside the CLI, pragmas per connection, triggers, TEMP tables."""

    name = "sqlite"
    server = False
    #: UPDATE … FROM needs SQLite 3.33, newer than some systems' Python links, and SQLite
    #: has no data-modifying CTE; a statement costs SQLite no round trip, and its
    #: subqueries are index lookups (docs/performance.md, issue 18)
    one_statement_batch = False
    #: UPDATE … FROM came with SQLite 3.33 (2020); older ones update as before
    update_from = sqlite3.sqlite_version_info >= (3, 33, 0)
    #: SQLite works in the run's own process: a write beside the next page's reads would
    #: share its CPU, not add a server's; writes are made as they come
    writes_behind = False
    #: a transaction costs SQLite no round trip
    reads_autocommit = False
    lateral = False

    def database_file(self, url: URL) -> Path | None:
        database = url.database
        if not database or database == ":memory:" or database.startswith("file::memory:"):
            return None
        return Path(database)

    def namespaced(self, url: URL, pair: str) -> URL:
        """A file of its own beside the ledger's: `bridge.db` → `bridge.acme.db`."""
        path = self.database_file(url)
        if path is None:
            raise ValueError("a ledger in memory cannot hold several pairs: give it a file")
        return url.set(database=str(path.with_name(f"{path.stem}.{pair}{path.suffix}")))

    def create_namespace(self, cursor: DBAPICursor, url: URL) -> None:
        """Nothing: a pair's file is created as any ledger file is."""

    def connect_args(self) -> dict[str, Any]:
        return {"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}

    def prepare_engine(self, engine: Engine, *, new_file: bool) -> None:
        """WAL, synchronous=FULL, foreign keys and a busy timeout on every connection;
        BEGIN IMMEDIATE for every transaction, so that two processes never deadlock
        upgrading a read lock. WAL is a property of the file: set once when the ledger is
        made, never on a file that may not be a ledger (the open checks must leave such a
        file as it was)."""

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" event below issue BEGIN itself.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            if new_file:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(connection: Connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    def table_names(self, cursor: DBAPICursor) -> set[str]:
        cursor.execute("SELECT name FROM sqlite_master WHERE type='table'")
        return {row[0] for row in cursor.fetchall()}

    def quick_check(self, cursor: DBAPICursor) -> list[str]:
        cursor.execute("PRAGMA quick_check")
        findings = [str(row[0]) for row in cursor.fetchall()]
        return [] if findings == ["ok"] else findings

    def probe_write_lock(self, cursor: DBAPICursor, *, wait_seconds: float) -> None:
        cursor.execute(f"PRAGMA busy_timeout={int(wait_seconds * 1000)}")
        try:
            cursor.execute("BEGIN IMMEDIATE")
            cursor.execute("ROLLBACK")
        finally:
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")

    def guard_append_only(self, connection: Connection, table: str) -> None:
        for action in ("UPDATE", "DELETE"):
            connection.exec_driver_sql(
                f"CREATE TRIGGER IF NOT EXISTS {table}_no_{action.lower()} BEFORE {action} "
                f"ON {table} BEGIN SELECT RAISE(ABORT, 'the {table} log is append-only'); END"
            )

    def lift_append_only(self, connection: Connection, table: str) -> None:
        for action in ("update", "delete"):
            connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_no_{action}")

    def continue_ids(self, connection: Connection, table: str, column: str) -> None:
        """An INTEGER PRIMARY KEY is the rowid: the next one follows the largest already."""

    def reshape_index(self, connection: Connection, index: Index) -> None:
        """Made again only when its declaration gives it a condition on SQLite: the other
        indexes are whole here (its planner uses a partial index only where a query
        repeats the index's condition)."""
        if index.info.get(PARTIAL, {}).get("sqlite"):
            _recreate(connection, index)

    def unenforce_references(self, connection: Connection, table: str) -> None:
        """Nothing: SQLite checks a foreign key by an index lookup, locking no row (and
        could drop one only by rebuilding the table)."""

    def micros_from_text(self, column: str) -> str:
        """SQLAlchemy kept times as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC): whole seconds from
        `strftime('%s')`, the fraction from its digits (never through a float)."""
        seconds = f"CAST(strftime('%s', substr({column}, 1, 19)) AS INTEGER)"
        fraction = f"CAST(substr(substr({column}, 21) || '000000', 1, 6) AS INTEGER)"
        return (
            f"CASE WHEN typeof({column}) = 'text' THEN {seconds} * 1000000 + "
            f"CASE WHEN substr({column}, 20, 1) = '.' THEN {fraction} ELSE 0 END "
            f"ELSE {column} END"
        )

    def rename_index(
        self, connection: Connection, table: str, old: str, new: str, columns: Sequence[str]
    ) -> None:
        """SQLite cannot rename an index: it is dropped and made again."""
        connection.exec_driver_sql(f"DROP INDEX IF EXISTS {old}")
        connection.exec_driver_sql(
            f"CREATE INDEX IF NOT EXISTS {new} ON {table} ({', '.join(columns)})"
        )

    def create_staging(self, connection: Connection, table: str, columns: str) -> None:
        connection.exec_driver_sql(f"CREATE TEMP TABLE IF NOT EXISTS {table} ({columns})")

    def clear_staging(self, connection: Connection, table: str) -> None:
        connection.exec_driver_sql(f"DELETE FROM {table}")

    def release_staging(self, connection: Connection, table: str) -> None:
        """DELETE now: a TEMP table keeps its rows for the connection's life."""
        self.clear_staging(connection, table)

    def reshaped(self, engine: Engine, table: str) -> None:
        """Nothing: SQLite plans the ledger's statements from its indexes, without
        statistics unless ANALYZE is run, and then it would weigh them in every plan; an
        update leaves no dead row behind for a read to skip."""

    def commit_durably(self, connection: Connection) -> None:
        """Nothing: `synchronous` is a connection's setting on SQLite, not a transaction's;
        every commit stays FULL (`LAZY_COMMIT` changes nothing here)."""

    def index_staging(self, connection: Connection, table: str, column: str) -> None:
        connection.exec_driver_sql(
            f"CREATE INDEX IF NOT EXISTS temp.ix_{table}_{column} ON {table}({column})"
        )

    def bulk_insert(
        self,
        connection: Connection,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
    ) -> None:
        """executemany with sqlite3's own `?` placeholders. A column that holds one value
        in every row (a batch's read time, its state, an empty cause) is written into the
        statement once instead of bound row by row: binding is most of an executemany's
        cost, about 0.3 µs a value (`_shared_literals`)."""
        by_column = list(zip(*rows, strict=True)) if len(rows) > 1 else []
        shared = _shared_literals(by_column)
        if len(shared) == len(columns):
            del shared[0]  # rows all alike: one value stays bound, so that each is a row
        if shared:
            bound = (values for i, values in enumerate(by_column) if i not in shared)
            rows = list(zip(*bound, strict=True))
        values = ", ".join(shared.get(i, "?") for i in range(len(columns)))
        connection.exec_driver_sql(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({values})", rows
        )

    def join_fields(self, *expressions: str) -> str:
        return " || char(31) || ".join(expressions)

    def in_ids(
        self, column: ColumnElement[Any], ids: Sequence[int] | BindParameter[str]
    ) -> ColumnElement[bool]:
        """The ids as one JSON array, read back by `json_each` (JSON is built into SQLite
        since 3.38, and into the builds Python ships before that)."""
        bound = (
            ids
            if isinstance(ids, BindParameter)
            else bindparam(None, self.ids_value(ids), type_=Text())
        )
        listed = func.json_each(bound).table_valued("value")
        return column.in_(select(listed.c.value))

    def ids_value(self, ids: Sequence[int]) -> str:
        return json.dumps([int(i) for i in ids])

    def array_value(self, values: Sequence[int | str | None]) -> str:
        return json.dumps(list(values))

    def health(self, connection: Connection, *, file_backed: bool) -> list[str]:
        problems: list[str] = []
        integrity = [
            str(v) for v in connection.exec_driver_sql("PRAGMA integrity_check").scalars().all()
        ]
        if integrity != ["ok"]:
            problems.append("integrity check failed: " + "; ".join(integrity[:5]))
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            problems.append(f"{len(broken)} rows break foreign keys")
        mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
        if file_backed and mode != "wal":
            problems.append(f"journal mode is {mode}, expected wal")
        return problems

    def hold_lease_lock(
        self, engine: Engine, name: str, holder: str
    ) -> PoolProxiedConnection | None:
        """None: a SQLite ledger is one machine's, where a dead holder is seen by its pid."""
        return None

    def lease_holder_alive(self, connection: Connection, name: str, holder: str) -> bool | None:
        return None

    @contextmanager
    def read_snapshot(self, engine: Engine) -> Iterator[RowSource]:
        """A deferred read transaction on a raw connection: in WAL mode it never blocks a
        writer, where the ledger's normal transactions (BEGIN IMMEDIATE) would stall a
        sync for a whole report."""
        raw = engine.raw_connection()
        try:
            raw.cursor().execute("BEGIN")  # deferred: reads only, never the write lock
            try:
                yield _SQLiteRows(raw)
            finally:
                raw.cursor().execute("ROLLBACK")
        finally:
            raw.close()


#: the advisory lock every PostgreSQL ledger transaction takes first: the ledger's one
#: writer at a time, as SQLite's BEGIN IMMEDIATE gives it (advisory locks are scoped to
#: their database, so each ledger database has its own). The bytes of "bridge".
PG_LEDGER_LOCK = 0x627269646765
#: ... taken per schema: each pair's ledger (its own schema) has its own writer, so pairs
#: sharing a database never wait on each other's transactions
_TAKE_LEDGER_LOCK = (
    f"SELECT pg_advisory_xact_lock(hashtextextended(current_schema(), {PG_LEDGER_LOCK}))"
)
#: ... for a transaction begun to commit lazily (`LAZY_COMMIT`), with its setting in the same
#: round trip: `synchronous_commit` off for this transaction only, so that its commit
#: returns before its WAL reaches the disk (the WAL writer flushes it within a few hundred
#: milliseconds). A server crash can lose only such commits, and only the latest: WAL is
#: written in order, and any later commit that waits (every one that writes an operation)
#: flushes all of it first. A first sync commits once per page of observations, each
#: waiting for an fsync otherwise (issue 18)
_TAKE_LEDGER_LOCK_LAZILY = (
    f"SELECT pg_advisory_xact_lock(hashtextextended(current_schema(), {PG_LEDGER_LOCK})), "
    "set_config('synchronous_commit', 'off', true)"
)
#: a run lease's session lock: one per ledger schema, lease and holder
_LEASE_LOCK_KEY = (
    f"hashtextextended(current_schema() || '/' || %(lease)s || '/' || %(holder)s, {PG_LEDGER_LOCK})"
)


def _lease_key(name: str, holder: str) -> dict[str, str]:
    return {"lease": name, "holder": holder}


def _recreate(connection: Connection, index: Index) -> None:
    """An index dropped and made again from its declaration, in the caller's transaction."""
    connection.exec_driver_sql(f"DROP INDEX IF EXISTS {index.name}")
    index.create(connection)


#: the event log's references that PostgreSQL does not enforce (`unenforce_references`):
#: column → the table whose `id` it names
_UNENFORCED = (("link_id", "link"), ("run_id", "run"))
#: the schemas of named pairs' ledgers are this and the pair's name (`namespaced`)
PAIR_SCHEMA_PREFIX = "bridge_"
#: the planner's cost of a page read out of order, for the ledger's sessions: the server's
#: default (4) prices an index lookup for a disk that seeks, so a batch's 1,000 lookups by
#: key were planned as a scan of the whole table (a first sync's link lookups, 10 ms
#: instead of 1 per batch at 100,000 links, issue 18); 1.1 is the usual value for SSDs
#: and for a working set in memory, as a ledger's is
RANDOM_PAGE_COST = 1.1
#: an execution option marking a report's read snapshot: it takes no lock
_SNAPSHOT = "bridge_read_snapshot"


class _PostgreSQLRows:
    """Reads inside one REPEATABLE READ READ ONLY transaction, streamed by a server-side
    cursor; `:name` parameters, times bound as the ledger stores them."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def rows(self, sql: str, params: Mapping[str, Any]) -> Iterator[Sequence[Any]]:
        bound = {k: to_micros(v) if isinstance(v, datetime) else v for k, v in params.items()}
        streamed = {"stream_results": True, "yield_per": _FETCH}
        result = self.connection.execute(text(sql), bound, execution_options=streamed)
        try:
            yield from result
        finally:
            result.close()


def with_search_path(url: URL, schema: str) -> URL:
    """`url` with `schema` as the session's `search_path`, through libpq's `options` (kept
    with whatever options the URL already gives; the last `search_path` is the one used)."""
    options = url.query.get("options", "")
    if isinstance(options, tuple):
        options = " ".join(options)
    return url.update_query_dict({"options": f"{options} -csearch_path={schema}".strip()})


def _array_element(value: int | str | None) -> str:
    """One element of `PostgreSQLDialect.array_value`'s literal."""
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(int(value))


class PostgreSQLDialect:
    """PostgreSQL through psycopg 3: a server the DBA runs, one advisory lock per ledger
    transaction, plpgsql triggers, TEMP tables, COPY, array-bound id lists."""

    name = "postgresql"
    server = True
    #: the subqueries made PostgreSQL scan the whole pair_state table per batch and write
    #: each pair twice, and each step was a round trip; the batch is bound to the
    #: statement as arrays, not staged (docs/performance.md, issue 18)
    one_statement_batch = True
    update_from = True  # `_batch_sql` ends with it
    writes_behind = True
    #: a run's lookup of a page's links was three round trips, two of them BEGIN and
    #: COMMIT: 800 of a 100,000-link first sync's, on the run's own thread (issue 18)
    reads_autocommit = True
    lateral = True

    def database_file(self, url: URL) -> Path | None:
        return None

    def namespaced(self, url: URL, pair: str) -> URL:
        """A schema of its own in the same database, `bridge_acme`, made the session's
        `search_path` through libpq's `options`: every table name the ledger writes,
        unqualified, then means that pair's table."""
        return with_search_path(url, f"{PAIR_SCHEMA_PREFIX}{pair}")

    def schema_of(self, url: URL) -> str | None:
        """The schema a pair's URL names (`namespaced`), None for the database's default."""
        options = url.query.get("options", "")
        text_ = " ".join(options) if isinstance(options, tuple) else options
        found = re.findall(r"-c\s*search_path=([A-Za-z0-9_]+)", text_)
        return found[-1] if found else None

    def create_namespace(self, cursor: DBAPICursor, url: URL) -> None:
        schema = self.schema_of(url)
        if schema is not None:
            cursor.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')

    def connect_args(self) -> dict[str, Any]:
        """The server's name for us in `pg_stat_activity`; the password never comes from
        here or the URL (libpq reads PGPASSWORD, ~/.pgpass, or the URL's `passfile`)."""
        return {"application_name": "bridge", "connect_timeout": 10}

    def prepare_engine(self, engine: Engine, *, new_file: bool) -> None:
        """Every transaction takes the ledger's advisory lock first, waiting at most
        BUSY_TIMEOUT_MS (`lock_timeout`), released at its commit or rollback: the same one
        writer at a time as SQLite, so the ledger's transactions need no retry on
        serialization failures, and two runs cannot interleave a check-then-write (the
        lease, a link import's clash checks). A report's snapshot takes no lock, nor does
        a run's read of a page of pairs or links (`READS_ONLY`): it writes nothing, and
        MVCC gives each of its statements a committed state; waiting for the writer first
        was a round trip per read, 600 of a 100,000-link first sync's (issue 18).

        JIT compilation is off for the ledger's sessions: the planner has no statistics
        on a staging table (autovacuum never analyzes TEMP tables), so a batch's few-row
        statements look costly enough to compile, and compiling took about 200 ms each,
        for statements that then ran in a millisecond (docs/postgresql.md, issue 18).
        `random_page_cost` is set for the ledger's sessions as for data that is cached
        (RANDOM_PAGE_COST)."""

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute(f"SET lock_timeout = {BUSY_TIMEOUT_MS}")
            cursor.execute("SET jit = off")
            cursor.execute(f"SET random_page_cost = {RANDOM_PAGE_COST}")
            cursor.close()
            dbapi_connection.commit()

        @event.listens_for(engine, "begin")
        def _on_begin(connection: Connection) -> None:
            options = connection.get_execution_options()
            if options.get(_SNAPSHOT):
                connection.exec_driver_sql(
                    "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
                )
            elif options.get(LAZY_COMMIT):
                connection.exec_driver_sql(_TAKE_LEDGER_LOCK_LAZILY)
            elif not options.get(READS_ONLY):
                connection.exec_driver_sql(_TAKE_LEDGER_LOCK)

    def table_names(self, cursor: DBAPICursor) -> set[str]:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        return {row[0] for row in cursor.fetchall()}

    def quick_check(self, cursor: DBAPICursor) -> list[str]:
        """The server checks its own pages (checksums, WAL): nothing to ask it here."""
        return []

    def probe_write_lock(self, cursor: DBAPICursor, *, wait_seconds: float) -> None:
        cursor.execute(f"SET LOCAL lock_timeout = {int(wait_seconds * 1000)}")
        try:
            cursor.execute(_TAKE_LEDGER_LOCK)
        finally:
            cursor.execute("ROLLBACK")

    def guard_append_only(self, connection: Connection, table: str) -> None:
        """Row triggers refuse UPDATE and DELETE, a statement trigger TRUNCATE (which row
        triggers do not see), all through one function that raises."""
        connection.exec_driver_sql(
            f"CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN "
            f"RAISE EXCEPTION 'the {table} log is append-only' "
            "USING ERRCODE = 'integrity_constraint_violation'; END $$"
        )
        for action, scope in (("update", "ROW"), ("delete", "ROW"), ("truncate", "STATEMENT")):
            connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_no_{action} ON {table}")
            connection.exec_driver_sql(
                f"CREATE TRIGGER {table}_no_{action} BEFORE {action.upper()} ON {table} "
                f"FOR EACH {scope} EXECUTE FUNCTION {table}_append_only()"
            )

    def lift_append_only(self, connection: Connection, table: str) -> None:
        for action in ("update", "delete", "truncate"):
            connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_no_{action} ON {table}")

    def continue_ids(self, connection: Connection, table: str, column: str) -> None:
        """The column's sequence moves on past the largest id (it knows nothing of ids
        given in an INSERT)."""
        connection.exec_driver_sql(
            f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
            f"COALESCE(max({column}), 0) + 1, false) FROM {table}"
        )

    def reshape_index(self, connection: Connection, index: Index) -> None:
        _recreate(connection, index)

    def unenforce_references(self, connection: Connection, table: str) -> None:
        """PostgreSQL checks each inserted row's reference by locking the row it names (`FOR
        KEY SHARE`, a WAL record per link): on the event log, 200,000 locks and about a
        fifth of a 100,000-link first sync's server time (issue 18). Nothing ever deletes a
        link or a run, and the ledger's rows name only ids it read from itself, so the
        references are checked by `health` (`bridge check`) instead."""
        names = connection.exec_driver_sql(
            "SELECT conname FROM pg_constraint "
            f"WHERE conrelid = '{table}'::regclass AND contype = 'f' ORDER BY conname"
        )
        for name in names.scalars().all():
            connection.exec_driver_sql(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')

    def micros_from_text(self, column: str) -> str:
        """A PostgreSQL ledger is created at schema v4 or later: its times were never
        text, so the v3→v4 rewrite leaves them as they are."""
        return column

    def rename_index(
        self, connection: Connection, table: str, old: str, new: str, columns: Sequence[str]
    ) -> None:
        connection.exec_driver_sql(f"ALTER INDEX IF EXISTS {old} RENAME TO {new}")

    def create_staging(self, connection: Connection, table: str, columns: str) -> None:
        """`ON COMMIT DELETE ROWS`: the server empties the table at the end of each
        transaction that used it, by truncating its file in place. Emptied any other way,
        it cost: rows deleted batch after batch stayed as dead tuples every later statement
        scanned (autovacuum never vacuums a TEMP table; about half a 100,000-link first
        sync's server CPU), and a TRUNCATE statement gives the table a new file through the
        catalog, twice per batch (issue 18)."""
        connection.exec_driver_sql(
            f"CREATE TEMP TABLE IF NOT EXISTS {table} ({columns}) ON COMMIT DELETE ROWS"
        )

    def clear_staging(self, connection: Connection, table: str) -> None:
        """DELETE: the table holds at most rows this transaction staged (the commit before
        emptied it, and an aborted one's rows are dead), and its dead tuples go with the
        commit's truncation."""
        connection.exec_driver_sql(f"DELETE FROM {table}")

    def release_staging(self, connection: Connection, table: str) -> None:
        """Nothing: the transaction's end empties the table (`create_staging`)."""

    def commit_durably(self, connection: Connection) -> None:
        """Back to the server's own `synchronous_commit` for this transaction."""
        connection.exec_driver_sql("SET LOCAL synchronous_commit TO DEFAULT")

    def reshaped(self, engine: Engine, table: str) -> None:
        """VACUUM (ANALYZE) now: autovacuum's comes a minute or more after the change
        commits. A run planned on the statistics from before a first sync scanned the
        whole of pair_state for each of its queries; and until the old row versions were
        cleared, each look for the few pairs pending, or unread, walked its partial
        index's dead entries, one for each of a first sync's 100,000 updates (1 to 2 ms a
        look, a sixth of an idle run's server time; issue 18). Outside any transaction
        (VACUUM refuses one), with no ledger lock (it writes no row); `SKIP_LOCKED`:
        autovacuum already at the table does the same."""
        with engine.connect().execution_options(
            **{READS_ONLY: True}, isolation_level="AUTOCOMMIT"
        ) as connection:
            connection.exec_driver_sql(f"VACUUM (ANALYZE, SKIP_LOCKED) {table}")

    def index_staging(self, connection: Connection, table: str, column: str) -> None:
        """A temporary table's index lives in the session's own schema: no name clash."""
        connection.exec_driver_sql(
            f"CREATE INDEX IF NOT EXISTS ix_{table}_{column} ON {table}({column})"
        )

    def bulk_insert(
        self,
        connection: Connection,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
    ) -> None:
        """COPY … FROM STDIN on the connection's own cursor, inside its transaction."""
        cursor = connection.connection.cursor()
        try:
            with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        finally:
            cursor.close()

    def join_fields(self, *expressions: str) -> str:
        return " || chr(31) || ".join(expressions)

    def in_ids(
        self, column: ColumnElement[Any], ids: Sequence[int] | BindParameter[str]
    ) -> ColumnElement[bool]:
        """`column = ANY(:ids)`, the ids bound as one BIGINT array written as its text
        literal: psycopg dumps a list of ints element by element in Python, a fifth of the
        ledger's client CPU on a first sync (issue 18); the server parses the text."""
        # imported here: a SQLite ledger's run loads none of SQLAlchemy's PostgreSQL dialects
        from sqlalchemy.dialects.postgresql import ARRAY

        bound = (
            ids
            if isinstance(ids, BindParameter)
            else bindparam(None, self.ids_value(ids), type_=Text())
        )
        return column == any_(cast(bound, ARRAY(BigInteger())))

    def ids_value(self, ids: Sequence[int]) -> str:
        return "{" + ",".join(str(int(i)) for i in ids) + "}"

    def array_value(self, values: Sequence[int | str | None]) -> str:
        """An array's text literal, cast in the statement (`CAST(:name AS bigint[])`), as
        `ids_value`: strings double-quoted (`"` and `\\` escaped), None as NULL. A list of
        ints alone, most of a batch's, is joined as it is."""
        if all(type(value) is int for value in values):
            return "{" + ",".join(map(str, values)) + "}"
        # a batch's states, causes and reads are a few values each: each written once
        distinct = set(values)
        if len(distinct) * 8 <= len(values):
            written = {value: _array_element(value) for value in distinct}
            return "{" + ",".join(map(written.__getitem__, values)) + "}"
        return "{" + ",".join(map(_array_element, values)) + "}"

    def health(self, connection: Connection, *, file_backed: bool) -> list[str]:
        """The server checks its pages itself, and enforces the foreign keys but the event
        log's (`unenforce_references`): those are checked here, with the log's guard, which
        a person could undo by hand."""
        guards = set(
            connection.exec_driver_sql(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = 'event'::regclass "
                "AND NOT tgisinternal"
            )
            .scalars()
            .all()
        )
        problems: list[str] = []
        missing = {f"event_no_{a}" for a in ("update", "delete", "truncate")} - guards
        if missing:
            problems.append(
                f"the event log's append-only guard is missing ({', '.join(sorted(missing))})"
            )
        for column, parent in _UNENFORCED:
            orphans = connection.exec_driver_sql(
                f"SELECT count(*) FROM event e WHERE e.{column} IS NOT NULL "
                f"AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE p.id = e.{column})"
            ).scalar_one()
            if orphans:
                problems.append(f"{orphans} events name a {parent} that does not exist")
        return problems

    def hold_lease_lock(
        self, engine: Engine, name: str, holder: str
    ) -> PoolProxiedConnection | None:
        """A session-level advisory lock keyed by the lease and its holder, on a connection
        taken out of the pool (closing it really closes the session). A holder SIGKILLed,
        or lost with its machine, lets go of it when the server sees its connection end: the
        next run takes the lease over at once instead of waiting for it to expire."""
        raw = engine.raw_connection()
        raw.detach()
        try:
            cursor = raw.cursor()
            cursor.execute(
                f"SELECT pg_try_advisory_lock({_LEASE_LOCK_KEY})", _lease_key(name, holder)
            )
            cursor.close()
            raw.commit()
        except BaseException:
            raw.close()
            raise
        return raw

    def lease_holder_alive(self, connection: Connection, name: str, holder: str) -> bool:
        """Try the holder's lock for the rest of this transaction: taken means no session
        holds it, so the holder is gone (or never held it: a bridge older than this lock,
        docs/workers.md)."""
        taken = connection.exec_driver_sql(
            f"SELECT pg_try_advisory_xact_lock({_LEASE_LOCK_KEY})", _lease_key(name, holder)
        ).scalar_one()
        return not taken

    @contextmanager
    def read_snapshot(self, engine: Engine) -> Iterator[RowSource]:
        """REPEATABLE READ, READ ONLY, without the ledger's lock: one snapshot for the
        whole report, and a sync writes on meanwhile (MVCC)."""
        with engine.connect() as connection:
            connection.execution_options(**{_SNAPSHOT: True})
            with connection.begin() as transaction:  # the begin hook sets the snapshot
                try:
                    yield _PostgreSQLRows(connection)
                finally:
                    transaction.rollback()


#: backend name → its dialect: the one place that decides what the ledger runs on
DIALECTS: Mapping[str, Dialect] = {
    SQLiteDialect.name: SQLiteDialect(),
    PostgreSQLDialect.name: PostgreSQLDialect(),
}


def dialect_for(url: URL) -> Dialect | None:
    """The dialect of a ledger URL's backend; None when bridge has none for it."""
    return DIALECTS.get(url.get_backend_name())


def _shared_literals(by_column: Sequence[Sequence[Any]]) -> dict[int, str]:
    """The columns (each the values of every row) that hold one value throughout, as
    SQLite literals by column position. Only NULL, ints and strings qualify, of one type
    in every row (so that `1` and `True` are not taken for one value); a string with a NUL
    is left bound."""
    shared: dict[int, str] = {}
    for position, column in enumerate(by_column):
        first = column[0]
        kind = type(first)
        if first is None:
            literal = "NULL"
        elif kind is int and -(2**63) <= first < 2**63:
            literal = str(first)
        elif kind is str and "\x00" not in first:
            literal = "'" + first.replace("'", "''") + "'"
        else:
            continue
        # equal and of one type (`set(map(...))` runs in C: a batch has thousands of rows)
        if column.count(first) == len(column) and len(set(map(type, column))) == 1:
            shared[position] = literal
    return shared
