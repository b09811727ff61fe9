"""Poll timing learnt from polls: few early polls, and each poll soon after the job ends."""

from __future__ import annotations

from bridge.run.jobtiming import JobDuration


def _polls_until_done(timing: JobDuration, duration: float) -> tuple[int, float]:
    """Poll one job as the engine does; (polls made, how late the last one was)."""
    polls, age = 0, 0.0
    while True:
        age = max(age, timing.estimate())
        polls += 1
        done = age >= duration
        timing.observe(age, done)
        if done:
            return polls, age - duration
        age += 0.5  # a poll that found the job running is followed by a later one


def test_the_first_job_is_found_by_doubling_the_first_guess() -> None:
    timing = JobDuration(first_guess=2.0)
    polls, late = _polls_until_done(timing, 12.5)
    assert polls == 4  # 2, 4, 8 s still running; 16 s done
    assert late == 3.5
    assert timing.lower == 8.0
    assert timing.upper == 16.0


def test_later_jobs_are_polled_once_right_after_they_end() -> None:
    timing = JobDuration(first_guess=2.0, tolerance=0.5)
    rounds = [_polls_until_done(timing, 12.5) for _ in range(12)]
    total_polls = sum(polls for polls, _late in rounds)
    assert total_polls <= 4 + 11 + 4  # the search, then at most a few early polls
    assert [polls for polls, _late in rounds[-3:]] == [1, 1, 1]
    assert all(late <= 0.5 for _polls, late in rounds[-3:])


def test_jobs_that_get_slower_are_found_again() -> None:
    timing = JobDuration(first_guess=2.0)
    for _ in range(10):
        _polls_until_done(timing, 12.5)
    slower = [_polls_until_done(timing, 20.0) for _ in range(10)]
    assert slower[0][0] >= 2  # the old estimate was early once
    assert [polls for polls, _late in slower[-3:]] == [1, 1, 1]
    assert all(late <= 0.5 for _polls, late in slower[-3:])


def test_jobs_that_get_faster_lower_the_bounds() -> None:
    timing = JobDuration(first_guess=2.0)
    timing.observe(12.0, done=False)
    timing.observe(12.5, done=True)
    timing.observe(5.0, done=True)  # a small batch ended sooner
    assert timing.upper == 5.0
    assert timing.lower < timing.upper
    assert timing.estimate() <= 5.0
