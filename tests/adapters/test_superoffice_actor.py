"""Who deleted or restored a SuperOffice ticket: the ticket log read by the adapter.

Pure parts (the row parser, the choice of entry) are tested directly; the reads replay
cassettes recorded from the simulator (see `test_superoffice_adapter.py` and
docs/cassettes.md), each `sim_only`: they need associates acting in the UI.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from bridge.core.contract import TicketView
from bridge.core.model import Cause, State, Transition
from bridge.vendors.superoffice import wire as shapes
from bridge.vendors.superoffice.adapter import (
    LogAction,
    LogEntry,
    SuperOfficeAdapter,
    _log_entry,
    _logical_id,
    parse_so_datetime,
    pick_actor,
)
from bridge.vendors.superoffice.auth import BearerAuth
from tests.adapters.scripted import Reply, ScriptedServer
from tests.adapters.test_superoffice_adapter import START, log_reads, read_changes, scenario

T = START + timedelta(hours=1)


def _row(actor: Any, **over: Any) -> shapes.SuperOfficeLogRow:
    row = {
        shapes.LOG_ID: 1,
        shapes.LOG_TICKET: 5,
        shapes.LOG_WHEN: "2024-05-01T13:00:00Z",
        shapes.LOG_ACTION: 34,
        shapes.LOG_ACTOR: actor,
        **over,
    }
    return shapes.SuperOfficeLogRow.model_validate(row)


# --------------------------------------------------------------------------- pure parts


@pytest.mark.parametrize(
    "display", ["AB", "Ann Berg", "7", " 7", "", "[I:]", "[I:x]", True, 0, -3, 7.0, None]
)
def test_a_display_value_is_never_taken_for_an_actor_id(display: Any) -> None:
    # what `ownedBy`-like user columns hold in display output: initials, a name (or digits
    # that are text, not an id); none of it may become the id of whoever deleted a ticket
    assert _logical_id(display) is None
    entry = _log_entry(_row(display))
    assert entry is not None
    assert entry.associate_id is None


@pytest.mark.parametrize(("logical", "expected"), [(7, 7), ("[I:7]", 7), (2**31, None)])
def test_logical_ids_are_read(logical: Any, expected: int | None) -> None:
    assert _logical_id(logical) == expected


def test_a_row_with_an_unreadable_time_or_action_names_no_one() -> None:
    assert _log_entry(_row(7, **{shapes.LOG_WHEN: "yesterday"})) is None
    assert _log_entry(_row(7, **{shapes.LOG_ACTION: "Ticket_DeleteTicket"})) is None
    entry = _log_entry(_row(7, **{shapes.LOG_ACTION: "[I:34]"}))
    assert entry == LogEntry(1, 5, T, 34, 7)


def _entry(n: int, action: LogAction, seconds: float, actor: int, ticket: int = 5) -> LogEntry:
    return LogEntry(n, ticket, T + timedelta(seconds=seconds), int(action), actor)


def test_a_deletion_is_its_latest_delete_or_status_change_before_last_changed() -> None:
    deleted = TicketView(5, State.SOFT_DELETED, vendor_time=T)
    entries = [
        _entry(1, LogAction.CHANGE_STATUS, -600, 1),
        _entry(2, LogAction.DELETE_TICKET, -300, 2),
        _entry(3, LogAction.EDIT_TICKET, -10, 3),  # an edit: not how a ticket is deleted
        _entry(4, LogAction.DELETE_TICKET, 0.6, 4),  # the same (whole) second as lastChanged
        _entry(5, LogAction.DELETE_TICKET, 1, 5),  # after it: a later change
        _entry(6, LogAction.DELETE_TICKET, -1, 6, ticket=9),  # another ticket
    ]
    assert pick_actor(deleted, entries) == entries[3]
    assert pick_actor(deleted, entries[:3]) == entries[1]
    # a status change to Deleted counts as much as a delete
    assert pick_actor(deleted, [*entries[:1], entries[2]]) == entries[0]
    # only an edit: the best there is
    assert pick_actor(deleted, [entries[2]]) == entries[2]
    assert pick_actor(deleted, [entries[4], entries[5]]) is None


def test_a_restore_is_its_latest_status_change_never_a_delete() -> None:
    restored = TicketView(5, State.ACTIVE, vendor_time=T)
    entries = [
        _entry(1, LogAction.DELETE_TICKET, -60, 1),
        _entry(2, LogAction.CHANGE_STATUS, -30, 2),
        _entry(3, LogAction.EDIT_TICKET, -10, 3),
    ]
    assert pick_actor(restored, entries) == entries[1]
    assert pick_actor(restored, [entries[0]]) is None
    assert pick_actor(TicketView(5, State.PURGED, vendor_time=T), entries) is None


# --------------------------------------------------------------------------- cassettes


def test_changes_name_who_deleted_and_who_restored() -> None:
    with scenario("changes_actors", sim_only=True) as env:

        def make() -> list[int]:
            sim = env.need_sim()
            ids = sim.seed_tickets(3)
            sim.soft_delete([ids[1]], associate=5)
            return ids

        deleted, restored, untouched = env.seeded("ids", make)
        env.advance(120)  # (the clock moves on replay too: cursors depend on it)
        reads = log_reads(env)
        first = read_changes(env.adapter, None)
        assert reads == []  # a first read is history: no one is looked up
        cursor = first[-1].cursor

        def act() -> bool:
            sim = env.need_sim()
            sim.soft_delete([deleted], associate=7)
            sim.restore([restored], associate=8)
            return True

        env.advance(60)
        env.seeded("acted", act)
        env.advance(120)
        calls = env.adapter.http.calls
        views = {v.ticket_id: v for p in read_changes(env.adapter, cursor) for v in p.views}
        assert (views[deleted].state, views[deleted].actor_id) == (State.SOFT_DELETED, 7)
        assert (views[restored].state, views[restored].actor_id) == (State.ACTIVE, 8)
        assert views[deleted].cause is views[restored].cause is Cause.USER
        # its second was over when it was read: it is not read again
        assert untouched not in views
        # each provider's page of new changes costs one log read
        assert env.adapter.http.calls - calls == 2 + 2
        assert len(reads) == 2


def test_a_change_in_a_second_still_open_gets_its_actor() -> None:
    """A change read in the very second it was made is read again next run (the second
    was open), and a change made later in that second, on a lower id, gets its maker."""
    with scenario("changes_open_second", sim_only=True, change_overlap=timedelta(0)) as env:
        ids = env.seeded("ids", lambda: env.need_sim().seed_tickets(3))
        env.advance(120)
        cursor = read_changes(env.adapter, None)[-1].cursor
        env.advance(0.2)
        env.seeded("first", lambda: env.need_sim().soft_delete([ids[2]], associate=5))
        reads = log_reads(env)
        pages = read_changes(env.adapter, cursor)
        views = {v.ticket_id: v for p in pages for v in p.views}
        assert (views[ids[2]].state, views[ids[2]].actor_id) == (State.SOFT_DELETED, 5)
        env.advance(0.5)  # the same second, a lower id
        env.seeded("later", lambda: env.need_sim().soft_delete([ids[0]], associate=6))
        env.advance(5)
        views = {
            v.ticket_id: v for p in read_changes(env.adapter, pages[-1].cursor) for v in p.views
        }
        assert (views[ids[0]].state, views[ids[0]].actor_id) == (State.SOFT_DELETED, 6)
        assert (views[ids[2]].state, views[ids[2]].actor_id) == (State.SOFT_DELETED, 5)
        assert len(reads) == 2


def test_bridges_own_writes_need_no_log_read() -> None:
    with scenario("changes_own_writes", sim_only=True, bridge_associate_id=9) as env:
        ids = env.seeded("ids", lambda: env.need_sim().seed_tickets(2))
        env.advance(120)
        reads = log_reads(env)
        cursor = read_changes(env.adapter, None)[-1].cursor
        env.adapter.submit(Transition.SOFT_DELETE, ids[:1])
        views = {v.ticket_id: v for p in read_changes(env.adapter, cursor) for v in p.views}
        assert views[ids[0]].state is State.SOFT_DELETED
        assert views[ids[0]].actor_id is None
        assert reads == []

        def act() -> bool:
            # another bridge process (the API user, associate 9), then a person
            env.need_sim().soft_delete([ids[1]], associate=9)
            env.need_sim().restore([ids[0]], associate=8)
            return True

        env.advance(60)
        env.seeded("acted", act)
        env.advance(120)
        views = {v.ticket_id: v for p in read_changes(env.adapter, cursor) for v in p.views}
        assert (views[ids[1]].actor_id, views[ids[1]].cause) == (9, Cause.BRIDGE)
        assert (views[ids[0]].actor_id, views[ids[0]].cause) == (8, Cause.USER)


def test_an_unreadable_log_costs_one_call_and_one_warning() -> None:
    options = {"ticket_log_readable": False}
    with scenario("ticket_log_unreadable", sim_only=True, sim_options=options) as env:
        ids = env.seeded("ids", lambda: env.need_sim().seed_tickets(2))
        env.advance(120)
        reads = log_reads(env)
        cursor = read_changes(env.adapter, None)[-1].cursor
        with capture_logs() as logs:
            for n, ticket in enumerate(ids):

                def act(ticket: int = ticket) -> bool:
                    env.need_sim().soft_delete([ticket], associate=7)
                    return True

                env.advance(60)
                env.seeded(f"deleted{n}", act)
                views = {v.ticket_id: v for p in read_changes(env.adapter, cursor) for v in p.views}
                assert views[ticket].state is State.SOFT_DELETED
                assert views[ticket].actor_id is None
        assert len(reads) == 1  # refused once (403), never asked again
        warnings = [e for e in logs if e["log_level"] == "warning"]
        assert [e["event"] for e in warnings] == ["superoffice.ticket_log_unreadable"]
        assert "403" in warnings[0]["error"]


def test_the_sweep_names_who_made_the_change_it_finds() -> None:
    with scenario("sweep_actor", sim_only=True, page_size=2) as env:

        def make() -> list[int]:
            sim = env.need_sim()
            ids = sim.seed_tickets(3)
            sim.soft_delete([ids[0]], associate=5)
            env.advance(60)
            sim.restore([ids[0]], associate=6)
            env.advance(60)
            sim.soft_delete([ids[0]], associate=7)
            sim.soft_delete([ids[1]], associate=5)
            return ids

        again, known_deleted, active = env.seeded("ids", make)
        known = {again: State.ACTIVE, known_deleted: State.SOFT_DELETED, active: State.ACTIVE}
        reads = log_reads(env)
        found = env.adapter.sweep(known)
        assert (found[again].state, found[again].actor_id) == (State.SOFT_DELETED, 7)
        assert found[again].vendor_time == parse_so_datetime("2024-05-01T12:02:00Z")
        # no change from what bridge knew: no one to look up
        assert found[known_deleted].actor_id is found[active].actor_id is None
        assert len(reads) == 2  # three entries, two to a page


def test_log_rows_in_a_form_bridge_does_not_read_are_reported(server: ScriptedServer) -> None:
    row = {
        "PrimaryKey": "1",
        "EntityName": "ticket_log_action",
        shapes.LOG_ID: 1,
        shapes.LOG_TICKET: 5,
        shapes.LOG_WHEN: "2024-05-01T13:00:00Z",
        shapes.LOG_ACTION: 34,
        shapes.LOG_ACTOR: "AB",  # the associate's initials: display output, not an id
    }
    server.script["/Cust1/api/v1/Archive/dynamic"] = [Reply(200, {"value": [row]})]
    host, port = server.server_address[:2]
    adapter = SuperOfficeAdapter(
        f"http://{host!s}:{port}/Cust1",
        tenant="Cust1",
        auth=BearerAuth("x"),
        requests_per_second=None,
    )
    view = TicketView(5, State.SOFT_DELETED, vendor_time=T)
    with capture_logs() as logs:
        [seen] = adapter._with_actors([view], [view])
    assert seen.actor_id is None
    assert seen.cause is None
    assert [e["event"] for e in logs] == ["superoffice.ticket_log_rows_unread"]
