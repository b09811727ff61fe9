"""Tickets that vanish without a trace in the change streams, found by the sweep (real HTTP
to both simulators, frozen clock)."""

from __future__ import annotations

import json

import requests

from tests.conftest import both_backends
from tests.e2e.conftest import DAY, World

pytestmark = both_backends

GET_ONE = "GET Ticket/{id}"


def _archive_calls(world: World) -> int:
    return sum(n for route, n in world.routes("superoffice").items() if "Archive" in route)


def test_an_admin_hard_delete_in_superoffice_is_found_and_copied_as_a_purge(
    world: World,
) -> None:
    pairs = world.link(3)
    world.sync()
    so_id, zd_id = pairs[0]
    world.so.purge([so_id])  # gone at once: no change stream shows it
    assert world.sync().outcome == "converged"
    assert world.zd_state(zd_id) == "active"  # not due for the sweep yet
    world.clock.advance(DAY + 3600)
    world.reset_counters()
    result = world.sync()
    assert result.counts["superoffice.swept"] == 3
    assert result.outcome == "converged"
    assert world.zd_state(zd_id) == "purged"
    observed = [e for e in world.events("observed") if e.side == "superoffice"][-1]
    assert (observed.ticket_id, observed.to_state, observed.cause) == (so_id, "purged", "user")
    # found in neither archive provider (one call each for the 3 ids), confirmed by id once
    assert world.routes("superoffice").get(GET_ONE) == 1
    again = world.sync()
    assert again.counts["superoffice.swept"] == 0  # checked: not due for another day


def test_vanished_on_one_side_and_restored_on_the_other_is_a_conflict(world: World) -> None:
    pairs = world.link(2)
    world.sync()
    so_id, zd_id = pairs[0]
    world.so.soft_delete([so_id])
    world.sync()
    assert world.zd_state(zd_id) == "deleted"
    world.so.purge([so_id])
    world.zd.agent_act("restore", [zd_id], agent=(7, "Ann"))
    world.clock.advance(DAY + 3600)
    result = world.sync()
    assert result.outcome == "attention"
    [pair] = world.ledger.attention()
    assert (pair.attention, pair.base, pair.first_state, pair.second_state) == (
        "conflict",
        "soft_deleted",
        "purged",
        "active",
    )
    assert world.zd_state(zd_id) == "active"  # nothing written over the restore


def test_pending_retention_purges_are_verified_in_bulk(world: World) -> None:
    pairs = world.link(150)
    world.sync()
    zd_ids = [z for _, z in pairs]
    world.zd.agent_act("delete", zd_ids, agent=(7, "Ann"))
    world.sync()
    world.clock.advance(3600)
    world.rewrite_config(max_purges_per_run="1000")
    world.zd.agent_act("purge", zd_ids, agent=(7, "Ann"))
    assert world.sync().counts["pending_retention"] == 150
    world.clock.advance(15 * DAY)
    world.reset_counters()
    result = world.sync()
    assert result.outcome == "converged"
    assert [world.so_state(s) for s, _ in pairs] == ["purged"] * 150
    assert all(op.status == "confirmed" for op in world.ops())
    # two archive providers, 100 ids a call: no per-ticket read for 150 expected purges
    assert world.routes("superoffice").get(GET_ONE) is None
    assert _archive_calls(world) <= 8


# ---- Zendesk archive: deletion schedules and admin deletions of archived tickets --------

ARCHIVE_AFTER = 121 * DAY
OLD_TICKETS = {
    "title": "Older than 100 days",
    "active": True,
    "conditions": {
        "all": [
            {"field": "duration_since_last_update", "operator": "greater_than", "value": "P100D"}
        ]
    },
}


def _closed_and_archived(world: World, count: int) -> list[tuple[int, int]]:
    """`count` linked pairs whose Zendesk ticket was closed, synced, then archived."""
    pairs = world.link(count)
    world.zd.agent_act("update", [z for _, z in pairs], fields={"status": "closed"})
    assert world.sync().outcome == "converged"
    world.clock.advance(ARCHIVE_AFTER)
    assert all(world.zd.get_ticket(z).archived for _, z in pairs)  # type: ignore[union-attr]
    return pairs


def _activate_schedule(world: World) -> None:
    answer = requests.post(
        f"{world.zd.base_url}/api/v2/deletion_schedules",
        json={"deletion_schedule": OLD_TICKETS},
        auth=(f"{world.zd.email}/token", "sandbox-token"),
        timeout=10,
    )
    assert answer.status_code == 201, answer.text


def test_a_schedule_deleted_archived_ticket_is_an_archive_retention_purge(
    world: World,
) -> None:
    pairs = _closed_and_archived(world, 2)
    assert world.sync().outcome == "converged"  # archived: still active to bridge
    assert world.states(pairs) == [("active", "active")] * 2
    _activate_schedule(world)
    world.clock.advance(3 * DAY + 3600)  # the schedule's first run (within 72 h) and the sweep
    assert world.states(pairs) == [("active", "purged")] * 2
    result = world.sync()
    assert result.outcome == "converged"
    # found by the sweep (404, never in the deleted list), purged by archive retention
    observed = [e for e in world.events("observed") if e.side == "zendesk"]
    assert {(e.ticket_id, e.transition, e.to_state, e.cause) for e in observed} == {
        (z, "soft_delete+purge", "purged", "archive_retention") for _, z in pairs
    }
    # held back like any retention purge (the default policy): SuperOffice soft-deleted only
    assert world.states(pairs) == [("deleted", "purged")] * 2
    report = world.bridge("report", "--format", "json", "-o", "-")
    assert report.returncode == 0, report.stderr
    rows = [json.loads(line) for line in report.stdout.splitlines() if line.strip()]
    zendesk_rows = [r for r in rows if r["side"] == "zendesk" and r["cause"] != "bridge"]
    # its copy (the soft delete, the purge being held) reached SuperOffice
    assert {(r["ticket_id"], r["cause"], r["outcome"]) for r in zendesk_rows} == {
        (z, "archive_retention", "confirmed") for _, z in pairs
    }


def test_an_archive_retention_purge_is_copied_when_retention_purges_are(world: World) -> None:
    world.rewrite_config(propagate_retention_purges="true")
    pairs = _closed_and_archived(world, 1)
    _activate_schedule(world)
    world.clock.advance(3 * DAY + 3600)
    assert world.sync().outcome == "converged"
    [(so_id, _zd_id)] = pairs
    # SuperOffice purges by its retention job: soft-deleted, the purge waiting for it
    assert world.so_state(so_id) == "deleted"
    assert [(op.transition, op.status) for op in world.ops()] == [
        ("soft_delete", "confirmed"),
        ("purge", "pending_retention"),
    ]


def test_the_audit_log_names_an_admin_who_deletes_an_archived_ticket(world: World) -> None:
    world.zd.configure({"audit_logs": True})
    pairs = _closed_and_archived(world, 2)
    [(so_id, zd_id), _] = pairs
    world.zd.agent_act("delete", [zd_id], agent=(7, "Ann"))  # archived: gone for good
    world.clock.advance(DAY + 3600)
    world.reset_counters()
    assert world.sync().outcome == "converged"
    [observed] = [e for e in world.events("observed") if e.side == "zendesk"]
    assert (observed.ticket_id, observed.to_state, observed.cause, observed.actor_id) == (
        zd_id,
        "purged",
        "user",
        7,
    )
    # a person's purge is copied (purges on by default)
    assert world.so_state(so_id) == "deleted"
    assert ("purge", "pending_retention") in [(op.transition, op.status) for op in world.ops()]
    assert world.routes("zendesk").get("GET audit_logs") == 1  # one query for the batch


def test_a_soft_delete_is_never_copied_onto_an_archived_ticket(world: World) -> None:
    """Zendesk deletes an archived ticket for good: a SuperOffice soft delete copied there
    would be a purge. It is refused for a person, and the ticket stays."""
    [(so_open, zd_open)] = world.link(1)  # stays open: never archived
    [(so_id, zd_id)] = _closed_and_archived(world, 1)
    world.so.soft_delete([so_id, so_open])
    result = world.sync()
    assert result.counts["soft_deletes_refused"] == 1
    world.clock.advance(60)  # the other soft delete's job
    world.sync()
    assert world.zd_state(zd_id) == "active"
    assert world.zd_state(zd_open) == "deleted"
    assert world.zd.purges.records == []  # nothing was deleted for good
    [refused] = [op for op in world.ops() if op.ticket_id == zd_id]
    assert refused.status == "failed"
    assert "archived" in (refused.error or "")
