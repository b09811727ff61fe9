"""`bridge worker`: each pair synced on its schedule by Procrastinate workers.

One task, `bridge.sync_pair`, runs one pair once (`bridge.once.run_once`, as `bridge sync`
does); `bridge.targeted_sync` runs the tickets `bridge serve` queued the same way
(`targeted.py`). Each pair has a periodic defer on its `every` schedule into a queue named after
the pair, with the pair's name as the job's `lock` (one run per pair across all workers)
and `queueing_lock` (at most one run waiting: a slow run is never followed by a pile of
them). Every worker defers the periodic jobs; the database keeps each tick to one job.

What ends a run decides what happens to its job (`SyncRetry`): converged or needing a
person (attention) → done; failures, interrupted, a vendor unreadable, the lease held →
retried with backoff, never sooner than a 429's Retry-After; a vendor refusing our
credentials or a configuration error → failed at once (a person must act; the next tick
tries again); a bug → retried once, then failed. A run does not sleep on its thread for
the turn of a vendor account other pairs share when the turn is more than `TURN_WAIT`
away: it ends `waiting` (or, when the turn is that far already, is not started: no run
recorded), and its job comes back when the turn does, as often as that takes
(`bridge.budgets.TurnTaking`); meanwhile the thread runs other pairs. Such tries are
noted on the job (`turns`) and not counted out of its tries for failures.

A worker SIGKILLed mid-run stops sending heartbeats: every worker looks for such stalled
jobs and puts them back in the queue (`_recover_stalled`), where another takes the pair's
run up; the run's settle step finishes what the killed one left, and the ledger lease of
the dead run ends with its database session (`Ledger.acquire_lease`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import random
import signal
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import procrastinate
import psycopg
import structlog
from procrastinate.exceptions import UniqueViolation
from procrastinate.job_context import JobContext
from procrastinate.jobs import Job
from procrastinate.manager import JobManager
from procrastinate.retry import BaseRetryStrategy, RetryDecision
from procrastinate.worker import Worker

from bridge.config import Config
from bridge.core.contract import AccountBusyError
from bridge.errors import BridgeError, ExitCode
from bridge.ledger import LeaseHeldError, Ledger
from bridge.logging import redact_text
from bridge.once import run_once, run_options, targeted_options
from bridge.run.runner import RunResult
from bridge.run.state import RunOptions
from bridge.worker.queue import (
    QUEUE_SCHEMA,
    QueueConnections,
    ensure_queue_schema,
    note_turns,
    queue_conninfo,
    queues_due,
)
from bridge.worker.shares import AccountShares
from bridge.worker.targeted import TARGETED_TASK, merged_tickets, tickets_from_json

__all__ = [
    "TASK",
    "PairJobs",
    "RunNotDoneError",
    "WorkerSettings",
    "build_app",
    "cron_for",
    "serve",
]

log = structlog.get_logger(__name__)
#: the logger Procrastinate's worker reports each job's outcome on
_WORKER_LOG = logging.getLogger("procrastinate.worker")

#: the one task: one run of one pair
TASK = "bridge.sync_pair"
#: how many times a run that did not finish is tried before its job fails (the next tick
#: of the pair's schedule starts again)
MAX_ATTEMPTS = 8
#: a bug (not a `BridgeError`) is tried this many times in all
BUG_ATTEMPTS = 2
#: outcomes whose job is done: the ledger says the rest (`bridge status`)
DONE = frozenset({"converged", "attention", "dry_run"})
#: a job's run not started: its shared account's turn was far (`once.turn_is_near`)
NOT_STARTED = "not_started"
#: the longest a run sleeps on a worker's thread for a shared account's turn (seconds);
#: a turn further away ends the run, to be retried when it comes
TURN_WAIT = 5.0


class RunNotDoneError(Exception):
    """A run that ended without finishing its work, to be retried (`SyncRetry`);
    `account_busy`: it ended for a shared account's turn, `retry_after` away."""

    def __init__(
        self,
        pair: str,
        outcome: str,
        retry_after: float | None = None,
        *,
        account_busy: bool = False,
    ) -> None:
        self.pair = pair
        self.outcome = outcome
        self.retry_after = retry_after
        self.account_busy = account_busy
        wait = (
            f"; a shared account's turn comes in {retry_after:.0f}s"
            if account_busy and retry_after
            else f"; the vendor asked to wait {retry_after:g}s"
            if retry_after
            else ""
        )
        what = "was not started" if outcome == NOT_STARTED else f"ended {outcome}"
        super().__init__(f"pair {pair}: the run {what}, to be retried{wait}")


class NeedsAPersonError(Exception):
    """A run that no retry will fix (credentials refused, configuration): the job fails."""


def backoff(attempts: int, every: timedelta, retry_after: float | None) -> float:
    """Seconds before the next try: doubling from one second with jitter, at most the
    pair's schedule (its next tick would come then anyway), never less than a vendor's
    Retry-After."""
    cap = max(1.0, every.total_seconds())
    wait = min(cap, float(2**attempts)) * random.uniform(0.5, 1.0)
    return max(wait, retry_after or 0.0)


class SyncRetry(BaseRetryStrategy):
    """Which failed runs are tried again, and when (the module's docstring)."""

    def __init__(self, every: Callable[[str], timedelta]) -> None:
        self.every = every

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        pair = str(job.task_kwargs.get("pair", ""))
        # the tries before this one that failed: those that waited for a turn aside
        turns = job.task_kwargs.get("turns", 0)
        tries = max(0, job.attempts - (turns if isinstance(turns, int) else 0))
        if isinstance(exception, RunNotDoneError):
            if exception.account_busy and exception.retry_after is not None:
                # waiting its turn is no failure: no tries counted out, no backoff
                return _retry_in(exception.retry_after)
            if tries + 1 >= MAX_ATTEMPTS:
                return None
            wait = backoff(tries, self.every(pair), exception.retry_after)
            return _retry_in(wait)
        if isinstance(exception, NeedsAPersonError):
            return None
        if tries + 1 >= BUG_ATTEMPTS:
            return None
        return _retry_in(backoff(tries, self.every(pair), None))


def _retry_in(seconds: float) -> RetryDecision:
    return RetryDecision(retry_at=datetime.now(UTC) + timedelta(seconds=seconds))


def cron_for(every: timedelta) -> tuple[str, timedelta]:
    """The cron line of a schedule, and the interval it gives. Cron counts within the
    minute, hour and day, so an interval that does not divide them (90s, 7m, 5h) runs at
    the largest one below it that does (60s, 6m, 4h); `bridge worker` says so at start."""
    seconds = max(1, round(every.total_seconds()))
    day = 86_400
    if seconds >= 7 * day:
        return "0 0 * * 0", timedelta(days=7)
    if seconds >= day:
        days = seconds // day
        return ("0 0 * * *" if days == 1 else f"0 0 */{days} * *"), timedelta(days=days)
    for unit, within, fmt in (
        (3600, 24, "0 */{n} * * *"),
        (60, 60, "*/{n} * * * *"),
        (1, 60, "* * * * * */{n}"),
    ):
        if seconds < unit:
            continue
        n = next(n for n in range(min(seconds // unit, within), 0, -1) if within % n == 0)
        line = fmt.format(n=n)
        if n == 1:
            line = {3600: "0 * * * *", 60: "* * * * *", 1: "* * * * * *"}[unit]
        return line, timedelta(seconds=n * unit)
    raise AssertionError("unreachable: seconds >= 1")


@dataclass
class PairJobs:
    """What a worker process runs: each of its pairs' config and open ledger. Runs happen
    on Procrastinate's threads, one per pair at a time (the job lock)."""

    configs: Mapping[str, Config]
    ledgers: Mapping[str, Ledger]
    holder: str
    #: set by SIGTERM: a run finishes the batch in flight, records and ends `interrupted`
    stop: threading.Event = field(default_factory=threading.Event)
    on_run: Callable[[str, RunResult], None] = lambda _pair, _result: None
    #: the threads' shares of the accounts pairs share (`bridge.worker.shares`); by
    #: default none is shared
    shares: AccountShares = field(default_factory=lambda: AccountShares({}, 1))
    #: the worker's own notes on the queue (`_waited_turn`, `_due`)
    queue: QueueConnections = field(default_factory=QueueConnections)

    def close(self) -> None:
        self.queue.close()

    def every(self, pair: str) -> timedelta:
        config = self.configs.get(pair)
        return config.every if config is not None else timedelta(minutes=5)

    def sync_pair(
        self,
        context: JobContext,
        timestamp: int = 0,
        pair: str = "",
        turns: int = 0,
        turn_at: int | None = None,
    ) -> dict[str, Any]:
        """The task: one run of `pair` (`timestamp`: the periodic tick that deferred it;
        `turns` and `turn_at`: what `_waited_turn` noted on the job, every key
        `queue.note_turns` writes; Procrastinate passes them all by name)."""
        del turn_at  # read by `bridge status` from the job itself
        return self._run(context, pair, run_options, tick=timestamp, turns=turns)

    def targeted_sync(
        self,
        context: JobContext,
        pair: str = "",
        tickets: Mapping[str, Any] | None = None,
        turns: int = 0,
        turn_at: int | None = None,
    ) -> Any:
        """The targeted task (`bridge.worker.targeted`): a run of the tickets `bridge serve`
        was told of, looked up and copied as a sync would."""
        del turn_at
        hints = tickets_from_json(tickets or {})
        return self._run(
            context, pair, lambda config: targeted_options(config, hints), tick=None, turns=turns
        )

    def _run(
        self,
        context: JobContext,
        pair: str,
        options: Callable[[Config], RunOptions],
        *,
        tick: int | None,
        turns: int,
    ) -> dict[str, Any]:
        """One run of `pair`; its outcome decides the job (`SyncRetry`)."""
        config, ledger = self.configs.get(pair), self.ledgers.get(pair)
        if config is None or ledger is None:
            raise NeedsAPersonError(f"pair {pair} is not one this worker serves")
        others_due = functools.partial(self._due, config)
        with self.shares.running(pair, others_due=others_due) as started:
            if not started:  # its shared account's share of the threads is going
                log.info("worker.share_taken", pair=pair, retry_after=TURN_WAIT, tick=tick)
                self._waited_turn(config, context, turns)
                raise RunNotDoneError(pair, NOT_STARTED, TURN_WAIT, account_busy=True)
            try:
                result, _ = run_once(
                    config,
                    ledger,
                    options(config),
                    holder=self.holder,
                    stop=self.stop.is_set,
                    give_back_after=TURN_WAIT,
                )
            except LeaseHeldError as exc:
                raise RunNotDoneError(pair, "lease_held") from exc
            except AccountBusyError as exc:  # not started: no run recorded, back with the turn
                log.info("worker.turn", pair=pair, retry_after=exc.retry_after, tick=tick)
                self._waited_turn(config, context, turns)
                raise RunNotDoneError(
                    pair, NOT_STARTED, exc.retry_after, account_busy=True
                ) from exc
            except BridgeError as exc:
                if exc.exit_code == ExitCode.USAGE:
                    raise NeedsAPersonError(f"pair {pair}: {redact_text(str(exc))}") from None
                raise RunNotDoneError(pair, f"error ({exc.exit_code.name.lower()})") from exc
        self.on_run(pair, result)
        log.info("worker.run", pair=pair, run=result.run_id, outcome=result.outcome, tick=tick)
        if result.outcome in DONE:
            return {"run": result.run_id, "outcome": result.outcome}
        if result.refused:
            raise NeedsAPersonError(
                f"pair {pair}: {', '.join(sorted(result.refused))} refused our credentials or "
                "rights (`bridge check`)"
            )
        if result.account_busy:
            self._waited_turn(config, context, turns)
        raise RunNotDoneError(
            pair, result.outcome, result.retry_after, account_busy=result.account_busy
        )

    def _queue(self, config: Config) -> AbstractContextManager[psycopg.Connection[Any]]:
        """A connection to the queue, in the database of the pair's shared ledger."""
        return self.queue.connection(queue_conninfo(config.shared_ledger_url))

    def _due(self, config: Config, pairs: list[str]) -> bool:
        """Whether one of `pairs` has a job a worker could take now; True when the queue
        cannot be asked (a share kept is the safe way: the job comes back shortly)."""
        served = [pair for pair in pairs if pair in self.configs]
        try:
            with self._queue(config) as connection:
                return bool(queues_due(connection, served))
        except psycopg.Error as exc:
            log.warning("worker.queue_unread", error=type(exc).__name__)
            return True

    def _waited_turn(self, config: Config, context: JobContext, turns: int) -> None:
        """Count on the job (its `turns` argument) a try that ended for a shared account's
        turn, before it is retried: `SyncRetry` counts only the other tries out, so that a
        job that waited for many turns still has its tries for a vendor's real failure
        (each retry is one of Procrastinate's attempts, whatever it waited for)."""
        if context.job.id is None:
            return
        try:
            with self._queue(config) as connection:
                note_turns(connection, context.job.id, turns + 1, context.job.attempts)
        except psycopg.Error as exc:  # best effort: the retry itself matters more
            log.warning("worker.turn_not_noted", job=context.job.id, error=type(exc).__name__)


@dataclass(frozen=True)
class WorkerSettings:
    """How one `bridge worker` process works the queue."""

    concurrency: int = 1
    #: seconds between polls for jobs (LISTEN/NOTIFY wakes a worker sooner)
    poll_interval: float = 5.0
    #: seconds without a heartbeat after which a worker's running jobs are taken back
    stalled_after: float = 30.0
    name: str = "bridge-worker"

    @property
    def heartbeat_interval(self) -> float:
        return max(0.2, self.stalled_after / 6)


#: how many times a retry takes the place of jobs queued meanwhile before it gives up
_RETRY_PLACES = 5


class _JobManager(JobManager):
    """Procrastinate's, with one addition: a job put back in the queue (a retry, a stalled
    job taken back) takes the place of the pair's next run when a tick queued one
    meanwhile. Without it the queueing lock refuses the retry, and the job would stay
    `doing`, holding its pair's lock, for as long as its worker lives. A tick may queue
    another between the cancel and the retry (every second, a pair's schedule can): the
    place is taken again, a few times."""

    async def retry_job_by_id_async(
        self,
        job_id: int,
        retry_at: datetime,
        priority: int | None = None,
        queue: str | None = None,
        lock: str | None = None,
    ) -> None:
        for left in range(_RETRY_PLACES, 0, -1):
            try:
                await super().retry_job_by_id_async(job_id, retry_at, priority, queue, lock)
                return
            except UniqueViolation as exc:
                if exc.queueing_lock is None or left == 1:
                    raise
                waiting = list(
                    await self.list_jobs_async(queueing_lock=exc.queueing_lock, status="todo")
                )
                await self._take_tickets_of(job_id, waiting)
                for job in waiting:
                    assert job.id is not None
                    await self.cancel_job_by_id_async(job.id, delete_job=True)

    async def _take_tickets_of(self, job_id: int, waiting: list[Job]) -> None:
        """A targeted job's retry takes the place of the one `serve` queued meanwhile:
        its tickets join the retried job's, so that no hint is dropped with it."""
        targeted = [job for job in waiting if job.task_name == TARGETED_TASK]
        if not targeted:
            return
        (retried,) = await self.list_jobs_async(id=job_id)
        tickets = merged_tickets(retried.task_kwargs, *(job.task_kwargs for job in targeted))
        await self.connector.execute_query_async(
            "UPDATE procrastinate_jobs SET args = %(args)s WHERE id = %(id)s",
            args={**retried.task_kwargs, "tickets": tickets},
            id=job_id,
        )


def build_app(conninfo: str, jobs: PairJobs, *, max_pool: int) -> procrastinate.App:
    """The Procrastinate app: the task, and each pair's periodic defer."""
    connector = procrastinate.PsycopgConnector(conninfo=conninfo, min_size=1, max_size=max_pool)
    app = procrastinate.App(connector=connector)
    app.job_manager = _JobManager(connector)
    task = app.task(name=TASK, retry=SyncRetry(jobs.every), pass_context=True)(jobs.sync_pair)
    app.task(name=TARGETED_TASK, retry=SyncRetry(jobs.every), pass_context=True)(jobs.targeted_sync)
    for pair, config in jobs.configs.items():
        cron, _ = cron_for(config.every)
        app.periodic(
            cron=cron,
            periodic_id=pair,
            queue=pair,
            lock=pair,
            queueing_lock=pair,
            task_kwargs={"pair": pair},
        )(task)
    return app


class _RetriesWithoutTraceback(logging.Filter):
    """Procrastinate logs every job it retries with the exception's traceback: for a run
    that waits for a shared account's turn, or for a vendor's Retry-After, that is a
    traceback a minute per pair at info level for what is the plan working. The line
    stays (its message names the job and the retry); the traceback of a `RunNotDoneError`
    goes. Any other exception keeps its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], RunNotDoneError):
            record.exc_info = None
            record.exc_text = None
        return True


def serve(conninfo: str, jobs: PairJobs, settings: WorkerSettings) -> None:
    """Apply the queue's schema when missing, then work the pairs' queues until SIGTERM or
    SIGINT: the runs in flight finish their batch and are recorded, then the worker
    leaves (a second signal leaves at once, as a kill would)."""
    if not any(isinstance(f, _RetriesWithoutTraceback) for f in _WORKER_LOG.filters):
        _WORKER_LOG.addFilter(_RetriesWithoutTraceback())
    app = build_app(conninfo, jobs, max_pool=settings.concurrency + 3)
    if ensure_queue_schema(conninfo, app.schema_manager.get_schema()):
        log.info("worker.queue_created", schema=QUEUE_SCHEMA)
    asyncio.run(_serve(app, jobs, settings))


async def _serve(app: procrastinate.App, jobs: PairJobs, settings: WorkerSettings) -> None:
    async with app.open_async():
        worker = Worker(
            app=app,
            queues=list(jobs.configs),
            name=settings.name,
            concurrency=settings.concurrency,
            fetch_job_polling_interval=settings.poll_interval,
            update_heartbeat_interval=settings.heartbeat_interval,
            stalled_worker_timeout=settings.stalled_after,
            install_signal_handlers=False,
            delete_jobs="successful",
        )
        working = asyncio.create_task(worker.run())  # type: ignore[no-untyped-call]
        recovery = asyncio.create_task(_recover_stalled(app, jobs, settings))
        beating: list[asyncio.Task[None]] = []
        loop = asyncio.get_running_loop()

        def on_signal(signum: int) -> None:
            if jobs.stop.is_set():  # a second signal: now, as a kill (the queue recovers)
                os._exit(int(ExitCode.RETRY))
            log.warning("worker.stopping", signal=signal.Signals(signum).name)
            jobs.stop.set()
            working.cancel()
            beating.append(asyncio.create_task(_beat_while_stopping(app, worker, settings)))

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal, sig)
        try:
            await working
        except asyncio.CancelledError:
            if not jobs.stop.is_set():
                raise
        finally:
            recovery.cancel()
            for task in beating:
                task.cancel()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)


async def _beat_while_stopping(
    app: procrastinate.App, worker: Worker, settings: WorkerSettings
) -> None:
    """Keep the stopping worker's heartbeat while its runs finish their batch.

    Procrastinate stops a worker's heartbeat first and then waits for its jobs: a run
    whose batch outlasted `--stalled-after` was taken back by another worker (or this
    one) as stalled while it still ran, and run again (the lease kept the two apart, at
    the price of a run refused and retried). The worker's row goes when its jobs end
    (`worker_id` None), or with the process (a kill: the heartbeat stops with it)."""
    while (worker_id := worker.worker_id) is not None:
        try:
            await app.job_manager.update_heartbeat(worker_id)
        except procrastinate.exceptions.ProcrastinateException as exc:
            log.warning("worker.heartbeat_failed", error=type(exc).__name__)
        await asyncio.sleep(settings.heartbeat_interval)


#: the tasks a worker runs, and takes back from a worker that stopped
TASKS = frozenset({TASK, TARGETED_TASK})
#: failed jobs are kept this long for `bridge status`, then deleted
KEEP_FAILED_HOURS = 7 * 24


async def _recover_stalled(
    app: procrastinate.App, jobs: PairJobs, settings: WorkerSettings
) -> None:
    """Put back in the queue the runs of workers that stopped sending heartbeats (SIGKILL,
    a lost machine), for any worker to take up; every few minutes, delete old failed
    jobs. Workers all do this: one of them wins each job, the others find it moved on."""
    manager = app.job_manager
    check_every = max(0.2, settings.stalled_after / 2)
    cleaned = 0.0
    loop = asyncio.get_running_loop()
    while True:
        # both tasks: a targeted job left `doing` holds its pair's lock as a scheduled one
        for job in await manager.get_stalled_jobs(seconds_since_heartbeat=settings.stalled_after):
            if job.queue not in jobs.configs or job.task_name not in TASKS:
                continue
            try:
                await manager.retry_job(job)
            except procrastinate.exceptions.ProcrastinateException:
                continue  # another worker took it back first
            log.warning("worker.stalled_job_retried", pair=job.queue, job=job.id)
        if loop.time() - cleaned > 600:
            cleaned = loop.time()
            await manager.delete_old_jobs(nb_hours=KEEP_FAILED_HOURS, include_failed=True)
        await asyncio.sleep(check_every)
