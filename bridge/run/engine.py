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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from bridge.core.contract import (
    Adapter,
    AdapterError,
    ChangePage,
    JobStatus,
    OutcomeUnknownError,
    PermanentError,
    Submitted,
    TicketView,
)
from bridge.core.decide import Policy, SideState, decide
from bridge.core.model import Cause, Decision, Outcome, Side, State, Transition
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
from bridge.run.jobtiming import JobDuration
from bridge.run.tasks import INSTANT, NEVER, ReadyIn, Task, choose, now_ready
from bridge.vendors.registry import SIDES, SUPEROFFICE

__all__ = ["PlanLine", "RunOptions", "RunResult", "SyncRun"]

log = structlog.get_logger("bridge.sync")

#: job ends that prove a write's outcome: a re-read after them shows what it did
_JOB_ENDED = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.KILLED})
#: a vendor retention job runs "about" on time: allow this much early for attribution
RETENTION_SLACK = timedelta(days=1)
_MAX_ROUNDS = 4
#: links decided (and recorded) per transaction
_DECISION_SLICE = 5000
#: bounds of the wait before polling vendor jobs, in seconds
_MIN_POLL_WAIT = 0.5
_MAX_POLL_WAIT = 30.0


@dataclass(frozen=True, slots=True)
class RunOptions:
    policy: Policy = field(default_factory=Policy)
    dry_run: bool = False
    max_purges_per_run: int = 100
    allow_mass_purge: bool = False
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
    #: the sides that could not be read, with what went wrong (outcome `unavailable`)
    unavailable: Mapping[str, str] = field(default_factory=dict)

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
        self._job_duration = JobDuration()
        self.counts: Counter[str] = Counter()
        self.plan: list[PlanLine] = []
        self.run_id: int | None = None
        # dry run: what would have been recorded, so that decisions see it
        self._overlay: dict[int, dict[Side, SideObservation]] = defaultdict(dict)
        self._interrupted = False
        #: each side's change stream, open between pages (see `_read_page`)
        self._streams: dict[Side, Iterator[ChangePage]] = {}
        #: tickets our finished jobs changed that the side's stream has not shown yet
        self._unread: Counter[Side] = Counter()
        #: each target's vendor jobs in flight, with the operations they carry
        self._in_flight: dict[Side, dict[str, list[OperationView]]] = defaultdict(dict)
        #: purges let through `max_purges_per_run` so far in this run
        self._purges_released: set[int] = set()
        #: lookups that go on while writes are sent, and the links waiting on them
        self._background: list[Task] = []
        self._deferred: set[int] = set()
        self._decide_due = False
        #: sides whose change stream could not be read (and why): nothing is decided or
        #: written
        self._unavailable: dict[Side, str] = {}
        #: how vendor jobs of this run, or left by earlier ones, ended
        self._job_states: dict[str, JobStatus] = {}
        #: what a failed job said about each of its operations
        self._job_errors: dict[int, str] = {}

    # --- the run ---------------------------------------------------------------------

    def execute(self) -> RunResult:
        run = self.ledger.start_run(
            self.options.kind, holder=self.holder, dry_run=self.options.dry_run
        )
        self.run_id = run.id
        log.info("run.start", run=self.run_id, dry_run=self.options.dry_run)
        try:
            if not self.options.dry_run:
                self.follow_jobs()
            self.observe()
            if self.options.dry_run or not self._write_while_looking_up():
                self._finish_background()
            if not self.options.dry_run:
                self.confirm_sent()  # what earlier runs left `sent`: confirmed, or resent
            self.decide_pending()
            if not self.options.dry_run:
                for _ in range(_MAX_ROUNDS):
                    if self._interrupted:
                        break
                    sent = self.apply_planned()
                    looked = self._finish_background()
                    if not (sent or looked):
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
        return RunResult(
            self.run_id,
            outcome,
            self.counts,
            self.plan,
            self._interrupted,
            dict(self._unavailable.items()),
        )

    def _outcome(self) -> str:
        if self._interrupted:
            return "interrupted"
        if self._unavailable:
            return "unavailable"
        if self.options.dry_run:
            return "dry_run"
        now = self.now()
        stuck = self.ledger.stuck_operations(now - self.options.attention_after, now)
        if stuck:
            self.counts["stuck_operations"] = len(stuck)
        if self.ledger.attention() or stuck:
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
        """Read each side's changes since its cursor; then look up the links never read
        and (SuperOffice) tickets whose retention period may have removed them.

        The sides take turns, each whenever its rate limit lets it go on, so that one
        side's waits are the other's reading time (Zendesk's export allows 10 pages a
        minute). The lookups (SuperOffice: one call per purged ticket, 10 a second) go on
        in the background, filling waits until the run needs them: links waiting on them
        are decided when they are known."""
        streams = [Task(self._stream_steps(side, a)) for side, a in self.adapters.items()]
        self._run(streams)

    def _stream_steps(self, side: Side, adapter: Adapter) -> Iterator[ReadyIn]:
        yield adapter.changes_ready_in
        while not self._read_page(side, adapter) and not self._stop():
            yield adapter.changes_ready_in
        links = list(self.ledger.unobserved(side))
        if links:
            self._deferred.update(link.link_id for link in links)
            self._background.append(Task(self._lookup_steps(side, adapter, links)))
        swept, expected_gone = self._sweep_items(side, adapter)
        if swept:
            self._deferred.update(link.link_id for link, _state in swept)
            self._background.append(Task(self._sweep_steps(side, adapter, swept, expected_gone)))

    def _sweep_items(
        self, side: Side, adapter: Adapter
    ) -> tuple[list[tuple[LinkIds, State]], set[int]]:
        """The links whose ticket on `side` to check for having vanished this run: those
        not checked for `sweep_period` (oldest first, at most `sweep_max`) and, on
        SuperOffice, soft-deleted tickets its retention job may have removed. Also the
        links whose purge bridge copied there and that are due (expected gone)."""
        now = self.now()
        items: dict[LinkIds, State] = {}
        expected: set[int] = set()
        if side == SUPEROFFICE:
            candidates = self.ledger.retention_candidates(
                side, now - adapter.retention_period + RETENTION_SLACK, now
            )
            for link, expected_gone in candidates:
                items[link] = State.SOFT_DELETED
                if expected_gone:
                    expected.add(link.link_id)
        if self.options.sweep_max:
            for link, state in self.ledger.sweep_due(
                side, now - self.options.sweep_period, self.options.sweep_max
            ):
                items.setdefault(link, state)
        return sorted(items.items(), key=lambda item: item[0].link_id), expected

    def _sweep_steps(
        self,
        side: Side,
        adapter: Adapter,
        items: Sequence[tuple[LinkIds, State]],
        expected_gone: set[int],
    ) -> Iterator[ReadyIn]:
        """Check a batch of links at a time (bulk reads), recording what became of each
        ticket: one in no listing any more is a purge for the decision."""
        held = {link.ticket(side): state for link, state in items}
        gone = {link.ticket(side) for link, _ in items if link.link_id in expected_gone}

        def sweep(ticket_ids: list[int]) -> dict[int, TicketView]:
            known = {ticket_id: held[ticket_id] for ticket_id in ticket_ids}
            return adapter.sweep(known, expected_gone=gone.intersection(ticket_ids))

        def checked(link_ids: list[int]) -> None:
            if not self.options.dry_run:
                self.ledger.mark_checked(side, link_ids, self.now())

        links = [link for link, _ in items]
        return self._read_steps(side, adapter, links, sweep, "sweep", "swept", on_found=checked)

    def _run(self, foreground: list[Task]) -> None:
        """Step the tasks to their end in turns, each when it can go on unhindered;
        background steps fill the time until one can; sleep only when none can."""
        while foreground:
            task, wait = choose(foreground)
            if task is None:
                task, other = choose(self._background)
                wait = min(wait, other)
            if task is None:
                self.sleep(wait)
                continue
            task.step()
            if task in foreground:
                foreground.remove(task)  # to the back: the others go first next time
                if not task.finished:
                    foreground.append(task)
            self._background = [t for t in self._background if not t.finished]

    def _write_while_looking_up(self) -> bool:
        """Start writing before the background lookups end only when the links already
        known can fill every vendor job slot; otherwise the links being looked up join
        the same bulk calls instead of costing calls of their own."""
        if not self._background:
            return False
        slots = max(a.batch_limit * (a.job_limit or 1) for a in self.adapters.values())
        return len(self._candidates() - self._deferred) >= slots

    def _finish_background(self) -> bool:
        """Run what is left of the background lookups now; False when there was none."""
        tasks, self._background = self._background, []
        if not tasks or self._interrupted:
            return False
        self._run(tasks)
        return True

    def _clock(self) -> float:
        return self.now().timestamp()

    def _read_changes(self, side: Side, adapter: Adapter) -> None:
        while not self._read_page(side, adapter) and not self._stop():
            pass

    def _read_page(self, side: Side, adapter: Adapter) -> bool:
        """Read and record one page of the side's change stream; True when the stream has
        caught up (or failed: whatever was recorded stays, the rest is read next time).

        The stream stays open between pages, so that pages can be read one at a time
        while vendor jobs run (`_idle`) without starting over."""
        stream = self._streams.get(side)
        if stream is None:
            stream = self._streams[side] = adapter.changes(self.ledger.get_cursor(side))
        try:
            page = next(stream, None)
        except AdapterError as exc:
            self._streams.pop(side, None)
            self._unread[side] = 0  # no more reads while jobs run: confirm_sent retries
            self.counts[f"{side}.read_errors"] += 1
            if side not in self._unavailable:
                log.warning("observe.failed", side=side, error=str(exc))
            # the side's fresh state is unknown: deciding from the old view could write
            # over a change not yet read, so this run decides and writes nothing
            self._unavailable.setdefault(side, str(exc))
            return True
        if page is None or page.complete:
            self._streams.pop(side, None)
        if page is None:
            self._unread[side] = 0
            return True
        links = self.ledger.links_for_tickets(side, (v.ticket_id for v in page.views))
        views = [(links[v.ticket_id], v) for v in page.views if v.ticket_id in links]
        self.counts[f"{side}.changes_read"] += len(page.views)
        self._record(side, adapter, views, cursor=page.cursor)
        caught_up = page.complete or not page.views
        self._unread[side] = 0 if caught_up else max(0, self._unread[side] - len(page.views))
        return page.complete

    def _lookup_steps(
        self,
        side: Side,
        adapter: Adapter,
        links: Sequence[LinkIds],
        known: set[int] | None = None,
    ) -> Iterator[ReadyIn]:
        """Look the links up a batch at a time (see `_read_steps`)."""
        return self._read_steps(
            side, adapter, links, adapter.lookup, "lookup", "lookups", known=known
        )

    def _read_steps(
        self,
        side: Side,
        adapter: Adapter,
        links: Sequence[LinkIds],
        read: Callable[[list[int]], Mapping[int, TicketView]],
        event: str,
        counter: str,
        *,
        known: set[int] | None = None,
        on_found: Callable[[list[int]], None] | None = None,
    ) -> Iterator[ReadyIn]:
        """Read the links' tickets a batch at a time with `read`, recording what it finds
        and yielding after each batch. A link stops waiting (`_deferred`) once its batch is
        read, or when the reads stop (the first failure ends them). The ticket ids whose
        state became known are added to `known`; `on_found` gets their link ids."""
        try:
            for start in range(0, len(links), adapter.batch_limit):
                chunk = links[start : start + adapter.batch_limit]
                by_ticket = {link.ticket(side): link for link in chunk}
                try:
                    found = read(list(by_ticket))
                except AdapterError as exc:
                    self.counts[f"{side}.read_errors"] += 1
                    log.warning(f"{event}.failed", side=side, error=str(exc))
                    return
                self.counts[f"{side}.{counter}"] += len(by_ticket)
                views = [(by_ticket[i], v) for i, v in found.items() if i in by_ticket]
                self._record(side, adapter, views)
                if known is not None:
                    known.update(found)
                if on_found is not None:
                    on_found([link.link_id for link, _ in views])
                self._deferred.difference_update(link.link_id for link in chunk)
                self._decide_due = True
                yield now_ready
        finally:
            self._deferred.difference_update(link.link_id for link in links)

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
        self._decide_due = False
        if self._unavailable:
            return  # a side's fresh state is unknown: decide nothing this run
        candidates = self._candidates()
        if not candidates:
            return
        candidates -= self._deferred
        busy = self.ledger.links_with_open_operations(candidates)
        ready = sorted(candidates - busy)
        for start in range(0, len(ready), _DECISION_SLICE):
            self._decide_slice(ready[start : start + _DECISION_SLICE])

    def _decide_slice(self, link_ids: Sequence[int]) -> None:
        pairs = self.ledger.load_pairs(link_ids)
        planned: list[PlannedDecision] = []
        for link_id, pair in sorted(pairs.items()):
            overlay = self._overlay.get(link_id, {})
            sides = {side: self._side_state(pair, side, overlay.get(side)) for side in SIDES}
            decision = self._decide(pair, sides)
            if decision.outcome is Outcome.DIVERGENCE and pair.attention == "conflict":
                # no base and the sides differ: a conflict a migration found stays one
                reason = pair.attention_reason or decision.reason
                decision = Decision(Outcome.CONFLICT, None, (), None, reason)
            standing = not pair.pending_decision and link_id not in self._overlay
            if standing and decision.outcome.value == pair.attention:
                continue  # a standing conflict or divergence re-checked: nothing new
            self.counts[f"decision.{decision.outcome.value}"] += 1
            self._log_decision(pair, decision)
            source = SIDES.other(decision.target) if decision.target else None
            planned.append(PlannedDecision(pair, decision, sides[source].cause if source else None))
        if self.options.dry_run:
            return
        self.counts["planned"] += self.ledger.record_decisions(
            self.run_id, planned, skips_stay_pending=self.options.skips_stay_pending
        )

    def _candidates(self) -> set[int]:
        """Links to decide on this pass: changed since their last decision, or in conflict."""
        return set(self.ledger.decision_candidates()) | set(self._overlay)

    def _decide(self, pair: PairView, sides: Mapping[Side, SideState]) -> Decision:
        return decide(pair.base, SIDES, sides, self.options.policy)

    @staticmethod
    def _side_state(pair: PairView, side: Side, overlay: SideObservation | None) -> SideState:
        if overlay is not None:
            return SideState(overlay.state, overlay.vendor_time, overlay.cause)
        return SideState(pair.state(side), pair.vendor_time(side), pair.cause(side))

    def _log_decision(self, pair: PairView, decision: Decision) -> None:
        line = PlanLine(
            pair.ids.link_id,
            pair.ids.first_id,
            pair.ids.second_id,
            decision.outcome.value,
            decision.target if decision.target else None,
            tuple(t.value for t in decision.transitions),
            decision.reason,
        )
        if decision.outcome is not Outcome.AGREE and self.options.keep_plan:
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
        """Send every operation that is ready; True when something was sent.

        Vendor jobs are not waited for between groups: steps that become ready meanwhile
        (a purge whose soft delete a read made while jobs ran has confirmed) are sent in
        the same call, into the job slots the earlier writes free. Each operation is tried
        once per call: what fails goes to the next round."""
        sent = False
        tried: set[int] = set()
        if self._unavailable:
            return False
        while True:
            if self._decide_due and not self._interrupted:
                self._decide_due = False
                self.decide_pending()  # links a background lookup has just made known
            candidates = [] if self._interrupted else self._ready()
            candidates = [op for op in candidates if op.id not in tried]
            ready = self._guard_purges(candidates)
            if ready:
                applied, unsent = self._apply(ready)
                sent |= applied
                tried.update(op.id for op in candidates if op.id not in unsent)
            elif not self._await_progress():
                return sent
            else:
                tried.update(op.id for op in candidates)  # held purges: held once a run

    def _await_progress(self) -> bool:
        """Nothing to send: wait until a vendor job ends, or take a background lookup
        step, either of which may make more work ready. False when nothing is left."""
        for side, in_flight in self._in_flight.items():
            adapter = self.adapters.get(side)
            if in_flight and adapter is not None:
                self._wait_jobs(adapter, in_flight, until_below=len(in_flight))
                return True
        task, _wait = choose(self._background)
        if task is None or self._interrupted:
            return False
        task.step()
        self._background = [t for t in self._background if not t.finished]
        return True

    def _apply(self, ready: Sequence[OperationView]) -> tuple[bool, set[int]]:
        """Send the ready operations, grouped per target and transition. Returns whether
        anything was sent, and the ids left unsent to be offered again: the run was
        interrupted, or a background lookup made links known that should go first."""
        groups: dict[tuple[Side, Transition], list[OperationView]] = defaultdict(list)
        for op in ready:
            groups[(op.target, op.transition)].append(op)
        sent = False
        unsent: set[int] = set()
        order = {Transition.SOFT_DELETE: 0, Transition.RESTORE: 1, Transition.PURGE: 2}
        for (target, transition), group in sorted(groups.items(), key=lambda g: order[g[0][1]]):
            if unsent:
                unsent.update(op.id for op in group)
                continue
            adapter = self.adapters.get(target)
            if adapter is None or not self.options.policy.direction.allows_writing(target):
                continue
            if transition is Transition.PURGE:
                group = self._check_before_purge(target, adapter, group)
            taken, submitted = self._send(target, transition, adapter, group)
            sent |= submitted
            unsent.update(op.id for op in group[taken:])
        return sent, unsent

    def _ready(self) -> list[OperationView]:
        """Operations that may be sent now (see `SyncStore.ready_operations`)."""
        return self.ledger.ready_operations()

    def _guard_purges(self, ops: list[OperationView]) -> list[OperationView]:
        purges = [op for op in ops if op.transition is Transition.PURGE]
        others = [op for op in ops if op.transition is not Transition.PURGE]
        cap = self.options.max_purges_per_run
        total = len(self._purges_released | {op.id for op in purges})
        if purges and total > cap and not self.options.allow_mass_purge:
            reason = (
                f"{total} purges exceed max_purges_per_run={cap}; held "
                "(run with --allow-mass-purge to release them)"
            )
            self.ledger.hold([op.id for op in purges], run_id=self.run_id, reason=reason)
            self.counts["purges_held"] += len(purges)
            log.warning("purges.held", run=self.run_id, count=len(purges), cap=cap)
            return others
        held = [op.id for op in purges if op.status == OperationStatus.HELD]
        if held:
            self.ledger.release_held(held)
        self._purges_released.update(op.id for op in purges)
        return others + purges

    def _check_before_purge(
        self, target: Side, adapter: Adapter, ops: list[OperationView]
    ) -> list[OperationView]:
        """A purge is irreversible: re-read the target right before and never purge a
        ticket that is active there (refused, and reported for a person)."""
        try:
            live = adapter.live([op.ticket_id for op in ops])
        except AdapterError as exc:
            log.warning("purge.precheck_failed", side=target, error=str(exc))
            return []
        refused = {op.id: "target is active: purge refused" for op in ops if op.ticket_id in live}
        if refused:
            self.ledger.fail(refused, run_id=self.run_id, retry=False)
            self.counts["purges_refused"] += len(refused)
        return [op for op in ops if op.ticket_id not in live]

    def _send(
        self, target: Side, transition: Transition, adapter: Adapter, ops: list[OperationView]
    ) -> tuple[int, bool]:
        """Send `ops` in bulk calls, keeping at most `job_limit` vendor jobs in flight.
        Returns how many were taken (sent, or failed and recorded; fewer than all when
        the run is stopping or newly known links should be decided first), and whether
        the vendor accepted any."""
        in_flight = self._in_flight[target]
        job_limit = adapter.job_limit or 0
        taken = 0
        submitted_any = False
        for start in range(0, len(ops), adapter.batch_limit):
            while job_limit and len(in_flight) >= job_limit:
                self._wait_jobs(adapter, in_flight, until_below=job_limit)
            if self._stop() or self._decide_due:
                break
            taken = start + adapter.batch_limit
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
                self._send_failed(adapter, transition, batch, exc)
                continue
            crash_point("after_send")
            submitted_any = True
            self.counts[f"{target}.{transition}.sent"] += len(batch)
            log.info(
                "vendor.batch",
                run=self.run_id,
                side=target,
                transition=transition.value,
                count=len(batch),
                batch=batch_id,
                job=submitted.job_id,
            )
            self._after_submit(submitted, batch, in_flight)
            self.on_batch()
        return min(taken, len(ops)), submitted_any

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
        self,
        adapter: Adapter,
        in_flight: dict[str, list[OperationView]],
        *,
        until_below: int,
    ) -> None:
        """Poll this adapter's jobs until fewer than `until_below` are still running.

        Each poll is timed for when the oldest job in flight should be done, by an estimate
        of job duration that each poll corrects: polling blindly (every second, or with a
        growing wait) costs more calls than the writes themselves."""
        while len(in_flight) >= until_below:
            self._idle(self._poll_wait(in_flight))
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
            now = self.now()
            for job_id in in_flight:
                started = self._job_started.get(job_id)
                if started is not None:
                    age = (now - started).total_seconds()
                    self._job_duration.observe(age, done=job_id in finished)
            for job_id, state in states.items():
                if job_id not in finished:
                    continue
                batch = in_flight.pop(job_id)
                self._job_started.pop(job_id, None)
                self._unread[adapter.side] += len(batch)
                self._job_ended(job_id, state.status, state.failed_ids, batch)

    def _idle(self, seconds: float) -> None:
        """Wait `seconds`, working meanwhile: read a change stream whenever a full page of
        what our finished jobs changed is waiting and the stream's rate limit lets it
        through (the confirming re-reads then overlap the vendor's jobs instead of
        following them), and take background lookup steps. Links wait on those lookups,
        so they go on even when a step outlasts the wait: a poll may be a little late."""
        deadline = self._clock() + seconds
        while (left := deadline - self._clock()) >= INSTANT:
            due = [
                (adapter.changes_ready_in(), side)
                for side, adapter in self.adapters.items()
                if self._unread[side] >= adapter.change_page_size
            ]
            read_in, side = min(due, key=lambda item: item[0], default=(NEVER, None))
            if read_in < INSTANT and side is not None:
                self._read_page(side, self.adapters[side])
                continue
            task, wait = choose(self._background)
            if task is not None:
                task.step()
                self._background = [t for t in self._background if not t.finished]
                continue
            self.sleep(min(left, wait, read_in))

    def _poll_wait(self, in_flight: Mapping[str, object]) -> float:
        started = [self._job_started[j] for j in in_flight if j in self._job_started]
        if not started:
            return _MIN_POLL_WAIT
        due = min(started) + timedelta(seconds=self._job_duration.estimate())
        wait = (due - self.now()).total_seconds()
        return min(max(wait, _MIN_POLL_WAIT), _MAX_POLL_WAIT)

    def _job_ended(
        self,
        job_id: str,
        status: JobStatus,
        failed_ids: Mapping[int, str],
        batch: Sequence[OperationView],
    ) -> None:
        """A job's end is proof of its outcome, not the outcome itself: its operations
        stay `sent` until the target is re-read (a failed job may have done part of its
        work), and one the re-read shows undone is sent again (`_settle_unreached`)."""
        self._job_states[job_id] = status
        for op in batch:
            if op.ticket_id in failed_ids:
                self._job_errors[op.id] = f"job {job_id}: {failed_ids[op.ticket_id]}"
            elif status in (JobStatus.FAILED, JobStatus.KILLED):
                self._job_errors[op.id] = f"job {job_id} {status.value}"

    def _send_failed(
        self,
        adapter: Adapter,
        transition: Transition,
        batch: list[OperationView],
        exc: AdapterError,
    ) -> None:
        """How the call ended decides what happens to its operations: rejected → failed
        (a person looks); may have been acted on → left `sent` for a re-read to settle,
        unless resending is harmless; not sent → planned again."""
        message = str(exc)
        if isinstance(exc, PermanentError):
            # e.g. 404 for the whole batch: the re-read below tells which were already done
            self._record_failures(batch, {op.id: message for op in batch}, retry=False)
        elif isinstance(exc, OutcomeUnknownError) and not adapter.resend_harmless(transition):
            self.ledger.note_unknown(
                [op.id for op in batch],
                run_id=self.run_id,
                reason=f"outcome unknown ({message}); re-read before any resend",
            )
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

    def follow_jobs(self) -> None:
        """Settle what earlier runs left, first step: the vendor jobs they recorded are
        polled in bulk. Jobs still running are followed to their end by this run; how
        the others ended tells `confirm_sent` whether an undone write may be resent."""
        jobs: dict[Side, dict[str, list[OperationView]]] = defaultdict(dict)
        for op in self.ledger.operations([OperationStatus.SENT]):
            if op.job_id:
                jobs[op.target].setdefault(op.job_id, []).append(op)
        now = self.now()
        for side, batches in jobs.items():
            adapter = self.adapters.get(side)
            if adapter is None:
                continue
            try:
                states = adapter.poll(list(batches))
            except AdapterError as exc:
                self.counts[f"{side}.read_errors"] += 1
                log.warning("jobs.poll_failed", side=side, error=str(exc))
                continue
            for job_id, batch in batches.items():
                state = states.get(job_id)
                if state is not None and state.status.terminal:
                    self._job_ended(job_id, state.status, state.failed_ids, batch)
                    continue
                self._in_flight[side][job_id] = batch
                self._job_started[job_id] = min((op.sent_at or now for op in batch), default=now)
            self.counts["jobs_followed"] += len(batches)

    def confirm_sent(self) -> None:
        """Re-read the targets of sent operations: the change streams first (cheap, and
        they show purges), then direct lookups for whatever they did not show; then
        settle what is still unconfirmed (`_settle_unreached`)."""
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
            if not (op.job_id and op.job_id in self._in_flight[op.target]):
                by_side[op.target].append(op)
        known: dict[Side, set[int]] = defaultdict(set)
        for side, ops in by_side.items():
            adapter = self.adapters.get(side)
            if adapter is not None:
                known[side] = self._reread(side, adapter, ops)
        self._settle_unreached(known)

    def _reread(self, side: Side, adapter: Adapter, ops: Sequence[OperationView]) -> set[int]:
        """Look the targets up in bulk and record them; the ticket ids whose state is known."""
        links = self.ledger.load_pairs(op.link_id for op in ops)
        ids = list(dict.fromkeys(links[op.link_id].ids for op in ops))
        known: set[int] = set()
        for _ready in self._lookup_steps(side, adapter, ids, known):
            pass
        return known

    def _settle_unreached(self, known: Mapping[Side, set[int]]) -> None:
        """Sent operations whose target, freshly re-read, shows they did not happen: sent
        again where that cannot do harm twice, i.e. when resending is harmless, when their
        job has ended (the re-read is after its end), or when the vendor's `outcome_wait`
        has passed since sending (a call whose answer was lost was no queued job). The
        others stay `sent`, each with the reason, so that no irreversible write is ever
        sent twice and none is stuck unseen."""
        now = self.now()
        resend: dict[int, str] = {}
        waiting: dict[int, str] = {}
        ops = self.ledger.operations([OperationStatus.SENT])
        for op in ops:
            adapter = self.adapters.get(op.target)
            if adapter is None:
                continue
            if op.job_id and op.job_id in self._in_flight[op.target]:
                waiting[op.id] = f"job {op.job_id} still running"
                continue
            if op.ticket_id not in known.get(op.target, set()):
                waiting[op.id] = "target could not be re-read; settled by a later run"
                continue
            status = self._job_states.get(op.job_id) if op.job_id else None
            sent_at = op.sent_at or now
            due = sent_at + adapter.outcome_wait
            undone = "re-read shows it not applied"
            if status in _JOB_ENDED:
                why = self._job_errors.get(op.id) or f"job {op.job_id} {status}"
                resend[op.id] = f"{why}; {undone}; sending again"
            elif op.job_id is None and adapter.resend_harmless(op.transition):
                resend[op.id] = f"{undone}; sending again (harmless to resend)"
            elif now >= due:
                resend[op.id] = f"{undone} {now - sent_at} after sending; sending again"
            else:
                waiting[op.id] = (
                    f"outcome unknown: re-checked after {due.isoformat(timespec='seconds')} "
                    "before any resend"
                )
        if resend:
            self._record_failures([op for op in ops if op.id in resend], resend, retry=True)
            self.counts["resent_after_reread"] += len(resend)
        if waiting:
            self.ledger.note_waiting(waiting)
            self.counts["awaiting_outcome"] = len(waiting)


def iter_plan(lines: Iterable[PlanLine]) -> Iterable[str]:
    for line in lines:
        arrow = " then ".join(line.transitions) or "-"
        yield (
            f"link {line.link_id} (superoffice {line.superoffice_id}, zendesk "
            f"{line.zendesk_id}): {line.outcome} {line.target or ''} {arrow} ({line.reason})"
        )
