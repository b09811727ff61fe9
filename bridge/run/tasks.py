"""Vendor reads taken a step at a time, so that one thread can fill every wait.

A run waits a lot: on a change export that allows a few pages a minute, on vendor jobs,
on per-ticket reads limited to a few calls a second. Instead of threads, which a simulated
clock cannot follow, work that may be interleaved is a generator: it yields after each
vendor call a `ReadyIn`, the seconds until its next call can go through without waiting
on a rate limit. `choose` picks what to do next; a `Scheduler` does it, background work
filling the waits of the foreground.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

__all__ = ["INSTANT", "NEVER", "ReadyIn", "Scheduler", "Task", "choose", "now_ready"]

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


class Scheduler:
    """Runs foreground tasks to their end, in turns, each when it can go on unhindered;
    background tasks (lookups that go on while the run does other things) fill the time
    until one can; it sleeps only when none can. Background tasks stay until they end or
    are run to their end (`take_background`)."""

    def __init__(self, sleep: Callable[[float], None]) -> None:
        self._sleep = sleep
        self._background: list[Task] = []

    @property
    def has_background(self) -> bool:
        return bool(self._background)

    def add_background(self, task: Task) -> None:
        self._background.append(task)

    def take_background(self) -> list[Task]:
        """The background tasks, handed over (to be run as foreground): none is left."""
        tasks, self._background = self._background, []
        return tasks

    def step_background(self) -> tuple[bool, float]:
        """Take one background step if one can go now: (True, 0); else (False, the wait
        until one can, `NEVER` when none is left)."""
        task, wait = choose(self._background)
        if task is None:
            return False, wait
        task.step()
        self._prune()
        return True, 0.0

    def run(self, foreground: list[Task]) -> None:
        """Step the tasks of `foreground` to their end in turns (the list is consumed)."""
        while foreground:
            task, wait = choose(foreground)
            if task is None:
                task, other = choose(self._background)
                wait = min(wait, other)
            if task is None:
                self._sleep(wait)
                continue
            task.step()
            if task in foreground:
                foreground.remove(task)  # to the back: the others go first next time
                if not task.finished:
                    foreground.append(task)
            self._prune()

    def _prune(self) -> None:
        self._background = [t for t in self._background if not t.finished]
