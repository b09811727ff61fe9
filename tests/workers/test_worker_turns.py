"""A worker's thread is not held by a shared account's turn (issue 18, items 3 and 4):
the runs of pairs that share a Zendesk account whose minutes are spent end and come back
with the turn, and a pair of another account runs meanwhile on the same thread."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from bridge.budgets import Budgets
from bridge.config import load_pairs
from bridge.sandbox_pair import Sandbox
from bridge.vendors.zendesk.adapter import CALLS_BUDGET, DELETED_LIST_BUDGET, EXPORT_BUDGET
from tests.pairs.conftest import Pairs
from tests.workers.conftest import Workers, pairs_on_postgres, wait_for
from tests.workers.test_worker_faults import _jobs, _runs

#: acme and globex share acme's Zendesk account; initech has its own
NAMES = ("acme", "globex", "initech")
SHARING = ("acme", "globex")


def _share_acmes_zendesk(config: str, sandboxes: Mapping[str, Sandbox]) -> str:
    return config.replace(sandboxes["globex"].zendesk.base_url, sandboxes["acme"].zendesk.base_url)


@pytest.fixture
def sharing(tmp_path: Path, postgres_url: str) -> Iterator[Pairs]:
    with pairs_on_postgres(tmp_path, postgres_url, NAMES, edit=_share_acmes_zendesk) as pairs:
        yield pairs


def _spend_minutes(budgets: Budgets, account: str, minutes: int) -> None:
    """Every call of the account's next `minutes` minutes spent, as by other processes."""
    now = int(datetime.now(UTC).timestamp() // 60)
    with budgets.engine.begin() as connection:
        for kind in (CALLS_BUDGET, EXPORT_BUDGET, DELETED_LIST_BUDGET):
            for minute in range(now, now + minutes):
                connection.execute(
                    text(
                        "INSERT INTO budget_minute (account, kind, minute, used) "
                        "VALUES (:account, :kind, :minute, 1000000)"
                    ),
                    {"account": account, "kind": kind, "minute": minute},
                )


def test_runs_waiting_for_a_spent_account_give_the_thread_to_another_pair(
    sharing: Pairs, tmp_path: Path
) -> None:
    """One worker, one thread. Without giving back, the first shared pair's run would sleep
    on it for minutes and initech would never run. The shared pairs' runs are not even
    started (no run recorded: a run that read nothing would show as a fault, every tick
    of every pair of the account), their jobs retried with the turn."""
    configs = load_pairs(sharing.config_path)
    assert configs["acme"].shares_account("zendesk")
    assert not configs["initech"].shares_account("zendesk")
    for name in NAMES:
        sharing.link(name, 2)
    budgets = Budgets(
        configs["acme"].shared_ledger_url, clock=lambda: datetime.now(UTC), sleep=lambda _s: None
    )
    account = f"zendesk:{configs['acme'].section('zendesk').base_url}"
    # a run looked at in a minute's last 5 s is started (the look sees the next minute as
    # free: a look, not a promise) and ends `waiting`; the runs here start well before
    second = datetime.now(UTC).second
    if second > 40:
        time.sleep(61 - second)
    _spend_minutes(budgets, account, 5)
    workers = Workers(sharing, tmp_path)
    try:
        workers.start("--concurrency", "1")
        wait_for(
            lambda: sum(o == "converged" for *_, o in _runs(sharing, "initech")) >= 2,
            timeout=60,
            what="initech's runs on the thread the shared pairs gave back",
        )
        for pair in SHARING:

            def retried(pair: str = pair) -> bool:
                return any(j["attempts"] >= 1 for j in _jobs(sharing, pair))

            wait_for(retried, what=f"{pair}'s job retried")
            retry = next(j for j in _jobs(sharing, pair) if j["attempts"] >= 1)
            assert retry["status"] in ("todo", "doing")
            # each try that waited is counted on the job, out of its tries for failures
            assert retry["args"]["turns"] >= retry["attempts"] >= 1, retry
            if retry["status"] == "todo":  # back with the turn, the next minute
                delay = (retry["scheduled_at"] - datetime.now(UTC)).total_seconds()
                assert delay <= 60, delay
            assert _runs(sharing, pair) == []

            def shown_back_with_the_turn(pair: str = pair) -> bool:
                shown = sharing.bridge("status", "--json")
                queue = json.loads(shown.stdout)["pairs"][pair]["queue"]
                return bool(queue["waiting_turn"] == 1 and queue["retrying"] == 0)

            wait_for(shown_back_with_the_turn, what=f"{pair}'s job shown back with the turn")
            text_shown = sharing.bridge("status", "--pair", pair).stdout
            assert "0 retrying, 1 back with a shared account's turn" in text_shown, text_shown
        with budgets.engine.connect() as connection:
            spent = connection.execute(
                text("SELECT DISTINCT used FROM budget_minute WHERE account = :a"),
                {"a": account},
            ).all()
        assert spent == [(1_000_000,)]  # nothing taken: no call sent over the account's limit
    finally:
        workers.stop_all()
        budgets.close()
