"""Who deleted or restored a SuperOffice ticket, through a sync: in the ledger and the report,
and still there after the purge that erases SuperOffice's own record of it."""

from __future__ import annotations

from datetime import UTC, datetime

from bridge.report.model import Period, ReportRecord, records
from tests.conftest import both_backends
from tests.e2e.conftest import DAY, World, states

pytestmark = both_backends


def _report(world: World) -> list[ReportRecord]:
    period = Period(datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
    with world.ledger.audit_view() as view:
        return list(records(view.transitions(period.since, period.until)))


def _superoffice_changes(world: World) -> list[tuple[str | None, str | None, int | None]]:
    return [
        (e.transition, e.cause, e.actor_id)
        for e in world.events("observed")
        if e.side == "superoffice"
    ]


def test_who_deleted_and_restored_in_superoffice_is_recorded_and_survives_the_purge(
    world: World,
) -> None:
    pairs = world.link(3)
    deleted, zd_deleted = pairs[0]
    restored, _ = pairs[1]
    world.sync()
    # a change in the very second the last read ended in is not looked up (see
    # docs/design.md, "Who deleted it"): people act later than that
    world.clock.advance(60)
    world.so.soft_delete([deleted, restored], associate=42)
    world.sync()
    world.clock.advance(3600)
    world.so.restore([restored], associate=43)
    world.sync()
    assert states(world, pairs) == [
        ("deleted", "deleted"),
        ("active", "active"),
        ("active", "active"),
    ]
    assert _superoffice_changes(world) == [
        ("soft_delete", "user", 42),
        ("soft_delete", "user", 42),
        ("restore", "user", 43),
    ]
    report = [r for r in _report(world) if r.side == "superoffice"]
    assert [(r.ticket_id, r.transition, r.actor_id) for r in report] == [
        (deleted, "soft_delete", 42),
        (restored, "soft_delete", 42),
        (restored, "restore", 43),
    ]

    # retention purges the ticket, and SuperOffice's log of who deleted it with it
    world.clock.advance(15 * DAY)
    world.sync()
    assert world.so_state(deleted) == "purged"
    assert world.zd_state(zd_deleted) == "deleted"  # a grace-period purge is not copied
    changes = _superoffice_changes(world)
    assert changes[-1] == ("purge", "retention", None)
    assert changes[0] == ("soft_delete", "user", 42)
    report = [r for r in _report(world) if r.ticket_id == deleted and r.side == "superoffice"]
    assert [(r.transition, r.actor_id) for r in report] == [
        ("soft_delete", 42),
        ("purge", None),
    ]


def test_an_unreadable_ticket_log_records_no_actor_and_the_sync_goes_on(world: World) -> None:
    pairs = world.link(2)
    world.sync()
    world.clock.advance(60)
    world.so.configure({"ticket_log_readable": False})
    world.so.soft_delete([pairs[0][0]], associate=42)
    result = world.sync()
    assert result.outcome == "converged"
    assert states(world, pairs) == [("deleted", "deleted"), ("active", "active")]
    assert _superoffice_changes(world) == [("soft_delete", "user", None)]


def test_rows_read_again_unchanged_cost_no_log_query(world: World) -> None:
    """The run after an active one reads the rows of its unsettled minute again
    (`change_overlap`: at most a page of them, with every run); only the rows whose state
    is new to the ledger have their maker looked up, so a re-read of unchanged rows costs
    no ticket-log query, and a change made in that minute after it was read still gets
    its maker."""
    pairs = world.link(1000)
    world.sync()
    world.clock.advance(120)
    world.so.soft_delete([so for so, _ in pairs[:500]], associate=42)
    world.clock.advance(2)
    world.sync()  # reads the deletions, looks their makers up
    assert _superoffice_changes(world)[-1] == ("soft_delete", "user", 42)
    world.reset_counters()
    world.clock.advance(5)  # still inside the minute read last time: it is read again
    world.sync()
    # the 500 rows of the open minute again: a page of each provider, and the page
    # after the full one; no ticket-log query (`Archive/dynamic`, one per 100 rows)
    assert world.routes("superoffice") == {"GET Archive/{provider}": 4}
    world.reset_counters()
    world.so.soft_delete([pairs[600][0]], associate=43)
    world.clock.advance(2)
    world.sync()
    assert world.routes("superoffice")["GET Archive/{provider}"] == 4 + 1
    assert _superoffice_changes(world)[-1] == ("soft_delete", "user", 43)


def test_each_row_names_the_read_it_rests_on(world: World) -> None:
    """The evidence of a change is the read that showed it: the change stream for a delete,
    the sweep for a purge that left no trace in it; a copy is confirmed by a read too."""
    pairs = world.link(3)
    world.sync()
    world.clock.advance(60)
    world.so.soft_delete([pairs[0][0]], associate=42)
    world.sync()
    rows = _report(world)
    observed = [(r.side, r.transition, r.read) for r in rows if r.record_type == "observed_change"]
    assert observed == [("superoffice", "soft_delete", "changes")]
    written = [r.read for r in rows if r.record_type == "bridge_write"]
    assert written
    assert set(written) <= {"changes", "lookup"}
    world.clock.advance(15 * DAY)  # SuperOffice's retention purges it, silently
    world.sync()
    purges = [r for r in _report(world) if r.transition == "purge" and r.side == "superoffice"]
    assert [r.read for r in purges] == ["sweep"]
