"""Hints through the pipeline, over real HTTP against both simulators: a signed webhook
makes the other side follow within seconds with no scheduled run; a burst becomes a few
bulk calls; forged or duplicated hints change nothing; an echo of bridge's own write costs
at most one read; a lease held by a sync keeps the hint until it can run; a scheduled sync
counts what no webhook announced."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import both_backends
from tests.serve.conftest import Served, make_served, superoffice_event, zendesk_event

ZD_UNDELETED = "zen:event-type:ticket.undeleted"

pytestmark = both_backends


def hint_runs(world: Served) -> list[str]:
    return [run.kind for run in world.runs()]


def reads(world: Served, side: str) -> int:
    """Lookup calls `side`'s simulator answered since its counters were reset."""
    return sum(n for route, n in world.routes(side).items() if route.startswith("GET"))


def writes(world: Served, side: str) -> int:
    return sum(n for route, n in world.routes(side).items() if not route.startswith("GET"))


def test_a_zendesk_soft_delete_hint_soft_deletes_superoffice_within_seconds(
    served: Served,
) -> None:
    pairs = served.link(3)
    assert served.sync().outcome == "converged"  # the pair's base: all active
    so_id, zd_id = pairs[1]
    served.zd.agent_act("delete", [zd_id], agent=(7, "Ann"))
    assert served.post("zendesk", zendesk_event(zd_id)).status_code == 202
    took = served.wait_for(lambda: served.so_state(so_id) == "deleted", timeout=10)
    assert took < 5
    assert served.states(pairs) == [
        ("active", "active"),
        ("deleted", "deleted"),
        ("active", "active"),
    ]
    assert hint_runs(served) == ["sync", "hints"]  # no scheduled run did it
    served.wait_for(served.settled)
    last = served.health()["pairs"]["default"]["last_run"]
    assert last["outcome"] == "converged"
    assert last["tickets"] == 1
    # and back: the restore crosses the same way
    served.zd.agent_act("restore", [zd_id], agent=(7, "Ann"))
    assert served.post("zendesk", zendesk_event(zd_id, ZD_UNDELETED)).status_code == 202
    served.wait_for(lambda: served.so_state(so_id) == "active", timeout=10)
    assert hint_runs(served) == ["sync", "hints", "hints"]


def test_a_superoffice_hint_soft_deletes_zendesk(served: Served) -> None:
    pairs = served.link(2)
    served.sync()
    so_id, zd_id = pairs[0]
    served.so.soft_delete([so_id])
    assert served.post("superoffice", superoffice_event(so_id)).status_code == 202
    served.wait_for(lambda: served.zd_state(zd_id) == "deleted", timeout=10)
    assert served.states(pairs) == [("deleted", "deleted"), ("active", "active")]


def calls(world: Served) -> int:
    return sum(sum(world.routes(side).values()) for side in ("zendesk", "superoffice"))


@pytest.fixture
def coalescing(tmp_path: Path, world_ledger_url: str | None) -> Iterator[Served]:
    """`bridge serve` gathering hints for a whole second."""
    yield from make_served(tmp_path, ledger_url=world_ledger_url, serve="coalesce_seconds = 1.0\n")


def test_a_burst_of_hints_becomes_a_few_bulk_calls(coalescing: Served) -> None:
    world = coalescing
    pairs = world.link(61)
    world.sync()
    # what one hint costs, whatever the adapters need for a lookup and a write
    (so_one, zd_one), *burst = pairs
    world.zd.agent_act("delete", [zd_one], agent=(7, "Ann"))
    world.reset_counters()
    world.post("zendesk", zendesk_event(zd_one))
    world.wait_for(lambda: world.so_state(so_one) == "deleted")
    world.wait_for(world.settled)
    single = calls(world)
    # sixty at once: coalesced into one run (two if the burst straddles a window)
    zd_ids = [zd for _so, zd in burst]
    world.zd.agent_act("delete", zd_ids, agent=(7, "Ann"))
    world.reset_counters()
    before = len(world.runs())
    for zd_id in zd_ids:
        assert world.post("zendesk", zendesk_event(zd_id)).status_code == 202
    world.wait_for(lambda: all(world.so_state(s) == "deleted" for s, _z in burst), 20)
    world.wait_for(world.settled)
    runs = world.runs()[before:]
    assert 1 <= len(runs) <= 2, [run.counts for run in runs]
    assert {run.kind for run in runs} == {"hints"}
    assert calls(world) <= len(runs) * single, (world.routes("zendesk"), single)
    assert world.states(burst) == [("deleted", "deleted")] * 60


def test_forged_and_duplicated_hints_change_nothing(served: Served) -> None:
    pairs = served.link(3)
    served.sync()
    _so_id, zd_id = pairs[0]
    served.reset_counters()
    # forged: the ticket did not change, and the call is not believed
    assert served.post("zendesk", zendesk_event(zd_id), secret=b"guess").status_code == 401
    # signed, but it names a ticket that did not change: a hint, not the truth
    body = zendesk_event(zd_id)
    assert served.post("zendesk", body, delivery="d-1").status_code == 202
    served.wait_for(lambda: hint_runs(served) == ["sync", "hints"])
    served.wait_for(served.settled)
    assert served.states(pairs) == [("active", "active")] * 3
    assert writes(served, "zendesk") == 0
    assert writes(served, "superoffice") == 0
    assert reads(served, "zendesk") == 1  # the one lookup that found nothing changed
    # the same delivery again: not queued, no run, no call
    served.reset_counters()
    assert served.post("zendesk", body, delivery="d-1").json()["status"] == "duplicate"
    served.post("zendesk", zendesk_event(999_999))  # a ticket no link holds: ignored
    served.wait_for(served.settled)
    assert hint_runs(served) == ["sync", "hints"]
    assert served.routes("zendesk") == {}
    assert served.routes("superoffice") == {}
    assert 'bridge_hints_unlinked_total{pair="default",side="zendesk"} 1.0' in served.metrics()


@pytest.fixture
def with_actor(tmp_path: Path, world_ledger_url: str | None) -> Iterator[Served]:
    """`bridge serve` told bridge's own SuperOffice associate (the simulator's API user)."""
    yield from make_served(
        tmp_path, ledger_url=world_ledger_url, superoffice="bridge_associate_id = 9\n"
    )


def _deleted_by_a_hint(world: Served) -> tuple[list[tuple[int, int]], int, int]:
    """Two linked pairs, the first's Zendesk ticket deleted by an agent and copied to
    SuperOffice by its webhook; the pairs and the first's ids."""
    pairs = world.link(2)
    world.sync()
    so_id, zd_id = pairs[0]
    world.zd.agent_act("delete", [zd_id], agent=(7, "Ann"))
    world.post("zendesk", zendesk_event(zd_id))
    world.wait_for(lambda: world.so_state(so_id) == "deleted")
    world.wait_for(world.settled)
    return pairs, so_id, zd_id


def _echo(world: Served, actor: int) -> int:
    """Copy a Zendesk delete to SuperOffice by a hint, then send SuperOffice's webhook
    for that write (by `actor`); the SuperOffice calls the echo cost."""
    pairs, so_id, _zd_id = _deleted_by_a_hint(world)
    runs = len(world.runs())
    world.reset_counters()
    assert world.post("superoffice", superoffice_event(so_id, actor=actor)).status_code == 202
    world.wait_for(
        lambda: (
            'bridge_webhook_echoes_total{pair="default",side="superoffice"} 1.0' in world.metrics()
        )
    )
    world.wait_for(world.settled)
    assert len(world.runs()) == runs  # no run for an echo
    assert world.states(pairs) == [("deleted", "deleted"), ("active", "active")]
    return reads(world, "superoffice") + writes(world, "superoffice")


def test_an_echo_of_our_own_write_is_recognised_by_its_actor(with_actor: Served) -> None:
    assert _echo(with_actor, actor=9) <= 1


def test_an_echo_is_recognised_by_the_ledger_without_an_actor_configured(
    served: Served,
) -> None:
    assert _echo(served, actor=19) <= 1  # the webhook's actor is not known to be ours


def test_a_change_after_our_write_is_not_taken_for_its_echo(served: Served) -> None:
    pairs, so_id, zd_id = _deleted_by_a_hint(served)
    # a person restores the SuperOffice ticket a little later: a change of theirs, not
    # the echo of our soft delete, though bridge wrote that ticket minutes ago
    served.so.associate_act("restore", [so_id])
    served.post(
        "superoffice", superoffice_event(so_id, at=datetime.now(UTC) + timedelta(seconds=30))
    )
    served.wait_for(lambda: served.zd_state(zd_id) == "active", timeout=10)
    assert hint_runs(served) == ["sync", "hints", "hints"]
    assert served.states(pairs) == [("active", "active")] * 2


def test_a_lease_held_by_a_sync_keeps_the_hint_until_it_can_run(served: Served) -> None:
    pairs = served.link(2)
    served.sync()
    so_id, zd_id = pairs[0]
    served.ledger.acquire_lease("sync", "cron-host:4242", timedelta(minutes=5))
    served.zd.agent_act("delete", [zd_id], agent=(7, "Ann"))
    served.post("zendesk", zendesk_event(zd_id))
    served.wait_for(lambda: served.health()["pairs"]["default"]["waiting_for_lease"])
    assert served.so_state(so_id) == "active"
    assert served.health()["pairs"]["default"]["queue_depth"] == 1
    assert hint_runs(served) == ["sync"]
    served.ledger.release_lease("sync", "cron-host:4242")
    served.wait_for(lambda: served.so_state(so_id) == "deleted", timeout=10)
    assert 'bridge_hint_lease_waits_total{pair="default"}' in served.metrics()


def test_the_scheduled_sync_counts_what_no_webhook_announced(served: Served) -> None:
    pairs = served.link(3)
    first = served.sync()
    assert not any(key.endswith(".unannounced") for key in first.counts)  # no serve yet
    (so_a, zd_a), (so_b, zd_b), _ = pairs
    served.zd.agent_act("delete", [zd_a, zd_b], agent=(7, "Ann"))
    served.post("zendesk", zendesk_event(zd_a))  # b's webhook was lost
    served.wait_for(lambda: served.so_state(so_a) == "deleted")
    served.wait_for(served.settled)
    assert served.so_state(so_b) == "active"
    result = served.sync()
    assert result.outcome == "converged"
    assert served.so_state(so_b) == "deleted"
    assert result.counts["zendesk.unannounced"] == 1
    assert result.counts["superoffice.unannounced"] == 0
    status_runs = served.ledger.status()["runs"]
    assert status_runs[0]["counts"]["zendesk.unannounced"] == 1
