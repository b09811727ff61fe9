"""`bridge worker`: sync every pair on its schedule, from a job queue on the ledger's
PostgreSQL (the work itself: `bridge.worker`)."""

from __future__ import annotations

from datetime import timedelta

import click

from bridge.cli.context import AppContext, fail, pass_app
from bridge.config import Config
from bridge.errors import BridgeError
from bridge.ledger import Ledger, default_holder
from bridge.run.runner import RunResult
from bridge.worker.app import PairJobs, WorkerSettings, cron_for, serve
from bridge.worker.queue import QUEUE_SCHEMA, queue_conninfo
from bridge.worker.shares import AccountShares

__all__ = ["worker"]


@click.command()
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Runs of different pairs this process works on at once (threads). For more, "
    "start more workers: each is a process, on this machine or another. Pairs that "
    "share a vendor account get one share of the threads between them (threads ÷ "
    "(shared accounts + pairs sharing none), rounded up) while pairs elsewhere have "
    "jobs due.",
)
@click.option(
    "--pair",
    "names",
    multiple=True,
    metavar="NAME",
    help="Work only on this pair (repeat for several). Default: every pair of the config.",
)
@click.option(
    "--poll-interval",
    type=click.FloatRange(0.05, 60),
    default=5.0,
    show_default=True,
    metavar="SECONDS",
    help="Look for due jobs at least this often (PostgreSQL's NOTIFY wakes a worker sooner).",
)
@click.option(
    "--stalled-after",
    type=click.FloatRange(1, 3600),
    default=30.0,
    show_default=True,
    metavar="SECONDS",
    help="A worker silent this long (no heartbeat: killed, its machine lost) has its "
    "running jobs put back in the queue for another worker.",
)
@pass_app
def worker(
    app: AppContext,
    concurrency: int,
    names: tuple[str, ...],
    poll_interval: float,
    stalled_after: float,
) -> None:
    """Sync every pair on its schedule, as long as it runs (for a service or a container).

    Needs the ledger on PostgreSQL: the job queue (Procrastinate) lives in the same
    database, in a schema of its own (`procrastinate`), created at the first start.
    Start as many workers as you like, on one machine or several: each pair's sync
    is deferred once per tick of its schedule (`every` in its [pairs.NAME] table,
    default 5m), and one run per pair happens at a time across all workers.

    \b
    How a run ends decides what follows:
      converged, attention     done (`bridge status` shows what needs a person)
      failures, interrupted,   retried with backoff (1s doubling, at most the
      vendor unreadable,       pair's schedule), never sooner than a 429's
      lease held               Retry-After; after 8 tries the job fails and the
                               next tick starts afresh
      a Zendesk account other  retried when its turn comes (the thread runs
      pairs share is spent     other pairs meanwhile), however many times
      for more than 5s
      a shared account's runs  not started, retried in 5s, however many
      hold its share of the    times (the account's other runs wait for
      threads, other pairs     the same turns: the thread goes to a pair
      have jobs due            that does not)
      credentials refused,     failed at once: a person must act
      configuration error
      a bug                    tried once more, then failed

    \b
    A worker killed mid-run (SIGKILL, a lost machine) stops sending heartbeats;
    after --stalled-after seconds another worker takes its job back and finishes
    the run: no operation is sent twice where that would matter (a purge).
    SIGTERM or Ctrl-C: the runs in flight finish their batch, are recorded and
    put back in the queue; then the worker exits 0. A second signal exits at once
    (exit 1), as a kill would: another worker takes its runs back.

    \b
    Exit codes: 0 stopped by a signal; 1 stopped at once by a second signal; 2
    configuration error (a SQLite ledger, a pair not in the config, a pair with no
    ledger yet); 6 a bug.

    \b
    Examples:
      bridge worker                               every pair, one run at a time
      bridge worker --concurrency 4               up to four pairs at once
      bridge worker --pair acme --pair globex     only these pairs
      bridge status                               the queue per pair: due, running,
                                                  retrying, failed, back with a
                                                  shared account's turn
    """
    configs = _chosen_pairs(app, names)
    first = next(iter(configs.values()))
    try:
        conninfo = queue_conninfo(first.shared_ledger_url or first.ledger_url)
    except BridgeError as exc:
        fail(str(exc))
    ledgers: dict[str, Ledger] = {}
    try:
        for pair, config in configs.items():
            ledgers[pair] = app.ledger(config=config)
        for pair, config in configs.items():
            _, actual = cron_for(config.every)
            note = (
                ""
                if actual == config.every
                else f" (a schedule cannot say {_interval(config.every)}: every "
                f"{_interval(actual)})"
            )
            click.echo(f"Pair {pair}: every {_interval(actual)}{note}", err=True)
        click.echo(
            f"Worker for {len(configs)} pair(s), concurrency {concurrency}; queue in schema "
            f"{QUEUE_SCHEMA}. SIGTERM or Ctrl-C stops it after the batch in flight.",
            err=True,
        )
        jobs = PairJobs(
            configs,
            ledgers,
            default_holder(),
            on_run=_report,
            shares=AccountShares.of_pairs(configs, concurrency),
        )
        settings = WorkerSettings(
            concurrency=concurrency,
            poll_interval=poll_interval,
            stalled_after=stalled_after,
            name=default_holder(),
        )
        try:
            serve(conninfo, jobs, settings)
        finally:
            jobs.close()
    finally:
        for ledger in ledgers.values():
            ledger.close()
    click.echo("Worker stopped.", err=True)


def _chosen_pairs(app: AppContext, names: tuple[str, ...]) -> dict[str, Config]:
    """The pairs named by --pair (this command's, or the group's), else every pair."""
    if names:
        app.pair = None
    every = app.pairs()
    unknown = [name for name in names if name not in every]
    if unknown:
        fail(
            f"no pair named {', '.join(unknown)} in {app.config_path} "
            f"(it declares: {', '.join(every)})"
        )
    return {name: every[name] for name in names} if names else every


def _report(pair: str, result: RunResult) -> None:
    counts = ", ".join(f"{k} {v}" for k, v in sorted(result.counts.items()) if "." not in k)
    tail = f" ({counts})" if counts else ""
    click.echo(f"{pair}: run {result.run_id} {result.outcome}{tail}", err=True)


def _interval(every: timedelta) -> str:
    """An interval as the config spells it: 90s, 5m, 2h, 1d."""
    seconds = round(every.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
