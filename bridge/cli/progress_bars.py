"""The progress bars themselves, drawn by `rich` (`bridge/cli/progress.py` decides
whether a command shows them: imported only then)."""

from __future__ import annotations

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

__all__ = ["TerminalProgress"]


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
