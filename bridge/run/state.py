"""What the steps of one run share, typed, and nothing else.

A run is a pipeline (`runner.SyncRun`): settle → observe → decide → apply → confirm, each
step a module of its own. Every step is given the run's `RunContext`: its fixed inputs
(ledger, adapters, the pair's sides, options, clock, the stop and batch hooks) and its
`RunState`, the few facts the steps hand each other: counts, the plan, the dry run's
overlay, links deferred until a lookup knows them, sides that could not be read, whether
the run was stopped. State that one step alone needs stays private to it; the vendor jobs
in flight, which settle, apply and confirm share, are `jobs.Jobs`.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from bridge.core.contract import (
    AccountBusyError,
    Adapter,
    AdapterError,
    RefusedError,
    TransientError,
)
from bridge.core.decide import Policy
from bridge.core.model import Observation, Side, Sides
from bridge.ledger import Ledger
from bridge.ledger.sync import RunFacts
from bridge.ledger.tables import utcnow
from bridge.run.plan import PlanLine
from bridge.run.summary import PlanTally

__all__ = ["TARGETED_KIND", "RunContext", "RunOptions", "RunState"]

log = structlog.get_logger("bridge.sync")

#: the kind of a targeted run (`RunOptions.hints`), as the ledger records it
TARGETED_KIND = "hints"


@dataclass(frozen=True, slots=True)
class RunOptions:
    policy: Policy = field(default_factory=Policy)
    dry_run: bool = False
    max_purges_per_run: int = 100
    allow_mass_purge: bool = False
    #: who asked for this run's override (`allow_mass_purge`): recorded on the run
    operator: str | None = None
    max_attempts: int = 5
    kind: str = "sync"
    #: keep a `PlanLine` per decision for the result (a large migration needs only counts)
    keep_plan: bool = True
    #: operations failing or unconfirmed longer than this need a person (exit 4)
    attention_after: timedelta = timedelta(hours=1)
    #: every link is checked for a vanished ticket at least this often ...
    sweep_period: timedelta = timedelta(hours=24)
    #: ... at most this many links per side in one run (0: no sweep)
    sweep_max: int = 10_000
    #: a change this run saw but chose not to copy, leaving the base as it was, stays for
    #: the next sync's three-way decision (a migration: "restore not requested" is its
    #: choice, not the sync's; a purge it holds back records a base and is settled)
    skips_stay_pending: bool = False
    #: a targeted run (`bridge serve`, docs/webhooks.md): only these tickets, by side, are
    #: looked up (a webhook named them), and no change stream is read, not even to
    #: confirm (lookups do); None: a whole sync
    hints: Mapping[Side, frozenset[int]] | None = None

    @property
    def targeted(self) -> bool:
        return self.hints is not None


def _overlay() -> defaultdict[int, dict[Side, Observation]]:
    return defaultdict(dict)


@dataclass
class RunState:
    """The facts one step leaves for the next."""

    run_id: int | None = None
    counts: Counter[str] = field(default_factory=Counter)
    #: a line per decision worth showing (`RunOptions.keep_plan`)
    plan: list[PlanLine] = field(default_factory=list)
    #: every decision of the run, counted (the summary of a dry run or a migration)
    tally: PlanTally = field(default_factory=PlanTally)
    #: the plan is being looked at before anything is recorded (`SyncRun(review=...)`)
    previewing: bool = False
    #: dry run: what would have been recorded, so that decisions see it
    overlay: defaultdict[int, dict[Side, Observation]] = field(default_factory=_overlay)
    #: a stop was requested: steps finish what they hold and take nothing new
    interrupted: bool = False
    #: sides whose change stream could not be read (and why): nothing is decided or written
    unavailable: dict[Side, str] = field(default_factory=dict)
    #: sides that refused our credentials or rights, on a read or a write (and why): a
    #: person must act
    refused: dict[Side, str] = field(default_factory=dict)
    #: the longest wait a vendor asked for on a call that gave up (a 429's Retry-After)
    retry_after: float | None = None
    #: a call was not sent because a shared account's turn was too far (`AccountBusyError`)
    account_busy: bool = False
    #: sides whose change stream stopped for such a turn, not for a fault: the run ends
    #: `waiting`, not `unavailable`
    turn_sides: set[Side] = field(default_factory=set)
    #: links waiting on a background lookup: decided once it has read them
    deferred: set[int] = field(default_factory=set)
    #: sides whose never-read links are being looked up: a pair with no state there waits
    unread_sides: set[Side] = field(default_factory=set)
    #: a lookup made links known: they are decided before more writes are sent
    decide_due: bool = False
    #: count the changes the change streams show that no targeted run had recorded
    #: (`<side>.unannounced`): a sync of a pair `bridge serve` also works on
    count_unannounced: bool = False
    #: what the ledger's small tables said when the run first asked (`RunContext.facts`)
    facts: RunFacts | None = None

    def gave_up(self, exc: AdapterError, side: Side) -> None:
        """Keep the longest wait a vendor asked for when a call ran out of retries, so that
        whoever schedules the next run (a worker's job retry) waits at least that long;
        and a side that refused our credentials or rights, on a read as on a write: no
        retry fixes that (a worker's job fails at once, for a person)."""
        if isinstance(exc, RefusedError):
            self.refused.setdefault(side, str(exc))
        if isinstance(exc, TransientError) and exc.retry_after is not None:
            self.retry_after = max(self.retry_after or 0.0, exc.retry_after)
        self.account_busy = self.account_busy or isinstance(exc, AccountBusyError)


def _never() -> bool:
    return False


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class RunContext:
    """The run's fixed inputs and its shared state: what every step is built with."""

    ledger: Ledger
    adapters: Mapping[Side, Adapter]
    sides: Sides
    options: RunOptions
    state: RunState = field(default_factory=RunState)
    now: Callable[[], datetime] = utcnow
    sleep: Callable[[float], None] = time.sleep
    #: polled between batches (SIGTERM: finish and record)
    stop_requested: Callable[[], bool] = _never
    #: called after each batch sent (the CLI renews its lease there)
    on_batch: Callable[[], None] = _nothing

    def stop(self) -> bool:
        """Whether the run is stopping; the first time a stop is seen, it is noted."""
        state = self.state
        if not state.interrupted and self.stop_requested():
            log.warning("run.stopping", run=state.run_id, reason="stop requested")
            state.interrupted = True
        return state.interrupted

    def facts(self) -> RunFacts:
        """The cursors, sweep floors, unread sides and whether `bridge serve` ever ran,
        read once, when the run first asks. The run moves a cursor or a floor only after
        its last use of the one read (`Observer`, `plan_sweep`), and its reads only make
        links read: a link imported while it runs waits for the next run."""
        if self.state.facts is None:
            self.state.facts = self.ledger.run_facts(ran=TARGETED_KIND)
        return self.state.facts

    def clock(self) -> float:
        """The run's clock as seconds (rate-limit waits are counted in seconds)."""
        return self.now().timestamp()

    def reachable(self) -> list[tuple[Side, Adapter]]:
        """Each side that has an adapter, with it, in the pair's order."""
        return [(side, self.adapters[side]) for side in self.sides if side in self.adapters]
