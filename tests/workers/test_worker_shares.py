"""A worker's threads shared out between the vendor accounts its pairs share (issue 18):
one account's runs, each waiting for the account's turn, could hold every thread while
the pairs of other accounts waited with nothing to wait for."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import ExitStack

import procrastinate
import psycopg
import pytest
from procrastinate.job_context import JobContext
from procrastinate.jobs import Job

from bridge.ledger import Ledger
from bridge.worker.app import NOT_STARTED, TASK, TURN_WAIT, PairJobs, RunNotDoneError, build_app
from bridge.worker.queue import ensure_queue_schema, queue_conninfo, queues_due
from bridge.worker.shares import AccountShares
from tests.pairs.conftest import Pairs
from tests.workers.test_worker_faults import _jobs, _runs
from tests.workers.test_worker_turns import NAMES, sharing  # noqa: F401 (a fixture)

A, B = "zendesk:https://a.example", "zendesk:https://b.example"
#: a1 and a2 share account A, b1 and b2 account B; solo shares nothing
ACCOUNTS = {
    "a1": frozenset({A}),
    "a2": frozenset({A}),
    "b1": frozenset({B}),
    "b2": frozenset({B}),
    "solo": frozenset[str](),
}


def test_each_shared_account_gets_its_share_of_the_threads() -> None:
    # three ask for threads: A, B and solo (a pair of its own asks as an account does)
    assert AccountShares(ACCOUNTS, 6).share == 2
    assert AccountShares(ACCOUNTS, 4).share == 2  # rounded up: no thread left unused
    assert AccountShares(ACCOUNTS, 3).share == 1
    assert AccountShares(ACCOUNTS, 1).share == 1
    assert AccountShares({"solo": frozenset()}, 4).share == 4  # nothing shared: no share


def test_an_account_over_its_share_waits_only_while_pairs_elsewhere_have_jobs_due() -> None:
    shares = AccountShares(ACCOUNTS, 3)  # a share of one thread each
    asked: list[list[str]] = []

    def due(answer: bool) -> object:
        def others_due(pairs: list[str]) -> bool:
            asked.append(pairs)
            return answer

        return others_due

    with shares.running("a1", others_due=due(True)) as first:
        assert first
        assert asked == []  # under its share: the queue is not asked
        with shares.running("a2", others_due=due(True)) as second:
            assert not second  # pairs of B, and solo, wait
        assert asked == [["b1", "b2", "solo"]]
        with shares.running("b1", others_due=due(True)) as other_account:
            assert other_account
        with shares.running("solo", others_due=due(True)) as unshared:
            assert unshared
        with shares.running("a2", others_due=due(False)) as idle_elsewhere:
            assert idle_elsewhere  # no thread left idle for fairness' sake
            with shares.running("a2", others_due=due(True)) as third:
                assert not third
    asked.clear()
    with shares.running("a2", others_due=due(True)) as after:
        assert after  # the runs that held the share are over
    assert asked == []


@pytest.fixture
def ledgers(sharing: Pairs) -> Iterator[dict[str, Ledger]]:  # noqa: F811
    with ExitStack() as stack:
        yield {name: stack.enter_context(sharing.ledger(name)) for name in NAMES}


def test_a_pair_over_its_accounts_share_is_not_started_while_another_pair_waits(
    sharing: Pairs,  # noqa: F811
    ledgers: dict[str, Ledger],
) -> None:
    """acme and globex share acme's Zendesk account, initech has its own; one thread.
    While an acme run holds the account's share and initech has a job due, globex's job
    is not started: no run recorded, back in TURN_WAIT seconds, the try noted as a turn.
    With nothing due elsewhere, globex runs."""
    configs = sharing.configs()
    for name in NAMES:
        sharing.link(name, 2)
    shares = AccountShares.of_pairs(configs, 1)
    jobs = PairJobs(configs, ledgers, holder="test", shares=shares)
    conninfo = queue_conninfo(configs["acme"].shared_ledger_url)
    app = build_app(conninfo, jobs, max_pool=2)
    ensure_queue_schema(conninfo, app.schema_manager.get_schema())
    globex = asyncio.run(_defer(app, "globex"))
    initech = asyncio.run(_defer(app, "initech"))
    with psycopg.connect(conninfo) as connection:
        assert queues_due(connection, list(NAMES)) == {"globex", "initech"}

    def never(_pairs: list[str]) -> bool:
        raise AssertionError("acme is under its share: the queue is not asked")

    with shares.running("acme", others_due=never) as acme_runs:  # acme's run, meanwhile
        assert acme_runs
        with pytest.raises(RunNotDoneError) as refused:
            jobs.sync_pair(_context(app, globex, "globex"), pair="globex")
        assert refused.value.outcome == NOT_STARTED
        assert refused.value.account_busy
        assert refused.value.retry_after == TURN_WAIT
        assert _runs(sharing, "globex") == []
        (job,) = [j for j in _jobs(sharing, "globex") if j["id"] == globex]
        assert job["args"]["turns"] == 1  # not a try counted against the job
        with psycopg.connect(conninfo, autocommit=True) as connection:
            # initech's job taken by another worker
            connection.execute("DELETE FROM procrastinate_jobs WHERE id = %s", (initech,))
            assert queues_due(connection, ["initech"]) == set()
        done = jobs.sync_pair(_context(app, globex, "globex"), pair="globex")
    assert done["outcome"] == "converged"
    assert [outcome for *_, outcome in _runs(sharing, "globex")] == ["converged"]


async def _defer(app: procrastinate.App, pair: str) -> int:
    async with app.open_async():
        task = app.configure_task(TASK, queue=pair, lock=pair)
        return await task.defer_async(pair=pair)


def _context(app: procrastinate.App, job_id: int, pair: str) -> JobContext:
    job = Job(id=job_id, queue=pair, lock=pair, queueing_lock=None, task_name=TASK)
    return JobContext(app=app, job=job, start_timestamp=0.0, abort_reason=lambda: None)


def test_a_worker_counts_each_pairs_shared_accounts(sharing: Pairs) -> None:  # noqa: F811
    configs = sharing.configs()
    account = f"zendesk:{configs['acme'].section('zendesk').base_url.rstrip('/').lower()}"
    assert configs["acme"].shared_accounts() == configs["globex"].shared_accounts()
    assert configs["acme"].shared_accounts() == frozenset({account})
    assert configs["initech"].shared_accounts() == frozenset()
    assert AccountShares.of_pairs(configs, 4).share == 2  # acme's account, and initech
