"""One run per pair at a time, on both backends, with real processes racing: every
ledger transaction takes the backend's write lock first (SQLite's BEGIN IMMEDIATE,
PostgreSQL's advisory lock), so a claim on the lease is a check-then-write no other
process can interleave."""

from __future__ import annotations

import multiprocessing
from datetime import timedelta

from bridge.ledger import LeaseHeldError, Ledger
from bridge.vendors.registry import SIDES

_RACERS = 4


def _claim(
    url: str,
    holder: str,
    start: multiprocessing.synchronize.Barrier,
    out: multiprocessing.Queue[str],
) -> None:  # type: ignore[name-defined]
    with Ledger.open(url, sides=SIDES) as ledger:
        start.wait(30)
        try:
            ledger.acquire_lease("sync", holder, timedelta(minutes=5))
        except LeaseHeldError as exc:
            out.put(f"held:{exc.holder}")
        else:
            out.put(f"won:{holder}")
        # every claim is made while every claimant lives: on PostgreSQL a lease whose
        # holder's session ended is taken over at once (test_lease_dies_with_its_session)
        start.wait(30)


def test_racing_processes_claim_the_lease_exactly_once(ledger_url: str) -> None:
    Ledger.open(ledger_url, sides=SIDES).close()
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(_RACERS)
    out: multiprocessing.Queue[str] = context.Queue()
    racers = [
        context.Process(target=_claim, args=(ledger_url, f"other-host:{n}", start, out))
        for n in range(_RACERS)
    ]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(120)
    assert [racer.exitcode for racer in racers] == [0] * _RACERS
    answers = sorted(out.get(timeout=5) for _ in racers)
    won = [a for a in answers if a.startswith("won:")]
    assert len(won) == 1, answers
    winner = won[0].removeprefix("won:")
    assert answers.count(f"held:{winner}") == _RACERS - 1
