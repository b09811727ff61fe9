"""Progress bars on a terminal: the command line's `ProgressSink` (`bridge/progress.py`).

A bar per phase, with counts, rate and time left (when the phase's total is known), drawn
on stderr by `rich` while the command runs; nothing at all when stderr is not a terminal
(cron, systemd, a pipe, a test), so logs and output stay clean. `BRIDGE_PROGRESS=always`
draws them anyway (a terminal that does not say it is one; the tests), `never` never does.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from bridge.progress import NO_PROGRESS, ProgressSink, reporting

__all__ = ["ENV_PROGRESS", "TerminalProgress", "terminal_progress"]

#: `auto` (bars only on a terminal), `always`, `never`
ENV_PROGRESS = "BRIDGE_PROGRESS"
_MODES = ("auto", "always", "never")


class _Count(ProgressColumn):
    """`1,234/5,000`, or `1,234` while the total is unknown."""

    def render(self, task: Task) -> Text:
        done = f"{int(task.completed):,}"
        return Text(f"{done}/{int(task.total):,}" if task.total is not None else done)


class _Rate(ProgressColumn):
    """Items a second, over the last few seconds."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f}/s", style="progress.data.speed")


class TerminalProgress:
    """A rich progress display, one bar per phase, in the order phases start."""

    def __init__(self, console: Console) -> None:
        self._bars = Progress(
            TextColumn("{task.description:<22}"),
            BarColumn(),
            _Count(),
            _Rate(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._tasks: dict[str, TaskID] = {}

    def _task(self, phase: str, total: int | None = None) -> TaskID:
        task = self._tasks.get(phase)
        if task is None:
            task = self._tasks[phase] = self._bars.add_task(phase, total=total)
        return task

    def expect(self, phase: str, count: int) -> None:
        if phase not in self._tasks:
            self._task(phase, count)
            return
        task = self._tasks[phase]
        self._bars.update(task, total=(self._get(task).total or 0) + count)

    def advance(self, phase: str, count: int = 1) -> None:
        self._bars.advance(self._task(phase), count)

    def finish(self, phase: str) -> None:
        task = self._tasks.get(phase)
        if task is not None:
            self._bars.update(task, total=self._get(task).completed)

    def _get(self, task: TaskID) -> Task:
        return next(t for t in self._bars.tasks if t.id == task)

    def __enter__(self) -> TerminalProgress:
        self._bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """The last frame shows each phase as it ended: one whose total was never known
        is complete at what it counted."""
        for task in self._bars.tasks:
            if task.total is None:
                self._bars.update(task.id, total=task.completed)
        self._bars.stop()


def _mode() -> str:
    mode = os.environ.get(ENV_PROGRESS, "auto").strip().lower()
    return mode if mode in _MODES else "auto"


@contextmanager
def terminal_progress() -> Iterator[ProgressSink]:
    """Progress bars on stderr for the block when it is a terminal (or `BRIDGE_PROGRESS`
    says `always`); the core's progress goes to them meanwhile."""
    mode = _mode()
    console = Console(stderr=True, force_terminal=True if mode == "always" else None)
    if mode == "never" or not console.is_terminal:
        with reporting(NO_PROGRESS) as sink:
            yield sink
        return
    with TerminalProgress(console) as bars, reporting(bars) as sink:
        yield sink
