"""Progress of long phases, as the core reports it: a sink the code calls, no-op by default.

The run, a migration, a link import and a report each take minutes on a large tenant. They
say how far they are through one small protocol (`ProgressSink`) and never know where it
goes: the command line installs a terminal sink (`bridge/cli/progress.py`, progress bars
with counts, rate and time left) for the length of a command, and nothing anywhere else, so
tests, the demo, the benchmarks and a command run by cron pay one attribute lookup.

The current sink is a context variable (`reporting(sink)`, `current()`), not an argument:
the steps that report progress are built far from the command that shows it, and a sink
threaded through every constructor would be noise in each. A phase is named by what it
does, in words a person reads on the bar ("reading zendesk", "deciding", "writing
superoffice"); its total, when known, is announced with `expect` (several times if it
grows, e.g. one round of writes after another).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol

__all__ = ["NO_PROGRESS", "ProgressSink", "current", "reporting"]


class ProgressSink(Protocol):
    """Where a long phase reports how far it is."""

    def expect(self, phase: str, count: int) -> None:
        """`count` more items are coming in `phase` (its total grows by that much)."""
        ...

    def advance(self, phase: str, count: int = 1) -> None:
        """`count` more items of `phase` are done (the phase starts on its first report)."""
        ...

    def finish(self, phase: str) -> None:
        """`phase` is over: whatever was done is all there is."""
        ...


class _NoProgress:
    """The default: progress goes nowhere."""

    def expect(self, phase: str, count: int) -> None:
        return None

    def advance(self, phase: str, count: int = 1) -> None:
        return None

    def finish(self, phase: str) -> None:
        return None


NO_PROGRESS: ProgressSink = _NoProgress()
_current: ContextVar[ProgressSink] = ContextVar("bridge_progress", default=NO_PROGRESS)


def current() -> ProgressSink:
    """The sink progress goes to now (`NO_PROGRESS` unless a command installed one)."""
    return _current.get()


@contextmanager
def reporting(sink: ProgressSink) -> Iterator[ProgressSink]:
    """Send progress to `sink` for the length of the block."""
    token = _current.set(sink)
    try:
        yield sink
    finally:
        _current.reset(token)
