"""`bridge migrate`: make the target's deletion state match the source's, for every link.

A migration is a sync run with a different decision: the source is the truth and the
target's current state plays the part of the base, so every difference is a change to copy
from source to target. Everything else (the outbox, bulk calls, jobs in flight,
confirmation by re-reading, crash safety, resumption) is the sync's pipeline
(`runner.SyncRun`), built with the migration's planner (`MigrationPlanner`): nothing of it
is overridden. When the copies are confirmed, the bases are recorded, so the scheduled
`bridge sync` continues from the migrated state without deciding anything again.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from bridge.core.contract import Adapter
from bridge.core.decide import Direction, Policy, SideState
from bridge.core.model import Decision, Outcome, Side, State, Transition, path
from bridge.ledger import Ledger
from bridge.ledger.sync import PairView
from bridge.ledger.tables import utcnow
from bridge.run.runner import SyncRun
from bridge.run.state import RunOptions, RunState
from bridge.run.summary import JOB_SECONDS_PER_BATCH

__all__ = [
    "PURGE_NOT_COPIED",
    "MigrationEstimate",
    "MigrationOptions",
    "MigrationPlanner",
    "estimate",
    "migration_decision",
    "migration_run",
]


#: the words of every decision that leaves a source's purge uncopied (a summary counts them)
PURGE_NOT_COPIED = "purge not copied"


@dataclass(frozen=True, slots=True)
class MigrationOptions:
    source: Side
    target: Side
    include_purges: bool = False
    restore: bool = False

    def __post_init__(self) -> None:
        if self.source == self.target:
            raise ValueError(f"a migration needs two sides, got {self.source!r} twice")


def migration_decision(
    source: State | None, target: State | None, options: MigrationOptions
) -> Decision:
    """What the target needs to match the source (pure)."""
    side = options.target
    if source is None or target is None:
        unknown = options.source if source is None else side
        return Decision(Outcome.UNKNOWN, None, (), None, f"{unknown} state unknown")
    if source == target:
        return Decision(Outcome.AGREE, None, (), source, "in agreement")
    if target is State.PURGED:
        return Decision(
            Outcome.CONFLICT,
            None,
            (),
            None,
            f"{side} is purged (terminal); {options.source} is {source}",
        )
    steps = path(target, source)
    if Transition.RESTORE in steps and not options.restore:
        return Decision(Outcome.SKIP, side, (), None, "restore not requested (--restore)")
    if Transition.PURGE in steps and not options.include_purges:
        steps = tuple(t for t in steps if t is not Transition.PURGE)
        if not steps:
            return Decision(
                Outcome.SKIP, side, (), State.SOFT_DELETED, f"{PURGE_NOT_COPIED} (--include-purges)"
            )
        return Decision(
            Outcome.APPLY, side, steps, State.SOFT_DELETED, f"migration; {PURGE_NOT_COPIED}"
        )
    return Decision(Outcome.APPLY, side, steps, source, "migration")


@dataclass(frozen=True, slots=True)
class MigrationPlanner:
    """A migration's plan (`decide.Planner`): every unsettled link, decided by
    `migration_decision`."""

    migration: MigrationOptions

    def candidates(self, ledger: Ledger, *, batch: int) -> Iterator[Sequence[PairView]]:
        return ledger.unsettled_pairs(batch=batch)

    def any_candidates(self, ledger: Ledger) -> bool:
        return True  # a migration is run to decide: its pass reads its pages

    def decide(self, pair: PairView, states: Mapping[Side, SideState]) -> Decision:
        source = states[self.migration.source].state
        target = states[self.migration.target].state
        return migration_decision(source, target, self.migration)

    def agree_in_bulk(self, ledger: Ledger, *, exclude: Collection[int]) -> int:
        return ledger.agree_where_equal(unsettled=True, exclude=exclude)


def migration_run(
    ledger: Ledger,
    adapters: Mapping[Side, Adapter],
    migration: MigrationOptions,
    *,
    holder: str,
    dry_run: bool = False,
    now: Callable[[], datetime] = utcnow,
    stop_requested: Callable[[], bool] = lambda: False,
    on_batch: Callable[[], None] = lambda: None,
    sleep: Callable[[float], None] = time.sleep,
    review: Callable[[RunState], bool] | None = None,
    operator: str | None = None,
) -> SyncRun:
    """A run whose decisions come from `migration_decision`, over every unsettled link:
    the sync's pipeline with the migration's planner and options. `review` sees the
    whole plan before anything is recorded or written (`SyncRun`); `operator`: who asked
    for it (a migration lifts the purge cap), recorded on the run."""
    options = RunOptions(
        policy=Policy(
            direction=Direction(migration.source), propagate_purges=migration.include_purges
        ),
        dry_run=dry_run,
        # purges were asked for explicitly (--include-purges): no per-run cap
        allow_mass_purge=True,
        operator=operator,
        kind="migrate",
        keep_plan=dry_run,  # the plan is what a dry run shows; a migration sums it up
        skips_stay_pending=True,
    )
    return SyncRun(
        ledger,
        adapters,
        options,
        holder=holder,
        planner=MigrationPlanner(migration),
        now=now,
        stop_requested=stop_requested,
        on_batch=on_batch,
        sleep=sleep,
        review=review,
    )


@dataclass(frozen=True, slots=True)
class MigrationEstimate:
    """What a dry run promises: writes per transition, API calls and time."""

    transitions: Mapping[str, int]
    calls: int
    seconds: float
    skipped: Mapping[str, int]


def estimate(
    plan_counts: Counter[tuple[str, str]],
    skipped: Counter[str],
    *,
    batch_limit: int,
    job_limit: int | None,
    calls_per_minute: float,
    job_seconds_per_batch: float = JOB_SECONDS_PER_BATCH,
    account_read: int = 0,
    page_size: int = 1000,
    pages_per_minute: float | None = None,
) -> MigrationEstimate:
    """Calls: one bulk call per ⌈n/batch⌉, one job poll per round of jobs in flight, the
    target's change stream read once for its `account_read` tickets (before deciding) and
    once for the changes (to confirm them). Time: the largest of the account's rate limit
    for those calls, the job rounds, and the change stream's own pace (an export of 10
    pages a minute bounds a large migration)."""
    writes = sum(math.ceil(n / batch_limit) for n in plan_counts.values())
    rounds = math.ceil(writes / job_limit) if job_limit else 0
    pages = math.ceil(account_read / page_size) + math.ceil(sum(plan_counts.values()) / page_size)
    calls = writes + rounds + pages
    rate_floor = calls / calls_per_minute * 60 if calls_per_minute else 0.0
    job_floor = rounds * job_seconds_per_batch
    stream_floor = pages / pages_per_minute * 60 if pages_per_minute else 0.0
    return MigrationEstimate(
        {f"{target} {transition}": n for (target, transition), n in sorted(plan_counts.items())},
        calls,
        max(rate_floor, job_floor, stream_floor),
        dict(skipped),
    )
