"""The sync run against in-memory vendors: what it writes, records and refuses."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bridge.core.contract import TransientError
from bridge.core.decide import ConflictPolicy, ConflictRule, Direction, Policy
from bridge.core.model import State, Transition
from bridge.ledger import LinkRow
from bridge.vendors.registry import SUPEROFFICE, ZENDESK
from tests.reconcile.fake_world import World, fake_world


@pytest.fixture
def world(ledger_url: str) -> Iterator[World]:
    yield from fake_world(ledger_url, World)


def test_first_run_agrees_and_second_run_costs_only_change_reads(world: World) -> None:
    world.link((1, 101), (2, 102))
    first = world.sync()
    assert first.outcome == "converged"
    assert world.ledger.status()["base"] == {"active": 2}
    world.so.calls.clear()
    world.zd.calls.clear()
    second = world.sync()
    assert second.outcome == "converged"
    assert world.so.calls == {"changes": 1}
    assert world.zd.calls == {"changes": 1}
    assert world.so.submitted == world.zd.submitted == []


def test_soft_delete_in_superoffice_reaches_zendesk_once(world: World) -> None:
    world.link((1, 101), (2, 102))
    world.sync()
    world.so.act(Transition.SOFT_DELETE, 1)
    result = world.sync()
    assert result.outcome == "converged"
    assert world.zd.state(101) is State.SOFT_DELETED
    assert world.zd.state(102) is State.ACTIVE
    assert world.zd.submitted == [(Transition.SOFT_DELETE, (101,))]
    assert [op.status for op in world.ops()] == ["confirmed"]
    assert world.ledger.status()["base"] == {"active": 1, "soft_deleted": 1}
    observed = world.events("observed")
    assert [(e.side, e.ticket_id, e.transition, e.cause) for e in observed] == [
        ("superoffice", 1, "soft_delete", "user")
    ]
    # the echo of our own write is a confirmation, not a new change
    assert [(e.side, e.ticket_id) for e in world.events("confirmed")] == [("zendesk", 101)]
    world.sync()
    assert world.zd.submitted == [(Transition.SOFT_DELETE, (101,))]


def test_a_soft_delete_the_target_would_make_permanent_is_refused(world: World) -> None:
    """Zendesk deletes an archived ticket for good: copying a soft delete there would be a
    purge nobody asked for. It is refused for a person; the other tickets go."""
    world.link((1, 101), (2, 102))
    world.sync()
    world.zd.archived.add(101)
    world.so.act(Transition.SOFT_DELETE, 1)
    world.so.act(Transition.SOFT_DELETE, 2)
    result = world.sync()
    assert world.zd.submitted == [(Transition.SOFT_DELETE, (102,))]
    assert world.zd.state(101) is State.ACTIVE
    assert result.counts["soft_deletes_refused"] == 1
    refused = [op for op in world.ops() if op.ticket_id == 101]
    assert [op.status for op in refused] == ["failed"]
    assert "archived" in (refused[0].error or "")
    # not tried again by later runs: it waits for a person
    world.sync()
    assert world.zd.submitted == [(Transition.SOFT_DELETE, (102,))]


def test_restore_in_zendesk_puts_back_the_superoffice_status(world: World) -> None:
    world.link((1, 101))
    world.so.tickets[1].status_id = 304
    world.sync()
    world.zd.act(Transition.SOFT_DELETE, 101)
    world.sync()
    assert world.so.state(1) is State.SOFT_DELETED
    world.zd.act(Transition.RESTORE, 101)
    world.sync()
    assert world.so.state(1) is State.ACTIVE
    assert world.so.tickets[1].status_id == 304


def test_purge_copied_to_superoffice_waits_for_retention_then_is_verified(world: World) -> None:
    world.link((1, 101))
    world.sync()
    world.zd.act(Transition.SOFT_DELETE, 101)
    world.sync()
    world.zd.act(Transition.PURGE, 101)
    result = world.sync()
    assert result.counts["pending_retention"] == 1
    assert world.so.state(1) is State.SOFT_DELETED
    assert [op.status for op in world.ops()][-1] == "pending_retention"
    world.clock.advance(days=15)
    world.so.retention_sweep()
    world.sync()
    assert world.so.state(1) is State.PURGED
    assert world.ops()[-1].status == "confirmed"
    assert world.ledger.status()["base"] == {"purged": 1}


def test_active_to_purged_becomes_soft_delete_then_purge(world: World) -> None:
    world.link((1, 101))
    world.sync()
    world.zd.act(Transition.SOFT_DELETE, 101)
    world.zd.act(Transition.PURGE, 101)
    world.sync()
    # SuperOffice purges by retention only: soft-deleted now, pending until the job runs
    assert [(op.transition, op.status) for op in world.ops()] == [
        ("soft_delete", "confirmed"),
        ("purge", "pending_retention"),
    ]


def test_a_purge_waits_while_its_soft_delete_is_sent_but_unconfirmed(world: World) -> None:
    """A purge is sent only once the step before it is confirmed: a soft delete whose job
    could not be followed leaves the ticket active, and a purge sent then would be
    refused as "target is active" for good."""
    world.link((1, 101))
    world.sync()
    world.so.act(Transition.SOFT_DELETE, 1)
    world.so.act(Transition.PURGE, 1)
    world.zd.fail_poll = TransientError("job_statuses unreachable")
    result = world.sync(policy=Policy(propagate_purges=True))
    assert [(t, ids) for t, ids in world.zd.submitted] == [(Transition.SOFT_DELETE, (101,))]
    assert [(op.transition, op.status) for op in world.ops()] == [
        ("soft_delete", "sent"),
        ("purge", "planned"),
    ]
    assert result.counts["purges_refused"] == 0
    assert world.zd.state(101) is State.ACTIVE


def test_retention_purge_is_not_copied_by_default(world: World) -> None:
    world.link((1, 101))
    world.sync()
    world.so.act(Transition.SOFT_DELETE, 1)
    world.sync()
    world.clock.advance(days=15)
    world.so.retention_sweep()
    world.sync()
    assert world.zd.state(101) is State.SOFT_DELETED
    observed = world.events("observed")[-1]
    assert (observed.side, observed.transition, observed.cause) == (
        "superoffice",
        "purge",
        "retention",
    )
    assert world.ledger.status()["attention"] == {}


def test_retention_purge_is_copied_when_the_policy_says_so(world: World) -> None:
    world.link((1, 101))
    world.sync()
    world.so.act(Transition.SOFT_DELETE, 1)
    world.sync()
    world.clock.advance(days=15)
    world.so.retention_sweep()
    world.sync(policy=Policy(propagate_retention_purges=True))
    assert world.zd.state(101) is State.PURGED


def test_conflict_writes_nothing_and_is_reported(world: World) -> None:
    world.link((1, 101))
    world.sync()
    world.so.act(Transition.SOFT_DELETE, 1)
    world.zd.act(Transition.SOFT_DELETE, 101)
    world.sync()
    world.so.act(Transition.RESTORE, 1)
    world.zd.act(Transition.PURGE, 101)
    result = world.sync()
    assert result.outcome == "attention"
    assert world.so.state(1) is State.ACTIVE
    assert world.zd.state(101) is State.PURGED
    assert [p.attention for p in world.ledger.attention()] == ["conflict"]
    assert world.so.submitted == []


def test_conflict_policy_resolves(world: World) -> None:
    world.link((1, 101))
    world.sync()
    world.so.act(Transition.SOFT_DELETE, 1)
    world.zd.act(Transition.SOFT_DELETE, 101)
    world.sync()
    world.so.act(Transition.RESTORE, 1)
    world.zd.act(Transition.PURGE, 101)
    world.sync(policy=Policy(conflict_policy=ConflictPolicy(ConflictRule.SIDE_WINS, ZENDESK)))
    assert [(op.target, op.transition) for op in world.ops()][-2:] == [
        ("superoffice", "soft_delete"),
        ("superoffice", "purge"),
    ]


def test_divergence_on_first_sight_is_reported_not_acted_on(world: World) -> None:
    world.so.seed(1)
    world.zd.seed(101, state=State.SOFT_DELETED)
    world.ledger.import_links([LinkRow(1, 1, 101)], origin="csv")
    result = world.sync()
    assert result.outcome == "attention"
    assert [p.attention for p in world.ledger.attention()] == ["divergence"]
    assert world.so.submitted == world.zd.submitted == []


def test_direction_limits_what_is_written(world: World) -> None:
    world.link((1, 101))
    world.sync()
    world.zd.act(Transition.SOFT_DELETE, 101)
    world.sync(policy=Policy(direction=Direction(SUPEROFFICE)))
    assert world.so.state(1) is State.ACTIVE
    assert [e.detail for e in world.events("skipped")] == ["direction: superoffice not written"]


def test_purges_over_the_cap_are_held_until_allowed(world: World) -> None:
    pairs = [(n, 100 + n) for n in range(1, 6)]
    world.link(*pairs)
    world.sync()
    world.so.act(Transition.SOFT_DELETE, *range(1, 6))
    world.sync()
    world.so.act(Transition.PURGE, *range(1, 6))
    held = world.sync(max_purges_per_run=3)
    assert held.outcome == "attention"
    assert held.counts["purges_held"] == 5
    assert all(world.zd.state(100 + n) is State.SOFT_DELETED for n in range(1, 6))
    released = world.sync(max_purges_per_run=3, allow_mass_purge=True)
    assert released.outcome == "converged"
    assert all(world.zd.state(100 + n) is State.PURGED for n in range(1, 6))
    assert world.zd.calls["submit.purge"] == 1


def test_dry_run_writes_nothing_anywhere(world: World) -> None:
    world.link((1, 101))
    world.sync()
    world.so.act(Transition.SOFT_DELETE, 1)
    cursor = world.ledger.get_cursor("superoffice")
    result = world.sync(dry_run=True)
    assert result.outcome == "dry_run"
    assert [(p.target, p.transitions) for p in result.plan] == [("zendesk", ("soft_delete",))]
    assert world.zd.submitted == []
    assert world.ledger.get_cursor("superoffice") == cursor
    assert world.ops() == []
    assert world.ledger.status()["base"] == {"active": 1}
    world.sync()
    assert world.zd.state(101) is State.SOFT_DELETED


def test_transient_failure_is_retried_by_the_next_run(world: World) -> None:
    world.link((1, 101))
    world.sync()
    world.so.act(Transition.SOFT_DELETE, 1)
    world.zd.fail_submit = TransientError("503 after retries")
    failed = world.sync()
    assert failed.outcome == "failures"
    assert world.zd.state(101) is State.ACTIVE
    ok = world.sync()
    assert ok.outcome == "converged"
    assert world.zd.state(101) is State.SOFT_DELETED


def test_a_crash_after_a_purge_was_sent_never_sends_it_again(world: World) -> None:
    world.link((1, 101))
    world.sync()
    world.so.act(Transition.SOFT_DELETE, 1)
    world.sync()
    world.so.act(Transition.PURGE, 1)
    real_submit = world.zd.submit

    def submit_then_die(*args: object, **kwargs: object) -> object:
        real_submit(*args, **kwargs)  # type: ignore[arg-type]
        world.zd.poll([f"job-{world.zd._job_count}"])  # the job runs on the vendor's side
        raise KeyboardInterrupt  # the process dies before recording anything

    world.zd.submit = submit_then_die  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        world.sync()
    assert [op.status for op in world.ops()] == ["confirmed", "sent"]
    world.zd.submit = real_submit  # type: ignore[method-assign]
    result = world.sync()
    assert result.outcome == "converged"
    assert world.zd.calls["submit.purge"] == 1
    assert world.zd.state(101) is State.PURGED
    assert [op.status for op in world.ops()] == ["confirmed", "confirmed"]


def test_an_unconfirmed_harmless_write_is_resent_by_the_next_run_after_a_reread(
    world: World,
) -> None:
    world.link((1, 101))
    world.sync()
    world.so.act(Transition.SOFT_DELETE, 1)
    real_submit = world.zd.submit

    def lost(*args: object, **kwargs: object) -> object:
        raise KeyboardInterrupt  # killed after marking sent, before the call left

    world.zd.submit = lost  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        world.sync()
    world.zd.submit = real_submit  # type: ignore[method-assign]
    lookups = world.zd.calls["lookup"]
    # a soft delete is harmless to send twice: re-read, found undone, sent again at once
    assert world.sync().outcome == "converged"
    assert world.zd.calls["lookup"] > lookups
    assert world.zd.state(101) is State.SOFT_DELETED


def test_links_never_read_are_looked_up_a_ledger_page_at_a_time(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Links the change streams went past before they were linked are looked up, a page
    of the ledger at a time, in the background while writes go out; none is decided
    "unknown" while its page waits."""
    world.link((1, 101))
    world.so.seed(2, 3, 4)
    world.zd.seed(102, 103, 104)
    assert world.sync().outcome == "converged"  # the streams pass 2-4 and 102-104, unlinked
    rows = [LinkRow(n, so, zd) for n, (so, zd) in enumerate([(2, 102), (3, 103), (4, 104)], 2)]
    assert world.ledger.import_links(rows, origin="csv").ok
    world.so.seed(2, 3, 4)  # shown again by SuperOffice's stream: only Zendesk's are unread
    world.so.act(Transition.SOFT_DELETE, 1)  # a write ready at once: it goes out meanwhile
    for vendor in (world.so, world.zd):
        # one link fills every job slot: writing starts before the lookups end
        vendor.batch_limit, vendor.job_limit = 1, 1
    pages = type(world.ledger).unobserved
    monkeypatch.setattr(world.ledger, "unobserved", lambda side: pages(world.ledger, side, batch=1))
    world.zd.calls.clear()
    result = world.sync()
    assert result.outcome == "converged"
    assert "decision.unknown" not in result.counts
    assert world.zd.calls["lookup"] == 3  # a page each
    assert world.zd.submitted == [(Transition.SOFT_DELETE, (101,))]
    assert world.ledger.status()["base"] == {"active": 3, "soft_deleted": 1}
