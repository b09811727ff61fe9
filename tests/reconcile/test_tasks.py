"""Interleaved steps: which task goes next, and when nothing can."""

from __future__ import annotations

from collections.abc import Iterator

from bridge.run.tasks import INSTANT, NEVER, ReadyIn, Task, choose, now_ready


def _steps(log: list[str], name: str, waits: list[float]) -> Iterator[ReadyIn]:
    for wait in waits:
        log.append(name)
        yield lambda wait=wait: wait  # type: ignore[misc]


def test_the_first_task_that_can_go_now_is_chosen_in_the_given_order() -> None:
    held = Task(iter(()), ready=lambda: 30.0)
    first = Task(iter(()), ready=now_ready)
    second = Task(iter(()), ready=now_ready)
    assert choose([held, first, second]) == (first, 0.0)
    assert choose([held, second, first]) == (second, 0.0)


def test_when_none_can_go_the_shortest_wait_is_given() -> None:
    tasks = [Task(iter(()), ready=lambda: 30.0), Task(iter(()), ready=lambda: 6.0)]
    assert choose(tasks) == (None, 6.0)


def test_a_wait_below_a_clock_tick_counts_as_none() -> None:
    almost = Task(iter(()), ready=lambda: INSTANT / 10)
    assert choose([almost]) == (almost, 0.0)


def test_finished_tasks_are_skipped_and_nothing_left_waits_forever() -> None:
    log: list[str] = []
    task = Task(_steps(log, "a", [0.0]))
    task.step()
    assert log == ["a"]
    assert not task.finished
    task.step()
    assert task.finished
    assert choose([task]) == (None, NEVER)
    assert choose([]) == (None, NEVER)


def test_a_step_reports_when_its_next_step_can_go() -> None:
    log: list[str] = []
    task = Task(_steps(log, "export", [6.0, 0.0]))
    task.step()
    assert task.ready() == 6.0
    assert choose([task]) == (None, 6.0)
    task.step()
    assert choose([task]) == (task, 0.0)
