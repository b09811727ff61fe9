"""Pairs that share a Zendesk account share its budget (issue 18): however many processes
spend it, no minute of the account sees more calls than its limit, and the jobs of every
pair together stay under the account's job limit."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from bridge.budgets import STALE_JOB_SECONDS, Budgets, TurnTaking
from bridge.config import load_pairs
from bridge.core.contract import AccountBusyError
from bridge.factory import build_adapters
from bridge.sandbox_pair import Sandbox, write_pairs_config
from bridge.vendors.registry import ZENDESK

#: a child process spending a budget on a fast clock: one real second is a budget minute
_SPENDER = textwrap.dedent(
    """
    import json, sys, time
    from datetime import UTC, datetime
    from bridge.budgets import Budgets

    url, calls, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    fast = lambda: datetime.fromtimestamp(time.time() * 60, UTC)
    budgets = Budgets(url, clock=fast, sleep=lambda s: time.sleep(s / 60))
    budget = budgets.account("zendesk:x", limits={"calls": lambda: limit}, job_limit=30)
    minutes = []
    for _ in range(calls):
        budget.take_call()
        minutes.append(int(fast().timestamp() // 60))
    print(json.dumps(minutes))
    """
)


def test_no_minute_of_the_account_sees_more_than_its_limit(ledger_url: str) -> None:
    """Four processes, 45 calls each, against a limit of 40 a minute: the shared count of
    every minute stays within the limit, and every call was counted in one.

    (A call's own minute, read by its process after the take, may already be the next on
    this fast clock: 1 ms of a loaded machine is 60 ms here. What the account sees is the
    shared count, so that is what is checked.)"""
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _SPENDER, ledger_url, "45", "40"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    per_minute: Counter[int] = Counter()
    for child in children:
        out, _ = child.communicate(timeout=120)
        assert child.returncode == 0
        per_minute.update(json.loads(out))
    assert sum(per_minute.values()) == 180
    budgets = Budgets(ledger_url, clock=lambda: datetime.now(UTC), sleep=lambda _s: None)
    with budgets.engine.connect() as connection:
        rows = connection.execute(text("SELECT minute, used FROM budget_minute")).all()
    budgets.close()
    assert len(rows) >= 5  # 180 calls at 40 a minute
    assert sum(used for _minute, used in rows) >= 180
    assert max(used for _minute, used in rows) <= 40, rows
    # and the budget was used, not merely waited out: 180 calls in at most 7 minutes
    assert len(per_minute) <= 7, per_minute


class _Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, 5, tzinfo=UTC)
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


def test_job_slots_are_every_pairs_and_a_dead_holders_slot_frees_itself(
    ledger_url: str,
) -> None:
    clock = _Clock()
    budgets = Budgets(ledger_url, clock=clock, sleep=clock.sleep)
    first = budgets.account("zendesk:x", limits={}, job_limit=3)
    second = budgets.account("zendesk:x", limits={}, job_limit=3)
    other = budgets.account("zendesk:y", limits={}, job_limit=3)
    first.hold_job("1")
    first.hold_job("2")
    second.hold_job("3")
    other.hold_job("1")
    assert first.jobs_running() == second.jobs_running() == 3
    assert other.jobs_running() == 1
    second.release_jobs(["3"])
    assert first.jobs_running() == 2
    clock.now += timedelta(seconds=STALE_JOB_SECONDS + 1)  # their holder was killed
    assert first.jobs_running() == 0
    budgets.close()


@pytest.fixture
def shared_account(tmp_path: Path) -> Path:
    """Two pairs: their own SuperOffice tenants, one Zendesk account (limits off)."""
    acme, globex = Sandbox().start(), Sandbox().start()
    for sandbox in (acme, globex):
        sandbox.relax_limits()
    # globex's pair points at acme's Zendesk: one account, two pairs
    path = write_pairs_config(tmp_path, {"acme": acme, "globex": globex})
    text = path.read_text(encoding="utf-8")
    text = text.replace(globex.zendesk.base_url, acme.zendesk.base_url)
    text = text.replace("job_limit = 30\n", "job_limit = 30\nrequests_per_minute = 5\n", 1)
    path.write_text(text, encoding="utf-8")
    yield path
    acme.stop()
    globex.stop()


def test_two_pairs_adapters_on_one_account_spend_one_budget(shared_account: Path) -> None:
    """Each pair's Zendesk adapter takes its calls from the same minute's count: what one
    pair spent, the other waits for (the lower of the pairs' limits is not needed here:
    acme's config says 5 a minute, globex's reports the account's own)."""
    configs = load_pairs(shared_account)
    assert configs["acme"].shares_account("zendesk")
    assert not configs["acme"].shares_account("superoffice")
    clock = _Clock()
    acme = build_adapters(configs["acme"], sleep=clock.sleep, clock=clock)[ZENDESK]
    globex = build_adapters(configs["globex"], sleep=clock.sleep, clock=clock)[ZENDESK]
    for _ in range(5):
        acme.live([1])  # one show_many call each
    assert clock.slept == []
    acme.live([1])  # the sixth call of acme's minute waits for the next minute
    assert 54 <= sum(clock.slept) <= 56
    assert max(clock.slept) <= 10  # looking again every 10 s while it waits
    start = len(clock.slept)
    globex.live([1])  # globex's limit is the account's reported one: no wait
    assert len(clock.slept) == start


def test_a_minutes_calls_go_first_to_those_who_waited_for_them(ledger_url: str) -> None:
    """Three pairs' quick runs come back for one call each whenever they can, and one
    pair's first sync needs many: once it queued, the next minute's calls go to it and
    to those queued before its competitors came back, not to whoever asks first."""
    clock = _Clock()
    budgets = Budgets(ledger_url, clock=clock, sleep=clock.sleep)

    def budget() -> Any:
        return budgets.account("zendesk:x", limits={"export": lambda: 2}, job_limit=30)

    def later(budget: Any) -> float | None:
        clock.now += timedelta(milliseconds=1)
        wait: float | None = budget.try_take("export")
        return wait

    quick_a, quick_b, quick_c, first_sync = budget(), budget(), budget(), budget()
    assert later(quick_a) is None
    assert later(quick_b) is None  # the minute's 2 are spent
    assert later(first_sync) is not None  # queued first
    wait = later(quick_c)  # queued second
    assert wait is not None
    assert 54 <= wait <= 56  # until the next minute
    assert later(quick_a) is not None  # back for more: queued third

    def waiting(until: float, *holders: Any) -> None:
        """The clock moves on `until` seconds; the queued holders look every 10 s, as
        `take_call` does while it waits (their places stay fresh), and wait on."""
        left = until
        while left > 0:
            step = min(10.0, left)
            clock.now += timedelta(seconds=step)
            left -= step
            if left > 0:
                for holder in holders:
                    assert holder.try_take("export") is not None

    waiting(wait, first_sync, quick_c, quick_a)  # the next minute: everyone wakes
    assert quick_a.try_take("export") is not None  # awake first, but queued third
    assert first_sync.try_take("export") is None
    assert quick_c.try_take("export") is None
    assert quick_b.try_take("export") is not None  # a newcomer queues behind quick_a

    waiting(60, quick_a, quick_b)
    # the two queued fit the minute: the second need not wait for the first to look
    assert quick_b.try_take("export") is None
    assert quick_a.try_take("export") is None
    assert first_sync.try_take("export") is not None
    budgets.close()


def test_a_place_nobody_keeps_is_dropped(ledger_url: str) -> None:
    """A holder killed while it waited (its place never refreshed) holds up the queue
    only until its place goes stale; one stopped while it waited leaves at once."""
    clock = _Clock()
    budgets = Budgets(ledger_url, clock=clock, sleep=clock.sleep)

    def budget() -> Any:
        return budgets.account("zendesk:x", limits={"export": lambda: 1}, job_limit=30)

    clock.now = datetime(2026, 3, 2, 9, 0, 50, tzinfo=UTC)  # ten seconds to the minute
    spender, killed, patient = budget(), budget(), budget()
    assert spender.try_take("export") is None
    assert killed.try_take("export") is not None  # queued, then killed
    clock.now += timedelta(milliseconds=1)
    assert patient.try_take("export") is not None
    for _ in range(2):  # the next minute: the killed holder's place is still fresh
        clock.now += timedelta(seconds=10)
        assert patient.try_take("export") is not None  # behind it, looking every 10 s
    clock.now += timedelta(seconds=10)  # three looks missed: the killed place is dropped
    assert patient.try_take("export") is None

    class StoppedError(Exception):
        pass

    def stop(_seconds: float) -> None:
        raise StoppedError

    stopped = budgets.account("zendesk:x", limits={"export": lambda: 1}, job_limit=30)
    stopped.sleep = stop
    with pytest.raises(StoppedError):
        stopped.take_call("export")  # the minute is spent: it queues, and is stopped
    clock.now += timedelta(seconds=60)
    assert budget().try_take("export") is None  # nobody ahead any more
    budgets.close()


def test_a_process_opens_one_budgets_pool_per_url_and_clock(ledger_url: str) -> None:
    """A worker builds adapters for every run of every pair: they share the process's one
    pool of the shared namespace (a simulator's clock gets its own)."""
    clock = _Clock()
    first = Budgets.opened(ledger_url, clock=clock, sleep=clock.sleep)
    again = Budgets.opened(ledger_url, clock=clock, sleep=clock.sleep)
    other = _Clock()
    assert again is first
    assert Budgets.opened(ledger_url, clock=other, sleep=other.sleep) is not first
    assert first.account("zendesk:x", limits={"calls": lambda: 3}, job_limit=1).try_take() is None


def test_a_worker_run_sleeps_a_near_turn_and_gives_a_far_one_back(ledger_url: str) -> None:
    """A worker's run (`TurnTaking`) sleeps for a turn a few seconds away, but not for one
    further: it raises `AccountBusyError` with the wait, nothing counted, and leaves the
    queue (a place kept for a job that found no free thread held a call of every minute
    for nobody). Inside `waiting()` (a stream read midway) it sleeps however far."""
    clock = _Clock()
    budgets = Budgets(ledger_url, clock=clock, sleep=clock.sleep)
    limits = {"export": lambda: 1}

    def worker_run() -> Any:
        return TurnTaking(budgets, give_back_after=5.0).account(
            "zendesk:x", limits=limits, job_limit=30
        )

    clock.now = datetime(2026, 3, 2, 9, 0, 57, tzinfo=UTC)  # three seconds to the minute
    spender = budgets.account("zendesk:x", limits=limits, job_limit=30)
    assert spender.try_take("export") is None
    near = worker_run()
    near.take_call("export")  # slept the three seconds: the next minute's call is its
    assert clock.slept == [pytest.approx(3.0)]

    clock.now += timedelta(seconds=5)  # 55 s to the next minute
    far = worker_run()
    with pytest.raises(AccountBusyError) as raised:
        far.take_call("export")
    assert raised.value.retry_after == pytest.approx(55.0)
    assert "zendesk:x" in str(raised.value)
    assert len(clock.slept) == 1  # no sleep for the far turn
    clock.now += timedelta(milliseconds=1)
    later = budgets.account("zendesk:x", limits=limits, job_limit=30)
    assert later.try_take("export") is not None  # queued: first in line, nobody ahead
    clock.now += timedelta(seconds=55)
    assert later.try_take("export") is None  # the run that gave its turn back held none

    midway = worker_run()
    with midway.waiting():
        midway.take_call("export")  # the minute is spent: slept to the next one
    assert sum(clock.slept[1:]) == pytest.approx(60.0, abs=0.01)
    budgets.close()


def test_a_turn_is_looked_up_without_taking_a_place(ledger_url: str) -> None:
    """`turn_in`, the look a worker takes before it starts a run: now while the minute has
    a call beyond those the live queue waits for, else the minute's end; the look joins
    no queue and takes no call, and a place nobody refreshed for long counts for nothing."""
    clock = _Clock()
    clock.now = datetime(2026, 3, 2, 9, 0, 20, tzinfo=UTC)  # 40 s to the next minute
    budgets = Budgets(ledger_url, clock=clock, sleep=clock.sleep)
    limits = {"calls": lambda: 2, "export": lambda: 1}

    def account() -> Any:
        return budgets.account("zendesk:x", limits=limits, job_limit=30)

    def counts() -> tuple[int, int]:
        with budgets.engine.connect() as connection:
            used = connection.execute(text("SELECT coalesce(sum(used), 0) FROM budget_minute"))
            queued = connection.execute(text("SELECT count(*) FROM budget_waiter"))
            return int(used.scalar_one()), int(queued.scalar_one())

    looker = account()
    assert looker.turn_in(("calls", "export")) == 0.0
    assert counts() == (0, 0)
    assert account().try_take("export") is None  # the minute's one export page, taken
    assert looker.turn_in(("calls",)) == 0.0
    assert looker.turn_in(("calls", "export")) == pytest.approx(40.0)
    first = account()
    assert first.try_take("calls") is None  # one of two calls: one left
    assert looker.turn_in(("calls",)) == 0.0
    waiter = account()
    clock.now += timedelta(seconds=1)
    taker = account()
    assert taker.try_take("calls") is None  # the last call
    assert waiter.try_take("calls") is not None  # queued for the next minute's
    clock.now += timedelta(seconds=29)
    assert waiter.try_take("calls") is not None  # looks again: its place stays fresh
    clock.now += timedelta(seconds=10, milliseconds=500)  # the next minute: 2 calls, 1 owed
    assert looker.turn_in(("calls",)) == 0.0
    assert account().try_take("calls") is None  # the one call nobody waits for
    assert looker.turn_in(("calls",)) == pytest.approx(59.5)  # the other is the waiter's
    assert counts() == (2 + 1 + 1, 1)  # the looks took nothing and joined no queue
    clock.now += timedelta(seconds=21)  # the waiter has not looked for 31.5 s: dropped
    assert looker.turn_in(("calls",)) == 0.0
    budgets.close()
