"""`bridge worker` syncs every pair on its schedule (issue 18, item 4)."""

from __future__ import annotations

import signal

from tests.pairs.conftest import Pairs
from tests.workers.conftest import Workers, wait_for


def _runs(pairs: Pairs, pair: str) -> list[str]:
    with pairs.ledger(pair) as ledger:
        return [run.outcome for run in ledger.recent_runs(100)]


def test_a_worker_syncs_each_pair_on_its_schedule(pg_pairs: Pairs, workers: Workers) -> None:
    acme = pg_pairs.link("acme", 4)
    globex = pg_pairs.link("globex", 4)
    worker = workers.start()
    # both pairs' first runs: each link's agreed state known (its base)
    wait_for(lambda: all("converged" in _runs(pg_pairs, p) for p in ("acme", "globex")))

    # a change on each pair's side is copied by the next tick, with nobody running sync
    pg_pairs.sandboxes["acme"].superoffice.soft_delete([acme[0][0]])
    pg_pairs.sandboxes["globex"].superoffice.soft_delete([globex[2][0]])
    acme_zd, globex_zd = pg_pairs.sandboxes["acme"].zendesk, pg_pairs.sandboxes["globex"].zendesk
    wait_for(lambda: acme_zd.ticket_state(acme[0][1]) == "deleted", what="acme's soft delete")
    wait_for(
        lambda: globex_zd.ticket_state(globex[2][1]) == "deleted",
        what=f"globex's: {pg_pairs.bridge('conflicts', 'list', '--pair', 'globex').stdout}",
    )
    assert acme_zd.ticket_state(acme[2][1]) == "active"
    assert globex_zd.ticket_state(globex[0][1]) == "active"
    # and it keeps going: runs every 2 s, each converged
    before = len(_runs(pg_pairs, "acme"))
    wait_for(lambda: len(_runs(pg_pairs, "acme")) >= before + 2, what="two more acme runs")
    assert worker.poll() is None, workers.output(worker)
    assert set(_runs(pg_pairs, "acme")) - {"running"} == {"converged"}
    assert "acme: run" in workers.output(worker)
    # SIGTERM: the batch in flight finished and recorded, then exit 0
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0, workers.output(worker)
    assert "Worker stopped." in workers.output(worker)
    assert "running" not in _runs(pg_pairs, "acme") + _runs(pg_pairs, "globex")


def test_a_stopping_worker_keeps_its_runs_alive_until_they_end(
    pg_pairs: Pairs, workers: Workers
) -> None:
    """SIGTERM lets the runs in flight finish their batch: meanwhile their jobs are still
    the stopping worker's, not stalled ones for another worker to take back and run again
    (Procrastinate stops a worker's heartbeat before it waits for its jobs)."""
    pg_pairs.link("acme", 4)
    pg_pairs.link("globex", 4)
    stopping = workers.start()
    wait_for(lambda: all("converged" in _runs(pg_pairs, p) for p in ("acme", "globex")))
    # acme's next export read takes 6 s: three times the workers' --stalled-after
    zendesk = pg_pairs.sandboxes["acme"].zendesk
    slow = zendesk.add_fault("slow", path="incremental", delay=6, count=1)
    wait_for(lambda: slow.fired == 1, what="a run inside the slow read")
    other = workers.start()
    wait_for(lambda: "Worker for" in workers.output(other), what="the other worker serving")
    with pg_pairs.ledger("acme") as ledger:
        (in_flight,) = [run.id for run in ledger.recent_runs(100) if run.outcome == "running"]
    stopping.send_signal(signal.SIGTERM)
    assert stopping.wait(40) == 0, workers.output(stopping)
    with pg_pairs.ledger("acme") as ledger:  # its run ended, recorded by it
        (ended,) = [run for run in ledger.recent_runs(100) if run.id == in_flight]
    assert ended.outcome in ("interrupted", "converged"), ended
    for process in (stopping, other):
        assert "stalled_job_retried" not in workers.output(process), workers.output(process)
