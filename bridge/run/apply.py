"""Apply: send the planned operations to the vendors, in bulk, crash-safely.

Each batch is marked `sent` in the ledger before the vendor call and its answer recorded
after it (a job to follow, a purge pending retention, or how the call failed: rejected →
failed; may have been acted on → left `sent` for a re-read to settle, unless resending is
harmless; not sent → planned again). At most `job_limit` vendor jobs are in flight per
target (`jobs.Jobs`); the purge guards (`guards.py`) stand before every purge.

Seam: **a worker process will run apply and confirm on its own.** `Applier` needs only the
run's context, the jobs it shares with settle and confirm, a recorder, what to do while
it waits (`jobs.Meanwhile`: in a sync run the observe step fills the waits) and what to
call when lookups made links known (`decide`: in a sync run the decide step; a worker
passes a function that does nothing). It reads its work from the ledger's outbox, never
from another step.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence

import structlog

from bridge import progress
from bridge.core.batches import chunked
from bridge.core.contract import (
    AccountBusyError,
    Adapter,
    AdapterError,
    OutcomeUnknownError,
    PermanentError,
    RefusedError,
    Submitted,
)
from bridge.core.model import Side, Transition
from bridge.crashpoints import crash_point
from bridge.ledger.sync import OperationView
from bridge.run.guards import PurgeCap, check_before_purge, check_before_soft_delete
from bridge.run.jobs import Jobs, Meanwhile
from bridge.run.record import Recorder
from bridge.run.state import RunContext

__all__ = ["Applier"]

log = structlog.get_logger("bridge.sync")

#: the order groups are sent in: a purge's soft delete goes first
_ORDER = {Transition.SOFT_DELETE: 0, Transition.RESTORE: 1, Transition.PURGE: 2}


class Applier:
    """The apply step of the run of `ctx`."""

    def __init__(
        self,
        ctx: RunContext,
        jobs: Jobs,
        record: Recorder,
        meanwhile: Meanwhile,
        decide: Callable[[], None],
    ) -> None:
        self._ctx = ctx
        self._jobs = jobs
        self._record = record
        self._meanwhile = meanwhile
        self._decide = decide
        self._cap = PurgeCap(ctx)

    def apply_planned(self) -> bool:
        """Send every operation that is ready; True when something was sent.

        Vendor jobs are not waited for between groups: steps that become ready meanwhile
        (a purge whose soft delete a read made while jobs ran has confirmed) are sent in
        the same call, into the job slots the earlier writes free. Each operation is tried
        once per call: what fails goes to the next round."""
        state = self._ctx.state
        sent = False
        tried: set[int] = set()
        if state.unavailable:
            return False
        while True:
            if state.decide_due and not state.interrupted:
                state.decide_due = False
                self._decide()  # links a background lookup has just made known
            # ready: see `SyncStore.ready_operations`
            candidates = [] if state.interrupted else self._ctx.ledger.ready_operations()
            candidates = [op for op in candidates if op.id not in tried]
            ready = self._cap.admit(candidates)
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
        for side in self._jobs.busy_sides():
            adapter = self._ctx.adapters.get(side)
            if adapter is not None:
                until = len(self._jobs.in_flight(side))
                self._jobs.wait(side, adapter, self._meanwhile, until_below=until)
                return True
        if self._ctx.state.interrupted:
            return False
        return self._meanwhile.step_background()

    def _apply(self, ready: Sequence[OperationView]) -> tuple[bool, set[int]]:
        """Send the ready operations, grouped per target and transition. Returns whether
        anything was sent, and the ids left unsent to be offered again: the run was
        interrupted, or a background lookup made links known that should go first."""
        ctx = self._ctx
        groups: dict[tuple[Side, Transition], list[OperationView]] = defaultdict(list)
        for op in ready:
            groups[(op.target, op.transition)].append(op)
        sent = False
        unsent: set[int] = set()
        for (target, transition), group in sorted(groups.items(), key=lambda g: _ORDER[g[0][1]]):
            if unsent:
                unsent.update(op.id for op in group)
                continue
            adapter = ctx.adapters.get(target)
            if adapter is None or not ctx.options.policy.direction.allows_writing(target):
                continue
            if transition is Transition.PURGE:
                group = check_before_purge(ctx, target, adapter, group)
            elif transition is Transition.SOFT_DELETE:
                group = check_before_soft_delete(ctx, target, adapter, group)
            taken, submitted = self._send(target, transition, adapter, group)
            sent |= submitted
            unsent.update(op.id for op in group[taken:])
        return sent, unsent

    def _send(
        self, target: Side, transition: Transition, adapter: Adapter, ops: list[OperationView]
    ) -> tuple[int, bool]:
        """Send `ops` in bulk calls, keeping at most `job_limit` vendor jobs in flight.
        Returns how many were taken (sent, or failed and recorded; fewer than all when
        the run is stopping or newly known links should be decided first), and whether
        the vendor accepted any."""
        ctx, state = self._ctx, self._ctx.state
        in_flight = self._jobs.in_flight(target)
        job_limit = adapter.job_limit or 0
        taken = 0
        submitted_any = False
        for batch in chunked(ops, adapter.batch_limit):
            while job_limit and len(in_flight) >= job_limit:
                self._jobs.wait(target, adapter, self._meanwhile, until_below=job_limit)
            if ctx.stop() or state.decide_due:
                break
            taken += len(batch)
            progress.current().advance(f"writing {target}", len(batch))
            batch_id = uuid.uuid4().hex[:12]
            ids = [op.id for op in batch]
            crash_point("before_mark_sent")
            ctx.ledger.mark_sent(ids, run_id=state.run_id, batch=batch_id)
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
            state.counts[f"{target}.{transition}.sent"] += len(batch)
            log.info(
                "vendor.batch",
                run=state.run_id,
                side=target,
                transition=transition.value,
                count=len(batch),
                batch=batch_id,
                job=submitted.job_id,
            )
            self._after_submit(target, submitted, batch)
            ctx.on_batch()
        return taken, submitted_any

    def _after_submit(
        self, target: Side, submitted: Submitted, batch: Sequence[OperationView]
    ) -> None:
        ctx, state = self._ctx, self._ctx.state
        by_ticket = {op.ticket_id: op for op in batch}
        if submitted.pending_until:
            ctx.ledger.mark_pending_retention(
                {by_ticket[t].id: until for t, until in submitted.pending_until.items()},
                run_id=state.run_id,
            )
            state.counts["pending_retention"] += len(submitted.pending_until)
        if submitted.job_id:
            ctx.ledger.set_job([op.id for op in batch], submitted.job_id)
            self._jobs.add(target, submitted.job_id, batch, ctx.now())

    def _send_failed(
        self,
        adapter: Adapter,
        transition: Transition,
        batch: Sequence[OperationView],
        exc: AdapterError,
    ) -> None:
        """How the call ended decides what happens to its operations: our credentials or
        rights refused → planned again without using an attempt (the run ends
        `unavailable` for a person to fix them; the writes go once they are); not sent for
        a shared account's turn → planned again, no attempt used either; rejected →
        failed (a person looks); may have been acted on → left `sent` for a re-read to
        settle, unless resending is harmless; not sent → planned again."""
        ctx, state = self._ctx, self._ctx.state
        message = str(exc)
        state.gave_up(exc, adapter.side)
        if isinstance(exc, RefusedError | AccountBusyError):
            self._record.failures({op.id: message for op in batch}, retry=True, charged=False)
        elif isinstance(exc, PermanentError):
            # e.g. 404 for the whole batch: the re-read below tells which were already done
            self._record.failures({op.id: message for op in batch}, retry=False)
        elif isinstance(exc, OutcomeUnknownError) and not adapter.resend_harmless(transition):
            ctx.ledger.note_unknown(
                [op.id for op in batch],
                run_id=state.run_id,
                reason=f"outcome unknown ({message}); re-read before any resend",
            )
            state.counts["unknown_outcome"] += len(batch)
        else:
            self._record.failures({op.id: message for op in batch}, retry=True)
        log.warning("vendor.batch_failed", run=state.run_id, error=message, count=len(batch))
