"""The SuperOffice adapter against the live simulator over HTTP (127.0.0.1, port 0).

The simulator's clock is frozen and handed to the adapter (`sleep=clock.sleep`), so a
`Retry-After` or the 14-day retention period costs no wall time: tests assert counts and
states, never durations.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bridge.core.contract import TransientError
from bridge.core.model import Cause, State, Transition
from bridge.sandbox import SimClock
from bridge.vendors.superoffice.adapter import DeleteEndpointPurge, SuperOfficeAdapter
from bridge.vendors.superoffice.auth import (
    BasicAuth,
    BearerAuth,
    SOTicketAuth,
    SuperOfficeAuth,
    SystemUserAuth,
)
from bridge.vendors.superoffice.cursor import ChangeCursor, Position
from bridge.vendors.superoffice.sim.auth import partner_keypair
from bridge.vendors.superoffice.sim.simulator import SuperOfficeSimulator

START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
DAY = 86400
SYSTEM_USER_TOKEN = "Bridge-7f3a9c"


@pytest.fixture
def sim() -> Iterator[SuperOfficeSimulator]:
    simulator = SuperOfficeSimulator(
        clock=SimClock(START, frozen=True),
        requests_per_second=None,  # a frozen clock never reopens a window; tests turn it on
        public_key_pem=partner_keypair()[1],
        system_user_token=SYSTEM_USER_TOKEN,
    )
    with simulator:
        yield simulator


def make_adapter(
    sim: SuperOfficeSimulator, auth: SuperOfficeAuth | None = None, **options: Any
) -> SuperOfficeAdapter:
    options.setdefault("requests_per_second", None)
    return SuperOfficeAdapter(
        sim.base_url,
        tenant=sim.tenant,
        auth=auth or SOTicketAuth(sim.ticket, sim.app_token),
        sleep=sim.clock.sleep,
        clock=sim.clock.now,
        **options,
    )


@pytest.fixture
def adapter(sim: SuperOfficeSimulator) -> SuperOfficeAdapter:
    return make_adapter(sim)


def route_count(sim: SuperOfficeSimulator, route: str) -> int:
    return int(sim.counts()["routes"].get(route, 0))


def status_count(sim: SuperOfficeSimulator, status: int) -> int:
    return int(sim.counts()["statuses"].get(str(status), 0))


def submit_in_batches(
    adapter: SuperOfficeAdapter, transition: Transition, ids: list[int], **kwargs: Any
) -> None:
    for start in range(0, len(ids), adapter.batch_limit):
        adapter.submit(transition, ids[start : start + adapter.batch_limit], **kwargs)


def test_soft_delete_250_tickets_in_three_bulk_calls(
    sim: SuperOfficeSimulator, adapter: SuperOfficeAdapter
) -> None:
    ids = sim.seed_tickets(250)
    sim.advance(60)
    submit_in_batches(adapter, Transition.SOFT_DELETE, ids)
    assert route_count(sim, "POST Agents/Ticket/SetDeletedStatusByIds") == 3
    views = adapter.lookup(ids)
    assert {v.state for v in views.values()} == {State.SOFT_DELETED}
    assert {v.vendor_time for v in views.values()} == {START + timedelta(seconds=60)}
    # 3 chunks x 2 providers; nothing needed a lookup by id
    assert route_count(sim, "GET Archive/{provider}") == 6
    assert route_count(sim, "GET Ticket/{id}") == 0


def test_restore_puts_the_previous_status_back(
    sim: SuperOfficeSimulator, adapter: SuperOfficeAdapter
) -> None:
    in_progress = sim.create_ticket(status=304)
    waiting = sim.create_ticket(status=305)  # Postponed "Waiting for customer"
    plain = sim.create_ticket()
    ids = [in_progress, waiting, plain]
    before = adapter.lookup(ids)
    remembered = {i: before[i].status_id for i in ids}  # what the ledger keeps
    assert remembered == {in_progress: 304, waiting: 305, plain: 1}
    adapter.submit(Transition.SOFT_DELETE, ids)
    sim.advance(3600)
    adapter.submit(Transition.RESTORE, ids, restore_status=remembered)
    after = adapter.lookup(ids)
    assert {i: (after[i].state, after[i].status_id) for i in ids} == {
        i: (State.ACTIVE, remembered[i]) for i in ids
    }
    # UndeleteByIds alone would have left the default open status: the patch did the work
    assert route_count(sim, "PATCH Ticket/{id}") == 3
    state = sim.ticket_state(waiting)
    assert state is not None
    assert state["base_status"] == "Postponed"


def test_restore_without_a_known_status_keeps_the_default_open_one(
    sim: SuperOfficeSimulator, adapter: SuperOfficeAdapter
) -> None:
    ticket = sim.create_ticket(status=304)
    sim.soft_delete([ticket])
    adapter.submit(Transition.RESTORE, [ticket], restore_status={ticket: None})
    assert adapter.lookup([ticket])[ticket].status_id == 1
    assert route_count(sim, "PATCH Ticket/{id}") == 0


def test_purge_after_the_retention_period_is_detected_as_retention(
    sim: SuperOfficeSimulator, adapter: SuperOfficeAdapter
) -> None:
    old, early = sim.seed_tickets(2)
    sim.advance(60)
    sim.soft_delete([old, early], associate=7)  # an agent deletes in SuperOffice
    pages = list(adapter.changes(None))
    seen = {v.ticket_id: v for p in pages for v in p.views}
    assert seen[old].state is State.SOFT_DELETED
    deleted_at = seen[old].vendor_time
    assert deleted_at == START + timedelta(seconds=60)
    sim.advance(3 * DAY)
    sim.purge([early])  # emptied from the recycle bin by hand, well before retention
    sim.advance(11 * DAY + 3600)  # past "Retain deleted data" (14 days) for `old`
    # purges leave no trace in the change stream: the row is simply gone
    later = list(adapter.changes(pages[-1].cursor))
    assert {v.ticket_id for p in later for v in p.views}.isdisjoint({old, early})
    now = sim.clock.now()
    views = adapter.lookup([old, early])
    assert views[old].state is views[early].state is State.PURGED
    assert adapter.purge_cause(deleted_at, now) is Cause.RETENTION
    assert adapter.purge_cause(deleted_at, START + timedelta(days=3)) is Cause.USER
    assert sim.is_purged(old)


def test_purge_copied_from_zendesk_is_pending_then_verified(
    sim: SuperOfficeSimulator, adapter: SuperOfficeAdapter
) -> None:
    deleted, active = sim.seed_tickets(2)
    adapter.submit(Transition.SOFT_DELETE, [deleted])
    sim.advance(DAY)
    submitted = adapter.submit(Transition.PURGE, [deleted, active])
    assert submitted.job_id is None
    assert submitted.pending_until == {
        deleted: START + timedelta(days=14),
        active: START + timedelta(days=15),  # soft-deleted now, by the purge itself
    }
    # nothing was hard-deleted: SuperOffice cannot, the retention job will
    assert {v.state for v in adapter.lookup([deleted, active]).values()} == {State.SOFT_DELETED}
    sim.clock.set(START + timedelta(days=14) - timedelta(minutes=1))
    views = adapter.lookup([deleted, active])
    assert views[deleted].state is State.SOFT_DELETED
    sim.clock.set(submitted.pending_until[deleted] + timedelta(minutes=1))
    views = adapter.lookup([deleted, active])
    assert views[deleted].state is State.PURGED
    assert views[active].state is State.SOFT_DELETED
    sim.clock.set(submitted.pending_until[active] + timedelta(minutes=1))
    assert adapter.lookup([active])[active].state is State.PURGED


def cursor_of(text: str) -> ChangeCursor:
    return ChangeCursor.parse(text, old_overlap=timedelta(minutes=1))


def test_paging_over_1200_changed_tickets(sim: SuperOfficeSimulator) -> None:
    adapter = make_adapter(sim, page_size=500)
    ids = sim.seed_tickets(1200)
    sim.advance(60)
    sim.soft_delete(ids[::2])
    pages = list(adapter.changes(None))
    views = [v for p in pages for v in p.views]
    assert len(views) == len({v.ticket_id for v in views}) == 1200
    deleted = {v.ticket_id for v in views if v.state is State.SOFT_DELETED}
    assert deleted == set(ids[::2])
    # per provider, 600 rows of one second: a full page, the rest of that second in id
    # order, then the rows after it (none)
    assert route_count(sim, "GET Archive/{provider}") == 6
    assert [p.complete for p in pages] == [False] * 5 + [True]
    # the read began less than `change_overlap` (a minute) after both seconds: they are
    # not settled, and 600 rows are too many to read again with every run (a page is
    # 500): they are read once more when the read position is a minute old
    closed = Position(START - timedelta(seconds=1))
    over = Position(START + timedelta(seconds=58))
    assert cursor_of(pages[-1].cursor) == ChangeCursor(closed, over, 600, over)


def test_paging_survives_rows_leaving_between_pages(sim: SuperOfficeSimulator) -> None:
    adapter = make_adapter(sim, page_size=10)
    ids = sim.seed_tickets(25)
    original = adapter._archive_rows
    calls = {"n": 0}

    def archive_with_a_concurrent_delete(provider: str, **kwargs: Any) -> Any:
        rows = original(provider, **kwargs)
        calls["n"] += 1
        if calls["n"] == 1:
            sim.advance(1)
            sim.soft_delete([ids[0]])  # leaves `Ticket`: later rows shift left by one
        return rows

    adapter._archive_rows = archive_with_a_concurrent_delete  # type: ignore[method-assign]
    views = [v for p in adapter.changes(None) for v in p.views]
    assert {v.ticket_id for v in views} == set(ids)
    assert [v.state for v in views if v.ticket_id == ids[0]][-1] is State.SOFT_DELETED


def test_429_storm_is_ridden_out_with_retry_after(sim: SuperOfficeSimulator) -> None:
    sim.configure({"requests_per_second": 10})
    adapter = make_adapter(sim, page_size=25)  # about 20 calls
    ids = sim.seed_tickets(450)
    sim.advance(60)
    sim.soft_delete(ids[:200])
    clock_before = sim.clock.now()
    views = [v for p in adapter.changes(None) for v in p.views]
    assert {v.ticket_id for v in views} == set(ids)
    assert status_count(sim, 429) > 0
    # every 429 carried Retry-After, which the adapter waited out on the simulated clock
    assert sim.clock.now() > clock_before
    assert adapter.http.calls == sum(sim.counts()["statuses"].values())


def test_5xx_burst_is_retried_for_state_setting_calls(sim: SuperOfficeSimulator) -> None:
    adapter = make_adapter(sim)
    ids = sim.seed_tickets(3, status=304)
    sim.add_fault("status", route="GET Archive/{provider}", status=503, count=3)
    sim.add_fault("status", route="POST Agents/Ticket/SetDeletedStatusByIds", status=500, count=2)
    sim.add_fault("status", route="POST Agents/Ticket/UndeleteByIds", status=502, count=1)
    sim.add_fault("status", route="PATCH Ticket/{id}", status=500, count=1)
    # the vendor acts, then the connection drops: the outcome is unknown, resending is safe
    sim.add_fault("drop", route="POST Agents/Ticket/SetDeletedStatusByIds", when="after", count=1)
    remembered = {i: v.status_id for i, v in adapter.lookup(ids).items()}
    adapter.submit(Transition.SOFT_DELETE, ids)
    assert {v.state for v in adapter.lookup(ids).values()} == {State.SOFT_DELETED}
    adapter.submit(Transition.RESTORE, ids, restore_status=remembered)
    after = adapter.lookup(ids)
    assert {(v.state, v.status_id) for v in after.values()} == {(State.ACTIVE, 304)}
    assert status_count(sim, 503) == 3
    assert status_count(sim, 500) == 3
    assert status_count(sim, 502) == 1
    assert route_count(sim, "POST Agents/Ticket/SetDeletedStatusByIds") == 4


def test_5xx_that_never_ends_becomes_a_transient_error(sim: SuperOfficeSimulator) -> None:
    adapter = make_adapter(sim)
    sim.add_fault("status", route="POST Agents/Ticket/SetDeletedStatusByIds", status=500)
    with pytest.raises(TransientError):
        adapter.submit(Transition.SOFT_DELETE, sim.seed_tickets(1))
    assert route_count(sim, "POST Agents/Ticket/SetDeletedStatusByIds") == 6


def test_malformed_archive_answer_is_transient(sim: SuperOfficeSimulator) -> None:
    adapter = make_adapter(sim)
    sim.add_fault("malformed", route="GET Archive/{provider}", count=1)
    with pytest.raises(TransientError, match="malformed"):
        adapter.lookup(sim.seed_tickets(1))


def test_failed_lookup_by_id_leaves_the_id_unknown(sim: SuperOfficeSimulator) -> None:
    adapter = make_adapter(sim)
    sim.add_fault("status", route="GET Ticket/{id}", status=503)
    views = adapter.lookup([424242])
    assert views == {}  # unknown, never "purged"


@pytest.mark.parametrize("mode", ["soticket", "bearer", "basic"])
def test_static_auth_modes(sim: SuperOfficeSimulator, mode: str) -> None:
    auth: SuperOfficeAuth
    if mode == "soticket":
        auth = SOTicketAuth(sim.ticket, sim.app_token)
    elif mode == "bearer":
        auth = BearerAuth(sim.bearer)
    else:
        assert sim.basic is not None
        auth = BasicAuth(*sim.basic)
    adapter = make_adapter(sim, auth)
    ticket = sim.create_ticket()
    assert adapter.lookup([ticket])[ticket].state is State.ACTIVE
    results = adapter.check()
    assert all(r.ok for r in results), results


def test_system_user_exchange_and_reexchange_on_401(sim: SuperOfficeSimulator) -> None:
    auth = SystemUserAuth(
        system_token=SYSTEM_USER_TOKEN,
        private_key_pem=partner_keypair()[0],
        app_token=sim.app_token,
        tenant=sim.tenant,
        login_url=sim.login_url,
        public_key_pem=sim.issuer.public_key_pem,
        clock=sim.clock.now,
        sleep=sim.clock.sleep,
    )
    adapter = make_adapter(sim, auth)
    ticket = sim.create_ticket()
    assert adapter.lookup([ticket])[ticket].state is State.ACTIVE
    assert auth.exchanges == 1
    adapter.lookup([ticket])
    assert auth.exchanges == 1  # cached
    sim.configure({"ticket": "7T:rotated-ticket"})  # the old ticket expires
    assert adapter.lookup([ticket])[ticket].state is State.ACTIVE
    assert auth.exchanges == 2
    assert status_count(sim, 401) == 1
    assert all(r.ok for r in adapter.check())


def test_system_user_with_unknown_token_fails_check_clearly(sim: SuperOfficeSimulator) -> None:
    auth = SystemUserAuth(
        system_token="Someone-else",
        private_key_pem=partner_keypair()[0],
        app_token=sim.app_token,
        tenant=sim.tenant,
        login_url=sim.login_url,
        clock=sim.clock.now,
    )
    results = {r.name: r for r in make_adapter(sim, auth).check()}
    assert results["superoffice tenant state"].ok
    failed = results["superoffice authenticated"]
    assert not failed.ok
    assert failed.message == (
        "system user: the login service refused the exchange: Unknown system user token"
    )


def test_check_detects_a_moved_tenant(sim: SuperOfficeSimulator) -> None:
    adapter = SuperOfficeAdapter(
        sim.base_url.replace("127.0.0.1", "localhost"),
        tenant=sim.tenant,
        auth=SOTicketAuth(sim.ticket, sim.app_token),
        requests_per_second=None,
    )
    state = adapter.check()[0]
    assert not state.ok
    assert state.message == f"tenant {sim.tenant} now lives at {sim.base_url}; update base_url"


def test_check_unreachable_is_one_clear_line() -> None:
    adapter = SuperOfficeAdapter(
        "http://127.0.0.1:9/Cust12345",
        tenant="Cust12345",
        auth=SOTicketAuth("t", "a"),
        requests_per_second=None,
        sleep=lambda s: None,
    )
    adapter.http._max_attempts = 2  # keep the refused-connection retries short
    adapter._state_http._max_attempts = 2
    results = adapter.check()
    assert [r.ok for r in results] == [False, False, False]
    assert results[1].message.startswith("cannot reach http://127.0.0.1:9/Cust12345")


def _restore_while_reading_the_recycle_bin(
    sim: SuperOfficeSimulator, adapter: SuperOfficeAdapter, ticket: int
) -> None:
    original = adapter._archive_rows

    def archive(provider: str, **kwargs: Any) -> Any:
        rows = original(provider, **kwargs)
        if provider == "RecycleTicket" and sim.ticket_state(ticket)["base_status"] == "Deleted":  # type: ignore[index]
            sim.advance(5)
            sim.restore([ticket])  # lands in `Ticket`, which was already read
        return rows

    adapter._archive_rows = archive  # type: ignore[method-assign]


def test_restore_during_a_run_is_read_next_run(sim: SuperOfficeSimulator) -> None:
    adapter = make_adapter(sim, change_overlap=timedelta(0))
    ids = sim.seed_tickets(3)
    sim.advance(60)
    sim.soft_delete([ids[0]])
    _restore_while_reading_the_recycle_bin(sim, adapter, ids[0])
    pages = list(adapter.changes(None))
    assert route_count(sim, "GET Archive/{provider}") == 2
    # the read began in the second of the delete: the cursor stays before it
    over = Position(START + timedelta(seconds=58))
    assert cursor_of(pages[-1].cursor) == ChangeCursor(over, over)
    again = [v for p in adapter.changes(pages[-1].cursor) for v in p.views]
    # the restore landed in `Ticket` after the read: it is after `Ticket`'s position
    assert [(v.ticket_id, v.state) for v in again] == [(ids[0], State.ACTIVE)]


def test_a_tenant_with_a_hard_delete_path_plugs_it_in(sim: SuperOfficeSimulator) -> None:
    adapter = make_adapter(sim, purge_strategy=DeleteEndpointPurge())
    ids = sim.seed_tickets(2)
    sim.soft_delete(ids)
    sim.purge([ids[1]])  # already gone: its 404 counts as done
    submitted = adapter.submit(Transition.PURGE, ids)
    assert submitted.ticket_ids == tuple(ids)
    assert dict(submitted.pending_until) == {}  # confirmed by re-reading, not by waiting
    assert route_count(sim, "DELETE Ticket/{id}") == 2
    # SuperOffice Online turns this call into a soft delete: the re-read tells the truth
    assert adapter.lookup([ids[0]])[ids[0]].state is State.SOFT_DELETED
    assert adapter.lookup([ids[1]])[ids[1]].state is State.PURGED


def test_archive_pages_that_only_repeat_stop_the_read(sim: SuperOfficeSimulator) -> None:
    ids = sim.seed_tickets(5)
    rows = [{"ticketId": i, "lastChanged": "2026-03-02T09:00:00Z", "status": 1} for i in ids]
    sim.add_fault("status", path="Archive/Ticket", status=200, body={"value": rows})
    adapter = make_adapter(sim, page_size=5)
    with pytest.raises(TransientError, match="full pages in a row repeat rows already read"):
        list(adapter.changes(None))
    assert route_count(sim, "GET Archive/{provider}") == 4  # one new page, three repeats


def test_an_archive_row_without_a_ticket_id_is_a_failed_read(sim: SuperOfficeSimulator) -> None:
    body = {"value": [{"ticketId": "abc", "status": 1}]}
    sim.add_fault("status", path="Archive/Ticket", status=200, body=body)
    with pytest.raises(TransientError, match=re.escape("'value[].ticketId' is 'abc'")):
        list(make_adapter(sim).changes(None))


def test_the_account_pace_is_the_clients_own() -> None:
    """SuperOffice sends no rate-limit signal: `calls_per_minute` is the pacing bridge
    keeps itself to (`requests_per_second`), and no pacing is estimated at 700 a minute."""
    paced = SuperOfficeAdapter(
        "https://sod.example/Cust1", tenant="Cust1", auth=SOTicketAuth("t", "a")
    )
    unpaced = SuperOfficeAdapter(
        "https://sod.example/Cust1",
        tenant="Cust1",
        auth=SOTicketAuth("t", "a"),
        requests_per_second=None,
    )
    assert (paced.calls_per_minute(), unpaced.calls_per_minute()) == (600, 700)
    assert paced.changes_per_minute is None
