"""A worker SIGKILLed mid-run: another worker takes its job back (stalled-job recovery),
settles what the dead run left `sent`, finishes the run, and every pair converges with no
irreversible request sent twice."""

from __future__ import annotations

import json
import signal
from collections import Counter

from bridge.core.model import Side
from bridge.worker.queue import queue_conninfo
from bridge.worker.targeted import TargetedQueue
from tests.pairs.conftest import Pairs
from tests.workers.conftest import Workers, wait_for


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
