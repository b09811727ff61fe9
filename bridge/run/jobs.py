"""The vendor jobs a run follows: which are in flight, how each ended, when to poll.

Shared by three steps: settle finds the jobs earlier runs recorded and follows those still
running (`follow`), apply adds the jobs it submits and waits for job slots (`wait`), and
confirm holds back the settlement of operations whose job still runs (`running`) and asks
how the others ended (`ended_with`, `error`). A job's end is proof of its outcome, not the
outcome itself: its operations stay `sent` until their target is re-read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from bridge import progress
from bridge.core.contract import Adapter, AdapterError, JobStatus
from bridge.core.model import Side
from bridge.ledger.sync import OperationView
from bridge.run.jobtiming import JobDuration

__all__ = ["Jobs", "Meanwhile"]

log = structlog.get_logger("bridge.sync")

#: bounds of the wait before polling vendor jobs, in seconds
_MIN_POLL_WAIT = 0.5
_MAX_POLL_WAIT = 30.0


class Meanwhile(Protocol):
    """What a run does while it waits on vendor jobs. In a sync run it is the observe step
    (`observe.Observer`): reads and background lookups fill the waits. A worker that only
    applies and confirms can pass anything that sleeps."""

    def idle(self, seconds: float) -> None:
        """Let `seconds` pass, doing other work meanwhile if there is any."""
        ...

    def jobs_done(self, side: Side, tickets: int) -> None:
        """Jobs that changed `tickets` tickets on `side` have ended."""
        ...

    def step_background(self) -> bool:
        """Do one piece of background work; False when there is none."""
        ...


class Jobs:
    """The vendor jobs of one run: in flight per target, their start and their end."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self._now = now
        #: each target's vendor jobs in flight, with the operations they carry
        self._in_flight: defaultdict[Side, dict[str, Sequence[OperationView]]] = defaultdict(dict)
        #: when each vendor job was submitted, and how long jobs have been taking
        self._started: dict[str, datetime] = {}
        self._duration = JobDuration()
        #: how vendor jobs of this run, or left by earlier ones, ended
        self._ended: dict[str, JobStatus] = {}
        #: what a failed job said about each of its operations
        self._errors: dict[int, str] = {}

    def in_flight(self, side: Side) -> Mapping[str, Sequence[OperationView]]:
        """`side`'s jobs in flight, with their operations."""
        return self._in_flight[side]

    def busy_sides(self) -> list[Side]:
        """The targets with jobs in flight, in the order they were first followed."""
        return [side for side, jobs in self._in_flight.items() if jobs]

    def add(
        self, side: Side, job_id: str, batch: Sequence[OperationView], started: datetime
    ) -> None:
        """Follow a job to its end: one just submitted, or one an earlier run left."""
        self._in_flight[side][job_id] = batch
        progress.current().expect(f"jobs on {side}", 1)
        self._started[job_id] = started

    def running(self, op: OperationView) -> bool:
        """Whether `op` is carried by a job still in flight."""
        if not op.job_id:
            return False
        return op.job_id in self._in_flight[op.target]

    def ended_with(self, job_id: str | None) -> JobStatus | None:
        """How the job ended, when this run saw it end."""
        return self._ended.get(job_id) if job_id else None

    def error(self, op_id: int) -> str | None:
        """What a failed job said about the operation."""
        return self._errors.get(op_id)

    def ended(
        self,
        job_id: str,
        status: JobStatus,
        failed_ids: Mapping[int, str],
        batch: Sequence[OperationView],
    ) -> None:
        """A job's end is proof of its outcome, not the outcome itself: its operations
        stay `sent` until the target is re-read (a failed job may have done part of its
        work), and one the re-read shows undone is sent again (`settle.Settler`)."""
        self._ended[job_id] = status
        for op in batch:
            if op.ticket_id in failed_ids:
                self._errors[op.id] = f"job {job_id}: {failed_ids[op.ticket_id]}"
            elif status in (JobStatus.FAILED, JobStatus.KILLED):
                self._errors[op.id] = f"job {job_id} {status.value}"

    def wait(self, side: Side, adapter: Adapter, meanwhile: Meanwhile, *, until_below: int) -> None:
        """Poll `side`'s jobs until fewer than `until_below` are still running.

        Each poll is timed for when the oldest job in flight should be done, by an estimate
        of job duration that each poll corrects: polling blindly (every second, or with a
        growing wait) costs more calls than the writes themselves."""
        in_flight = self._in_flight[side]
        while len(in_flight) >= until_below:
            meanwhile.idle(self._poll_wait(in_flight))
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
            now = self._now()
            for job_id in in_flight:
                started = self._started.get(job_id)
                if started is not None:
                    age = (now - started).total_seconds()
                    self._duration.observe(age, done=job_id in finished)
            for job_id, state in states.items():
                if job_id not in finished:
                    continue
                batch = in_flight.pop(job_id)
                progress.current().advance(f"jobs on {side}")
                self._started.pop(job_id, None)
                meanwhile.jobs_done(adapter.side, len(batch))
                self.ended(job_id, state.status, state.failed_ids, batch)

    def _poll_wait(self, in_flight: Mapping[str, object]) -> float:
        started = [self._started[j] for j in in_flight if j in self._started]
        if not started:
            return _MIN_POLL_WAIT
        due = min(started) + timedelta(seconds=self._duration.estimate())
        wait = (due - self._now()).total_seconds()
        return min(max(wait, _MIN_POLL_WAIT), _MAX_POLL_WAIT)
