"""`migration_run` in-process on a frozen clock: both directions, retention, the decision."""

from __future__ import annotations

from collections import Counter

import pytest

from bridge.core.model import Outcome, State, Transition
from bridge.run.migrate import MigrationOptions, estimate, migration_decision, migration_run
from bridge.vendors.registry import SUPEROFFICE, ZENDESK
from tests.migrate.conftest import DAY, Env

A, D, P = State.ACTIVE, State.SOFT_DELETED, State.PURGED


@pytest.mark.parametrize(
    ("source", "target", "options", "outcome", "steps", "base"),
    [
        (D, A, {}, Outcome.APPLY, (Transition.SOFT_DELETE,), D),
        (P, A, {}, Outcome.APPLY, (Transition.SOFT_DELETE,), D),
        (P, D, {}, Outcome.SKIP, (), D),
        (
            P,
            A,
            {"include_purges": True},
            Outcome.APPLY,
            (Transition.SOFT_DELETE, Transition.PURGE),
            P,
        ),
        (P, D, {"include_purges": True}, Outcome.APPLY, (Transition.PURGE,), P),
        (A, D, {}, Outcome.SKIP, (), None),
        (A, D, {"restore": True}, Outcome.APPLY, (Transition.RESTORE,), A),
        (A, P, {"restore": True}, Outcome.CONFLICT, (), None),
        (D, D, {}, Outcome.AGREE, (), D),
        (None, A, {}, Outcome.UNKNOWN, (), None),
    ],
)
def test_migration_decision(
    source: State | None,
    target: State,
    options: dict[str, bool],
    outcome: Outcome,
    steps: tuple[Transition, ...],
    base: State | None,
) -> None:
    decision = migration_decision(source, target, MigrationOptions(SUPEROFFICE, ZENDESK, **options))
    assert (decision.outcome, decision.transitions, decision.new_base) == (outcome, steps, base)
    if outcome in (Outcome.APPLY, Outcome.SKIP):
        assert decision.target == ZENDESK


def test_superoffice_to_zendesk_in_bulk_then_sync_has_nothing_to_do(frozen: Env) -> None:
    pairs = frozen.link(250)
    frozen.so.soft_delete([s for s, _ in pairs[:210]])
    frozen.so.purge([s for s, _ in pairs[210:220]])
    result = frozen.migrate(SUPEROFFICE, include_purges=True)
    assert result.outcome == "converged"
    assert result.counts["zendesk.soft_delete.sent"] == 220
    assert result.counts["zendesk.purge.sent"] == 10
    routes = frozen.routes("zendesk")
    assert routes["DELETE tickets/destroy_many"] == 3  # ⌈220/100⌉
    assert routes["DELETE deleted_tickets/destroy_many"] == 1
    assert Counter(frozen.states(pairs)) == {
        ("deleted", "deleted"): 210,
        ("purged", "purged"): 10,
        ("active", "active"): 30,
    }
    assert frozen.ledger.status()["base"] == {"soft_deleted": 210, "purged": 10, "active": 30}
    frozen.reset_counters()
    after = frozen.sync()
    assert after.outcome == "converged"
    assert after.plan == []
    assert frozen.writes() == {}


def test_zendesk_to_superoffice_purges_wait_for_retention_then_are_verified(frozen: Env) -> None:
    pairs = frozen.link(6)
    zd = [z for _, z in pairs]
    frozen.zd.agent_act("delete", zd[:3], agent=(7, "Ann"))
    frozen.zd.agent_act("purge", zd[3:5], agent=(7, "Ann"))
    result = frozen.migrate(ZENDESK, include_purges=True)
    assert result.counts["pending_retention"] == 2
    assert result.outcome == "converged"
    assert frozen.states(pairs) == [("deleted", "deleted")] * 3 + [("deleted", "purged")] * 2 + [
        ("active", "active")
    ]
    routes = frozen.routes("superoffice")
    assert routes["POST Agents/Ticket/SetDeletedStatusByIds"] == 1  # 5 ids in one call
    purges = [op for op in frozen.ops() if op.transition == "purge"]
    assert [op.status for op in purges] == ["pending_retention"] * 2
    # the tenant's retention job removes them; the next sync verifies the 404
    frozen.sandbox.clock.advance(15 * DAY)
    frozen.sync()
    assert [frozen.so_state(s) for s, _ in pairs[3:5]] == ["purged"] * 2
    purges = [op for op in frozen.ops() if op.transition == "purge"]
    assert [op.status for op in purges] == ["confirmed"] * 2
    base = frozen.ledger.status()["base"]
    assert base["purged"] == 2
    assert base["active"] == 1


def test_a_dry_run_run_records_no_operation_and_no_base(frozen: Env) -> None:
    pairs = frozen.link(4)
    frozen.so.soft_delete([s for s, _ in pairs[:2]])
    frozen.reset_counters()
    run = migration_run(
        frozen.ledger,
        frozen.adapters(),
        MigrationOptions(SUPEROFFICE, ZENDESK),
        dry_run=True,
        holder="test",
        now=frozen.sandbox.clock.now,
        sleep=frozen.sandbox.clock.sleep,
    ).execute()
    assert run.outcome == "dry_run"
    assert [(line.target, line.transitions) for line in run.plan] == [
        ("zendesk", ("soft_delete",))
    ] * 2
    assert frozen.writes() == {}
    assert frozen.ops() == []
    assert frozen.ledger.status()["base"] == {"unknown": 4}


def test_the_estimate_of_a_large_migration_is_bound_by_the_export() -> None:
    """100,000 soft deletes and 1,000 purges into Zendesk: the export (10 pages of 1,000 a
    minute), read once for the account and once for the changes, sets the time."""
    plan = Counter({("zendesk", "soft_delete"): 101_000, ("zendesk", "purge"): 1_000})
    guess = estimate(
        plan,
        Counter(),
        batch_limit=100,
        job_limit=30,
        calls_per_minute=700,
        account_read=101_000,
        page_size=1000,
        pages_per_minute=10,
    )
    assert guess.calls == 1020 + 34 + 203  # writes, poll rounds, export pages
    assert guess.seconds == 203 / 10 * 60
    without_the_stream = estimate(
        plan, Counter(), batch_limit=100, job_limit=30, calls_per_minute=700
    )
    assert without_the_stream.seconds == 34 * 12.0  # then the job rounds bound it
