"""The Zendesk adapter against the live simulator over HTTP (127.0.0.1, port 0).

The simulator's clock is frozen and handed to the adapter as its sleep, so Retry-After
waits and job durations pass instantly and deterministically; assertions are on the
simulator's request counters and ticket states, never on elapsed time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
import requests
import urllib3.exceptions

from bridge.core.contract import JobState, JobStatus, OutcomeUnknownError, TransientError
from bridge.core.model import State, Transition
from bridge.sandbox import SimClock
from bridge.vendors.zendesk.adapter import ZendeskAdapter
from bridge.vendors.zendesk.sim.simulator import ZendeskSimulator, plan_limit

EMAIL = "admin@example.com"
TOKEN = "sandbox-token"


class SleepLog(list[float]):
    def __init__(self, clock: SimClock) -> None:
        super().__init__()
        self._clock = clock

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        self._clock.sleep(seconds)


@pytest.fixture
def sim() -> Iterator[ZendeskSimulator]:
    server = ZendeskSimulator(email=EMAIL, token=TOKEN, clock=SimClock(frozen=True))
    with server:
        server.configure({"rate_limits": False})
        yield server


def make_adapter(sim: ZendeskSimulator, **kwargs: object) -> tuple[ZendeskAdapter, SleepLog]:
    sleeps = SleepLog(sim.clock)
    options: dict[str, object] = {
        "base_url": sim.base_url,
        "email": EMAIL,
        "token": TOKEN,
        "sleep": sleeps,
        "clock": sim.clock.now,
        "bridge_user_id": 1,
        "job_poll_interval": 1.0,
    }
    options.update(kwargs)
    return ZendeskAdapter(**options), sleeps  # type: ignore[arg-type]


def run_all(adapter: ZendeskAdapter, transition: Transition, ids: Sequence[int]) -> list[JobState]:
    """Submit in batches of 100 and poll every job to its end, as the reconciler will."""
    jobs = []
    for start in range(0, len(ids), adapter.batch_limit):
        submitted = adapter.submit(transition, ids[start : start + adapter.batch_limit])
        if submitted.job_id:
            jobs.append(submitted.job_id)
    done: dict[str, JobState] = {}
    for _ in range(500):
        pending = [j for j in jobs if j not in done]
        if not pending:
            return [done[j] for j in jobs]
        done.update({j: s for j, s in adapter.poll(pending).items() if s.status.terminal})
        adapter._sleep(1.0)
    raise AssertionError("jobs never finished")


def states(sim: ZendeskSimulator, ids: Sequence[int]) -> set[str | None]:
    return {sim.ticket_state(i) for i in ids}


def test_250_tickets_soft_delete_restore_purge(sim: ZendeskSimulator) -> None:
    ids = sim.seed_tickets(count=250)
    adapter, _ = make_adapter(sim)

    jobs = run_all(adapter, Transition.SOFT_DELETE, ids)
    assert [j.status for j in jobs] == [JobStatus.COMPLETED] * 3
    assert sim.counters["DELETE tickets/destroy_many"] == 3
    assert states(sim, ids) == {"deleted"}
    views = adapter.lookup(ids)
    assert {v.state for v in views.values()} == {State.SOFT_DELETED}
    assert len(views) == 250
    assert sim.counters["GET deleted_tickets"] == 3  # 100 a page, stopped when all were found

    assert run_all(adapter, Transition.RESTORE, ids) == []  # synchronous: no jobs
    assert sim.counters["PUT deleted_tickets/restore_many"] == 3
    assert states(sim, ids) == {"active"}
    assert {v.state for v in adapter.lookup(ids).values()} == {State.ACTIVE}

    run_all(adapter, Transition.SOFT_DELETE, ids)
    jobs = run_all(adapter, Transition.PURGE, ids)
    assert [j.status for j in jobs] == [JobStatus.COMPLETED] * 3
    assert sim.counters["DELETE deleted_tickets/destroy_many"] == 3
    assert states(sim, ids) == {"purged"}
    before = sim.counters["GET tickets/{id}"]
    views = adapter.lookup(ids)
    assert {v.state for v in views.values()} == {State.PURGED}
    assert len(views) == 250
    # every purged id is confirmed by its own 404, after a complete deleted-ticket listing
    assert sim.counters["GET tickets/{id}"] - before == 250
    assert adapter.in_flight == ()


def test_429_storm_from_the_account_limit(sim: ZendeskSimulator) -> None:
    ids = sim.seed_tickets(count=120)
    sim.configure({"rate_limits": True, "account_limit": 2})
    adapter, sleeps = make_adapter(sim)
    jobs = run_all(adapter, Transition.SOFT_DELETE, ids)
    views = adapter.lookup(ids)
    statuses = sim.counts()["statuses"]
    assert statuses.get("429", 0) >= 3
    assert [j.status for j in jobs] == [JobStatus.COMPLETED] * 2
    assert {v.state for v in views.values()} == {State.SOFT_DELETED}
    assert len(views) == 120
    assert max(sleeps) <= 60  # waits come from Retry-After, a minute window at most


def test_429_storm_injected_at_random(sim: ZendeskSimulator) -> None:
    ids = sim.seed_tickets(count=150)
    sim.add_fault("status", status=429, retry_after=3, probability=0.3)
    adapter, sleeps = make_adapter(sim)
    run_all(adapter, Transition.SOFT_DELETE, ids)
    run_all(adapter, Transition.RESTORE, ids)
    assert states(sim, ids) == {"active"}
    injected = sim.counts()["statuses"].get("429", 0)
    assert injected > 0
    assert sleeps.count(3.0) == injected  # every 429 waited exactly its Retry-After


def test_5xx_burst_on_reads_is_retried(sim: ZendeskSimulator) -> None:
    ids = sim.seed_tickets(count=5)
    sim.add_fault("status", route="GET tickets/show_many", status=500, count=3)
    sim.add_fault("status", route="GET job_statuses/show_many", status=502, count=2)
    adapter, _ = make_adapter(sim)
    assert {v.state for v in adapter.lookup(ids).values()} == {State.ACTIVE}
    assert sim.counters["GET tickets/show_many"] == 4
    jobs = run_all(adapter, Transition.SOFT_DELETE, ids)
    assert jobs[0].status is JobStatus.COMPLETED
    assert states(sim, ids) == {"deleted"}


def test_5xx_on_purge_is_an_unknown_outcome_never_resent(sim: ZendeskSimulator) -> None:
    ids = sim.seed_tickets(count=3)
    sim.agent_act("delete", ids)
    for status in (500, 503):
        sim.add_fault(
            "status",
            route="DELETE deleted_tickets/destroy_many",
            status=status,
            retry_after=2,
            count=1,
        )
        with pytest.raises(OutcomeUnknownError, match="not idempotent"):
            make_adapter(sim)[0].submit(Transition.PURGE, ids)
    assert sim.counters["DELETE deleted_tickets/destroy_many"] == 2
    # a 503 may come from a proxy after Zendesk took the call: resent only by the engine,
    # after a re-read; a 429 is Zendesk's own "not processed" and is retried
    sim.add_fault(
        "status", route="DELETE deleted_tickets/destroy_many", status=429, retry_after=2, count=1
    )
    adapter, _ = make_adapter(sim)
    jobs = run_all(adapter, Transition.PURGE, ids)
    assert jobs[0].status is JobStatus.COMPLETED
    assert sim.counters["DELETE deleted_tickets/destroy_many"] == 4
    assert states(sim, ids) == {"purged"}


def test_a_purge_acted_on_then_answered_badly_is_an_unknown_outcome(
    sim: ZendeskSimulator,
) -> None:
    ids = sim.seed_tickets(count=2)
    sim.agent_act("delete", ids)
    for kind in ("malformed", "drop"):
        sim.add_fault(kind, route="DELETE deleted_tickets/destroy_many", when="after", count=1)
        with pytest.raises(OutcomeUnknownError):
            make_adapter(sim)[0].submit(Transition.PURGE, ids[:1] if kind == "drop" else ids[1:])
    sim.finish_jobs()
    assert states(sim, ids) == {"purged"}  # the vendor acted both times
    assert sim.counters["DELETE deleted_tickets/destroy_many"] == 2  # and nothing was resent


def test_dropped_soft_delete_is_resent(sim: ZendeskSimulator) -> None:
    ids = sim.seed_tickets(count=2)
    sim.add_fault("drop", route="DELETE tickets/destroy_many", count=1)
    adapter, _ = make_adapter(sim)
    jobs = run_all(adapter, Transition.SOFT_DELETE, ids)
    assert jobs[0].status is JobStatus.COMPLETED
    assert sim.counters["DELETE tickets/destroy_many"] == 2
    assert states(sim, ids) == {"deleted"}


def test_job_limit_is_never_exceeded(sim: ZendeskSimulator) -> None:
    ids = sim.seed_tickets(count=7)
    sim.configure({"job_base_seconds": 20.0})
    adapter, _ = make_adapter(sim, job_limit=3)
    peak = 0
    for ticket_id in ids:
        adapter.submit(Transition.SOFT_DELETE, [ticket_id])
        sim.advance(0)
        running = [j for j in sim.jobs.values() if j.status == "queued"]
        peak = max(peak, len(running))
        assert len(running) <= 3
        assert len(adapter.in_flight) <= 3
    assert peak == 3
    assert sim.counters["DELETE tickets/destroy_many"] == 7
    assert sim.counters["GET job_statuses/show_many"] > 0  # it waited by polling
    sim.finish_jobs()
    assert states(sim, ids) == {"deleted"}


def test_too_many_jobs_from_others_is_waited_out(sim: ZendeskSimulator) -> None:
    ids = sim.seed_tickets(count=2)
    sim.configure({"max_jobs": 1})
    other, _ = make_adapter(sim)
    other.submit(Transition.SOFT_DELETE, ids[:1])  # someone else's job fills the account
    adapter, sleeps = make_adapter(sim)
    submitted = adapter.submit(Transition.SOFT_DELETE, ids[1:])
    assert submitted.job_id is not None
    assert sim.counts()["statuses"].get("429", 0) >= 1
    assert sleeps  # waited for Retry-After rather than failing
    sim.finish_jobs()
    assert states(sim, ids) == {"deleted"}


def test_lookup_leaves_ids_out_when_the_listing_is_rate_limited(sim: ZendeskSimulator) -> None:
    live = sim.seed_tickets(count=2)
    gone = sim.seed_tickets(count=2)
    sim.agent_act("purge", gone)
    sim.add_fault("status", route="GET deleted_tickets", status=429, retry_after=30)
    adapter, _ = make_adapter(sim)
    adapter.http._max_attempts = 2  # a small budget for the test
    views = adapter.lookup(live + gone)
    assert set(views) == set(live)  # unknown, never guessed as purged
    assert sim.counters["GET tickets/{id}"] == 0


def test_changes_then_nothing_new_costs_one_call(sim: ZendeskSimulator) -> None:
    ids = sim.seed_tickets(count=30)
    sim.agent_act("delete", ids[:3])
    sim.advance(120)
    adapter, _ = make_adapter(sim, export_per_page=25)
    first = list(adapter.changes(None))
    assert [p.complete for p in first] == [False, True]
    assert sorted(v.ticket_id for p in first for v in p.views) == ids
    assert sim.counters["GET deleted_tickets"] == 0  # history: no actor look-ups
    sim.agent_act("delete", ids[10:20], agent=(9, "Agent"))
    sim.advance(1)
    pages = list(adapter.changes(first[-1].cursor))
    views = [v for p in pages for v in p.views]
    assert sorted(v.ticket_id for v in views) == ids[10:20]
    assert {(v.state, v.actor_id) for v in views} == {(State.SOFT_DELETED, 9)}
    assert sim.counters["GET deleted_tickets"] == 1  # one call for the actors of a page
    calls = sim.counts()["total"]
    again = list(adapter.changes(pages[-1].cursor))
    # rows of the last minute are read again on purpose (no same-second change is lost);
    # they repeat what was seen: one export call, plus the actor look-up of the re-read
    # deletions
    repeated = {(v.ticket_id, v.state) for p in again for v in p.views}
    assert repeated <= {(v.ticket_id, v.state) for v in views}
    assert sim.counts()["total"] - calls <= 2
    sim.advance(120)
    quiet = sim.counts()["total"]
    later = list(adapter.changes(again[-1].cursor))
    assert [v for p in later for v in p.views if v.ticket_id not in ids[10:20]] == []
    assert sim.counts()["total"] - quiet <= 2


def test_a_last_page_in_the_running_second_is_read_again_not_waited_for(
    sim: ZendeskSimulator,
) -> None:
    ids = sim.seed_tickets(count=5)
    sim.advance(120)
    adapter, sleeps = make_adapter(sim)
    start = list(adapter.changes(None))[-1].cursor
    sim.agent_act("delete", ids[2:4], agent=(9, "Agent"))  # in the second now running
    pages = list(adapter.changes(start))
    assert sleeps == []  # nothing waits for the second to end
    assert {v.ticket_id for p in pages for v in p.views} == set(ids[2:4])
    # a later change in this same second on a *lower* id sorts behind the page read: the
    # cursor must not have moved past the running second, or it would be lost
    sim.agent_act("delete", [ids[0]], agent=(9, "Agent"))
    sim.advance(2)
    again = list(adapter.changes(pages[-1].cursor))
    assert {v.ticket_id for p in again for v in p.views} == {ids[0], ids[2], ids[3]}
    assert again[-1].cursor != start  # the second has passed: the cursor moves on


def test_the_export_says_when_its_next_page_can_be_read(sim: ZendeskSimulator) -> None:
    sim.configure({"rate_limits": True})
    sim.seed_tickets(count=12)
    sim.advance(180 - sim.clock.timestamp() % 60)  # the start of a minute
    adapter, sleeps = make_adapter(sim, export_per_page=1)
    assert adapter.changes_ready_in() == 0
    stream = adapter.changes(None)
    for _ in range(9):
        next(stream)
        assert adapter.changes_ready_in() == 0
    next(stream)  # the 10th page of the minute: the limit is reached
    assert 55 <= adapter.changes_ready_in() <= 60
    assert sleeps == []
    sim.advance(adapter.changes_ready_in())
    assert adapter.changes_ready_in() == 0
    next(stream)
    assert sleeps == []  # read when allowed: no 429, no Retry-After


def test_oauth_bearer_is_accepted(sim: ZendeskSimulator) -> None:
    ids = sim.seed_tickets(count=1)
    adapter, _ = make_adapter(sim, email=None, token=None, oauth_token=TOKEN)
    assert adapter.lookup(ids)[ids[0]].state is State.ACTIVE


def test_check_names_tls_refused_and_403(sim: ZendeskSimulator) -> None:
    tls, _ = make_adapter(sim, base_url=sim.base_url.replace("http://", "https://"))
    (result,) = tls.check()
    assert (result.name, result.ok) == ("zendesk.reachable", False)
    assert result.message.startswith("TLS handshake")

    port = sim.base_url.rsplit(":", 1)[1]
    sim.stop()
    refused, _ = make_adapter(sim, base_url=f"http://127.0.0.1:{port}")
    (result,) = refused.check()
    assert "cannot connect" in result.message
    sim.start()

    forbidden = {"error": "Forbidden", "description": "You do not have access to this page"}
    sim.add_fault("status", route="GET deleted_tickets", status=403, body=forbidden)
    adapter, _ = make_adapter(sim)
    results = {r.name: r for r in adapter.check()}
    assert results["zendesk.authenticated"].ok
    assert not results["zendesk.deleted_tickets"].ok
    assert results["zendesk.deleted_tickets"].message.startswith("403")


def test_check_names_a_dns_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    adapter = ZendeskAdapter(base_url="https://nowhere.zendesk.com", oauth_token="t")

    def fail(*args: object, **kwargs: object) -> None:
        reason = urllib3.exceptions.NameResolutionError("nowhere.zendesk.com", None, OSError())  # type: ignore[arg-type]
        raise requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/", reason))  # type: ignore[arg-type]

    monkeypatch.setattr(adapter.http.session, "get", fail)
    (result,) = adapter.check()
    assert not result.ok
    assert result.message == "DNS: cannot resolve nowhere.zendesk.com"


def test_an_export_cursor_that_repeats_stops_the_read(sim: ZendeskSimulator) -> None:
    page = {"tickets": [], "after_cursor": "same", "end_of_stream": False}
    sim.add_fault("status", route="GET incremental/tickets/cursor", status=200, body=page)
    adapter, _ = make_adapter(sim)
    with pytest.raises(TransientError, match="after_cursor repeats"):
        list(adapter.changes("c:start"))
    assert sim.counters["GET incremental/tickets/cursor"] == 2  # then it stopped


def test_an_export_page_of_the_wrong_shape_is_a_failed_read(sim: ZendeskSimulator) -> None:
    sim.seed_tickets(count=2)
    body = {"tickets": [{"id": "7", "status": "open"}], "end_of_stream": True}
    sim.add_fault("status", route="GET incremental/tickets/cursor", status=200, body=body)
    adapter, _ = make_adapter(sim)
    with pytest.raises(TransientError, match=r"incremental/tickets/cursor: .*'tickets.0.id'"):
        list(adapter.changes(None))


def test_a_deleted_tickets_page_link_that_repeats_stops_the_walk(sim: ZendeskSimulator) -> None:
    page = {"deleted_tickets": [], "meta": {"has_more": True, "after_cursor": "x"}}
    sim.add_fault("status", route="GET deleted_tickets", status=200, body=page)
    adapter, _ = make_adapter(sim)
    pages = adapter._deleted_pages()
    next(pages)
    next(pages)
    with pytest.raises(TransientError, match="repeats one already read"):
        next(pages)


def test_the_account_pace_comes_from_the_vendor_once_it_has_spoken(sim: ZendeskSimulator) -> None:
    """`calls_per_minute` (what `migrate --dry-run` estimates with) is Enterprise's
    documented 700 until an answer's rate-limit headers give the account's own."""
    sim.configure({"rate_limits": True, "plan": "team"})
    sim.seed_tickets(count=2)
    adapter, _sleeps = make_adapter(sim)
    assert adapter.calls_per_minute() == 700
    adapter.lookup([1])
    assert adapter.calls_per_minute() == plan_limit("team")
