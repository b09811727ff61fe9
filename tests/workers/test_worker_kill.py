"""A worker SIGKILLed mid-run: another worker takes its job back (stalled-job recovery),
settles what the dead run left `sent`, finishes the run, and every pair converges with no
irreversible request sent twice: in particular a purge bridge copies (a SuperOffice
retention purge, copied to Zendesk) whose worker died just before or just after sending
it reaches Zendesk exactly once (its simulator's purge log)."""

from __future__ import annotations

import json
import signal
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from bridge.core.model import Side
from bridge.ledger.tables import Operation
from bridge.sandbox_pair import Sandbox
from bridge.worker.queue import queue_conninfo
from bridge.worker.targeted import TargetedQueue
from tests.pairs.conftest import Pairs
from tests.workers.conftest import Workers, pairs_on_postgres, running_workers, wait_for

DAY = 86_400
#: Zendesk's permanent deletion (a purge), one call per batch of up to 100 ids
PURGE = "DELETE deleted_tickets/destroy_many"
#: how long a Zendesk purge job waits queued, in these tests (simulated seconds; the
#: simulators run at real speed): longer than a rescuing worker takes to re-read the
#: ticket after a kill, so that the re-read comes while the purge is still under way
PURGE_QUEUED = 6
#: `[zendesk] outcome_wait_seconds` in these tests: longer than a purge job lasts
#: (PURGE_QUEUED + 1.5 s + 0.1 s a ticket), the contract bridge relies on before it
#: resends a purge whose answer it never got
OUTCOME_WAIT = 12


def _settled(pairs: Pairs, pair: str) -> bool:
    """The pair's last finished run converged."""
    with pairs.ledger(pair) as ledger:
        done = [run for run in ledger.recent_runs(100) if run.outcome != "running"]
    return bool(done) and done[0].outcome == "converged"


def test_a_worker_killed_mid_run_is_taken_over_and_nothing_is_sent_twice(
    pg_pairs: Pairs, workers: Workers
) -> None:
    acme = pg_pairs.link("acme", 8)
    globex = pg_pairs.link("globex", 8)
    so = {pair: pg_pairs.sandboxes[pair].superoffice for pair in ("acme", "globex")}
    zd = {pair: pg_pairs.sandboxes[pair].zendesk for pair in ("acme", "globex")}
    # the first worker dies (SIGKILL, no cleanup) on its first bulk write, after the
    # ledger marked the operations sent and before the request left
    doomed = workers.start(crash_at="before_send:1")
    wait_for(lambda: all(_settled(pg_pairs, p) for p in ("acme", "globex")))

    # an agent purges two acme tickets in Zendesk (bridge deletes them in SuperOffice,
    # where the tenant's retention job purges); soft deletes in SuperOffice, both pairs
    zd["acme"].agent_act("purge", [zd_id for _, zd_id in acme[:2]])
    so["acme"].soft_delete([so_id for so_id, _ in acme[2:4]])
    so["globex"].soft_delete([so_id for so_id, _ in globex[:3]])
    assert doomed.wait(40) == -signal.SIGKILL, workers.output(doomed)

    rescuer = workers.start()

    def converged() -> bool:
        return (
            all((so["acme"].ticket_state(s) or {}).get("deleted_at") for s, _ in acme[:2])
            and all(zd["acme"].ticket_state(z) == "deleted" for _, z in acme[2:4])
            and all(zd["globex"].ticket_state(z) == "deleted" for _, z in globex[:3])
        )

    wait_for(converged, timeout=60, what="every pair converged after the kill")
    wait_for(lambda: all(_settled(pg_pairs, p) for p in ("acme", "globex")))
    assert all(zd["acme"].ticket_state(z) == "active" for _, z in acme[4:])
    assert all(zd["globex"].ticket_state(z) == "active" for _, z in globex[3:])
    # the killed worker's job was put back in the queue and run by the other, which
    # re-read what the dead run had marked sent before sending it
    output = workers.output(rescuer)
    assert "worker.stalled_job_retried" in output
    assert "resent_after_reread" in output
    # each run counted its vendor calls in its own thread (every run reads both streams)
    with pg_pairs.ledger("acme") as ledger:
        idle = [json.loads(r.counts) for r in ledger.recent_runs(100) if r.outcome == "converged"]
    assert idle
    assert all(c.get("zendesk.http_calls", 0) >= 1 for c in idle), idle
    assert all(c.get("superoffice.http_calls", 0) >= 1 for c in idle), idle
    for sim in (*so.values(), *zd.values()):
        log = sim.purge_log()
        assert [r for r in log if r["duplicate"]] == [], log
        repeated = [t for t, n in Counter(r["ticket_id"] for r in log).items() if n > 1]
        assert repeated == [], log
    assert "Traceback" not in output


def test_a_targeted_job_whose_worker_was_killed_is_taken_back(
    pg_pairs: Pairs, workers: Workers, postgres_url: str
) -> None:
    """A `bridge serve` hint's job holds its pair's lock while it runs: left `doing` by a
    killed worker, it would keep every later run of the pair from starting."""
    acme = pg_pairs.link("acme", 4)
    so = pg_pairs.sandboxes["acme"].superoffice
    zd = pg_pairs.sandboxes["acme"].zendesk
    first = workers.start()
    wait_for(lambda: all(_settled(pg_pairs, p) for p in ("acme", "globex")))
    first.send_signal(signal.SIGTERM)
    assert first.wait(30) == 0, workers.output(first)

    # while no worker runs, SuperOffice soft-deletes a ticket and serve queues its hint
    so.soft_delete([acme[0][0]])
    queue = TargetedQueue(queue_conninfo(postgres_url)).open()
    try:
        assert queue.defer("acme", {Side("superoffice"): [acme[0][0]]}) is not None
    finally:
        queue.close()
    # the hint's job goes first (its priority) and its worker dies sending the delete
    doomed = workers.start(crash_at="before_send:1")
    assert doomed.wait(40) == -signal.SIGKILL, workers.output(doomed)

    rescuer = workers.start()
    wait_for(lambda: zd.ticket_state(acme[0][1]) == "deleted", what="the hint's delete copied")
    wait_for(lambda: _settled(pg_pairs, "acme"))
    output = workers.output(rescuer)
    assert "worker.stalled_job_retried" in output
    assert "Traceback" not in output


def _outcome_wait(config: str, _sandboxes: Mapping[str, Sandbox]) -> str:
    written = "job_limit = 30\n"
    assert written in config
    return config.replace(written, f"{written}outcome_wait_seconds = {OUTCOME_WAIT}\n")


@pytest.fixture
def purge_pairs(tmp_path: Path, postgres_url: str) -> Iterator[Pairs]:
    """`pg_pairs` whose Zendesk outcome wait is seconds, not 15 minutes."""
    with pairs_on_postgres(tmp_path, postgres_url, ("acme", "globex"), edit=_outcome_wait) as pairs:
        yield pairs


@pytest.fixture
def purge_workers(purge_pairs: Pairs, tmp_path: Path) -> Iterator[Workers]:
    with running_workers(purge_pairs, tmp_path) as running:
        yield running


def _ops(pairs: Pairs, pair: str) -> list[tuple[int, str, str, str]]:
    """The pair's operations: (link, target, transition, status), oldest first."""
    with pairs.ledger(pair) as ledger, ledger.session() as session:
        query = select(Operation).order_by(col(Operation.id))
        return [(o.link_id, o.target, o.transition, o.status) for o in session.exec(query)]


def _statuses(pairs: Pairs, pair: str) -> Counter[str]:
    return Counter(f"{transition}:{status}" for _, _, transition, status in _ops(pairs, pair))


@pytest.mark.parametrize(
    "point",
    [
        # marked sent, never sent: the purge must go, once, after the outcome wait
        "before_send:1",
        # sent, its job queued, the answer (job id) never recorded: it must not go again
        "after_send:1",
    ],
)
def test_a_worker_killed_while_purging_is_taken_over_and_purges_once(
    purge_pairs: Pairs, purge_workers: Workers, point: str
) -> None:
    pairs, workers = purge_pairs, purge_workers
    sandbox = pairs.sandboxes["acme"]
    so, zd = sandbox.superoffice, sandbox.zendesk
    # the simulators 20 days behind the wall clock bridge runs on: a ticket soft-deleted
    # now is past SuperOffice's 14-day retention, for bridge, once they advance 15 days
    sandbox.clock.set(datetime.now(UTC) - timedelta(days=20))
    acme = pairs.link("acme", 6)
    purged, kept = acme[:3], acme[3:]
    first = workers.start()
    wait_for(lambda: _settled(pairs, "acme"), timeout=60)

    # soft-deleted in SuperOffice, copied to Zendesk by a healthy worker, which then stops
    so.soft_delete([s for s, _ in purged])
    wait_for(
        lambda: _statuses(pairs, "acme") == {"soft_delete:confirmed": 3},
        timeout=60,
        what="the soft deletes copied and confirmed",
    )
    assert all(zd.ticket_state(z) == "deleted" for _, z in purged)
    first.send_signal(signal.SIGTERM)
    assert first.wait(30) == 0, workers.output(first)

    # SuperOffice's retention job purges them (silently): bridge must purge them in
    # Zendesk (`propagate_retention_purges`), the only write left for the next worker,
    # which dies on that purge batch
    zd.configure({"job_queue_seconds": PURGE_QUEUED})
    so.advance(15 * DAY)
    assert all(so.is_purged(s) for s, _ in purged)
    assert zd.purge_log() == []
    doomed = workers.start(crash_at=point)
    assert doomed.wait(90) == -signal.SIGKILL, workers.output(doomed)
    reached = sorted(r["ticket_id"] for r in zd.purge_log())
    assert reached == ([] if point.startswith("before_send") else sorted(z for _, z in purged))
    assert _statuses(pairs, "acme") == {"soft_delete:confirmed": 3, "purge:sent": 3}

    rescuer = workers.start()
    wait_for(
        lambda: all(zd.ticket_state(z) == "purged" for _, z in purged),
        timeout=90,
        what="the purges copied to Zendesk after the kill",
    )
    wait_for(
        lambda: (
            _statuses(pairs, "acme") == {"soft_delete:confirmed": 3, "purge:confirmed": 3}
            and _settled(pairs, "acme")
        ),
        timeout=60,
        what="the purges confirmed and the pair converged",
    )
    assert all(zd.ticket_state(z) == "active" for _, z in kept)
    assert not any(so.is_purged(s) for s, _ in kept)
    # Zendesk received each purge exactly once, in one request, and carried it out
    log = zd.purge_log()
    assert [r for r in log if r["duplicate"]] == [], log
    assert sorted(r["ticket_id"] for r in log) == sorted(z for _, z in purged), log
    assert {r["outcome"] for r in log} == {"done"}, log
    assert zd.counts()["routes"].get(PURGE, 0) == 1
    # one operation per link, side and transition: nothing planned twice
    ops = Counter((link, target, transition) for link, target, transition, _ in _ops(pairs, "acme"))
    assert [key for key, n in ops.items() if n > 1] == []
    # the rescuer took the dead worker's job; it resent only what never left
    output = workers.output(rescuer)
    assert "worker.stalled_job_retried" in output
    assert ("resent_after_reread" in output) == point.startswith("before_send"), output
    assert "Traceback" not in output
