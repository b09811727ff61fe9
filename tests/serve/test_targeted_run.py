"""The run's hints seam (`RunOptions.hints`), in-process on the frozen sandbox: a targeted
run looks up only the tickets named, reads no change stream (not even to confirm), and
writes through the same pipeline as a sync."""

from __future__ import annotations

from bridge.core.model import Side
from bridge.factory import policy_from_config
from bridge.run.runner import TARGETED_KIND
from bridge.run.state import RunOptions
from tests.conftest import both_backends
from tests.e2e.conftest import World, world

__all__ = ["world"]  # the frozen sandbox of the end-to-end tests

pytestmark = both_backends

ZENDESK, SUPEROFFICE = Side("zendesk"), Side("superoffice")


def targeted(world: World, hints: dict[Side, frozenset[int]]) -> RunOptions:
    config = world.config()
    return RunOptions(policy=policy_from_config(config), kind=TARGETED_KIND, hints=hints)


def test_a_targeted_run_looks_up_only_the_named_tickets_and_reads_no_stream(
    world: World,
) -> None:
    pairs = world.link(4)
    world.sync()
    (so_a, zd_a), (so_b, zd_b), *_ = pairs
    world.zd.agent_act("delete", [zd_a, zd_b], agent=(7, "Ann"))
    world.reset_counters()
    cursors = {side: world.ledger.get_cursor(side) for side in (ZENDESK, SUPEROFFICE)}
    result = world.sync(targeted(world, {ZENDESK: frozenset({zd_a, 777_777})}))
    assert result.outcome == "converged"
    assert world.so_state(so_a) == "deleted"
    assert world.so_state(so_b) == "active"  # changed, but not named: the sync's
    assert result.counts["hints.unlinked"] == 1
    assert result.counts["zendesk.hinted"] == 1
    assert result.counts["zendesk.lookups"] == 1
    # no change stream was read: each would have moved its cursor (and Zendesk's is a
    # route of its own)
    assert {side: world.ledger.get_cursor(side) for side in cursors} == cursors
    assert "GET incremental/tickets/cursor" not in world.routes("zendesk")
    assert [run.kind for run in reversed(world.ledger.recent_runs())] == ["sync", "hints"]
    # the scheduled sync finds b, and counts it as announced by no webhook; a it had
    after = world.sync()
    assert world.so_state(so_b) == "deleted"
    assert after.counts["zendesk.unannounced"] == 1


def test_a_sync_of_a_pair_never_served_counts_nothing_unannounced(world: World) -> None:
    pairs = world.link(2)
    world.sync()
    world.zd.agent_act("delete", [pairs[0][1]], agent=(7, "Ann"))
    result = world.sync()
    assert result.counts["zendesk.changed"] == 1
    assert "zendesk.unannounced" not in result.counts
