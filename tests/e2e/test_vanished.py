"""Tickets that vanish without a trace in the change streams, found by the sweep (real HTTP
to both simulators, frozen clock)."""

from __future__ import annotations

from tests.e2e.conftest import DAY, World

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
