"""The workers' job queue: Procrastinate's tables, in a schema of their own beside the ledgers.

The queue lives in the database of the ledger's `[ledger] url` (the shared one), in the
schema `procrastinate`, reached through the connection's `search_path` as each pair's
ledger reaches its own (`bridge_NAME`): no ledger schema ever holds a foreign table, so
`bridge link import` and `status` see only their own, and a pair can never be named
into the queue's schema (every pair's schema starts with `bridge_`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg_pool import ConnectionPool
from sqlalchemy.engine import make_url

from bridge.errors import BridgeError
from bridge.ledger.dialect import with_search_path

__all__ = [
    "QUEUE_SCHEMA",
    "QueueConnections",
    "QueueCounts",
    "QueueNotOnPostgreSQLError",
    "ensure_queue_schema",
    "note_turns",
    "queue_conninfo",
    "queue_counts",
    "queues_due",
]

#: the schema holding Procrastinate's tables, types and functions
QUEUE_SCHEMA = "procrastinate"
#: an advisory lock key (the bytes of "bqueue"): workers starting together apply the
#: schema once
_SCHEMA_LOCK = 0x627175657565
#: how far back `bridge status` counts failed jobs
FAILED_WINDOW = timedelta(hours=24)


class QueueNotOnPostgreSQLError(BridgeError):
    """`bridge worker` needs the ledger on PostgreSQL (exit 2)."""


def queue_conninfo(ledger_url: str) -> str:
    """The libpq connection string of the queue, from the ledger's SQLAlchemy URL: the same
    server, database, user and libpq options (a password only if the URL has one; PGPASSWORD
    and ~/.pgpass work as for the ledger), with the queue's schema as `search_path`."""
    url = make_url(ledger_url)
    if url.get_backend_name() != "postgresql":
        raise QueueNotOnPostgreSQLError(
            "`bridge worker` needs the ledger on PostgreSQL ([ledger] url = "
            '"postgresql+psycopg://..."): its job queue lives there. With a SQLite ledger, '
            "run `bridge sync --every 5m` per pair instead (docs/scheduling.md)"
        )
    url = with_search_path(url, QUEUE_SCHEMA)
    params: dict[str, Any] = {
        key: value if isinstance(value, str) else " ".join(value)
        for key, value in url.query.items()
    }
    # what the URL names in its parts; a host or port given as a query parameter (a
    # socket folder: `postgresql+psycopg://bridge@/db?host=/run/postgresql`) stays
    named = {
        "host": url.host,
        "port": url.port,
        "user": url.username,
        "password": url.password,
        "dbname": url.database,
    }
    params.update({key: value for key, value in named.items() if value is not None})
    params["application_name"] = "bridge-worker"
    params.setdefault("connect_timeout", 10)
    return make_conninfo(**params)


def ensure_queue_schema(conninfo: str, schema_sql: str) -> bool:
    """Create the queue's schema and apply Procrastinate's SQL to it when it has none yet;
    True when it was applied now. Idempotent, and safe with workers starting together (an
    advisory lock makes them take turns)."""
    with psycopg.connect(conninfo) as connection:
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        connection.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(QUEUE_SCHEMA))
        )
        if _has_queue(connection):
            return False
        connection.execute(schema_sql.encode())
        return True


def _has_queue(connection: psycopg.Connection[Any]) -> bool:
    found = connection.execute(
        "SELECT to_regclass(%s) IS NOT NULL", (f'"{QUEUE_SCHEMA}".procrastinate_jobs',)
    ).fetchone()
    return bool(found and found[0])


class QueueConnections:
    """A worker's connections for its own notes on the queue (a job's turns, the queues
    due), kept between uses, two at most: one opened per note was a TCP and SCRAM
    handshake for each job back for its turn, every few seconds a pair on a busy shared
    account. A connection that cannot be had within `timeout` raises `psycopg.Error`
    (`PoolTimeout`), as a refused connect did."""

    def __init__(self, *, max_size: int = 2, timeout: float = 5.0) -> None:
        self._pools: dict[str, ConnectionPool] = {}
        self._lock = threading.Lock()
        self._max_size = max_size
        self._timeout = timeout

    @contextmanager
    def connection(self, conninfo: str) -> Iterator[psycopg.Connection[Any]]:
        with self._lock:
            pool = self._pools.get(conninfo)
            if pool is None:
                pool = self._pools[conninfo] = ConnectionPool(
                    conninfo,
                    min_size=1,
                    max_size=self._max_size,
                    timeout=self._timeout,
                    kwargs={"autocommit": True},
                    open=True,
                )
        with pool.connection() as connection:
            yield connection

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()


def note_turns(connection: psycopg.Connection[Any], job_id: int, turns: int, attempt: int) -> None:
    """Set a job's `turns` argument: how many of its tries ended for a shared account's
    turn (`bridge.worker.app.SyncRetry` leaves them out of its count of tries; kept in
    the job's arguments, which its retries keep, whichever worker takes them), and
    `turn_at`, the attempt that did last (`bridge status` tells a job back for its turn
    from one retried after a failure)."""
    connection.execute(
        "UPDATE procrastinate_jobs SET args = args || "
        "jsonb_build_object('turns', %s::int, 'turn_at', %s::int) WHERE id = %s",
        (turns, attempt, job_id),
    )


@dataclass(frozen=True)
class QueueCounts:
    """One pair's jobs: waiting to run, running, waiting for a retry, failed lately, and
    back for a shared account's turn (its last try not started or `waiting`, no failure)."""

    due: int = 0
    running: int = 0
    retrying: int = 0
    failed: int = 0
    #: when the next retry is due
    next_retry_at: datetime | None = None
    waiting_turn: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "due": self.due,
            "running": self.running,
            "retrying": self.retrying,
            "failed": self.failed,
            "waiting_turn": self.waiting_turn,
            "next_retry_at": self.next_retry_at.isoformat(timespec="seconds")
            if self.next_retry_at
            else None,
        }


#: a retried job whose last try ended for a shared account's turn (`note_turns`)
_TURN = "(args->>'turn_at') IS NOT NULL AND (args->>'turn_at')::int = attempts - 1"
_COUNTS = f"""
SELECT queue_name,
       count(*) FILTER (WHERE status = 'todo' AND attempts = 0),
       count(*) FILTER (WHERE status = 'doing'),
       count(*) FILTER (WHERE status = 'todo' AND attempts > 0 AND NOT ({_TURN})),
       count(*) FILTER (WHERE status = 'failed' AND EXISTS (
           SELECT 1 FROM procrastinate_events e
            WHERE e.job_id = j.id AND e.at > now() - %(window)s)),
       min(scheduled_at) FILTER (WHERE status = 'todo' AND attempts > 0 AND NOT ({_TURN})),
       count(*) FILTER (WHERE status = 'todo' AND attempts > 0 AND {_TURN})
  FROM procrastinate_jobs j
 WHERE queue_name = ANY(%(queues)s)
 GROUP BY queue_name
"""


def queue_counts(conninfo: str, pairs: list[str]) -> Mapping[str, QueueCounts] | None:
    """Each pair's jobs (its queue is named after it), or None when the queue does not exist
    yet (no worker ever ran)."""
    with psycopg.connect(conninfo) as connection:
        if not _has_queue(connection):
            return None
        rows = connection.execute(_COUNTS, {"queues": pairs, "window": FAILED_WINDOW}).fetchall()
    counts = {row[0]: QueueCounts(*row[1:]) for row in rows}
    return {pair: counts.get(pair, QueueCounts()) for pair in pairs}


def queues_due(connection: psycopg.Connection[Any], queues: list[str]) -> set[str]:
    """The queues among `queues` (pairs) with a job a worker could take now."""
    if not queues:
        return set()
    rows = connection.execute(
        "SELECT DISTINCT queue_name FROM procrastinate_jobs "
        "WHERE status = 'todo' AND queue_name = ANY(%s) "
        "AND (scheduled_at IS NULL OR scheduled_at <= now())",
        (queues,),
    ).fetchall()
    return {str(row[0]) for row in rows}
