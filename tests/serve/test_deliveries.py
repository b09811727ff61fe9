"""End to end with the simulators' own webhooks: a deletion on one simulator reaches the
other through `bridge serve` with no scheduled run, and with 30 % of the webhooks lost and
10 % repeated or reordered every change still converges, by the scheduled sync at the
latest, with no wrong write and no purge sent twice (issue 19)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import both_backends
from tests.serve.deliveries import Hooked, faulty_changes, hooked_world, wait_until

pytestmark = both_backends


@pytest.fixture
def hooked(tmp_path: Path, world_ledger_url: str | None) -> Iterator[Hooked]:
    with hooked_world(
        tmp_path / "bridge", ledger_url=world_ledger_url, propagate_retention_purges="true"
    ) as world:
        world.start_serving()
        try:
            yield world
        finally:
            world.stop_serving()


def test_a_deletion_crosses_both_ways_by_the_simulators_webhooks(hooked: Hooked) -> None:
    (so_a, zd_a), (so_b, zd_b), (so_c, zd_c) = hooked.link(3)
    hooked.sync()
    hooked.register()  # the seeding's calls forgotten
    hooked.zd.agent_act("delete", [zd_a], agent=(7, "Ann"))
    wait_until(lambda: hooked.so_state(so_a) == "deleted", 15, "Zendesk → SuperOffice")
    hooked.so.soft_delete([so_b], associate=7)
    wait_until(lambda: hooked.zd_state(zd_b) == "deleted", 15, "SuperOffice → Zendesk")
    wait_until(hooked.settled, 15, "serve idle")
    assert hooked.states([(so_c, zd_c)]) == [("active", "active")]
    kinds = [run.kind for run in reversed(hooked.ledger.recent_runs(20))]
    assert kinds[0] == "sync"
    assert set(kinds[1:]) == {"hints"}  # no scheduled run after the first
    delivered = [a for a in hooked.attempts() if a.status == 202]
    assert {a.event for a in delivered} >= {"zen:event-type:ticket.soft_deleted", "ticket.changed"}


def test_lost_repeated_and_reordered_webhooks_still_converge(hooked: Hooked) -> None:
    report = faulty_changes(hooked, 60)
    assert report.webhooks["drop"] > 0, report  # the faults did fire
    assert report.webhooks["duplicate"] + report.webhooks["reorder"] > 0, report
    assert report.by_hints > 0, report
    assert report.sync_outcome == "converged", report
    assert report.converged, report
    assert report.wrong == 0
    assert report.writes_on_untouched == 0
    assert report.duplicate_purges == 0
