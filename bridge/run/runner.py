"""One run: settle → observe both sides → decide → apply in bulk → confirm by re-reading,
everything recorded in the ledger as it happens.

The ledger is written before every vendor call and after every answer, so that a run
killed anywhere leaves work the next run finishes: planned operations are sent, sent
operations are confirmed by re-reading the target (never resent blindly), and cursors
only move past what was recorded.

`SyncRun` only composes the steps, each a module with one job, handing over through the
run's shared state (`state.py`) and the ledger:

* `settle.py`: follow the vendor jobs earlier runs left; the one place a resend is decided;
* `observe.py`: read the change streams, look up links never read, sweep (`sweep.py`);
* `decide.py`: decide the candidate links with the run's `Planner` and record it;
* `apply.py`: send the outbox in bulk, with the purge guards (`guards.py`) and the vendor
  jobs in flight (`jobs.py`);
* `confirm.py`: re-read the targets of what was sent, then settle;
* `record.py`: what every read found, and every failed write, into the ledger.

A migration is the same run with another planner (`migrate.py`).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from bridge.core.contract import Adapter
from bridge.core.model import Side
from bridge.ledger import Ledger
from bridge.ledger.tables import utcnow
from bridge.run.apply import Applier
from bridge.run.confirm import Confirmer
from bridge.run.decide import Decider, Planner, ThreeWay
from bridge.run.jobs import Jobs
from bridge.run.observe import Observer
from bridge.run.plan import PlanLine
from bridge.run.record import Recorder
from bridge.run.settle import Settler
from bridge.run.state import TARGETED_KIND, RunContext, RunOptions, RunState

__all__ = ["TARGETED_KIND", "RunResult", "SyncRun"]

log = structlog.get_logger("bridge.sync")

#: rounds of apply → confirm → decide in one run (a purge waits for its soft delete)
_MAX_ROUNDS = 4


@dataclass
class RunResult:
    run_id: int | None
    outcome: str
    counts: Counter[str]
    plan: list[PlanLine]
    interrupted: bool = False
    #: the sides that could not be read, with what went wrong (outcome `unavailable`)
    unavailable: Mapping[str, str] = field(default_factory=dict)
    #: the sides that refused our credentials or rights (outcome `unavailable`)
    refused: Mapping[str, str] = field(default_factory=dict)
    #: seconds a vendor asked us to wait when a call ran out of retries (429 Retry-After),
    #: or until a shared account's turn
    retry_after: float | None = None
    #: a call waited for a shared account's turn instead of being sent (`AccountBusyError`)
    account_busy: bool = False

    @property
    def attention(self) -> bool:
        return self.outcome == "attention"


class SyncRun:
    """Runs once. `stop_requested` is polled between batches (SIGTERM: finish and record).

    The pair's sides are the ledger's (`ledger.sides`); `planner` says which links are
    decided and how (default: a sync's three-way decision under `options.policy`)."""

    def __init__(
        self,
        ledger: Ledger,
        adapters: Mapping[Side, Adapter],
        options: RunOptions,
        *,
        holder: str,
        planner: Planner | None = None,
        now: Callable[[], datetime] = utcnow,
        stop_requested: Callable[[], bool] = lambda: False,
        on_batch: Callable[[], None] = lambda: None,
        sleep: Callable[[float], None] = time.sleep,
        review: Callable[[RunState], bool] | None = None,
    ) -> None:
        self.holder = holder
        #: shown the whole plan once both sides are read, before anything is recorded or
        #: written: False ends the run there (`bridge migrate` shows its estimate, and
        #: refuses purges it was not told what to do with)
        self.review = review
        self.state = RunState()
        sides = ledger.sides
        ctx = RunContext(
            ledger,
            adapters,
            sides,
            options,
            self.state,
            now=now,
            sleep=sleep,
            stop_requested=stop_requested,
            on_batch=on_batch,
        )
        self._ctx = ctx
        jobs = Jobs(now)
        self.recorder = record = Recorder(ctx)
        self.settler = Settler(ctx, jobs, record)
        self.observer = Observer(ctx, record)
        self.decider = Decider(ctx, planner or ThreeWay(options.policy, sides))
        self.applier = Applier(ctx, jobs, record, self.observer, self.decider.decide_pending)
        self.confirmer = Confirmer(ctx, jobs, self.observer, self.settler)

    @property
    def counts(self) -> Counter[str]:
        return self.state.counts

    @property
    def plan(self) -> list[PlanLine]:
        return self.state.plan

    def execute(self) -> RunResult:
        try:
            result = self._execute()
        except BaseException:
            self.observer.close()  # whatever the end: no vendor read outlives the run
            self.recorder.close(quietly=True)  # ... nor a ledger write
            raise
        self.observer.close()
        self.recorder.close()
        return result

    def _execute(self) -> RunResult:
        ctx, state, options = self._ctx, self.state, self._ctx.options
        if options.dry_run:
            return self._dry_run()
        run = ctx.ledger.start_run(
            options.kind,
            holder=self.holder,
            dry_run=options.dry_run,
            operator=options.operator,
            override="allow_mass_purge" if options.allow_mass_purge else None,
        )
        state.run_id = run_id = run.id
        assert run_id is not None
        # once `bridge serve` works on the pair, a sync says what no webhook announced
        state.count_unannounced = not options.targeted and ctx.facts().ran
        log.info("run.start", run=run_id, dry_run=options.dry_run)
        try:
            if not options.dry_run:
                self.settler.follow_jobs()
            self.observer.observe()
            if options.dry_run or self.review or not self._write_while_looking_up():
                self.observer.finish_background()
            if not options.dry_run:
                # what earlier runs left `sent`: confirmed, or resent; none when the run's
                # first look found none (what it read since confirms, it never sends)
                self.confirmer.confirm_sent(none_sent=self.settler.found_sent is False)
            if self.review is not None and not self._reviewed():
                ctx.ledger.finish_run(
                    run_id,
                    outcome="declined",
                    counts=dict(state.counts),
                    cursors=self.observer.held_cursors(),
                )
                log.info("run.finish", run=run_id, outcome="declined")
                return self._result("declined")
            self.decider.decide_pending()
            if not options.dry_run:
                quiet_at = self._quiet_at()
                for _ in range(_MAX_ROUNDS):
                    if state.interrupted:
                        break
                    sent = self.applier.apply_planned()
                    looked = self.observer.finish_background()
                    if not (sent or looked):
                        break
                    self.confirmer.confirm_sent()
                    self.decider.decide_pending()
                    quiet_at = self._quiet_at()
                if not state.interrupted and ctx.ledger.writes != quiet_at:
                    self.confirmer.confirm_sent()
                    self.decider.decide_pending()
        except BaseException as exc:
            ctx.ledger.finish_run(
                run_id,
                outcome="interrupted" if isinstance(exc, KeyboardInterrupt) else "failed",
                counts=dict(state.counts),
                message=f"{type(exc).__name__}: {exc}"[:500],
            )
            log.error("run.failed", run=run_id, error=type(exc).__name__)
            raise
        outcome = self._outcome()
        ctx.ledger.finish_run(
            run_id,
            outcome=outcome,
            counts=dict(state.counts),
            cursors=self.observer.held_cursors(),
        )
        log.info("run.finish", run=run_id, outcome=outcome, **dict(state.counts))
        return self._result(outcome)

    def _dry_run(self) -> RunResult:
        """Read both sides and decide, recording nothing: no run row, no observation, no
        decision, no cursor (what is read goes to the run's overlay)."""
        state = self.state
        log.info("run.start", run=None, dry_run=True)
        self.observer.observe()
        self.observer.finish_background()
        self.decider.decide_pending()
        outcome = self._outcome()
        log.info("run.finish", run=None, outcome=outcome, **dict(state.counts))
        return self._result(outcome)

    def _reviewed(self) -> bool:
        """Decide every link without recording (`RunState.previewing`), hand the plan to
        `review`, and say whether to go on; the run's counts and plan are as before."""
        state = self.state
        counts, plan = state.counts.copy(), list(state.plan)
        state.previewing = True
        try:
            self.decider.decide_pending()
        finally:
            state.previewing = False
        go_on = self.review is None or self.review(state)
        state.counts.clear()
        state.counts.update(counts)
        state.plan[:] = plan
        state.tally = type(state.tally)()
        return go_on

    def _result(self, outcome: str) -> RunResult:
        state = self.state
        return RunResult(
            state.run_id,
            outcome,
            state.counts,
            state.plan,
            state.interrupted,
            dict(state.unavailable.items()),
            dict(state.refused.items()),
            state.retry_after,
            state.account_busy,
        )

    def _quiet_at(self) -> int | None:
        """Just after a confirm and a decision: the ledger's write count when the confirm
        found nothing sent (None otherwise). While it stays so, confirming and deciding
        again would read what they just read (nothing sent, nothing pending that this
        run could decide otherwise): an idle run's last pass, four reads, is skipped."""
        return None if self.confirmer.found_sent is not False else self._ctx.ledger.writes

    def _write_while_looking_up(self) -> bool:
        """Start writing before the background lookups end only when the links already
        known can fill every vendor job slot; otherwise the links being looked up join
        the same bulk calls instead of costing calls of their own."""
        if not self.observer.looking_up:
            return False
        adapters = self._ctx.adapters.values()
        slots = max(a.batch_limit * (a.job_limit or 1) for a in adapters)
        return self.decider.has_ready(slots)

    def _outcome(self) -> str:
        ctx, state = self._ctx, self.state
        if state.interrupted:
            return "interrupted"
        if state.refused or state.unavailable.keys() - state.turn_sides:
            return "unavailable"
        if ctx.options.dry_run:
            return "dry_run"
        left = ctx.ledger.outstanding(ctx.now() - ctx.options.attention_after)
        if left.stuck:
            state.counts["stuck_operations"] = left.stuck
        if left.flagged or left.stuck:
            return "attention"
        # a side that could not be read may hold changes not yet copied: not converged
        unread = any(key.endswith(".read_errors") for key in state.counts)
        if not (left.open_operations or unread):
            return "converged"
        # what is left waits for a shared account's turn (a worker's run), or failed
        return "waiting" if state.account_busy else "failures"
