"""The Zendesk simulator's Webhooks API and its event calls, over real HTTP: a receiver in
the test collects what the simulator sends, and checks it as `bridge serve` would."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from bridge.core.hints import WebhookRefusedError
from bridge.sandbox import SimClock
from bridge.vendors.zendesk.sim.simulator import ZendeskSimulator
from bridge.vendors.zendesk.webhooks import EVENTS, FORMAT
from tests.sandbox.conftest import ZendeskClient
from tests.webhooks.receiver import Receiver

START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=5)


@pytest.fixture
def zendesk_sim() -> Iterator[ZendeskSimulator]:
    sim = ZendeskSimulator(clock=SimClock(START, frozen=True))
    sim.configure({"rate_limits": False, "webhook_timeout_seconds": 1.0})
    with sim:
        yield sim


@pytest.fixture
def zd(zendesk_sim: ZendeskSimulator) -> ZendeskClient:
    return ZendeskClient(zendesk_sim)


@pytest.fixture
def rx() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


def create_webhook(zd: ZendeskClient, endpoint: str, **fields: Any) -> dict[str, Any]:
    spec = {
        "name": "bridge-default",
        "endpoint": endpoint,
        "http_method": "POST",
        "request_format": "json",
        "status": "active",
        "subscriptions": list(EVENTS),
        **fields,
    }
    answer = zd.post("webhooks", json={"webhook": spec})
    assert answer.status_code == 201, answer.text
    return dict(answer.json()["webhook"])


def secret_of(zd: ZendeskClient, webhook_id: str) -> bytes:
    answer = zd.get(f"webhooks/{webhook_id}/signing_secret")
    assert answer.status_code == 200
    body = answer.json()["signing_secret"]
    assert body["algorithm"] == "SHA256"
    return str(body["secret"]).encode()


def test_webhooks_api_create_show_list_update_delete(zd: ZendeskClient) -> None:
    made = create_webhook(zd, "https://bridge.example/webhooks/zendesk")
    assert len(made["id"]) == 26
    assert made["status"] == "active"
    assert made["subscriptions"] == list(EVENTS)
    assert "signing_secret" not in made
    assert "secret" not in str(made)
    shown = zd.get(f"webhooks/{made['id']}").json()["webhook"]
    assert shown == made
    listed = zd.get("webhooks", params={"filter[name_contains]": "BRIDGE"}).json()
    assert [w["id"] for w in listed["webhooks"]] == [made["id"]]
    assert listed["meta"]["has_more"] is False
    patch = zd.request("PATCH", f"webhooks/{made['id']}", json={"webhook": {"status": "inactive"}})
    assert patch.status_code == 204
    assert zd.get(f"webhooks/{made['id']}").json()["webhook"]["status"] == "inactive"
    put = zd.put(
        f"webhooks/{made['id']}",
        json={"webhook": {**made, "endpoint": "https://other.example/x", "status": "active"}},
    )
    assert put.status_code == 204
    assert zd.get(f"webhooks/{made['id']}").json()["webhook"]["endpoint"] == (
        "https://other.example/x"
    )
    assert zd.delete(f"webhooks/{made['id']}").status_code == 204
    assert zd.get(f"webhooks/{made['id']}").status_code == 404


def test_event_subscriptions_need_post_and_json(zd: ZendeskClient) -> None:
    spec = {
        "name": "x",
        "endpoint": "https://bridge.example/h",
        "http_method": "GET",
        "request_format": "json",
        "status": "active",
        "subscriptions": list(EVENTS),
    }
    answer = zd.post("webhooks", json={"webhook": spec})
    assert answer.status_code == 400
    assert "POST" in answer.json()["errors"][0]["detail"]


def test_signing_secret_reset_changes_it(zd: ZendeskClient) -> None:
    made = create_webhook(zd, "https://bridge.example/h")
    first = secret_of(zd, made["id"])
    reset = zd.post(f"webhooks/{made['id']}/signing_secret")
    assert reset.status_code == 201
    assert secret_of(zd, made["id"]) != first


def test_soft_delete_restore_purge_each_call_the_webhook_signed(
    zendesk_sim: ZendeskSimulator, zd: ZendeskClient, rx: Receiver
) -> None:
    made = create_webhook(zd, rx.url + "/webhooks/zendesk")
    secret = secret_of(zd, made["id"])
    [ticket] = zendesk_sim.seed_tickets(
        [{"subject": "Printer on fire", "priority": "high", "status": "open"}]
    )
    assert zd.delete(f"tickets/{ticket}").status_code == 204  # the API, as bridge
    zendesk_sim.act({"action": "restore", "ids": [ticket], "agent": {"id": 77, "name": "Ann"}})
    zendesk_sim.act({"action": "purge", "ids": [ticket]})  # a live ticket: delete, then purge
    calls = rx.wait_for(4)
    assert zendesk_sim.webhooks is not None
    assert zendesk_sim.webhooks.wait_idle()
    types = [call.json()["type"] for call in calls]
    assert types == [
        "zen:event-type:ticket.soft_deleted",
        "zen:event-type:ticket.undeleted",
        "zen:event-type:ticket.soft_deleted",
        "zen:event-type:ticket.permanently_deleted",
    ]
    first = calls[0].json()
    assert first["subject"] == f"zen:ticket:{ticket}"
    assert first["event"] == {}
    assert first["detail"]["id"] == str(ticket)
    assert first["detail"]["status"] == "DELETED"
    assert first["detail"]["priority"] == "HIGH"
    assert first["detail"]["actor_id"] == "1"
    assert first["account_id"] == zendesk_sim.config.account_id
    assert first["zendesk_event_version"] == "2022-11-06"
    assert calls[1].json()["detail"]["status"] == "OPEN"
    assert calls[1].json()["detail"]["actor_id"] == "77"
    invocations = {call.headers["x-zendesk-webhook-invocation-id"] for call in calls}
    assert len(invocations) == 4
    for call in calls:
        assert call.path == "/webhooks/zendesk"
        assert call.headers["x-zendesk-webhook-id"] == made["id"]
        FORMAT.verify(secret, call.headers, call.body, now=zendesk_sim.clock.now(), window=WINDOW)
        hint = FORMAT.read(call.headers, call.body)
        assert hint is not None
        assert hint.ticket_ids == (ticket,)
    with pytest.raises(WebhookRefusedError):
        FORMAT.verify(b"not-it", calls[0].headers, calls[0].body, now=START, window=WINDOW)


def test_unsubscribed_and_inactive_webhooks_get_nothing(
    zendesk_sim: ZendeskSimulator, zd: ZendeskClient, rx: Receiver
) -> None:
    create_webhook(zd, rx.url + "/restores", subscriptions=["zen:event-type:ticket.undeleted"])
    off = create_webhook(zd, rx.url + "/off", status="inactive")
    [ticket] = zendesk_sim.seed_tickets([{"subject": "x"}])
    zendesk_sim.agent_act("delete", [ticket])
    zendesk_sim.agent_act("restore", [ticket])
    [call] = rx.wait_for(1)
    assert zendesk_sim.webhooks is not None
    assert zendesk_sim.webhooks.wait_idle()
    assert call.path == "/restores"
    assert len(rx.received()) == 1
    assert off["status"] == "inactive"


def test_a_timeout_is_retried_with_the_same_invocation_id(
    zendesk_sim: ZendeskSimulator, zd: ZendeskClient, rx: Receiver
) -> None:
    create_webhook(zd, rx.url + "/h")
    rx.answers = [503, 503]
    [ticket] = zendesk_sim.seed_tickets([{"subject": "x"}])
    zendesk_sim.agent_act("delete", [ticket])
    dispatcher = zendesk_sim.webhooks
    assert dispatcher is not None
    rx.wait_for(1)
    assert dispatcher.wait_idle()
    assert len(rx.received()) == 1
    zendesk_sim.advance(1)
    rx.wait_for(2)
    zendesk_sim.advance(2)
    calls = rx.wait_for(3)
    assert dispatcher.wait_idle()
    assert len({c.headers["x-zendesk-webhook-invocation-id"] for c in calls}) == 1
    assert [a.status for a in dispatcher.attempts()] == [503, 503, 200]


def test_a_client_error_is_not_retried(
    zendesk_sim: ZendeskSimulator, zd: ZendeskClient, rx: Receiver
) -> None:
    create_webhook(zd, rx.url + "/h")
    rx.status = 401
    [ticket] = zendesk_sim.seed_tickets([{"subject": "x"}])
    zendesk_sim.agent_act("delete", [ticket])
    rx.wait_for(1)
    zendesk_sim.advance(60)
    assert zendesk_sim.webhooks is not None
    assert zendesk_sim.webhooks.wait_idle()
    assert len(rx.received()) == 1


def test_the_circuit_breaker_pauses_a_failing_webhook(
    zendesk_sim: ZendeskSimulator, zd: ZendeskClient, rx: Receiver
) -> None:
    """10 failures in a row (100 % > 70 %) pause it for 5 s: the next events wait, then one
    attempt after the pause reopens it when it succeeds."""
    made = create_webhook(zd, rx.url + "/h")
    rx.status = 500  # not retried: one attempt per event
    ids = zendesk_sim.seed_tickets([{"subject": f"t{n}"} for n in range(12)])
    zendesk_sim.agent_act("delete", ids[:10])
    rx.wait_for(10)
    dispatcher = zendesk_sim.webhooks
    assert dispatcher is not None
    assert dispatcher.wait_idle()
    [state] = zendesk_sim.hooks.state()
    assert state["id"] == made["id"]
    assert state["paused_until"] == "2024-05-01T12:00:05Z"
    rx.status = 200
    zendesk_sim.agent_act("delete", ids[10:])
    assert dispatcher.wait_idle()
    assert len(rx.received()) == 10
    zendesk_sim.advance(5)
    rx.wait_for(12)
    assert dispatcher.wait_idle()
    assert zendesk_sim.hooks.state()[0]["paused_until"] is None


def test_an_api_call_never_waits_on_a_slow_receiver(
    zendesk_sim: ZendeskSimulator, zd: ZendeskClient
) -> None:
    """The receiver never answers (a socket that accepts and stays silent): the delete is
    answered at once all the same."""
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        host, port = silent.getsockname()
        create_webhook(zd, f"http://{host}:{port}/h")
        [ticket] = zendesk_sim.seed_tickets([{"subject": "x"}])
        started = datetime.now(UTC)
        assert zd.delete(f"tickets/{ticket}").status_code == 204
        assert (datetime.now(UTC) - started).total_seconds() < 0.5
    finally:
        silent.close()


def test_admin_lists_deliveries_and_takes_faults(
    zendesk_sim: ZendeskSimulator, zd: ZendeskClient, rx: Receiver
) -> None:
    create_webhook(zd, rx.url + "/h")
    admin = f"{zendesk_sim.admin_url}/webhooks"
    rules = {"faults": [{"kind": "drop", "route": "zen:event-type:ticket.soft_deleted"}]}
    assert requests.post(admin, json=rules, timeout=5).status_code == 200
    bad = requests.post(admin, json={"faults": [{"kind": "status"}]}, timeout=5)
    assert bad.status_code == 400
    [ticket] = zendesk_sim.seed_tickets([{"subject": "x"}])
    zendesk_sim.agent_act("delete", [ticket])
    zendesk_sim.agent_act("restore", [ticket])
    [call] = rx.wait_for(1)
    assert call.json()["type"] == "zen:event-type:ticket.undeleted"
    state = requests.get(admin, timeout=5).json()
    assert [(d["error"], d["fault"]) for d in state["deliveries"]] == [
        ("dropped", "drop"),
        (None, None),
    ]
    assert state["pending"] == 0


def test_webhooks_api_answers_match_the_openapi_spec(zd: ZendeskClient) -> None:
    """Validated against Zendesk's published OpenAPI description when it documents the
    Webhooks API; the copy in ../shared/reference/ (the Support API) does not, so this is
    skipped, saying so, until a spec that does is put there."""
    from tests.sandbox.test_zendesk_openapi import SPEC_PATH, _SpecLoader, assert_valid

    if not SPEC_PATH.exists():
        pytest.skip(f"OpenAPI spec not found at {SPEC_PATH}")
    import yaml

    with SPEC_PATH.open("rb") as handle:
        spec: dict[str, Any] = yaml.load(handle, Loader=_SpecLoader)
    wanted = ("/api/v2/webhooks", "/api/v2/webhooks/{webhook_id}/signing_secret")
    if not all(path in spec["paths"] for path in wanted):
        pytest.skip("the OpenAPI spec in ../shared/reference/ has no Webhooks API paths")
    made = create_webhook(zd, "https://bridge.example/webhooks/zendesk")
    assert_valid(spec, "/api/v2/webhooks", "GET", 200, zd.get("webhooks").json())
    secret = zd.get(f"webhooks/{made['id']}/signing_secret").json()
    assert_valid(spec, wanted[1], "GET", 200, secret)
