"""One sync run: observe both sides → decide → apply in bulk → confirm by re-reading → record.

The ledger is written before every vendor call and after every answer, so that a run
killed anywhere leaves work the next run finishes: planned operations are sent, sent
operations are confirmed by re-reading the target (never resent blindly), and cursors
only move past what was recorded.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from bridge.adapters.base import Adapter, AdapterError, PermanentError, Submitted, TicketView
from bridge.crashpoints import crash_point
from bridge.ledger import Ledger
from bridge.ledger.sync import (
    LinkIds,
    OperationView,
    PairView,
    PlannedDecision,
    SideObservation,
)
from bridge.ledger.tables import OperationStatus, utcnow
from bridge.model import Cause, Side, State, Transition
from bridge.reconcile.decide import Decision, Outcome, Policy, SideState, decide

__all__ = ["PlanLine", "RunOptions", "RunResult", "SyncRun"]

log = structlog.get_logger("bridge.sync")

#: an unconfirmed idempotent write is sent again after this long
RESEND_IDEMPOTENT_AFTER = timedelta(minutes=5)
#: an unconfirmed purge is sent again only after its job must have ended (jobs live 1 day)
RESEND_PURGE_AFTER = timedelta(hours=2)
#: a vendor retention job runs "about" on time: allow this much early for attribution
RETENTION_SLACK = timedelta(days=1)
_MAX_ROUNDS = 4
#: links decided (and recorded) per transaction
_DECISION_SLICE = 5000
#: the longest wait between two polls of running vendor jobs, in seconds
#: bounds of the wait before polling vendor jobs, and the first guess of a job's duration
_MIN_POLL_WAIT = 0.5
_MAX_POLL_WAIT = 30.0
_FIRST_JOB_GUESS = 2.0


@dataclass(frozen=True, slots=True)
class RunOptions:
    policy: Policy = field(default_factory=Policy)
    dry_run: bool = False
    max_purges_per_run: int = 100
    allow_mass_purge: bool = False
    max_attempts: int = 5
    kind: str = "sync"


@dataclass(frozen=True, slots=True)
class PlanLine:
    link_id: int
    superoffice_id: int
    zendesk_id: int
    outcome: str
    target: str | None
    transitions: tuple[str, ...]
    reason: str


@dataclass
class RunResult:
    run_id: int | None
    outcome: str
    counts: Counter[str]
    plan: list[PlanLine]
    interrupted: bool = False

    @property
    def attention(self) -> bool:
        return self.outcome == "attention"


class SyncRun:
    """Runs once. `stop_requested` is polled between batches (SIGTERM: finish and record)."""

    def __init__(
        self,
        ledger: Ledger,
        adapters: Mapping[Side, Adapter],
        options: RunOptions,
        *,
        holder: str,
        now: Callable[[], datetime] = utcnow,
        stop_requested: Callable[[], bool] = lambda: False,
        on_batch: Callable[[], None] = lambda: None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.ledger = ledger
        self.adapters = adapters
        self.options = options
        self.holder = holder
        self.now = now
        self.stop_requested = stop_requested
        self.on_batch = on_batch
        self.sleep = sleep
        #: when each vendor job was submitted, and how long jobs have been taking
        self._job_started: dict[str, datetime] = {}
        self._job_seconds = _FIRST_JOB_GUESS
        self.counts: Counter[str] = Counter()
        self.plan: list[PlanLine] = []
        self.run_id: int | None = None
        # dry run: what would have been recorded, so that decisions see it
        self._overlay: dict[int, dict[Side, SideObservation]] = defaultdict(dict)
        self._interrupted = False

    # --- the run ---------------------------------------------------------------------

    def execute(self) -> RunResult:
        run = self.ledger.start_run(
            self.options.kind, holder=self.holder, dry_run=self.options.dry_run
        )
        self.run_id = run.id
        log.info("run.start", run=self.run_id, dry_run=self.options.dry_run)
        try:
            self.observe()
            self.decide_pending()
            if not self.options.dry_run:
                for _ in range(_MAX_ROUNDS):
                    if self._interrupted or not self.apply_planned():
                        break
                    self.confirm_sent()
                    self.decide_pending()
                if not self._interrupted:
                    self.confirm_sent()
                    self.decide_pending()
        except BaseException as exc:
            assert self.run_id is not None
            self.ledger.finish_run(
                self.run_id,
                outcome="interrupted" if isinstance(exc, KeyboardInterrupt) else "failed",
                counts=dict(self.counts),
                message=f"{type(exc).__name__}: {exc}"[:500],
            )
            log.error("run.failed", run=self.run_id, error=type(exc).__name__)
            raise
        outcome = self._outcome()
        assert self.run_id is not None
        self.ledger.finish_run(self.run_id, outcome=outcome, counts=dict(self.counts))
        log.info("run.finish", run=self.run_id, outcome=outcome, **dict(self.counts))
        return RunResult(self.run_id, outcome, self.counts, self.plan, self._interrupted)

    def _outcome(self) -> str:
        if self._interrupted:
            return "interrupted"
        if self.options.dry_run:
            return "dry_run"
        if self.ledger.attention():
            return "attention"
        open_ops = self.ledger.operations([OperationStatus.PLANNED, OperationStatus.SENT])
        # a side that could not be read may hold changes not yet copied: not converged
        unread = any(key.endswith(".read_errors") for key in self.counts)
        return "failures" if open_ops or unread else "converged"

    def _stop(self) -> bool:
        if not self._interrupted and self.stop_requested():
            log.warning("run.stopping", run=self.run_id, reason="stop requested")
            self._interrupted = True
        return self._interrupted

    # --- observe ----------------------------------------------------------------------

    def observe(self) -> None:
        """Read what changed on each side since its cursor, then the links never read,
        then SuperOffice tickets whose retention period may have removed them."""
        for side, adapter in self.adapters.items():
            self._read_changes(side, adapter)
        for side, adapter in self.adapters.items():
            unobserved = self.ledger.unobserved(side)
            if unobserved:
                self._lookup(side, adapter, unobserved)
        superoffice = self.adapters.get(Side.SUPEROFFICE)
        if superoffice is not None:
            now = self.now()
            due = self.ledger.superoffice_purge_candidates(
                now - superoffice.retention_period + RETENTION_SLACK, now
            )
            if due:
                self._lookup(Side.SUPEROFFICE, superoffice, due)

    def _read_changes(self, side: Side, adapter: Adapter) -> None:
        cursor = self.ledger.get_cursor(side.value)
        try:
            for page in adapter.changes(cursor):
                links = self.ledger.links_for_tickets(side, (v.ticket_id for v in page.views))
                views = [(links[v.ticket_id], v) for v in page.views if v.ticket_id in links]
                self.counts[f"{side}.changes_read"] += len(page.views)
                self._record(side, adapter, views, cursor=page.cursor)
                if page.complete or self._stop():
                    break
        except AdapterError as exc:
            # Whatever was recorded stays recorded; the rest is read next run.
            self.counts[f"{side}.read_errors"] += 1
            log.warning("observe.failed", side=side.value, error=str(exc))

    def _lookup(self, side: Side, adapter: Adapter, links: Sequence[LinkIds]) -> None:
        for start in range(0, len(links), adapter.batch_limit):
            chunk = links[start : start + adapter.batch_limit]
            by_ticket = {link.ticket(side): link for link in chunk}
            try:
                found = adapter.lookup(list(by_ticket))
            except AdapterError as exc:
                self.counts[f"{side}.read_errors"] += 1
                log.warning("lookup.failed", side=side.value, error=str(exc))
                return
            self.counts[f"{side}.lookups"] += len(by_ticket)
            self._record(side, adapter, [(by_ticket[i], v) for i, v in found.items()])

    def _record(
        self,
        side: Side,
        adapter: Adapter,
        views: Sequence[tuple[LinkIds, TicketView]],
        *,
        cursor: str | None = None,
    ) -> None:
        pairs = self.ledger.load_pairs(link.link_id for link, _ in views) if views else {}
        seen_at = self.now()
        observations = [
            SideObservation(
                link_id=link.link_id,
                side=side,
                ticket_id=view.ticket_id,
                state=view.state,
                seen_at=seen_at,
                vendor_time=view.vendor_time,
                actor_id=view.actor_id,
                cause=self._cause(adapter, pairs.get(link.link_id), side, view, seen_at),
                status_id=view.status_id,
            )
            for link, view in views
        ]
        if self.options.dry_run:
            for observation in observations:
                self._overlay[observation.link_id][side] = observation
            return
        pending, confirmed = self.ledger.record_observations(
            self.run_id, observations, cursors={side: cursor} if cursor is not None else None
        )
        self.counts[f"{side}.changed"] += len(pending) - confirmed
        self.counts["confirmed"] += confirmed

    @staticmethod
    def _cause(
        adapter: Adapter, pair: PairView | None, side: Side, view: TicketView, now: datetime
    ) -> Cause | None:
        """Why the vendor's state changed. The vendor's word when it gives one; a purge
        that the vendor's retention period explains is `retention`; anything else is a
        person (or their automation): bridge's own writes are recognised as confirmations
        before this matters."""
        if view.cause is not None:
            return view.cause
        if pair is None or pair.state(side) is None:
            return None  # a first sighting, not a change
        if view.state is not State.PURGED:
            return Cause.USER
        deleted_at = pair.vendor_time(side)
        if pair.state(side) is State.SOFT_DELETED and deleted_at is not None:
            purged_at = view.vendor_time or now
            if purged_at + RETENTION_SLACK >= deleted_at + adapter.retention_period:
                return Cause.RETENTION
        return Cause.USER

    # --- decide -----------------------------------------------------------------------

    def decide_pending(self) -> None:
        """Decide every candidate link, a slice at a time: each slice's decisions are one
        transaction (undecided links keep their pending flag), and memory stays flat
        however many links changed."""
        candidates = self._candidates()
        if not candidates:
            return
        busy = self.ledger.links_with_open_operations(candidates)
        ready = sorted(candidates - busy)
        for start in range(0, len(ready), _DECISION_SLICE):
            self._decide_slice(ready[start : start + _DECISION_SLICE])

    def _decide_slice(self, link_ids: Sequence[int]) -> None:
        pairs = self.ledger.load_pairs(link_ids)
        planned: list[PlannedDecision] = []
        for link_id, pair in sorted(pairs.items()):
            overlay = self._overlay.get(link_id, {})
            sides = {side: self._side_state(pair, side, overlay.get(side)) for side in Side}
            decision = self._decide(pair, sides)
            standing = not pair.pending_decision and link_id not in self._overlay
            if standing and decision.outcome.value == pair.attention:
                continue  # a standing conflict or divergence re-checked: nothing new
            self.counts[f"decision.{decision.outcome.value}"] += 1
            self._log_decision(pair, decision)
            source = decision.target.other if decision.target else None
            planned.append(PlannedDecision(pair, decision, sides[source].cause if source else None))
        if self.options.dry_run:
            return
        self.counts["planned"] += self.ledger.record_decisions(self.run_id, planned)

    def _candidates(self) -> set[int]:
        """Links to decide on this pass: changed since their last decision, or in conflict."""
        return set(self.ledger.decision_candidates()) | set(self._overlay)

    def _decide(self, pair: PairView, sides: Mapping[Side, SideState]) -> Decision:
        return decide(pair.base, sides[Side.SUPEROFFICE], sides[Side.ZENDESK], self.options.policy)

    @staticmethod
    def _side_state(pair: PairView, side: Side, overlay: SideObservation | None) -> SideState:
        if overlay is not None:
            return SideState(overlay.state, overlay.vendor_time, overlay.cause)
        return SideState(pair.state(side), pair.vendor_time(side), pair.cause(side))

    def _log_decision(self, pair: PairView, decision: Decision) -> None:
        line = PlanLine(
            pair.ids.link_id,
            pair.ids.superoffice_id,
            pair.ids.zendesk_id,
            decision.outcome.value,
            decision.target.value if decision.target else None,
            tuple(t.value for t in decision.transitions),
            decision.reason,
        )
        if decision.outcome is not Outcome.AGREE:
            self.plan.append(line)
        (log.debug if decision.outcome is Outcome.AGREE else log.info)(
            "decision",
            run=self.run_id,
            link=line.link_id,
            superoffice_id=line.superoffice_id,
            zendesk_id=line.zendesk_id,
            outcome=line.outcome,
            target=line.target,
            transitions=list(line.transitions),
            reason=line.reason,
        )

    # --- apply ------------------------------------------------------------------------

    def apply_planned(self) -> bool:
        """Send every operation that is ready; True when something was sent."""
        ops = self.ledger.operations([OperationStatus.PLANNED, OperationStatus.HELD])
        ready = self._ready(ops)
        ready = self._guard_purges(ready)
        if not ready:
            return False
        groups: dict[tuple[Side, Transition], list[OperationView]] = defaultdict(list)
        for op in ready:
            groups[(op.target, op.transition)].append(op)
        sent = False
        order = {Transition.SOFT_DELETE: 0, Transition.RESTORE: 1, Transition.PURGE: 2}
        for (target, transition), group in sorted(groups.items(), key=lambda g: order[g[0][1]]):
            adapter = self.adapters.get(target)
            if adapter is None or not self.options.policy.direction.allows_writing(target):
                continue
            if transition is Transition.PURGE:
                group = self._check_before_purge(target, adapter, group)
            sent |= self._send(target, transition, adapter, group)
            if self._interrupted:
                break
        return sent

    @staticmethod
    def _ready(ops: Sequence[OperationView]) -> list[OperationView]:
        """Each link's lowest open step only: a purge waits for its soft delete."""
        first: dict[int, OperationView] = {}
        for op in ops:
            if op.link_id not in first or op.step < first[op.link_id].step:
                first[op.link_id] = op
        return sorted(first.values(), key=lambda op: op.id)

    def _guard_purges(self, ops: list[OperationView]) -> list[OperationView]:
        purges = [op for op in ops if op.transition is Transition.PURGE]
        others = [op for op in ops if op.transition is not Transition.PURGE]
        cap = self.options.max_purges_per_run
        if purges and len(purges) > cap and not self.options.allow_mass_purge:
            reason = (
                f"{len(purges)} purges exceed max_purges_per_run={cap}; held "
                "(run with --allow-mass-purge to release them)"
            )
            self.ledger.hold([op.id for op in purges], run_id=self.run_id, reason=reason)
            self.counts["purges_held"] += len(purges)
            log.warning("purges.held", run=self.run_id, count=len(purges), cap=cap)
            return others
        held = [op.id for op in purges if op.status == OperationStatus.HELD]
        if held:
            self.ledger.release_held(held)
        return others + purges

    def _check_before_purge(
        self, target: Side, adapter: Adapter, ops: list[OperationView]
    ) -> list[OperationView]:
        """A purge is irreversible: re-read the target right before and never purge a
        ticket that is active there (refused, and reported for a person)."""
        try:
            live = adapter.live([op.ticket_id for op in ops])
        except AdapterError as exc:
            log.warning("purge.precheck_failed", side=target.value, error=str(exc))
            return []
        refused = {op.id: "target is active: purge refused" for op in ops if op.ticket_id in live}
        if refused:
            self.ledger.fail(refused, run_id=self.run_id, retry=False)
            self.counts["purges_refused"] += len(refused)
        return [op for op in ops if op.ticket_id not in live]

    def _send(
        self, target: Side, transition: Transition, adapter: Adapter, ops: list[OperationView]
    ) -> bool:
        in_flight: dict[str, list[OperationView]] = {}
        job_limit = adapter.job_limit or 0
        sent = False
        for start in range(0, len(ops), adapter.batch_limit):
            if self._stop():
                break
            batch = ops[start : start + adapter.batch_limit]
            batch_id = uuid.uuid4().hex[:12]
            ids = [op.id for op in batch]
            crash_point("before_mark_sent")
            self.ledger.mark_sent(ids, run_id=self.run_id, batch=batch_id)
            crash_point("before_send")
            try:
                submitted = adapter.submit(
                    transition,
                    [op.ticket_id for op in batch],
                    restore_status={op.ticket_id: op.restore_status_id for op in batch}
                    if transition is Transition.RESTORE
                    else None,
                )
            except AdapterError as exc:
                self._send_failed(transition, batch, exc)
                continue
            crash_point("after_send")
            sent = True
            self.counts[f"{target}.{transition}.sent"] += len(batch)
            log.info(
                "vendor.batch",
                run=self.run_id,
                side=target.value,
                transition=transition.value,
                count=len(batch),
                batch=batch_id,
                job=submitted.job_id,
            )
            self._after_submit(submitted, batch, in_flight)
            self.on_batch()
            while job_limit and len(in_flight) >= job_limit:
                self._wait_jobs(adapter, in_flight, until_below=job_limit)
        while in_flight:
            self._wait_jobs(adapter, in_flight, until_below=1)
        return sent

    def _after_submit(
        self,
        submitted: Submitted,
        batch: list[OperationView],
        in_flight: dict[str, list[OperationView]],
    ) -> None:
        by_ticket = {op.ticket_id: op for op in batch}
        if submitted.pending_until:
            self.ledger.mark_pending_retention(
                {by_ticket[t].id: until for t, until in submitted.pending_until.items()},
                run_id=self.run_id,
            )
            self.counts["pending_retention"] += len(submitted.pending_until)
        if submitted.job_id:
            self.ledger.set_job([op.id for op in batch], submitted.job_id)
            in_flight[submitted.job_id] = batch
            self._job_started[submitted.job_id] = self.now()

    def _wait_jobs(
        self, adapter: Adapter, in_flight: dict[str, list[OperationView]], *, until_below: int
    ) -> None:
        """Poll this adapter's jobs until fewer than `until_below` are still running.

        Each poll is timed for when the oldest job in flight should be done, by an estimate
        of job duration that each poll corrects: polling blindly (every second, or with a
        growing wait) costs more calls than the writes themselves."""
        while len(in_flight) >= until_below:
            self.sleep(self._poll_wait(in_flight))
            try:
                states = adapter.poll(list(in_flight))
            except AdapterError as exc:
                log.warning("jobs.poll_failed", error=str(exc))
                in_flight.clear()  # the sent operations are confirmed by re-reading later
                return
            finished = [
                job_id
                for job_id, state in states.items()
                if state.status.terminal and job_id in in_flight
            ]
            # a poll that found nothing done was early: expect jobs to take longer, and
            # one that did may have been late: expect a little less
            self._job_seconds = max(_MIN_POLL_WAIT, self._job_seconds * (0.85 if finished else 2.0))
            for job_id, state in states.items():
                if job_id not in finished:
                    continue
                batch = in_flight.pop(job_id)
                self._job_started.pop(job_id, None)
                failed = {
                    op.id: f"job {job_id}: {state.failed_ids[op.ticket_id]}"
                    for op in batch
                    if op.ticket_id in state.failed_ids
                }
                if state.status.value in ("failed", "killed") and not failed:
                    failed = {op.id: f"job {job_id} {state.status.value}" for op in batch}
                if failed:
                    self._record_failures(batch, failed, retry=True)

    def _poll_wait(self, in_flight: Mapping[str, object]) -> float:
        started = [self._job_started[j] for j in in_flight if j in self._job_started]
        if not started:
            return _MIN_POLL_WAIT
        due = min(started) + timedelta(seconds=self._job_seconds)
        wait = (due - self.now()).total_seconds()
        return min(max(wait, _MIN_POLL_WAIT), _MAX_POLL_WAIT)

    def _send_failed(
        self, transition: Transition, batch: list[OperationView], exc: AdapterError
    ) -> None:
        message = str(exc)
        if isinstance(exc, PermanentError):
            # e.g. 404 for the whole batch: the re-read below tells which were already done
            self._record_failures(batch, {op.id: message for op in batch}, retry=False)
        elif transition is Transition.PURGE and "outcome unknown" in message:
            # Maybe sent, maybe not: leave it `sent`; confirmation by re-reading decides.
            self.counts["unknown_outcome"] += len(batch)
        else:
            self._record_failures(batch, {op.id: message for op in batch}, retry=True)
        log.warning("vendor.batch_failed", run=self.run_id, error=message, count=len(batch))

    def _record_failures(
        self, batch: Sequence[OperationView], errors: dict[int, str], *, retry: bool
    ) -> None:
        permanent = self.ledger.fail(
            errors, run_id=self.run_id, retry=retry, max_attempts=self.options.max_attempts
        )
        self.counts["failed"] += permanent
        self.counts["retry"] += len(errors) - permanent

    # --- confirm ----------------------------------------------------------------------

    def confirm_sent(self) -> None:
        """Re-read the targets of sent operations: the change streams first (cheap, and
        they show purges), then direct lookups for whatever they did not show."""
        sent = self.ledger.operations([OperationStatus.SENT])
        if not sent:
            return
        for side in {op.target for op in sent}:
            adapter = self.adapters.get(side)
            if adapter is not None:
                self._read_changes(side, adapter)
        still = self.ledger.operations([OperationStatus.SENT])
        by_side: dict[Side, list[OperationView]] = defaultdict(list)
        for op in still:
            by_side[op.target].append(op)
        for side, ops in by_side.items():
            adapter = self.adapters.get(side)
            if adapter is None:
                continue
            links = self.ledger.load_pairs(op.link_id for op in ops)
            self._lookup(side, adapter, [links[op.link_id].ids for op in ops])
        self._resend_stale()

    def _resend_stale(self) -> None:
        """Operations sent long ago whose target never changed go back to planned: the
        call was lost. Purges wait much longer, until any job of theirs has surely ended."""
        now = self.now()
        stale: dict[int, str] = {}
        for op in self.ledger.operations([OperationStatus.SENT]):
            wait = (
                RESEND_PURGE_AFTER if op.transition is Transition.PURGE else RESEND_IDEMPOTENT_AFTER
            )
            if op.sent_at is not None and now - op.sent_at >= wait:
                stale[op.id] = f"not confirmed {wait} after sending; sending again"
        if stale:
            self._record_failures(
                [op for op in self.ledger.operations([OperationStatus.SENT]) if op.id in stale],
                stale,
                retry=True,
            )


def iter_plan(lines: Iterable[PlanLine]) -> Iterable[str]:
    for line in lines:
        arrow = " then ".join(line.transitions) or "-"
        yield (
            f"link {line.link_id} (superoffice {line.superoffice_id}, zendesk "
            f"{line.zendesk_id}): {line.outcome} {line.target or ''} {arrow} ({line.reason})"
        )
