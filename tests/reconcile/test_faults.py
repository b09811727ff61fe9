"""The engine under faults, against in-memory vendors: unknown outcomes, failed reads, failed
jobs, vanished tickets, dead runs and stuck work (the end-to-end trials are in tests/faults)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlmodel import col, select

from bridge.cli.exitcodes import ExitCode
from bridge.cli.runs import OUTCOME_EXIT
from bridge.core.contract import (
    AccountBusyError,
    JobState,
    JobStatus,
    OutcomeUnknownError,
    TransientError,
)
from bridge.core.model import State, Transition
from bridge.ledger.tables import Run
from bridge.run.migrate import MigrationOptions
from tests.reconcile.fake_world import SO, ZD, World, fake_world


class FaultWorld(World):
    def soft_deleted_both(self) -> None:
        """Link 1 ⇄ 101, agreed, then soft-deleted on both sides (base soft_deleted)."""
        self.link((1, 101))
        assert self.sync().outcome == "converged"
        self.so.act(Transition.SOFT_DELETE, 1)
        assert self.sync().outcome == "converged"
        assert self.zd.state(101) is State.SOFT_DELETED


@pytest.fixture
def world(ledger_url: str) -> Iterator[FaultWorld]:
    yield from fake_world(ledger_url, FaultWorld)


# --- unknown outcomes -------------------------------------------------------------------


def test_a_purge_whose_answer_was_lost_after_it_was_acted_on_is_never_sent_again(
    world: FaultWorld,
) -> None:
    world.zd.job_limit = None  # synchronous: the purge is done when the answer is lost
    world.soft_deleted_both()
    world.so.act(Transition.PURGE, 1)
    world.zd.fail_after_submit = OutcomeUnknownError("DELETE destroy_many answered 503")
    result = world.sync()
    assert world.zd.state(101) is State.PURGED
    assert result.counts["unknown_outcome"] == 1
    for _ in range(3):
        world.clock.advance(hours=1)
        world.sync()
    assert world.purges_sent(world.zd) == {101: 1}
    assert [op.status for op in world.ops() if op.transition == "purge"] == ["confirmed"]
    assert len(world.events("outcome_unknown")) == 1
    assert world.ledger.status()["base"] == {"purged": 1}


def test_a_purge_whose_answer_was_lost_is_resent_only_once_a_reread_shows_it_undone(
    world: FaultWorld,
) -> None:
    world.soft_deleted_both()
    world.so.act(Transition.PURGE, 1)
    real_submit = world.zd.submit

    def lost(*args: object, **kwargs: object) -> object:
        world.zd.submitted.append((Transition.PURGE, (101,)))  # it reached the vendor...
        raise OutcomeUnknownError("connection dropped")  # ...which never acted on it

    world.zd.submit = lost  # type: ignore[method-assign]
    world.sync()
    world.zd.submit = real_submit  # type: ignore[method-assign]
    # within the vendor's outcome wait, a re-read showing "not purged" proves nothing
    world.clock.advance(minutes=5)
    result = world.sync()
    assert world.purges_sent(world.zd) == {101: 1}
    assert result.counts["awaiting_outcome"] == 1
    [purge] = [op for op in world.ops() if op.transition == "purge"]
    assert purge.status == "sent"
    assert "outcome unknown" in (purge.error or "")
    world.clock.advance(minutes=15)
    assert world.sync().outcome == "converged"
    assert world.purges_sent(world.zd) == {101: 2}
    assert world.zd.state(101) is State.PURGED


def test_an_unknown_outcome_of_a_harmless_write_is_simply_sent_again(world: FaultWorld) -> None:
    world.link((1, 101))
    world.sync()
    world.so.act(Transition.SOFT_DELETE, 1)
    world.zd.fail_submit = OutcomeUnknownError("read timeout")
    world.sync()
    assert world.sync().outcome == "converged"
    assert world.zd.state(101) is State.SOFT_DELETED


def test_a_write_not_sent_is_planned_again_at_once(world: FaultWorld) -> None:
    world.soft_deleted_both()
    world.so.act(Transition.PURGE, 1)
    world.zd.fail_submit = TransientError("429: gave up after 6 attempts")
    world.sync()
    assert world.sync().outcome == "converged"
    assert world.zd.state(101) is State.PURGED
    assert world.purges_sent(world.zd) == {101: 1}


@pytest.mark.parametrize(
    ("error", "charged"),
    [
        (AccountBusyError("zendesk:x: this minute's calls are taken", retry_after=40), 0),
        (TransientError("429: gave up after 6 attempts"), 1),
    ],
    ids=["turn-not-waited-for", "429-storm"],
)
def test_a_write_left_for_a_shared_accounts_turn_uses_no_attempt(
    world: FaultWorld, error: TransientError, charged: int
) -> None:
    """A worker's run does not wait for a shared account's turn (`AccountBusyError`): the
    write was not sent and nothing went wrong, so it is planned again with its attempts
    untouched (a 429 storm, for contrast, uses one), and the run says how long until the
    turn, for its job's retry."""
    world.link((1, 101))
    world.sync()
    world.so.act(Transition.SOFT_DELETE, 1)
    world.zd.fail_submit = error
    result = world.sync()
    assert result.account_busy is isinstance(error, AccountBusyError)
    assert result.outcome == ("waiting" if result.account_busy else "failures")
    assert result.retry_after == error.retry_after
    [op] = world.ops()
    assert op.attempts == charged
    assert world.sync().outcome == "converged"
    assert world.zd.state(101) is State.SOFT_DELETED
    assert world.zd.submitted == [(Transition.SOFT_DELETE, (101,))]


# --- jobs -------------------------------------------------------------------------------


def test_a_job_left_by_a_killed_run_is_followed_by_the_next(world: FaultWorld) -> None:
    world.soft_deleted_both()
    world.so.act(Transition.PURGE, 1)
    real_poll = world.zd.poll
    world.zd.poll = lambda ids: (_ for _ in ()).throw(KeyboardInterrupt)  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        world.sync()
    world.zd.poll = real_poll  # type: ignore[method-assign]
    [purge] = [op for op in world.ops() if op.transition == "purge"]
    assert purge.status == "sent"
    assert purge.job_id
    result = world.sync()
    assert result.counts["jobs_followed"] == 1
    assert result.outcome == "converged"
    assert world.purges_sent(world.zd) == {101: 1}
    with world.ledger.session() as session:
        runs = list(session.exec(select(Run).order_by(col(Run.id))))
    assert runs[-2].outcome == "interrupted"  # it recorded its own end before dying


def test_a_failed_job_is_resent_only_after_a_reread(world: FaultWorld) -> None:
    world.soft_deleted_both()
    world.so.act(Transition.PURGE, 1)
    real_poll = world.zd.poll

    def failing_once(ids: list[str]) -> dict[str, JobState]:
        world.zd.poll = real_poll  # type: ignore[method-assign]
        world.zd._jobs.clear()  # the job did nothing
        return {i: JobState(i, JobStatus.FAILED, failed_ids={101: "failed"}) for i in ids}

    world.zd.poll = failing_once  # type: ignore[method-assign]
    calls_before = world.zd.calls["lookup"]
    assert world.sync().outcome == "converged"
    assert world.zd.calls["lookup"] > calls_before  # re-read before sending again
    assert world.purges_sent(world.zd) == {101: 2}
    assert world.zd.state(101) is State.PURGED
    retries = [e.detail or "" for e in world.events("retry")]
    assert any("re-read shows it not applied" in d for d in retries)


# --- failed reads -----------------------------------------------------------------------


def test_a_failed_read_decides_and_writes_nothing_and_keeps_the_change(world: FaultWorld) -> None:
    world.link((1, 101))
    world.sync()
    world.so.act(Transition.SOFT_DELETE, 1)
    world.zd.act(Transition.SOFT_DELETE, 101)
    world.zd.act(Transition.RESTORE, 101)  # a user's change not yet read
    world.zd.fail_changes = TransientError("503 after retries")
    result = world.sync()
    assert result.outcome == "unavailable"
    assert world.zd.submitted == []
    assert world.zd.state(101) is State.ACTIVE
    assert world.ledger.operations(["planned", "sent"]) == []
    # the next run reads both sides fresh: both changed since the base, differently? no:
    # zendesk is back where the base was, so superoffice's delete is copied
    assert world.sync().outcome == "converged"
    assert world.zd.state(101) is State.SOFT_DELETED


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (
            AccountBusyError("zendesk:x: this minute's export calls are taken", retry_after=40),
            "waiting",
        ),
        (TransientError("503 after retries"), "unavailable"),
    ],
    ids=["turn-not-waited-for", "503"],
)
def test_a_read_left_for_a_shared_accounts_turn_ends_waiting(
    world: FaultWorld, error: TransientError, outcome: str
) -> None:
    """A change stream stopped for a shared account's turn (a worker's run) is no vendor
    fault: the run ends `waiting`, which a monitor tells from a side it could not read, and
    writes nothing all the same; a 503 there is `unavailable`."""
    world.link((1, 101))
    world.sync()
    world.so.act(Transition.SOFT_DELETE, 1)
    world.zd.fail_changes = error
    result = world.sync()
    assert result.outcome == outcome
    assert result.retry_after == error.retry_after
    assert world.zd.submitted == []
    assert world.ledger.operations(["planned", "sent"]) == []
    assert OUTCOME_EXIT[outcome] is (ExitCode.RETRY if outcome == "waiting" else ExitCode.VENDOR)
    world.zd.fail_changes = None
    assert world.sync().outcome == "converged"
    assert world.zd.state(101) is State.SOFT_DELETED


def test_a_first_sync_cut_short_by_a_side_agrees_the_pairs_it_saw_alike(
    world: FaultWorld,
) -> None:
    """A first sync whose Zendesk change stream gave up (a 429 storm, or a worker's run
    leaving a shared account's turn) has read both sides of its links (Zendesk's by id):
    it writes nothing, but the pairs seen alike get their base, so that the first change
    after it is copied, not flagged as a divergence for a person."""
    world.link((1, 101), (2, 102))
    world.zd.act(Transition.SOFT_DELETE, 102)  # differs: left for a run that reads all
    world.zd.fail_changes = TransientError("429: gave up after 6 attempts")
    first = world.sync()
    assert first.outcome == "unavailable"
    assert world.zd.submitted == world.so.submitted == []
    assert world.ledger.status()["base"] == {"active": 1, "unknown": 1}
    world.so.act(Transition.SOFT_DELETE, 1)
    assert world.sync().outcome == "attention"  # link 2: no base, the sides differ
    assert world.zd.state(101) is State.SOFT_DELETED
    assert [e.link_id for e in world.events("divergence")] == [2]


def test_unavailable_exits_with_the_vendor_code() -> None:
    assert OUTCOME_EXIT["unavailable"] is ExitCode.VENDOR


# --- attribution ------------------------------------------------------------------------


def test_a_planned_write_someone_else_made_is_theirs_not_bridges(world: FaultWorld) -> None:
    world.link((1, 101))
    world.sync()
    world.so.act(Transition.SOFT_DELETE, 1)
    world.zd.fail_submit = TransientError("429")
    world.sync()  # planned again, not sent
    world.zd.act(Transition.SOFT_DELETE, 101, actor=42)  # an agent does it meanwhile
    assert world.sync().outcome == "converged"
    [op] = world.ops()
    assert op.status == "superseded"
    [event] = [e for e in world.events("observed") if e.side == "zendesk"]
    assert (event.cause, event.actor_id) == ("user", 42)
    assert world.events("confirmed") == []


# --- vanished tickets -------------------------------------------------------------------


def test_a_ticket_that_vanishes_is_noticed_by_the_sweep_and_decided(world: FaultWorld) -> None:
    world.soft_deleted_both()
    world.so.vanish(1)  # hard-deleted by an admin: no change stream shows it
    world.zd.act(Transition.RESTORE, 101, actor=42)
    first = world.sync()
    assert first.counts["superoffice.swept"] == 0  # checked recently: not due yet
    world.clock.advance(hours=25)
    result = world.sync()
    assert result.counts["superoffice.swept"] == 1
    assert result.outcome == "attention"
    [pair] = world.ledger.attention()
    assert (pair.attention, pair.first_state, pair.second_state) == ("conflict", "purged", "active")
    assert world.zd.submitted[-1][0] is not Transition.PURGE


def test_the_sweep_is_bounded_per_run_and_reaches_every_link(world: FaultWorld) -> None:
    world.link(*((n, 100 + n) for n in range(1, 8)))
    world.sync()
    world.clock.advance(hours=25)
    swept = [world.sync(sweep_max=3).counts["zendesk.swept"] for _ in range(4)]
    assert swept == [3, 3, 1, 0]


# --- dead runs, stuck work, migration conflicts -------------------------------------------


def test_a_run_left_running_is_marked_aborted_by_the_next(world: FaultWorld) -> None:
    world.link((1, 101))
    dead = world.ledger.start_run("sync", holder="host:1")  # killed: never finished
    world.sync()
    with world.ledger.session() as session:
        run = session.get(Run, dead.id)
        assert run is not None
        assert run.outcome == "aborted"
        assert "process ended without finishing" in (run.message or "")
    assert world.ledger.status()["runs"][-1]["outcome"] == "aborted"


def test_work_unconfirmed_for_too_long_needs_attention(world: FaultWorld) -> None:
    world.soft_deleted_both()
    world.so.act(Transition.PURGE, 1)
    world.zd.lookup = lambda ids: {}  # type: ignore[method-assign]  # never re-readable
    world.zd.changes = lambda cursor, **_read: iter(())  # type: ignore[method-assign,assignment]
    world.sync()
    world.clock.advance(minutes=30)
    assert world.sync(attention_after=timedelta(hours=1)).outcome != "attention"
    world.clock.advance(minutes=45)
    result = world.sync(attention_after=timedelta(hours=1))
    assert result.outcome == "attention"
    assert result.counts["stuck_operations"] == 1
    stuck = world.ledger.status(stuck_after=timedelta(hours=1))["stuck_operations"]
    assert stuck["count"] == 1
    assert stuck["rows"][0]["transition"] == "purge"
    assert stuck["rows"][0]["age_minutes"] >= 60


def test_a_conflict_found_by_a_migration_stays_a_conflict(world: FaultWorld) -> None:
    world.link((1, 101))
    world.so.act(Transition.SOFT_DELETE, 1)
    world.so.act(Transition.PURGE, 1)
    world.migrate(MigrationOptions(source=ZD, target=SO))
    assert [p.attention for p in world.ledger.attention()] == ["conflict"]
    world.sync()
    world.sync()
    assert [p.attention for p in world.ledger.attention()] == ["conflict"]


def test_a_restore_while_a_purge_waits_for_retention_voids_it_and_is_a_conflict(
    world: FaultWorld,
) -> None:
    world.soft_deleted_both()
    world.zd.act(Transition.PURGE, 101)
    assert world.sync().counts["pending_retention"] == 1
    world.so.act(Transition.RESTORE, 1, actor=42)
    result = world.sync()
    assert result.outcome == "attention"
    [purge] = [op for op in world.ops() if op.transition == "purge"]
    assert purge.status == "superseded"
    [pair] = world.ledger.attention()
    assert (pair.attention, pair.first_state, pair.second_state) == ("conflict", "active", "purged")


def test_a_change_a_migration_chose_not_to_copy_is_still_decided_by_the_next_sync(
    world: FaultWorld,
) -> None:
    world.link((1, 101))
    world.sync()
    world.so.act(Transition.SOFT_DELETE, 1, actor=42)  # a user's delete, not yet copied
    world.migrate(MigrationOptions(source=ZD, target=SO))  # zendesk is the truth; no --restore
    assert world.so.state(1) is State.SOFT_DELETED  # not restored: not asked to
    assert world.sync().outcome == "converged"
    assert world.zd.state(101) is State.SOFT_DELETED  # the sync copied the user's delete


def test_a_purge_a_migration_held_back_is_not_copied_by_the_next_sync(world: FaultWorld) -> None:
    world.link((1, 101))
    world.sync()
    world.zd.act(Transition.SOFT_DELETE, 101, actor=42)
    world.zd.act(Transition.PURGE, 101, actor=42)
    world.migrate(MigrationOptions(source=ZD, target=SO, include_purges=False))  # --skip-purges
    assert world.so.state(1) is State.SOFT_DELETED
    world.sync()
    world.sync()
    assert world.so.state(1) is State.SOFT_DELETED
    assert world.purges_sent(world.so) == {}
