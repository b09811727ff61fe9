"""The SuperOffice adapter's reads against a simulator whose API user works in another
culture: archive list columns come as display text in that culture ("Gelöscht", "Slettet"),
so states must be read from ids (`$output=Logical`), never from English names.

Live against the in-process simulator (no cassettes): the point is the simulator's culture
switch, which a recording would freeze.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta

import pytest

from bridge.core.contract import TicketView, TransientError
from bridge.core.model import State, Transition
from bridge.sandbox import SimClock
from bridge.vendors.superoffice import adapter as adapter_module
from bridge.vendors.superoffice.adapter import SuperOfficeAdapter
from bridge.vendors.superoffice.auth import SOTicketAuth
from bridge.vendors.superoffice.cursor import ChangeCursor, Position
from bridge.vendors.superoffice.sim.simulator import SuperOfficeSimulator
from tests.cassettes import no_sleep

START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["de", "nb"])
def sim(request: pytest.FixtureRequest) -> Iterator[SuperOfficeSimulator]:
    simulator = SuperOfficeSimulator(
        clock=SimClock(START, frozen=True), requests_per_second=None, culture=request.param
    )
    with simulator:
        yield simulator


def _adapter(sim: SuperOfficeSimulator) -> SuperOfficeAdapter:
    return SuperOfficeAdapter(
        sim.base_url,
        tenant=sim.tenant,
        auth=SOTicketAuth(sim.ticket, sim.app_token),
        sleep=no_sleep,
        clock=sim.clock.now,
        requests_per_second=None,
    )


def _seed(sim: SuperOfficeSimulator) -> dict[str, int]:
    active, waiting, master, merged, deleted, purged = sim.seed_tickets(6, status=304)
    sim.associate_act("update", [waiting], fields={"status": 305})
    sim.merge([merged], into=master)
    sim.advance(60)
    sim.soft_delete([deleted, purged])
    sim.purge([purged])
    return {
        "active": active,
        "waiting": waiting,
        "master": master,
        "merged": merged,
        "deleted": deleted,
        "purged": purged,
    }


def _check(views: Mapping[int, TicketView], ids: dict[str, int]) -> None:
    got = {name: views[i] for name, i in ids.items() if i in views}
    assert {n: v.state for n, v in got.items()} == {
        "active": State.ACTIVE,
        "waiting": State.ACTIVE,
        "master": State.ACTIVE,
        "merged": State.ACTIVE,
        "deleted": State.SOFT_DELETED,
        **({"purged": State.PURGED} if "purged" in got else {}),
    }
    assert got["active"].status_id == 304
    assert got["waiting"].status_id == 305
    assert got["merged"].merged_into == ids["master"]


def test_the_simulator_really_shows_localised_text(sim: SuperOfficeSimulator) -> None:
    """Guard for the tests below: without `$output=Logical` the rows are not English."""
    ids = _seed(sim)
    adapter = _adapter(sim)
    response = adapter.http.request(
        "GET", "Archive/RecycleTicket", params={"$select": "ticketId,status"}
    )
    row = response.json()["value"][0]
    assert row["ticketId"] == ids["deleted"]
    assert row["status"] in ("Gelöscht", "Slettet")


def test_lookup_in_another_culture(sim: SuperOfficeSimulator) -> None:
    ids = _seed(sim)
    views = _adapter(sim).lookup(list(ids.values()))
    assert views[ids["purged"]].state is State.PURGED
    _check(views, ids)


def test_sweep_in_another_culture(sim: SuperOfficeSimulator) -> None:
    ids = _seed(sim)
    known = dict.fromkeys(ids.values(), State.ACTIVE)
    views = _adapter(sim).sweep(known)
    assert views[ids["purged"]].state is State.PURGED
    _check(views, ids)


def test_changes_in_another_culture(sim: SuperOfficeSimulator) -> None:
    ids = _seed(sim)
    adapter = _adapter(sim)
    pages = list(adapter.changes(None))
    views = {v.ticket_id: v for p in pages for v in p.views}
    _check(views, ids)
    assert ids["purged"] not in views  # a purge leaves no row
    assert pages[-1].complete
    # read in the second of the last change: a minute's margin keeps it unsettled, and
    # the second itself is not over yet
    closed = Position(START - timedelta(seconds=1))
    over = Position(sim.clock.now().replace(microsecond=0) - timedelta(seconds=2))
    unsettled = [v for v in views.values() if v.vendor_time and v.vendor_time <= over.second]
    assert ChangeCursor.parse(pages[-1].cursor, old_overlap=timedelta(0)) == ChangeCursor(
        closed, over, len(unsettled)
    )


def test_restore_in_another_culture_puts_the_status_back(sim: SuperOfficeSimulator) -> None:
    ids = _seed(sim)
    adapter = _adapter(sim)
    before = adapter.lookup([ids["waiting"]])[ids["waiting"]]
    adapter.submit(Transition.SOFT_DELETE, [ids["waiting"]])
    assert adapter.lookup([ids["waiting"]])[ids["waiting"]].state is State.SOFT_DELETED
    adapter.submit(
        Transition.RESTORE, [ids["waiting"]], restore_status={ids["waiting"]: before.status_id}
    )
    after = adapter.lookup([ids["waiting"]])[ids["waiting"]]
    assert (after.state, after.status_id) == (State.ACTIVE, 305)


def test_display_text_is_refused_not_guessed(
    sim: SuperOfficeSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Had the adapter asked for display text, it must stop, not misread a state."""
    _seed(sim)
    monkeypatch.setattr(adapter_module, "ARCHIVE_OUTPUT", "Display")
    with pytest.raises(TransientError, match=re.escape("'value[].status'")):
        list(_adapter(sim).changes(None))


@pytest.mark.parametrize("timezone", ["UTC, includeTZOffset", "UTC"])
def test_cursor_holds_when_many_changes_share_one_second(
    sim: SuperOfficeSimulator, timezone: str
) -> None:
    """Archive dates are whole seconds (with `Z`, or without an offset): changes later in
    the cursor's own second, on lower ids, are still read by the next call, and once the
    second is over it is not read again."""
    ids = sim.seed_tickets(30)
    adapter = _adapter(sim)
    adapter.http.session.headers["SO-TimeZone"] = timezone
    adapter.page_size = 7
    adapter.change_overlap = timedelta(0)  # no margin: the read's own second stays open
    sim.advance(60.1)
    sim.soft_delete(ids[10:25])  # all at 12:01:00.1
    first = list(adapter.changes(None))
    deleted = {v.ticket_id for p in first for v in p.views if v.state is State.SOFT_DELETED}
    assert deleted == set(ids[10:25])
    cursor = first[-1].cursor
    open_second = START + timedelta(seconds=60)
    read = ChangeCursor.parse(cursor, old_overlap=timedelta(0)).read
    assert read == Position(open_second - timedelta(seconds=2))
    sim.advance(0.5)
    sim.soft_delete(ids[:5])  # 12:01:00.6: the same second, lower ids
    sim.advance(2)
    again = list(adapter.changes(cursor))
    later = {v.ticket_id for p in again for v in p.views if v.state is State.SOFT_DELETED}
    assert later == set(ids[:5]) | set(ids[10:25])
    read = ChangeCursor.parse(again[-1].cursor, old_overlap=timedelta(0)).read
    assert read == Position(open_second)  # over now: never read again
    assert [v for p in adapter.changes(again[-1].cursor) for v in p.views] == []
