"""What `bridge serve` keeps in memory between a call and its run stays bounded."""

from __future__ import annotations

from bridge.core.hints import Hint
from bridge.core.model import Side
from bridge.serve.queue import Deliveries, PendingHints

ZENDESK = Side("zendesk")


def test_deliveries_forget_what_the_replay_window_refuses_anyway() -> None:
    seen = Deliveries(window_seconds=60, limit=1000)
    assert seen.first_time(["a"], now=0)
    assert not seen.first_time(["a"], now=59)
    assert not seen.first_time(["b", "a"], now=59)  # any key seen: a duplicate
    assert seen.first_time(["b"], now=59)  # a duplicate's other keys are not kept
    assert seen.first_time(["a"], now=200)  # older than the window: forgotten


def test_deliveries_are_bounded_by_their_limit() -> None:
    seen = Deliveries(window_seconds=3600, limit=100)
    for n in range(1000):
        assert seen.first_time([f"id-{n}"], now=n / 1000)
    assert len(seen) == 100
    assert not seen.first_time(["id-999"], now=1.0)
    assert seen.first_time(["id-0"], now=1.0)  # the oldest went first


def test_a_ticket_named_twice_waits_once_and_put_back_waits_until_the_retry() -> None:
    pending = PendingHints()
    pending.add(Hint(ZENDESK, (1,), "e", "d1", actor_id=7), now=10.0)
    pending.add(Hint(ZENDESK, (1, 2), "e", "d2", actor_id=9), now=10.5)
    assert pending.depth == 2
    assert pending.ready_at(coalesce=1.0) == 11.0  # from the first hint
    batch = pending.take()
    assert pending.depth == 0
    assert pending.ready_at(coalesce=1.0) is None
    assert batch[ZENDESK][1].actors == {7, 9}
    pending.put_back(batch, now=12.0, retry_at=20.0)
    assert pending.depth == 2
    assert pending.ready_at(coalesce=1.0) == 20.0
