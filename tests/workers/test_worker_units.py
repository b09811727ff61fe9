"""What a worker decides without a database: its cron lines, its retry delays, and its
refusal of a SQLite ledger; and its connection for notes on the queue."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from croniter import croniter
from procrastinate.jobs import Job
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from sqlalchemy.engine import make_url

from bridge.worker.app import (
    BUG_ATTEMPTS,
    MAX_ATTEMPTS,
    NOT_STARTED,
    RunNotDoneError,
    SyncRetry,
    _RetriesWithoutTraceback,
    backoff,
    cron_for,
)
from bridge.worker.queue import QueueConnections, queue_conninfo, queue_counts
from tests.pairs.conftest import Pairs
from tests.postgres.cluster import Cluster, free_port


@pytest.mark.parametrize(
    ("every", "cron", "actual"),
    [
        (timedelta(seconds=2), "* * * * * */2", timedelta(seconds=2)),
        (timedelta(seconds=45), "* * * * * */30", timedelta(seconds=30)),
        (timedelta(seconds=90), "* * * * *", timedelta(minutes=1)),
        (timedelta(minutes=5), "*/5 * * * *", timedelta(minutes=5)),
        (timedelta(minutes=7), "*/6 * * * *", timedelta(minutes=6)),
        (timedelta(hours=1), "0 * * * *", timedelta(hours=1)),
        (timedelta(hours=5), "0 */4 * * *", timedelta(hours=4)),
        (timedelta(days=1), "0 0 * * *", timedelta(days=1)),
        (timedelta(days=2), "0 0 */2 * *", timedelta(days=2)),
        (timedelta(days=7), "0 0 * * 0", timedelta(days=7)),
    ],
)
def test_a_schedule_becomes_the_cron_line_that_says_it(
    every: timedelta, cron: str, actual: timedelta
) -> None:
    assert cron_for(every) == (cron, actual)
    # and the line means that interval (days of a month aside)
    ticks = croniter(cron, 1_700_000_000)
    first, second = ticks.get_next(float), ticks.get_next(float)
    if actual < timedelta(days=2):
        assert second - first == actual.total_seconds()


def test_a_retry_waits_for_retry_after_and_backs_off_up_to_the_schedule() -> None:
    every = timedelta(seconds=30)
    assert all(0.5 <= backoff(0, every, None) <= 1.0 for _ in range(50))
    assert all(15 <= backoff(10, every, None) <= 30 for _ in range(50))
    assert backoff(0, every, 120.0) == 120.0  # a vendor's Retry-After over the backoff


def test_a_run_that_ended_for_a_shared_accounts_turn_comes_back_with_the_turn() -> None:
    """Waiting for a turn is no failure: the job comes back when the turn does, however
    many times it came back before, where a vendor's failure runs out of tries."""
    retry = SyncRetry(lambda _pair: timedelta(minutes=5))
    for attempts in (0, MAX_ATTEMPTS + 3):
        job = Job(
            queue="acme",
            lock="acme",
            queueing_lock="acme",
            task_name="bridge.sync_pair",
            task_kwargs={"pair": "acme"},
            attempts=attempts,
        )
        for busy in (
            RunNotDoneError("acme", "waiting", 42.0, account_busy=True),
            RunNotDoneError("acme", NOT_STARTED, 42.0, account_busy=True),
        ):
            decision = retry.get_retry_decision(exception=busy, job=job)
            assert decision is not None
            assert decision.retry_at is not None
            delay = (decision.retry_at - datetime.now(UTC)).total_seconds()
            assert 40 < delay <= 42
            assert "a shared account's turn comes in 42s" in str(busy)
        assert "the run was not started" in str(busy)
        failed = RunNotDoneError("acme", "unavailable", 42.0)
        given_up = retry.get_retry_decision(exception=failed, job=job) is None
        assert given_up is (attempts + 1 >= MAX_ATTEMPTS)


def test_a_worker_refuses_a_sqlite_ledger_and_names_the_alternative(
    pairs: Pairs, tmp_path: Path
) -> None:
    result = pairs.bridge("worker")
    assert result.returncode == 2
    assert "needs the ledger on PostgreSQL" in result.stderr
    assert "bridge sync --every" in result.stderr
    unknown = pairs.bridge("worker", "--pair", "initech")
    assert unknown.returncode == 2
    assert "no pair named initech" in unknown.stderr


@pytest.mark.parametrize(
    ("attempts", "turns", "error", "given_up"),
    [
        (MAX_ATTEMPTS + 3, MAX_ATTEMPTS + 2, "vendor", False),  # one failure before it
        (MAX_ATTEMPTS + 3, 0, "vendor", True),
        (MAX_ATTEMPTS - 1, 0, "vendor", True),
        (MAX_ATTEMPTS - 2, 0, "vendor", False),
        (BUG_ATTEMPTS + 5, BUG_ATTEMPTS + 5, "bug", False),  # a bug's first try
        (BUG_ATTEMPTS + 5, BUG_ATTEMPTS + 4, "bug", True),
    ],
)
def test_tries_that_waited_for_a_turn_are_not_counted_out(
    attempts: int, turns: int, error: str, given_up: bool
) -> None:
    """A job that came back for many turns (its `turns` argument, set by the worker before
    each such retry) still has its tries for a real failure: every retry is one of
    Procrastinate's attempts, and counting them all failed such a job at its first 503."""
    retry = SyncRetry(lambda _pair: timedelta(minutes=5))
    job = Job(
        queue="acme",
        lock="acme",
        queueing_lock="acme",
        task_name="bridge.sync_pair",
        task_kwargs={"pair": "acme", "turns": turns},
        attempts=attempts,
    )
    failure = (
        RunNotDoneError("acme", "unavailable", None) if error == "vendor" else RuntimeError("bug")
    )
    decision = retry.get_retry_decision(exception=failure, job=job)
    assert (decision is None) is given_up


def test_the_queue_is_reached_where_the_ledger_is_even_through_a_socket_folder(
    pg_cluster: Cluster, postgres_url: str
) -> None:
    """A ledger URL naming its host as a query parameter (a Unix socket folder, as a
    local PostgreSQL is often reached) reaches the queue there too: the host and port
    were dropped, and the queue looked for on libpq's default socket."""
    database = make_url(postgres_url).database
    socket_url = (
        f"postgresql+psycopg://bridge@/{database}?host={pg_cluster.folder}&port={pg_cluster.port}"
    )
    info = conninfo_to_dict(queue_conninfo(socket_url))
    assert info["host"] == str(pg_cluster.folder)
    assert info["port"] == str(pg_cluster.port)
    assert "password" not in info  # the driver's own mechanisms (PGPASSWORD, .pgpass)
    assert queue_counts(queue_conninfo(socket_url), ["acme"]) is None  # reached; no queue yet
    tcp = conninfo_to_dict(queue_conninfo(postgres_url))
    assert (tcp["host"], tcp["port"], tcp["dbname"]) == (
        "127.0.0.1",
        str(pg_cluster.port),
        database,
    )
    assert "search_path" in tcp["options"]


def test_a_workers_notes_on_the_queue_keep_their_connection(postgres_url: str) -> None:
    """A job back for its turn is noted every few seconds on a busy shared account: its
    connections kept, not a TCP and SCRAM handshake each time; a server away is a
    `psycopg.Error` within the timeout, as a refused connect was."""
    conninfo = queue_conninfo(postgres_url)
    queue = QueueConnections(timeout=1.0)
    try:
        servers = set()
        for _ in range(6):
            with queue.connection(conninfo) as connection:
                servers.add(connection.info.backend_pid)
        # kept and used again: two at most (the pool's first may still be on its way when
        # the first note asks, and a second is opened beside it)
        assert len(servers) <= 2
        away = make_conninfo(conninfo, port=str(free_port()))
        with pytest.raises(psycopg.Error), queue.connection(away):
            pass
    finally:
        queue.close()


def test_a_retried_run_is_logged_without_its_traceback_other_errors_with() -> None:
    """Procrastinate logs each retried job with its exception: a run waiting for a shared
    account's turn is a traceback a minute per pair at info level. Its line stays."""
    quiet = _RetriesWithoutTraceback()

    def record(exc: BaseException) -> logging.LogRecord:
        try:
            raise exc
        except BaseException:
            info = sys.exc_info()
        return logging.LogRecord(
            "procrastinate.worker", logging.INFO, __file__, 1, "Job %s: Error, to retry",
            ("acme",), info,
        )  # fmt: skip

    waiting = record(RunNotDoneError("acme", "waiting", 42.0, account_busy=True))
    assert quiet.filter(waiting)
    assert waiting.exc_info is None
    assert waiting.getMessage() == "Job acme: Error, to retry"
    broken = record(ValueError("a bug"))
    assert quiet.filter(broken)
    assert broken.exc_info is not None
    assert "ValueError: a bug" in logging.Formatter().format(broken)
