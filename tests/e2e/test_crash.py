"""`bridge sync` killed with SIGKILL at the engine's crash points, in a child process.

After each kill: both simulators and the ledger are checked, the next runs finish the
work, and no purge is ever sent twice (the Zendesk simulator counts its purge calls).
"""

from __future__ import annotations

import signal
import time
from datetime import timedelta

import pytest

from tests.conftest import both_backends
from tests.e2e.conftest import DAY, Live, states

PURGE = "DELETE deleted_tickets/destroy_many"
SOFT = "DELETE tickets/destroy_many"
N = 250  # three Zendesk batches: 100, 100, 50

pytestmark = both_backends


def _statuses(world: Live) -> dict[str, int]:
    found: dict[str, int] = {}
    for op in world.ops():
        key = f"{op.transition}:{op.status}"
        found[key] = found.get(key, 0) + 1
    return found


def _wait_lease(world: Live) -> None:
    """The killed run's lease (2 s in these tests) must expire before the next run."""
    time.sleep(2.1)


def _retention_purges(world: Live) -> list[tuple[int, int]]:
    """N links soft-deleted on both sides, then purged by SuperOffice's retention job."""
    pairs = world.link(N)
    assert world.sync().outcome == "converged"
    world.so.soft_delete([s for s, _ in pairs])
    assert world.sync().outcome == "converged"
    assert states(world, pairs) == [("deleted", "deleted")] * N
    world.sandbox.clock.advance(15 * DAY)
    return pairs


@pytest.mark.parametrize("point", ["before_mark_sent:2", "before_send:2", "after_send:2"])
def test_killed_while_purging_the_next_runs_finish_without_a_duplicate_purge(
    live: Live, point: str
) -> None:
    live.rewrite_config(
        lease_seconds="2", max_purges_per_run="1000", propagate_retention_purges="true"
    )
    pairs = _retention_purges(live)
    killed = live.bridge("sync", crash_at=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    statuses = _statuses(live)
    # the first batch went out; nothing was confirmed or failed by the dying run
    assert statuses.get("purge:sent", 0) == {"before_mark_sent": 100, "before_send": 200}.get(
        point.split(":")[0], 200
    )
    assert statuses.get("purge:failed", 0) == 0
    sent_before = live.routes("zendesk").get(PURGE, 0)
    assert sent_before == (1 if point != "after_send:2" else 2)
    live.zd.finish_jobs()
    _wait_lease(live)

    after = live.bridge("sync")
    assert after.returncode in (0, 1), after.stderr
    if point == "before_send:2":
        # marked sent, never sent: not resent blindly while a job might still be running
        assert _statuses(live).get("purge:sent", 0) == 100
        assert after.returncode == 1
        live.shift = timedelta(hours=3)  # later: the lost batch is sent again
        live.sync()
        live.zd.finish_jobs()
        live.sync()
    else:
        live.zd.finish_jobs()
        if after.returncode != 0:
            _wait_lease(live)
            assert live.bridge("sync").returncode == 0
    assert states(live, pairs) == [("purged", "purged")] * N
    assert live.routes("zendesk")[PURGE] == 3  # each batch of ids purged exactly once
    assert _statuses(live) == {"soft_delete:confirmed": N, "purge:confirmed": N}
    assert live.ledger.status()["base"] == {"purged": N}
    assert live.ledger.attention() == []


def test_killed_mid_soft_delete_batch_converges_on_the_next_run(live: Live) -> None:
    pairs = live.link(N)
    assert live.sync().outcome == "converged"
    live.so.soft_delete([s for s, _ in pairs])
    killed = live.bridge("sync", crash_at="after_send:2")
    assert killed.returncode == -signal.SIGKILL
    assert _statuses(live) == {"soft_delete:sent": 200, "soft_delete:planned": 50}
    live.zd.finish_jobs()
    _wait_lease(live)
    after = live.bridge("sync")
    assert after.returncode == 0, after.stdout + after.stderr
    live.zd.finish_jobs()
    assert states(live, pairs) == [("deleted", "deleted")] * N
    # the two batches sent before the kill were confirmed by re-reading, not resent
    assert live.routes("zendesk")[SOFT] == 3
    assert _statuses(live) == {"soft_delete:confirmed": N}
