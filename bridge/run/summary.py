"""What a run plans, summed up: writes per direction and transition, what they cost, and
what needs a person; without keeping a line per link.

`bridge sync --dry-run` prints this summary first (the per-link plan only on request) and
`bridge migrate` shows it as its estimate before writing. The decide step adds every
decision to the run's `PlanTally` (`RunState.tally`); `summarise` turns a tally into the
`PlanSummary` both commands print, with each group's calls and time estimated from what the
target's adapter declares (`write_cost`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bridge.core.contract import Adapter
from bridge.core.model import Decision, Outcome, Side, Sides, Transition
from bridge.ledger import Ledger
from bridge.ledger.tables import OperationStatus

if TYPE_CHECKING:  # state.py keeps a PlanTally: only the annotation goes the other way
    from bridge.run.state import RunOptions

__all__ = [
    "JOB_SECONDS_PER_BATCH",
    "PlanSummary",
    "PlanTally",
    "WriteGroup",
    "dry_run_summary",
    "summarise",
    "write_cost",
]

#: how long one vendor job of a full batch takes (about 12 s for 100 tickets, as measured)
JOB_SECONDS_PER_BATCH = 12.0
#: distinct reasons kept per outcome: reasons are few (they name rules, not tickets)
_MAX_REASONS = 50


@dataclass
class PlanTally:
    """Decisions counted as they are made: by outcome, writes by (source, target,
    transition), and why links were not written (outcome: reason)."""

    outcomes: Counter[str] = field(default_factory=Counter)
    writes: Counter[tuple[Side, Side, str]] = field(default_factory=Counter)
    #: "outcome: reason" of every decision but an agreement (a write's reason too: "migration;
    #: purge not copied" is a write that stops short)
    reasons: Counter[str] = field(default_factory=Counter)
    #: links whose plan ends in a purge: each counted once, whatever steps lead to it
    purges: int = 0

    def add(self, decision: Decision, sides: Sides) -> None:
        """Count one link's decision."""
        self.outcomes[decision.outcome.value] += 1
        if decision.outcome is Outcome.AGREE:
            return
        if decision.outcome is Outcome.APPLY and decision.target is not None:
            source = sides.other(decision.target)
            for transition in decision.transitions:
                self.writes[(source, decision.target, transition.value)] += 1
            self.purges += Transition.PURGE in decision.transitions
        key = f"{decision.outcome.value}: {decision.reason}"
        if key in self.reasons or len(self.reasons) < _MAX_REASONS:
            self.reasons[key] += 1
        else:
            self.reasons[f"{decision.outcome.value}: (other reasons)"] += 1

    @property
    def not_written(self) -> dict[str, int]:
        """Why links were not written ("outcome: reason"), with how many."""
        apply = f"{Outcome.APPLY.value}: "
        return {k: n for k, n in self.reasons.items() if not k.startswith(apply)}

    def reason_count(self, words: str) -> int:
        """Links decided for a reason that contains `words`."""
        return sum(n for key, n in self.reasons.items() if words in key)

    def transitions(self, target: Side | None = None) -> Counter[tuple[str, str]]:
        """Writes by (target, transition), of one target or all."""
        found: Counter[tuple[str, str]] = Counter()
        for (_source, to, transition), n in self.writes.items():
            if target is None or to == target:
                found[(to, transition)] += n
        return found


def write_cost(
    count: int,
    adapter: Adapter,
    *,
    job_seconds_per_batch: float = JOB_SECONDS_PER_BATCH,
) -> tuple[int, int, float]:
    """(bulk calls, job polls, seconds) for `count` writes of one transition to the
    adapter's vendor: one call per ⌈count / batch_limit⌉, one poll per round of
    `job_limit` jobs in flight, and the time the larger of the account's rate limit for
    those calls and the job rounds."""
    writes = math.ceil(count / adapter.batch_limit) if count else 0
    rounds = math.ceil(writes / adapter.job_limit) if adapter.job_limit and writes else 0
    per_minute = adapter.calls_per_minute()
    rate_floor = (writes + rounds) / per_minute * 60 if per_minute else 0.0
    return writes, rounds, max(rate_floor, rounds * job_seconds_per_batch)


@dataclass(frozen=True, slots=True)
class WriteGroup:
    """The writes of one transition in one direction, and their cost."""

    source: Side
    target: Side
    transition: str
    count: int
    calls: int
    seconds: float

    def as_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "target": self.target,
            "transition": self.transition,
            "count": self.count,
            "calls": self.calls,
            "seconds": round(self.seconds, 1),
        }


@dataclass(frozen=True, slots=True)
class PlanSummary:
    """What a plan would do and cost, and what it leaves for a person."""

    groups: Sequence[WriteGroup]
    outcomes: Mapping[str, int]
    not_written: Mapping[str, int]
    #: purges the run would hold (over `max_purges_per_run`), each counted once
    held_purges: int
    #: conflicts and divergences already open in the ledger (not decided again)
    open_attention: Mapping[str, int]

    @property
    def calls(self) -> int:
        return sum(group.calls for group in self.groups)

    @property
    def seconds(self) -> float:
        """Groups go one after another (soft deletes, restores, purges): their sum."""
        return sum(group.seconds for group in self.groups)

    def as_json(self) -> dict[str, object]:
        return {
            "writes": [group.as_json() for group in self.groups],
            "calls": self.calls,
            "seconds": round(self.seconds, 1),
            "decisions": dict(sorted(self.outcomes.items())),
            "not_written": dict(sorted(self.not_written.items())),
            "held_purges": self.held_purges,
            "conflicts": self.outcomes.get(Outcome.CONFLICT.value, 0),
            "divergences": self.outcomes.get(Outcome.DIVERGENCE.value, 0),
            "open_attention": dict(sorted(self.open_attention.items())),
        }


#: the order writes go in (`apply.py`): a purge's soft delete first
_ORDER = {t.value: n for n, t in enumerate((Transition.SOFT_DELETE, Transition.RESTORE))}


def summarise(
    tally: PlanTally,
    adapters: Mapping[Side, Adapter],
    *,
    purge_cap: int | None,
    purges_waiting: int = 0,
    open_attention: Mapping[str, int] | None = None,
) -> PlanSummary:
    """The summary of `tally`, costed with each target's adapter. Purges are held when the
    run's purges (the tally's, and `purges_waiting` planned or held by earlier runs) would
    exceed `purge_cap` (None: no cap, as with `--allow-mass-purge`): all of them, as the
    run would (`guards.PurgeCap`)."""
    groups = []
    ordered = sorted(tally.writes.items(), key=lambda item: (_ORDER.get(item[0][2], 9), item[0]))
    for (source, target, transition), count in ordered:
        adapter = adapters.get(target)
        calls, polls, seconds = write_cost(count, adapter) if adapter else (0, 0, 0.0)
        groups.append(WriteGroup(source, target, transition, count, calls + polls, seconds))
    purges = tally.purges + purges_waiting
    held = purges if purge_cap is not None and purges > purge_cap else 0
    return PlanSummary(
        groups, dict(tally.outcomes), tally.not_written, held, dict(open_attention or {})
    )


def dry_run_summary(
    ledger: Ledger, tally: PlanTally, adapters: Mapping[Side, Adapter], options: RunOptions
) -> PlanSummary:
    """The summary of a dry run's `tally`: the purges it would hold count the purges earlier
    runs left planned or held too (the run would release or hold them with its own), and
    the conflicts and divergences already open in the ledger are shown beside the new."""
    waiting = sum(
        1
        for op in ledger.operations([OperationStatus.PLANNED, OperationStatus.HELD])
        if op.transition is Transition.PURGE
    )
    open_attention = Counter(str(pair.attention) for pair in ledger.attention())
    return summarise(
        tally,
        adapters,
        purge_cap=None if options.allow_mass_purge else options.max_purges_per_run,
        purges_waiting=waiting,
        open_attention=open_attention,
    )
