"""The `Ledger`: the only place that reads or writes the ledger database.

Everything else in bridge calls these methods; no SQL lives outside `bridge.ledger`.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Boolean, Connection, Engine, bindparam, func, literal_column, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import PoolProxiedConnection
from sqlmodel import Session, col, select

from bridge.core.model import Side, Sides
from bridge.errors import BridgeError, ExitCode
from bridge.ledger.audit import AuditStore
from bridge.ledger.behind import WriteBehind
from bridge.ledger.dialect import Dialect
from bridge.ledger.engine import create_ledger_engine, ledger_dialect
from bridge.ledger.files import seal_ledger
from bridge.ledger.migrations import LATEST_VERSION, migrate, schema_version
from bridge.ledger.sync import SyncStore
from bridge.ledger.tables import (
    RUNNING,
    Cursor,
    Event,
    Lease,
    Link,
    Operation,
    OperationStatus,
    PairState,
    Run,
    UTCDateTime,
    utcnow,
)

__all__ = [
    "ImportReport",
    "LeaseHeldError",
    "Ledger",
    "LinkProblem",
    "LinkRow",
    "default_holder",
]

_IMPORT_CHUNK = 20_000
_STATUS_ATTENTION_ROWS = 20
#: the staging table of a link import, private to its connection
_STAGING = "link_import"


@dataclass(frozen=True, slots=True)
class LinkRow:
    """One parsed row of a link file: its line number and the two ticket ids, the first
    side's then the second's."""

    line: int
    first_id: int
    second_id: int

    @classmethod
    def of(cls, line: int, sides: Sides, tickets: Mapping[Side, int]) -> LinkRow:
        """A row from each side's ticket id."""
        return cls(line, tickets[sides.first], tickets[sides.second])


@dataclass(frozen=True, slots=True, order=True)
class LinkProblem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True, slots=True)
class ImportReport:
    rows: int
    created: int
    unchanged: int
    problems: tuple[LinkProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


class LeaseHeldError(BridgeError, RuntimeError):
    exit_code = ExitCode.LEASE_HELD

    def __init__(self, holder: str, since: datetime, expires_at: datetime) -> None:
        self.holder = holder
        self.since = since
        self.expires_at = expires_at
        super().__init__(
            f"another run holds the ledger: {holder}, since {since.isoformat(timespec='seconds')} "
            f"(its lease expires at {expires_at.isoformat(timespec='seconds')})"
        )


def default_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _holder_is_gone(holder: str) -> bool:
    """True only when the holder ran on this host and its process no longer exists: a run
    killed by cron's timeout or the OOM killer need not block the next one until its lease
    expires. Holders on other hosts (another pod, another server) are never judged."""
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by someone else
        return False
    return False


class Ledger(SyncStore, AuditStore):
    """A ledger database. Open with `Ledger.open(url, sides=...)`; use as a context manager."""

    def __init__(self, engine: Engine, dialect: Dialect, sides: Sides) -> None:
        self.engine = engine
        self.dialect = dialect
        #: the session locks of the leases held through this ledger, by (lease, holder)
        self._lease_locks: dict[tuple[str, str], PoolProxiedConnection] = {}
        #: the pair's two sides, in the ledger's order (first, second)
        self.sides = sides
        self._writes = 0
        self._writes_lock = threading.Lock()

    @property
    def writes(self) -> int:
        """How many write transactions this ledger object has committed (`session`), on
        any thread: a run tells by it that nothing it could read again has changed."""
        return self._writes

    @classmethod
    def open(cls, url: str, *, sides: Sides, create: bool = True) -> Ledger:
        """Open (creating when allowed: only where no file exists) and migrate the ledger
        at a SQLAlchemy URL. A new ledger records `sides`; an existing one must have been
        made for the same sides, in the same order (`SidesMismatchError` otherwise: its
        columns would be read as the wrong vendor's). A file created here and left
        unfinished is removed, so that a failed creation never leaves an empty file behind
        to be refused next time."""
        dialect = ledger_dialect(url)
        path = dialect.database_file(make_url(url))
        new = path is not None and not path.exists()
        engine = create_ledger_engine(url, dialect, create=create)
        try:
            migrate(engine, dialect, sides=sides)
        except BaseException:
            engine.dispose()
            if new and path is not None:
                for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                    leftover.unlink(missing_ok=True)
            raise
        return cls(engine, dialect, sides)

    def close(self) -> None:
        for lock in self._lease_locks.values():
            lock.close()
        self._lease_locks.clear()
        self.engine.dispose()
        path = self.path
        if path is not None:
            seal_ledger(Path(path))  # the next open need not check what this one left

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def path(self) -> str | None:
        path = self.dialect.database_file(self.engine.url)
        return str(path) if path else None

    def write_behind(self) -> WriteBehind[Any] | None:
        """Writes behind the caller on this ledger, where the backend gains by them
        (`Dialect.writes_behind`); None: each write made as it comes."""
        return WriteBehind(self.engine) if self.dialect.writes_behind else None

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session
        with self._writes_lock:
            self._writes += 1

    # --- health -----------------------------------------------------------------

    def check(self) -> list[str]:
        """Problems with the ledger itself, each a sentence; empty when healthy."""
        problems: list[str] = []
        with self.engine.connect() as connection:
            version = schema_version(connection)
            if version != LATEST_VERSION:
                problems.append(f"schema version {version}, expected {LATEST_VERSION}")
            problems.extend(self.dialect.health(connection, file_backed=self.path is not None))
            orphans = connection.execute(
                select(func.count())
                .select_from(Link)
                .outerjoin(PairState, col(PairState.link_id) == col(Link.id))
                .where(col(PairState.link_id).is_(None))
            ).scalar_one()
            if orphans:
                problems.append(f"{orphans} links have no pair state")
        path = self.path
        if path and os.path.exists(path) and os.stat(path).st_mode & 0o077:
            problems.append(
                f"{path} is readable by others (mode {os.stat(path).st_mode & 0o777:o})"
            )
        return problems

    def schema_version(self) -> int:
        with self.engine.connect() as connection:
            return schema_version(connection)

    # --- links ------------------------------------------------------------------

    def import_links(
        self,
        rows: Iterable[LinkRow],
        *,
        origin: str,
        parse_problems: Sequence[LinkProblem] = (),
    ) -> ImportReport:
        """Add links all-or-nothing.

        Every row is staged and checked first: an id repeated within the rows, or already
        linked to a different partner, is a problem. `parse_problems` are the caller's own
        findings (malformed lines), read once `rows` is exhausted. With any problem nothing
        is written. Rows that repeat an existing link exactly change nothing, so importing
        the same file twice is a no-op.
        """
        now = utcnow()
        columns = ("line", "first_id", "second_id")
        with self.engine.begin() as connection:
            self.dialect.create_staging(
                connection,
                _STAGING,
                "line INTEGER NOT NULL, first_id BIGINT NOT NULL, second_id BIGINT NOT NULL",
            )
            self.dialect.clear_staging(connection, _STAGING)
            count = 0
            chunk: list[tuple[int, int, int]] = []
            for row in rows:
                chunk.append((row.line, row.first_id, row.second_id))
                if len(chunk) >= _IMPORT_CHUNK:
                    self.dialect.bulk_insert(connection, _STAGING, columns, chunk)
                    count += len(chunk)
                    chunk = []
            if chunk:
                self.dialect.bulk_insert(connection, _STAGING, columns, chunk)
                count += len(chunk)
            problems = list(parse_problems) + self._staged_link_problems(connection)
            if problems:
                connection.rollback()
                return ImportReport(count, 0, 0, tuple(sorted(problems)))
            before = connection.execute(select(func.count()).select_from(Link)).scalar_one()
            connection.execute(
                text(
                    "INSERT INTO link (first_id, second_id, origin, created_at) "
                    f"SELECT first_id, second_id, :origin, :at FROM {_STAGING} s "
                    "WHERE NOT EXISTS (SELECT 1 FROM link l WHERE l.first_id = s.first_id) "
                    "ORDER BY line"
                ).bindparams(bindparam("at", type_=UTCDateTime)),
                {"origin": origin, "at": now},
            )
            connection.execute(
                text(
                    "INSERT INTO pair_state (link_id, base_version, pending_decision, updated_at) "
                    "SELECT l.id, 0, :pending, :at FROM link l "
                    "LEFT JOIN pair_state p ON p.link_id = l.id WHERE p.link_id IS NULL"
                ).bindparams(
                    bindparam("pending", type_=Boolean), bindparam("at", type_=UTCDateTime)
                ),
                {"pending": False, "at": now},
            )
            after = connection.execute(select(func.count()).select_from(Link)).scalar_one()
            created = after - before
            if created:
                connection.execute(
                    Event.__table__.insert().values(  # type: ignore[attr-defined]
                        at=now, kind="links_imported", detail=f"{created} links ({origin})"
                    )
                )
            self.dialect.release_staging(connection, _STAGING)
        return ImportReport(count, created, count - created, ())

    def _staged_link_problems(self, connection: Connection) -> list[LinkProblem]:
        """Staged rows that repeat an id, or whose id is already linked to another partner;
        each named as the link file names its columns (`<side>_id`)."""
        columns = ("first_id", "second_id")
        named = dict(zip(columns, (f"{side}_id" for side in self.sides), strict=True))
        for column in columns:
            self.dialect.index_staging(connection, _STAGING, column)
        problems: list[LinkProblem] = []
        for column in columns:
            first_line = f"(SELECT MIN(line) FROM {_STAGING} f WHERE f.{column} = s.{column})"
            duplicates = connection.execute(
                text(
                    f"SELECT s.line, s.{column}, {first_line} FROM {_STAGING} s "
                    f"WHERE s.line > {first_line}"
                )
            )
            problems.extend(
                LinkProblem(line, f"{named[column]} {value} duplicates line {first}")
                for line, value, first in duplicates
            )
        for column, other in (columns, columns[::-1]):
            clashes = connection.execute(
                text(
                    f"SELECT s.line, s.{column}, l.{other} FROM {_STAGING} s "
                    f"JOIN link l ON l.{column} = s.{column} WHERE l.{other} != s.{other}"
                )
            )
            problems.extend(
                LinkProblem(
                    line,
                    f"{named[column]} {value} is already linked to {named[other]} {partner}",
                )
                for line, value, partner in clashes
            )
        return problems

    def add_link(self, first_id: int, second_id: int, *, origin: str) -> Link:
        """Add one link (discovery, migration); raises ValueError on a clash."""
        report = self.import_links([LinkRow(1, first_id, second_id)], origin=origin)
        if not report.ok:
            raise ValueError("; ".join(p.message for p in report.problems))
        with self.session() as session:
            link = session.exec(select(Link).where(col(Link.first_id) == first_id)).first()
        assert link is not None
        return link

    def iter_links(self, *, batch: int = 10_000) -> Iterator[Link]:
        """All links in id order, read in batches so memory stays flat."""
        last = 0
        while True:
            with Session(self.engine) as session:
                page = list(
                    session.exec(
                        select(Link).where(col(Link.id) > last).order_by(col(Link.id)).limit(batch)
                    )
                )
            if not page:
                return
            yield from page
            assert page[-1].id is not None
            last = page[-1].id

    def count_links(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(Link)).scalar_one())

    # --- runs, cursors, lease --------------------------------------------------------

    def start_run(
        self,
        kind: str,
        *,
        holder: str,
        dry_run: bool = False,
        operator: str | None = None,
        override: str | None = None,
    ) -> Run:
        """Record a new run. Runs are one at a time (the lease), so any run still
        `running` died without finishing: it is marked `aborted`, with what it left.

        `override` (such as `allow_mass_purge`) is what a person lifted for this run, and
        `operator` who: both go on the run and on an `override` event, for the audit."""
        with self.session() as session:
            run = Run(kind=kind, holder=holder, dry_run=dry_run, operator=operator)
            session.add(run)
            session.flush()
            session.add(Event(run_id=run.id, kind="run_started", detail=kind))
            if override is not None:
                session.add(
                    Event(run_id=run.id, kind="override", detail=override, operator=operator)
                )
            dead = session.exec(
                # a literal, as the partial index `ix_run_running` says it: a PostgreSQL
                # plan kept for any value of a parameter could not use that index
                select(Run)
                .where(col(Run.outcome) == literal_column(f"'{RUNNING}'"))
                .where(col(Run.id) != run.id)
            ).all()
            if dead:
                left = dict(
                    session.exec(
                        select(Operation.status, func.count())
                        .where(col(Operation.status).in_(OperationStatus.OPEN))
                        .group_by(col(Operation.status))
                    ).all()
                )
                summary = ", ".join(f"{n} {k}" for k, n in sorted(left.items())) or "nothing open"
            for stale in dead:
                stale.outcome = "aborted"
                stale.ended_at = stale.ended_at or utcnow()
                stale.message = (
                    f"aborted: its process ended without finishing; run {run.id} found it and "
                    f"settles what was left ({summary})"
                )
                session.add(stale)
                session.add(Event(run_id=stale.id, kind="run_aborted", detail=stale.message))
        return run

    def finish_run(
        self,
        run_id: int,
        *,
        outcome: str,
        counts: dict[str, int],
        message: str | None = None,
        cursors: Mapping[Side, str] | None = None,
    ) -> None:
        """Record the run's end; with `cursors`, the sides' cursors moved in the same
        transaction (pages that showed no linked change, whose cursors the run held
        back: on a server a transaction of its own each; issue 18)."""
        table = Run.__table__  # type: ignore[attr-defined]
        ended = table.update().where(table.c.id == run_id)
        now = utcnow()
        values = {
            "ended_at": now,
            "outcome": outcome,
            "counts": json.dumps(counts, sort_keys=True),
            "message": message,
        }
        with self.session() as session:
            # one statement, not the row read and then written (a round trip on a server)
            if not session.connection().execute(ended.values(values)).rowcount:
                raise KeyError(f"no run {run_id}")
            if cursors:
                self._move_cursors(session.connection(), cursors, now)
            session.add(Event(run_id=run_id, kind="run_finished", detail=outcome))

    def recent_runs(self, limit: int = 5) -> list[Run]:
        with self._read_session() as session:
            return list(session.exec(select(Run).order_by(col(Run.id).desc()).limit(limit)))

    def last_run(self, outcomes: Collection[str]) -> Run | None:
        """The latest run (dry runs aside) that ended with one of `outcomes`: when the pair
        last succeeded, for `bridge status` and monitors."""
        with self._read_session() as session:
            query = (
                select(Run)
                .where(col(Run.outcome).in_(list(outcomes)))
                .where(col(Run.dry_run).is_(False))
                .order_by(col(Run.id).desc())
                .limit(1)
            )
            return session.exec(query).first()

    def get_cursor(self, side: str) -> str | None:
        with self._read_session() as session:
            cursor = session.get(Cursor, side)
            return cursor.value if cursor else None

    def acquire_lease(
        self, name: str, holder: str, ttl: timedelta, *, now: datetime | None = None
    ) -> Lease:
        """Claim the lease, or raise `LeaseHeldError` naming the live holder.

        A lease is taken over before it expires when its holder is gone: a process of this
        host that no longer exists, or, on PostgreSQL, a holder whose session lock ended
        with its connection (SIGKILL on another host, a pod lost). The holder of the lease
        keeps its own session lock until `release_lease` (`Dialect.hold_lease_lock`)."""
        now = now or utcnow()
        with self.session() as session:
            lease = session.get(Lease, name)
            other = lease is not None and lease.holder != holder
            held = other and lease is not None and lease.expires_at > now
            gone = (
                lease is not None
                and other
                and (
                    _holder_is_gone(lease.holder)
                    or self.dialect.lease_holder_alive(session.connection(), name, lease.holder)
                    is False
                )
            )
            if lease is not None and held and not gone:
                raise LeaseHeldError(lease.holder, lease.acquired_at, lease.expires_at)
            if lease is None:
                lease = Lease(name=name, holder=holder, acquired_at=now, expires_at=now + ttl)
            else:
                if lease.holder != holder:
                    why = "its process is gone" if gone else "expired"
                    session.add(
                        Event(
                            kind="lease_taken_over",
                            detail=f"{lease.holder} ({why}; until {lease.expires_at.isoformat()})",
                        )
                    )
                    lease.acquired_at = now
                lease.holder = holder
                lease.expires_at = now + ttl
            session.add(lease)
            if (name, holder) not in self._lease_locks:
                # taken before the claim commits: no one sees the claim without the lock
                lock = self.dialect.hold_lease_lock(self.engine, name, holder)
                if lock is not None:
                    self._lease_locks[name, holder] = lock
            return Lease(**lease.model_dump())

    def renew_lease(self, name: str, holder: str, ttl: timedelta) -> None:
        self.acquire_lease(name, holder, ttl)

    def release_lease(self, name: str, holder: str) -> None:
        with self.session() as session:
            lease = session.get(Lease, name)
            if lease is not None and lease.holder == holder:
                session.delete(lease)
                session.flush()
            # let go of the session lock before the release commits (`acquire_lease`)
            lock = self._lease_locks.pop((name, holder), None)
            if lock is not None:
                lock.close()

    # --- status -----------------------------------------------------------------

    def status(self, *, stuck_after: timedelta = timedelta(hours=1)) -> dict[str, Any]:
        """Counts for `bridge status`: links, states per side (keyed by the side's name),
        attention, outbox, runs, and the operations failing or unconfirmed for longer than
        `stuck_after`. A row about a link names its tickets under `tickets`, by side."""
        status: dict[str, Any]
        with self.engine.connect() as connection:

            def grouped(column: Any, table: Any) -> dict[str, int]:
                rows = connection.execute(
                    select(column, func.count()).select_from(table).group_by(column)
                )
                return {str(key) if key is not None else "unknown": int(n) for key, n in rows}

            links = connection.execute(select(func.count()).select_from(Link)).scalar_one()
            status = {
                "ledger": self.path or self.engine.url.render_as_string(hide_password=True),
                "schema_version": schema_version(connection),
                "links": int(links),
                **{
                    side: grouped(self._pair_column(side, "state"), PairState)
                    for side in self.sides
                },
                "base": grouped(PairState.base, PairState),
                "attention": {
                    k: v
                    for k, v in grouped(PairState.attention, PairState).items()
                    if k != "unknown"
                },
                "operations": grouped(Operation.status, Operation),
            }
        status["needs_attention"] = [
            {
                "tickets": {side: pair.ids.ticket(side) for side in self.sides},
                "kind": pair.attention,
                "reason": pair.attention_reason,
            }
            for pair in self.attention()[:_STATUS_ATTENTION_ROWS]
        ]
        now = utcnow()
        stuck = self.stuck_operations(now - stuck_after, now)
        status["stuck_operations"] = {
            "count": len(stuck),
            "older_than_minutes": int(stuck_after.total_seconds() // 60),
            "rows": stuck[:_STATUS_ATTENTION_ROWS],
        }
        operations: dict[str, int] = status["operations"]
        status["pending_operations"] = sum(
            n for k, n in operations.items() if k in OperationStatus.OPEN
        )
        status["runs"] = [
            {
                "id": run.id,
                "kind": run.kind,
                "started_at": run.started_at.isoformat(),
                "ended_at": run.ended_at.isoformat() if run.ended_at else None,
                "outcome": run.outcome,
                "dry_run": run.dry_run,
                "counts": json.loads(run.counts),
            }
            for run in self.recent_runs()
        ]
        return status
