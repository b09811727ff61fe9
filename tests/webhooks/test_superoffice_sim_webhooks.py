"""The SuperOffice simulator's `Webhook` entities and ticket events, over real HTTP: three
attempts then the event is lost, nine failures stop the webhook, a purge says nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from bridge.sandbox import SimClock
from bridge.vendors.superoffice.sim.simulator import SuperOfficeSimulator
from bridge.vendors.superoffice.webhooks import FORMAT
from tests.webhooks.receiver import Receiver

START = datetime(2025, 5, 19, 9, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=5)
SECRET = "so-webhook-secret"


@pytest.fixture
def sim() -> Iterator[SuperOfficeSimulator]:
    made = SuperOfficeSimulator(clock=SimClock(START, frozen=True), requests_per_second=None)
    made.configure({"webhook_timeout_seconds": 1.0})
    with made:
        yield made


@pytest.fixture
def api(sim: SuperOfficeSimulator) -> requests.Session:
    session = requests.Session()
    session.headers.update(
        {"Authorization": f"SOTicket {sim.ticket}", "SO-AppToken": sim.app_token}
    )
    return session


@pytest.fixture
def rx() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


def url(sim: SuperOfficeSimulator, path: str) -> str:
    return f"{sim.base_url}/api/v1/{path}"


def register(
    sim: SuperOfficeSimulator, api: requests.Session, target: str, **fields: Any
) -> dict[str, Any]:
    body = {
        "Name": "bridge-default",
        "Events": ["ticket.created", "ticket.changed"],
        "TargetUrl": target,
        "Secret": SECRET,
        "State": "Active",
        "Type": "webhook",
        **fields,
    }
    answer = api.post(url(sim, "Webhook"), json=body, timeout=5)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def idle(sim: SuperOfficeSimulator) -> None:
    assert sim.webhooks is not None
    assert sim.webhooks.wait_idle()


def test_webhook_entity_create_list_update_delete(
    sim: SuperOfficeSimulator, api: requests.Session
) -> None:
    made = register(sim, api, "https://bridge.example/webhooks/superoffice")
    assert made["State"] == "Active"
    assert made["Secret"] is None  # never echoed
    hook_id = made["WebhookId"]
    listed = api.get(url(sim, "Webhook"), params={"nameFilter": "BRIDGE"}, timeout=5).json()
    assert [w["WebhookId"] for w in listed] == [hook_id]
    assert api.get(url(sim, "Webhook"), params={"statusFilter": "Stopped"}, timeout=5).json() == []
    put = api.put(url(sim, f"Webhook/{hook_id}"), json={**made, "State": "Stopped"}, timeout=5)
    assert put.status_code == 200
    assert put.json()["State"] == "Stopped"
    assert api.get(url(sim, f"webhook/{hook_id}"), timeout=5).json()["State"] == "Stopped"
    assert api.delete(url(sim, f"Webhook/{hook_id}"), timeout=5).status_code == 204
    assert api.get(url(sim, f"Webhook/{hook_id}"), timeout=5).status_code == 404
    bad = api.post(
        url(sim, "Webhook"), json={"Name": "x", "Events": [], "TargetUrl": "x"}, timeout=5
    )
    assert bad.status_code == 400


def test_created_changed_on_delete_and_restore_none_on_purge(
    sim: SuperOfficeSimulator, api: requests.Session, rx: Receiver
) -> None:
    register(sim, api, rx.url + "/webhooks/superoffice")
    ticket = sim.create_ticket("Printer on fire")
    deleted = api.post(
        url(sim, "Agents/Ticket/SetDeletedStatusByIds"), json={"TicketIds": [ticket]}, timeout=5
    )
    assert deleted.status_code == 200
    sim.restore([ticket], associate=19)
    sim.soft_delete([ticket])
    sim.purge([ticket])
    calls = rx.wait_for(4)
    idle(sim)
    assert len(rx.received()) == 4  # the purge sent nothing
    documents = [call.json() for call in calls]
    assert [d["Event"] for d in documents] == ["ticket.created"] + ["ticket.changed"] * 3
    assert [d["FieldValues"]["status"] for d in documents] == [1, 4, 1, 4]
    assert documents[1]["ChangedByAssociateId"] == sim.api_associate_id
    assert documents[2]["ChangedByAssociateId"] == 19
    assert "status" in documents[1]["Changes"]
    assert {d["PrimaryKey"] for d in documents} == {ticket}
    assert {d["ContextIdentifier"] for d in documents} == {sim.tenant}
    for call, document in zip(calls, documents, strict=True):
        assert call.headers["x-superoffice-event"] == document["Event"]
        assert call.headers["x-superoffice-eventid"] == document["EventId"]
        assert call.headers["x-superoffice-retry"] == "0"
        assert call.headers["user-agent"].startswith("NetServer-Webhook/")
        FORMAT.verify(SECRET.encode(), call.headers, call.body, now=sim.clock.now(), window=WINDOW)
        hint = FORMAT.read(call.headers, call.body)
        assert hint is not None
        assert hint.ticket_ids == (ticket,)


def test_a_webhook_without_secret_sends_unsigned(
    sim: SuperOfficeSimulator, api: requests.Session, rx: Receiver
) -> None:
    register(sim, api, rx.url + "/h", Secret="", Events=["ticket.changed"])
    ticket = sim.create_ticket("x")  # ticket.created: not subscribed
    sim.soft_delete([ticket])
    [call] = rx.wait_for(1)
    idle(sim)
    assert call.json()["Event"] == "ticket.changed"
    assert "x-superoffice-signature" not in call.headers


def test_three_attempts_then_discarded_and_nine_failures_stop_it(
    sim: SuperOfficeSimulator, api: requests.Session, rx: Receiver
) -> None:
    made = register(sim, api, rx.url + "/h", Events=["ticket.changed"])
    rx.status = 500
    ids = [sim.create_ticket(f"t{n}") for n in range(4)]
    sim.soft_delete(ids[:1])
    rx.wait_for(1)
    idle(sim)
    sim.advance(1)
    rx.wait_for(2)
    idle(sim)
    sim.advance(4)
    calls = rx.wait_for(3)
    idle(sim)
    sim.advance(60)
    idle(sim)
    assert len(rx.received()) == 3  # then the event is discarded
    assert [c.headers["x-superoffice-retry"] for c in calls] == ["0", "1", "2"]
    assert len({c.headers["x-superoffice-eventid"] for c in calls}) == 1
    for ticket in ids[1:3]:  # two more lost events: 9 failed attempts in a row
        sim.soft_delete([ticket])
        for wait in (0, 1, 4):
            sim.advance(wait)
            idle(sim)
    assert len(rx.received()) == 9
    shown = api.get(url(sim, f"Webhook/{made['WebhookId']}"), timeout=5).json()
    assert shown["State"] == "TooManyErrors"
    rx.status = 200
    sim.soft_delete(ids[3:])
    idle(sim)
    assert len(rx.received()) == 9  # stopped: nothing more until set Active again
    assert api.put(url(sim, f"Webhook/{made['WebhookId']}"), json={"State": "Active"}, timeout=5).ok
    sim.restore(ids[3:])
    [*_, last] = rx.wait_for(10)
    assert last.json()["FieldValues"]["status"] == 1
    [usage] = sim.config_state()["webhooks"]
    assert usage["consecutive_errors"] == 0
    assert usage["total_errors"] == 9


def test_faults_delay_duplicate_and_reorder(
    sim: SuperOfficeSimulator, api: requests.Session, rx: Receiver
) -> None:
    register(sim, api, rx.url + "/h", Events=["ticket.changed"])
    ids = [sim.create_ticket(f"t{n}") for n in range(3)]
    admin = f"{sim.admin_url}/webhooks"
    faults = [
        {"kind": "duplicate", "count": 1},
        {"kind": "reorder", "count": 1},
        {"kind": "delay", "delay": 30, "count": 1},
    ]
    assert requests.post(admin, json={"faults": faults}, timeout=5).ok
    sim.soft_delete(ids[:1])  # duplicated
    rx.wait_for(2)
    idle(sim)
    sim.soft_delete(ids[1:2])  # held back until the next one has gone
    sim.soft_delete(ids[2:3])  # delayed 30 s: releases nothing until it goes
    idle(sim)
    assert [c.json()["PrimaryKey"] for c in rx.received()] == [ids[0], ids[0]]
    sim.advance(1)  # the held one's own deadline
    rx.wait_for(3)
    sim.advance(30)
    calls = rx.wait_for(4)
    idle(sim)
    assert [c.json()["PrimaryKey"] for c in calls] == [ids[0], ids[0], ids[1], ids[2]]
    assert calls[0].headers["x-superoffice-eventid"] == calls[1].headers["x-superoffice-eventid"]


def test_reorder_sends_the_held_delivery_after_the_next(
    sim: SuperOfficeSimulator, api: requests.Session, rx: Receiver
) -> None:
    register(sim, api, rx.url + "/h", Events=["ticket.changed"])
    ids = [sim.create_ticket(f"t{n}") for n in range(2)]
    assert requests.post(
        f"{sim.admin_url}/webhooks", json={"faults": [{"kind": "reorder", "count": 1}]}, timeout=5
    ).ok
    sim.soft_delete(ids[:1])
    sim.soft_delete(ids[1:])
    calls = rx.wait_for(2)
    idle(sim)
    assert [c.json()["PrimaryKey"] for c in calls] == [ids[1], ids[0]]


def test_drop_ratio_is_seeded_and_reproducible(
    sim: SuperOfficeSimulator, api: requests.Session, rx: Receiver
) -> None:
    """A ratio of drops (`probability`) draws from the simulator's seeded generator: the
    same seed loses the same events."""
    register(sim, api, rx.url + "/h", Events=["ticket.changed"])
    ids = [sim.create_ticket(f"t{n}") for n in range(40)]
    rule = {"kind": "drop", "probability": 0.3}

    def delivered() -> list[int]:
        assert requests.post(f"{sim.admin_url}/webhooks", json={"faults": [rule]}, timeout=5).ok
        for ticket in ids:
            sim.soft_delete([ticket])
        idle(sim)
        got = [c.json()["PrimaryKey"] for c in rx.received()]
        rx.calls.clear()
        sim.restore(ids)
        requests.delete(f"{sim.admin_url}/webhooks", timeout=5)
        idle(sim)
        rx.calls.clear()
        return got

    first = delivered()
    assert 0 < len(first) < len(ids)
    assert delivered() == first
