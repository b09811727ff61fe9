"""Vendor reads taken a step at a time, so that one thread can fill every wait.

A run waits a lot: on Zendesk's export (10 pages a minute), on vendor jobs, on
SuperOffice's per-ticket reads (10 calls a second). Instead of threads, which a simulated
clock cannot follow, work that may be interleaved is a generator: it yields after each
vendor call a `ReadyIn`, the seconds until its next call can go through without waiting
on a rate limit. `choose` picks what to do next; the engine does it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

__all__ = ["INSTANT", "NEVER", "ReadyIn", "Task", "choose", "now_ready"]

#: seconds until a step can run unhindered (0: now)
ReadyIn = Callable[[], float]
NEVER = math.inf
#: a wait shorter than this is no wait: clocks count microseconds, so sleeping less
#: might not move a simulated clock at all
INSTANT = 0.001


def now_ready() -> float:
    return 0.0


@dataclass
class Task:
    """Interleavable work: `step` runs it to its next yield."""

    steps: Iterator[ReadyIn]
    ready: ReadyIn = now_ready
    finished: bool = False

    def step(self) -> None:
        ready = next(self.steps, None)
        if ready is None:
            self.finished = True
        else:
            self.ready = ready


def choose(tasks: Sequence[Task]) -> tuple[Task | None, float]:
    """The first unfinished task (in the given order) that can step now; else None and
    how long until one can (`NEVER` when none is left)."""
    soonest = NEVER
    for task in tasks:
        if task.finished:
            continue
        wait = task.ready()
        if wait < INSTANT:
            return task, 0.0
        soonest = min(soonest, wait)
    return None, soonest
