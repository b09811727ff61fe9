"""A sync between both simulators over real HTTP, in-process on a frozen simulated clock;
every test on both ledger backends (SQLite, PostgreSQL)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from sqlalchemy import event

from bridge.ledger import LinkRow
from tests.conftest import both_backends
from tests.e2e.conftest import DAY, World, states

pytestmark = both_backends


def test_first_sync_agrees_and_an_idle_sync_costs_only_change_reads(world: World) -> None:
    pairs = world.link(5)
    first = world.sync()
    assert first.outcome == "converged"
    assert world.ledger.status()["base"] == {"active": 5}
    world.zd.counters.reset()
    world.so.counters.reset()
    idle = world.sync()
    assert idle.outcome == "converged"
    zd, so = world.routes("zendesk"), world.routes("superoffice")
    assert sum(zd.values()) + sum(so.values()) <= 4, (zd, so)
    assert not any("destroy" in r or "restore" in r for r in zd)
    assert states(world, pairs) == [("active", "active")] * 5


def test_an_idle_sync_writes_no_cursor_the_ledger_already_holds(world: World) -> None:
    # Zendesk's export of nothing new hands back the cursor it was given, SuperOffice's
    # windows move on with the clock: only the cursor that moved is written
    world.link(3)
    world.sync()
    world.clock.advance(300)
    world.sync()
    held = {side: world.ledger.get_cursor(side) for side in ("superoffice", "zendesk")}
    written: list[dict[str, object]] = []

    def _cursor_writes(_c: object, _cur: object, sql: str, params: Any, *_rest: object) -> None:
        if "INSERT INTO cursor" in sql:
            written.append(params)

    event.listen(world.ledger.engine, "before_cursor_execute", _cursor_writes)
    try:
        world.clock.advance(300)
        assert world.sync().outcome == "converged"
    finally:
        event.remove(world.ledger.engine, "before_cursor_execute", _cursor_writes)
    now = {side: world.ledger.get_cursor(side) for side in held}
    assert now["zendesk"] == held["zendesk"]
    assert now["superoffice"] != held["superoffice"]
    assert len(written) == 1, written
    assert now["superoffice"] in str(written[0])


def test_an_idle_sync_moves_its_cursor_with_its_end(world: World) -> None:
    # a page with nothing to record moves its cursor in the run's last transaction, not
    # in one of its own: an idle run writes its start and its end
    world.link(3)
    world.sync()
    world.clock.advance(300)
    world.sync()  # what the first sync's window left to read again
    world.clock.advance(300)
    held = world.ledger.get_cursor("superoffice")
    writes = world.ledger.writes
    assert world.sync().outcome == "converged"
    assert world.ledger.writes - writes == 2
    assert world.ledger.get_cursor("superoffice") != held


def test_a_sync_that_fails_leaves_the_cursors_it_held_back(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # what failed may have been a page before the held one: the next run reads them again
    from bridge.run.decide import Decider

    pairs = world.link(3)
    world.sync()
    world.clock.advance(300)
    world.sync()
    world.clock.advance(300)
    held = world.ledger.get_cursor("superoffice")

    def broken(self: Any, **_kw: Any) -> None:
        raise RuntimeError("the decision step broke")

    with monkeypatch.context() as patch:
        patch.setattr(Decider, "decide_pending", broken)
        with pytest.raises(RuntimeError):
            world.sync()
    assert world.ledger.recent_runs(1)[0].outcome == "failed"
    assert world.ledger.get_cursor("superoffice") == held
    world.so.soft_delete([pairs[0][0]])
    assert world.sync().outcome == "converged"
    assert world.ledger.get_cursor("superoffice") != held
    assert states(world, pairs)[0] == ("deleted", "deleted")


def test_an_idle_sync_reads_what_it_needs_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # nothing sent, nothing pending, nothing written after the first look: the last
    # pass would read the same again; after a change it still follows the writes
    from bridge.run.confirm import Confirmer
    from bridge.run.decide import Decider

    calls: Counter[str] = Counter()
    for cls, name in ((Confirmer, "confirm_sent"), (Decider, "decide_pending")):
        step = getattr(cls, name)

        def counted(self: Any, _step: Any = step, _name: str = name, **kw: Any) -> None:
            calls[_name] += 1
            _step(self, **kw)

        monkeypatch.setattr(cls, name, counted)
    pairs = world.link(3)
    world.sync()
    reads: Counter[str] = Counter()
    names = ("run_facts", "get_cursor", "unobserved", "operations")
    for name in (*names, "decision_candidates", "agree_where_equal", "attention", "outstanding"):
        method = getattr(world.ledger, name)

        def read(*args: Any, _method: Any = method, _name: str = name, **kw: Any) -> Any:
            reads[_name] += 1
            return _method(*args, **kw)

        monkeypatch.setattr(world.ledger, name, read)
    calls.clear()
    assert world.sync().outcome == "converged"
    assert calls == {"confirm_sent": 1, "decide_pending": 1}
    # one read of the run's facts (both cursors, the sweep floors, no link unread, no
    # `bridge serve` run, no operation sent: neither the sent operations are read nor
    # does the confirm read anything); no candidate to decide, so neither the
    # candidates' pages nor the agreement are read; what is outstanding, stuck
    # operations counted, one read at the end
    assert reads == {"run_facts": 1, "outstanding": 1}, reads
    world.so.soft_delete([pairs[0][0]])
    calls.clear()
    assert world.sync().outcome == "converged"
    assert calls["confirm_sent"] >= 2, calls
    assert calls["decide_pending"] >= 2, calls
    assert states(world, pairs)[0] == ("deleted", "deleted")


def test_delete_in_superoffice_soft_deletes_in_zendesk(world: World) -> None:
    pairs = world.link(3)
    world.sync()
    world.so.soft_delete([pairs[0][0]])
    result = world.sync()
    assert result.outcome == "converged"
    assert states(world, pairs) == [
        ("deleted", "deleted"),
        ("active", "active"),
        ("active", "active"),
    ]
    assert world.routes("zendesk").get("DELETE tickets/destroy_many") == 1
    assert [(op.target, op.transition, op.status) for op in world.ops()] == [
        ("zendesk", "soft_delete", "confirmed")
    ]
    assert world.ledger.status()["base"] == {"active": 2, "soft_deleted": 1}
    again = world.sync()
    assert again.outcome == "converged"
    assert world.routes("zendesk").get("DELETE tickets/destroy_many") == 1


def test_restore_in_zendesk_restores_superoffice_with_its_previous_status(world: World) -> None:
    pairs = world.link(2)
    so_id, zd_id = pairs[0]
    world.so.associate_act("update", [so_id], fields={"status": 304})
    world.sync()
    world.zd.agent_act("delete", [zd_id], agent=(7, "Ann"))
    world.sync()
    assert world.so_state(so_id) == "deleted"
    world.clock.advance(3600)
    world.zd.agent_act("restore", [zd_id], agent=(7, "Ann"))
    result = world.sync()
    assert result.outcome == "converged"
    assert states(world, pairs) == [("active", "active")] * 2
    info = world.so.ticket_state(so_id)
    assert info is not None
    assert info["status_id"] == 304


def test_agent_purge_in_zendesk_is_pending_retention_then_verified(world: World) -> None:
    pairs = world.link(2)
    so_id, zd_id = pairs[0]
    world.sync()
    world.zd.agent_act("delete", [zd_id], agent=(7, "Ann"))
    world.sync()
    world.clock.advance(3600)
    world.zd.agent_act("purge", [zd_id], agent=(7, "Ann"))
    result = world.sync()
    assert result.counts["pending_retention"] == 1
    assert world.so_state(so_id) == "deleted"
    assert [(op.target, op.transition, op.status) for op in world.ops()][-1] == (
        "superoffice",
        "purge",
        "pending_retention",
    )
    pending = world.ops()[-1]
    assert pending.pending_until is not None
    world.clock.advance(15 * DAY)
    world.sync()
    assert world.so_state(so_id) == "purged"
    assert world.ops()[-1].status == "confirmed"
    assert world.ledger.status()["base"] == {"active": 1, "purged": 1}


def test_superoffice_grace_period_purge_is_not_copied_by_default(world: World) -> None:
    pairs = world.link(2)
    so_id, zd_id = pairs[0]
    world.sync()
    world.so.soft_delete([so_id])
    world.sync()
    assert world.zd_state(zd_id) == "deleted"
    world.clock.advance(15 * DAY)
    result = world.sync()
    assert result.outcome == "converged"
    assert world.so_state(so_id) == "purged"
    assert world.zd_state(zd_id) == "deleted"
    observed = [e for e in world.events("observed") if e.side == "superoffice"][-1]
    assert (observed.transition, observed.cause) == ("purge", "retention")
    assert world.routes("zendesk").get("DELETE deleted_tickets/destroy_many") is None


def test_superoffice_grace_period_purge_is_copied_when_the_policy_says_so(world: World) -> None:
    world.rewrite_config(propagate_retention_purges="true")
    pairs = world.link(2)
    so_id, zd_id = pairs[0]
    world.sync()
    world.so.soft_delete([so_id])
    world.sync()
    world.clock.advance(15 * DAY)
    result = world.sync()
    assert result.outcome == "converged"
    assert world.zd_state(zd_id) == "purged"
    assert world.routes("zendesk").get("DELETE deleted_tickets/destroy_many") == 1
    assert world.ledger.status()["base"] == {"active": 1, "purged": 1}


def test_both_sides_changed_differently_is_a_conflict_and_nothing_is_written(
    world: World,
) -> None:
    pairs = world.link(2)
    so_id, zd_id = pairs[0]
    world.sync()
    world.so.soft_delete([so_id])
    world.zd.agent_act("delete", [zd_id], agent=(7, "Ann"))
    world.sync()
    world.so.restore([so_id])
    world.zd.agent_act("purge", [zd_id], agent=(7, "Ann"))
    world.zd.counters.reset()
    world.so.counters.reset()
    result = world.sync()
    assert result.outcome == "attention"
    assert [p.attention for p in world.ledger.attention()] == ["conflict"]
    assert states(world, pairs) == [("active", "purged"), ("active", "active")]
    writes = [r for r in world.routes("superoffice") if "Agents/Ticket" in r or "PATCH" in r]
    assert writes == []
    assert not [r for r in world.routes("zendesk") if r.startswith(("DELETE", "PUT"))]


def test_a_change_in_the_same_second_as_the_last_read_is_not_lost(world: World) -> None:
    """The Zendesk export orders by (second, id): a lower id changed in the second of
    the last row read sorts behind the cursor. The frozen clock makes every change fall
    in that second."""
    pairs = world.link(3)
    world.sync()
    world.zd.agent_act("delete", [pairs[0][1]], agent=(7, "Ann"))
    world.sync()
    assert world.so_state(pairs[0][0]) == "deleted"


def test_purges_over_the_cap_are_held_and_reported_until_allowed(world: World) -> None:
    world.rewrite_config(max_purges_per_run="2", propagate_retention_purges="true")
    pairs = world.link(4)
    zd_ids = [z for _, z in pairs]
    world.sync()
    world.so.soft_delete([s for s, _ in pairs[:3]])
    world.sync()
    world.clock.advance(15 * DAY)  # SuperOffice's retention job purges the first three
    held = world.sync()
    assert held.outcome == "attention"
    assert held.counts["purges_held"] == 3
    assert [world.zd_state(z) for z in zd_ids] == ["deleted"] * 3 + ["active"]
    assert world.routes("zendesk").get("DELETE deleted_tickets/destroy_many") is None
    assert sorted(p.attention or "" for p in world.ledger.attention()) == ["held_purge"] * 3
    assert len(world.events("held")) == 3
    again = world.sync()  # still over the cap: still held, not re-reported
    assert again.outcome == "attention"
    assert len(world.events("held")) == 3
    released = world.sync(allow_mass_purge=True)
    assert released.outcome == "converged"
    assert [world.zd_state(z) for z in zd_ids] == ["purged"] * 3 + ["active"]
    assert world.routes("zendesk").get("DELETE deleted_tickets/destroy_many") == 1
    assert world.ledger.attention() == []


def test_a_429_storm_and_a_5xx_burst_on_reads_converge_on_the_next_run(world: World) -> None:
    pairs = world.link(6)
    world.sync()
    world.so.soft_delete([s for s, _ in pairs[:3]])
    world.zd.agent_act("delete", [z for _, z in pairs[3:]], agent=(7, "Ann"))
    # every call refused for longer than the client's retry budget
    world.zd.add_fault("status", status=429, retry_after=60, count=40)
    world.so.add_fault("status", status=502, count=40)
    first = world.sync()
    assert first.outcome == "unavailable"  # changes may be unread: nothing decided
    assert world.ops() == []
    assert first.counts["zendesk.read_errors"] >= 1
    assert first.counts["superoffice.read_errors"] >= 1
    world.zd.clear_faults()
    world.so.clear_faults()
    world.clock.advance(600)
    result = world.sync()
    assert result.outcome == "converged"
    assert states(world, pairs) == [("deleted", "deleted")] * 6
    assert all(op.status == "confirmed" for op in world.ops())
    assert world.ledger.status()["base"] == {"soft_deleted": 6}


def test_a_429_storm_and_a_5xx_burst_on_writes_converge_on_the_next_run(world: World) -> None:
    pairs = world.link(6)
    world.sync()
    world.so.soft_delete([s for s, _ in pairs[:3]])
    world.zd.agent_act("delete", [z for _, z in pairs[3:]], agent=(7, "Ann"))
    world.zd.add_fault("status", status=429, retry_after=60, route="DELETE tickets/destroy_many")
    world.so.add_fault(
        "status", status=503, route="POST Agents/Ticket/SetDeletedStatusByIds", count=3
    )
    world.so.add_fault(
        "status", status=500, route="POST Agents/Ticket/SetDeletedStatusByIds", count=20
    )
    first = world.sync()
    assert first.outcome == "failures"
    assert states(world, pairs) == [("deleted", "active")] * 3 + [("active", "deleted")] * 3
    assert first.counts["retry"] == 6
    world.zd.clear_faults()
    world.so.clear_faults()
    world.clock.advance(600)
    result = world.sync()
    assert result.outcome == "converged"
    assert states(world, pairs) == [("deleted", "deleted")] * 6
    assert [op.status for op in world.ops()] == ["confirmed"] * 6
    assert world.ledger.status()["base"] == {"soft_deleted": 6}


def test_dry_run_writes_nothing_to_either_vendor_nor_moves_bases(world: World) -> None:
    pairs = world.link(2)
    world.sync()
    world.so.soft_delete([pairs[0][0]])
    cursors = (world.ledger.get_cursor("superoffice"), world.ledger.get_cursor("zendesk"))
    world.zd.counters.reset()
    world.so.counters.reset()
    result = world.sync(dry_run=True)
    assert result.outcome == "dry_run"
    assert [(p.target, p.transitions) for p in result.plan] == [("zendesk", ("soft_delete",))]
    assert states(world, pairs) == [("deleted", "active"), ("active", "active")]
    writes = [r for r in world.routes("zendesk") if not r.startswith("GET")]
    writes += [r for r in world.routes("superoffice") if not r.startswith(("GET", "POST Archive"))]
    assert writes == []
    assert world.ops() == []
    assert world.ledger.status()["base"] == {"active": 2}
    after = (world.ledger.get_cursor("superoffice"), world.ledger.get_cursor("zendesk"))
    assert after == cursors


def test_direction_superoffice_to_zendesk_never_writes_superoffice(world: World) -> None:
    world.rewrite_config(direction='"superoffice-to-zendesk"')
    pairs = world.link(2)
    world.sync()
    world.zd.agent_act("delete", [pairs[0][1]], agent=(7, "Ann"))
    world.so.soft_delete([pairs[1][0]])
    world.sync()
    assert states(world, pairs) == [("active", "deleted"), ("deleted", "deleted")]
    assert "POST Agents/Ticket/SetDeletedStatusByIds" not in world.routes("superoffice")


def test_divergence_on_first_sight_is_reported_not_acted_on(world: World) -> None:
    so_ids = world.so.seed_tickets(1, title="T")
    zd_ids = world.zd.seed_tickets([{"subject": "T", "state": "deleted"}])
    assert world.ledger.import_links([LinkRow(1, so_ids[0], zd_ids[0])], origin="csv").ok
    result = world.sync()
    assert result.outcome == "attention"
    assert [p.attention for p in world.ledger.attention()] == ["divergence"]
    assert (world.so_state(so_ids[0]), world.zd_state(zd_ids[0])) == ("active", "deleted")


def test_zendesk_wins_settles_a_conflict(world: World) -> None:
    world.rewrite_config(conflict_policy='"zendesk-wins"')
    pairs = world.link(1)
    so_id, zd_id = pairs[0]
    world.sync()
    world.so.soft_delete([so_id])
    world.zd.agent_act("delete", [zd_id], agent=(7, "Ann"))
    world.sync()
    world.clock.advance(60)
    world.so.restore([so_id])
    world.zd.agent_act("restore", [zd_id], agent=(7, "Ann"))
    world.zd.agent_act("delete", [zd_id], agent=(7, "Ann"))
    world.clock.advance(60)
    world.zd.agent_act("purge", [zd_id], agent=(7, "Ann"))
    result = world.sync()
    assert world.so_state(so_id) == "deleted"  # soft-deleted, purge pending retention
    assert result.counts["pending_retention"] == 1


def test_copying_250_soft_deletes_to_zendesk_costs_the_bulk_minimum(world: World) -> None:
    pairs = world.link(250)
    world.sync()
    world.so.soft_delete([s for s, _ in pairs])
    world.zd.counters.reset()
    result = world.sync()
    assert result.outcome == "converged"
    zd = world.routes("zendesk")
    assert zd["DELETE tickets/destroy_many"] == 3
    # our own deletions coming back need no walk of the deleted-ticket listing (10/min)
    assert "GET deleted_tickets" not in zd
    # three ~12 s jobs, polled together with growing waits: a handful of polls, not one a second
    assert zd["GET job_statuses/show_many"] <= 6
    assert states(world, pairs) == [("deleted", "deleted")] * 250
