"""`bridge migrate`: make the target's deletion state match the source's, for every link.

A migration is a sync run with a different decision: the source is the truth and the
target's current state plays the part of the base, so every difference is a change to copy
from source to target. Everything else (the outbox, bulk calls, jobs in flight, confirmation
by re-reading, crash safety, resumption) is the sync engine's. When the copies are
confirmed, the bases are recorded, so the scheduled `bridge sync` continues from the
migrated state without deciding anything again.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bridge.core.contract import Adapter
from bridge.core.decide import Direction, Policy, SideState
from bridge.core.model import Decision, Outcome, Side, State, Transition, path
from bridge.ledger import Ledger
from bridge.ledger.sync import PairView
from bridge.run.engine import RunOptions, SyncRun
from bridge.vendors.registry import SIDES

__all__ = [
    "MigrationEstimate",
    "MigrationOptions",
    "MigrationRun",
    "estimate",
    "migration_decision",
]


@dataclass(frozen=True, slots=True)
class MigrationOptions:
    source: Side
    include_purges: bool = False
    restore: bool = False

    @property
    def target(self) -> Side:
        return SIDES.other(self.source)


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
                Outcome.SKIP, side, (), State.SOFT_DELETED, "purge not copied (--include-purges)"
            )
        return Decision(
            Outcome.APPLY, side, steps, State.SOFT_DELETED, "migration; purge not copied"
        )
    return Decision(Outcome.APPLY, side, steps, source, "migration")


class MigrationRun(SyncRun):
    """A sync run whose decisions come from `migration_decision`, over every unsettled link."""

    def __init__(
        self,
        ledger: Ledger,
        adapters: Mapping[Side, Adapter],
        migration: MigrationOptions,
        *,
        dry_run: bool = False,
        **kwargs: Any,
    ) -> None:
        direction = Direction(migration.source)
        options = RunOptions(
            policy=Policy(direction=direction, propagate_purges=migration.include_purges),
            dry_run=dry_run,
            # purges were asked for explicitly (--include-purges): no per-run cap
            allow_mass_purge=True,
            kind="migrate",
            keep_plan=dry_run,  # the plan is what a dry run shows; a migration sums it up
            skips_stay_pending=True,
        )
        super().__init__(ledger, adapters, options, **kwargs)
        self.migration = migration

    def _candidates(self) -> set[int]:
        return self.ledger.unsettled_links() | set(self._overlay)

    def _decide(self, pair: PairView, sides: Mapping[Side, SideState]) -> Decision:
        source = sides[self.migration.source].state
        target = sides[self.migration.target].state
        return migration_decision(source, target, self.migration)


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
    job_seconds_per_batch: float = 12.0,
    account_read: int = 0,
    page_size: int = 1000,
    pages_per_minute: float | None = None,
) -> MigrationEstimate:
    """Calls: one bulk call per ⌈n/batch⌉, one job poll per round of jobs in flight, the
    target's change stream read once for its `account_read` tickets (before deciding) and
    once for the changes (to confirm them). Time: the largest of the account's rate limit
    for those calls, the job rounds, and the change stream's own pace (Zendesk's export:
    10 pages a minute, which bounds a large migration)."""
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
