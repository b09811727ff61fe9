"""`bridge serve` on a PostgreSQL ledger with the workers' queue: a webhook's tickets become
one `bridge.targeted_sync` job, which a `bridge worker` runs (issue 19, item 6).

Real deliveries: the simulators' own signed webhooks, registered as `bridge webhooks
register` does, call `bridge serve` (uvicorn in a thread) on 127.0.0.1; the worker is a
child process on a throwaway PostgreSQL. The pair's schedule is an hour, so what crosses
in seconds was carried by the targeted job, not by a scheduled run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import procrastinate
import pytest
from procrastinate.jobs import Job

from bridge.config import load_pairs
from bridge.core.model import Side
from bridge.sandbox_pair import Sandbox, write_pairs_config
from bridge.serve.server import BackgroundServer, Service
from bridge.webhook_registration import register_config
from bridge.worker.app import PairJobs, build_app
from bridge.worker.queue import ensure_queue_schema, queue_conninfo, queue_counts
from bridge.worker.targeted import TARGETED_TASK, TargetedQueue
from tests.pairs.conftest import Pairs
from tests.postgres.cluster import free_port
from tests.workers.conftest import Workers, running_workers, wait_for

PAIR = "acme"
ZENDESK = Side("zendesk")


@pytest.fixture
def hooked(tmp_path: Path, postgres_url: str) -> Iterator[Pairs]:
    """One pair on PostgreSQL, synced hourly, its simulators' webhooks registered to its
    `[serve]` port."""
    sandbox = Sandbox().start()
    try:
        sandbox.relax_limits()
        path = write_pairs_config(tmp_path / "config", {PAIR: sandbox}, serve_port=free_port())
        text = path.read_text(encoding="utf-8")
        text = text.replace('url = "sqlite:///bridge.db"\n', f'url = "{postgres_url}"\n')
        path.write_text(text + f'\n[pairs.{PAIR}]\nevery = "1h"\n', encoding="utf-8")
        assert not any(report.attention for report in register_config(path))
        yield Pairs({PAIR: sandbox}, path)
    finally:
        sandbox.stop()


def _serve(pairs: Pairs) -> tuple[Service, BackgroundServer]:
    config = load_pairs(pairs.config_path)[PAIR]
    service = Service({PAIR: config}, lease_retry=0.3)
    service.start()
    server = BackgroundServer(service.app, port=config.serve.port).start()
    return service, server


def _runs(pairs: Pairs) -> list[tuple[str, str]]:
    """The pair's runs, oldest first: kind (`hints`: a targeted run) and outcome."""
    with pairs.ledger(PAIR) as ledger:
        return [(run.kind, run.outcome) for run in reversed(ledger.recent_runs(100))]


def _hints(pairs: Pairs, after: int) -> list[str]:
    """The outcomes of the pair's targeted runs after its first `after` runs."""
    return [outcome for kind, outcome in _runs(pairs)[after:] if kind == "hints"]


def _settled(conninfo: str, pairs: Pairs) -> bool:
    """No run of the pair going on and none due in the queue."""
    counts = (queue_counts(conninfo, [PAIR]) or {}).get(PAIR)
    idle = counts is None or (counts.due == 0 and counts.running == 0)
    return idle and all(outcome != "running" for _kind, outcome in _runs(pairs))


@pytest.fixture
def workers(hooked: Pairs, tmp_path: Path) -> Iterator[Workers]:
    """`bridge worker` processes for the hooked pair (not the conftest's two pairs)."""
    with running_workers(hooked, tmp_path) as running:
        yield running


def test_serve_queues_a_targeted_job_that_a_worker_runs(hooked: Pairs, workers: Workers) -> None:
    links = hooked.link(PAIR, 4)
    assert hooked.bridge("sync", "--pair", PAIR).returncode == 0
    # the seeding's calls, to no one yet, are forgotten; registering again switches
    # SuperOffice's webhook back on (it stopped after those errors)
    for simulator in hooked.sandboxes[PAIR].simulators.values():
        simulator.webhooks.reset()
    assert not any(report.attention for report in register_config(hooked.config_path))
    config = load_pairs(hooked.config_path)[PAIR]
    conninfo = queue_conninfo(config.ledger_url)

    # no worker has made the queue yet: serve runs in-process, as with SQLite
    service = Service({PAIR: config})
    assert service.mode == "in-process"
    service.close()

    worker = workers.start()
    wait_for(lambda: queue_counts(conninfo, [PAIR]) is not None, what="the queue")
    service, server = _serve(hooked)
    try:
        assert service.mode == "queue"
        assert service.health()["runs"] == "queue"
        sandbox = hooked.sandboxes[PAIR]
        (so_a, zd_a), (so_b, zd_b), *_ = links
        # a worker starting within ten minutes of its pair's tick runs that tick at once
        # (Procrastinate catches up a missed tick): let it end before anything changes, so
        # that what follows can only be the webhook's run
        wait_for(lambda: _settled(conninfo, hooked), what="the worker's first tick to end")
        before = len(_runs(hooked))
        sandbox.zendesk.agent_act("delete", [zd_a], agent=(7, "Ann"))
        wait_for(lambda: sandbox.superoffice.ticket_state(so_a)["base_status"] == "Deleted")
        wait_for(lambda: _hints(hooked, before) == ["converged"], what="the targeted run")
        last = service.health()["pairs"][PAIR]["last_run"]
        assert last["outcome"] == "queued"
        assert last["job"] > 0

        # a lease held outside the queue (a `bridge sync` from cron): the job retries
        with hooked.ledger(PAIR) as ledger:
            ledger.acquire_lease("sync", "cron-host:4242", timedelta(minutes=5))
            sandbox.superoffice.soft_delete([so_b])
            wait_for(
                lambda: (queue_counts(conninfo, [PAIR]) or {})[PAIR].retrying == 1,
                what="the targeted job waiting for its retry",
            )
            assert sandbox.zendesk.ticket_state(zd_b) == "active"
            ledger.release_lease("sync", "cron-host:4242")
        wait_for(lambda: sandbox.zendesk.ticket_state(zd_b) == "deleted", what="the retry")
        wait_for(
            # the first and the retried one (a run that met the held lease, if it got as far
            # as recording one, ends "interrupted" or "failures" and is retried)
            lambda: len(_hints(hooked, before)) >= 2 and _hints(hooked, before)[-1] == "converged",
            what=f"two targeted runs (runs: {_runs(hooked)[before:]})",
        )
        assert worker.poll() is None, workers.output(worker)
    finally:
        server.stop()
        service.close()


def test_a_retry_meeting_a_newer_targeted_job_takes_its_tickets(
    hooked: Pairs, postgres_url: str
) -> None:
    """The job `serve` queued while the first ran is folded into the first's retry, so the
    queueing lock drops no hint."""
    conninfo = queue_conninfo(postgres_url)
    jobs = PairJobs(load_pairs(hooked.config_path), {}, holder="test")
    app = build_app(conninfo, jobs, max_pool=2)
    ensure_queue_schema(conninfo, app.schema_manager.get_schema())
    queue = TargetedQueue(conninfo).open()
    try:
        first = queue.defer(PAIR, {ZENDESK: [1, 2]})
        assert first is not None
        assert queue.defer(PAIR, {ZENDESK: [3]}) is None
        waiting = asyncio.run(
            _fetch_then_retry(app, first, {"superoffice": [9], "zendesk": [2, 3]})
        )
    finally:
        queue.close()
    assert [job.id for job in waiting] == [first]
    assert waiting[0].task_kwargs["tickets"] == {"superoffice": [9], "zendesk": [1, 2, 3]}


async def _fetch_then_retry(
    app: procrastinate.App, job_id: int, newer: dict[str, list[int]]
) -> list[Job]:
    """A worker takes the job, serve defers another meanwhile, the first is retried."""
    async with app.open_async():
        manager = app.job_manager
        worker_id = await manager.register_worker()
        taken = await manager.fetch_job(queues=[PAIR], worker_id=worker_id)
        assert taken is not None
        assert taken.id == job_id
        await app.configure_task(
            TARGETED_TASK, queue=PAIR, lock=PAIR, queueing_lock=f"{PAIR}:hints"
        ).defer_async(pair=PAIR, tickets=newer)
        await manager.retry_job_by_id_async(job_id, retry_at=datetime.now(UTC))
        return list(await manager.list_jobs_async(task=TARGETED_TASK, status="todo"))
