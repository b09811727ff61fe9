"""A mass change in one SuperOffice second, end to end: every change is copied, and once
that second is over the idle runs read nothing on the SuperOffice side."""

from __future__ import annotations

from tests.conftest import both_backends
from tests.e2e.conftest import World, states

ARCHIVE = "GET Archive/{provider}"

pytestmark = both_backends


def test_a_mass_delete_in_one_second_is_copied_and_then_costs_nothing(world: World) -> None:
    pairs = world.link(1200)  # seeded in one second on each side
    world.clock.advance(300)
    assert world.sync().outcome == "converged"
    deleted = [s for s, _ in pairs[600:]]
    world.so.soft_delete(deleted)  # a mass delete: 600 rows share one lastChanged
    result = world.sync()  # read in that very second: it stays open for the next read
    assert result.outcome == "converged"
    assert states(world, pairs) == [("active", "active")] * 600 + [("deleted", "deleted")] * 600
    world.clock.advance(300)
    assert world.sync().outcome == "converged"  # the open second, read once more
    for _ in range(2):
        world.clock.advance(300)
        world.reset_counters()
        result = world.sync()
        assert result.outcome == "converged"
        assert result.counts["superoffice.changes_read"] == 0
        assert world.routes("superoffice") == {ARCHIVE: 2}  # one empty page per provider
    assert [op.status for op in world.ops()] == ["confirmed"] * 600
