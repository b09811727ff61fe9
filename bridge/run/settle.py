"""Settle: what earlier runs (and this one) left `sent` is followed and, once re-read, settled.

A run begins here: the vendor jobs that `sent` operations recorded are polled in bulk
(`follow_jobs`); those still running are followed to their end by this run, the others'
end is noted. Then, each time confirm has re-read the targets, `settle_unreached` decides
what becomes of every operation still `sent`: it is **the one place a resend is decided**,
so that no irreversible write is ever sent twice and none is stuck unseen, in a sync and a
migration, within a run and across runs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

import structlog

from bridge.core.contract import AdapterError, JobStatus
from bridge.core.model import Side
from bridge.ledger.sync import OperationView
from bridge.ledger.tables import OperationStatus
from bridge.run.jobs import Jobs
from bridge.run.record import Recorder
from bridge.run.state import RunContext

__all__ = ["Settler"]

log = structlog.get_logger("bridge.sync")

#: job ends that prove a write's outcome: a re-read after them shows what it did
_JOB_ENDED = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.KILLED})


class Settler:
    """The settle step of the run of `ctx`."""

    def __init__(self, ctx: RunContext, jobs: Jobs, record: Recorder) -> None:
        self._ctx = ctx
        self._jobs = jobs
        self._record = record
        #: whether `follow_jobs` found operations sent (None: not called)
        self.found_sent: bool | None = None

    def follow_jobs(self) -> None:
        """Settle what earlier runs left, first step: the vendor jobs they recorded are
        polled in bulk. Jobs still running are followed to their end by this run; how
        the others ended tells `settle_unreached` whether an undone write may be resent."""
        ctx, counts = self._ctx, self._ctx.state.counts
        jobs: dict[Side, dict[str, list[OperationView]]] = defaultdict(dict)
        # none `sent` at the run's start: none until this run sends (it holds the lease)
        sent = ctx.ledger.operations([OperationStatus.SENT]) if ctx.facts().sent else []
        self.found_sent = bool(sent)
        for op in sent:
            if op.job_id:
                jobs[op.target].setdefault(op.job_id, []).append(op)
        now = ctx.now()
        for side, batches in jobs.items():
            adapter = ctx.adapters.get(side)
            if adapter is None:
                continue
            try:
                states = adapter.poll(list(batches))
            except AdapterError as exc:
                counts[f"{side}.read_errors"] += 1
                log.warning("jobs.poll_failed", side=side, error=str(exc))
                continue
            for job_id, batch in batches.items():
                state = states.get(job_id)
                if state is not None and state.status.terminal:
                    self._jobs.ended(job_id, state.status, state.failed_ids, batch)
                    continue
                started = min((op.sent_at or now for op in batch), default=now)
                self._jobs.add(side, job_id, batch, started)
            counts["jobs_followed"] += len(batches)

    def settle_unreached(self, known: Mapping[Side, set[int]]) -> None:
        """Sent operations whose target, freshly re-read (`known`: the ticket ids whose
        state the re-read found), shows they did not happen: sent again where that cannot
        do harm twice, i.e. when resending is harmless, when their job has ended (the
        re-read is after its end), or when the vendor's `outcome_wait` has passed since
        sending (a call whose answer was lost was no queued job). The others stay `sent`,
        each with the reason, so that no irreversible write is ever sent twice and none
        is stuck unseen."""
        ctx, counts = self._ctx, self._ctx.state.counts
        now = ctx.now()
        resend: dict[int, str] = {}
        waiting: dict[int, str] = {}
        for op in ctx.ledger.operations([OperationStatus.SENT]):
            adapter = ctx.adapters.get(op.target)
            if adapter is None:
                continue
            if self._jobs.running(op):
                waiting[op.id] = f"job {op.job_id} still running"
                continue
            if op.ticket_id not in known.get(op.target, set()):
                waiting[op.id] = "target could not be re-read; settled by a later run"
                continue
            status = self._jobs.ended_with(op.job_id)
            sent_at = op.sent_at or now
            due = sent_at + adapter.outcome_wait
            undone = "re-read shows it not applied"
            if status in _JOB_ENDED:
                why = self._jobs.error(op.id) or f"job {op.job_id} {status}"
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
            self._record.failures(resend, retry=True)
            counts["resent_after_reread"] += len(resend)
        if waiting:
            self._ctx.ledger.note_waiting(waiting)
            counts["awaiting_outcome"] = len(waiting)
