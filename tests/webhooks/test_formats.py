"""Each vendor's webhooks: signed as the vendor documents, refused when forged, stale or
unsigned, and read into hints (a hint names tickets; it never says a state)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from bridge.core.hints import WebhookRefusedError
from bridge.vendors.registry import SUPEROFFICE_VENDOR, ZENDESK_VENDOR
from bridge.vendors.superoffice import webhooks as so
from bridge.vendors.zendesk import webhooks as zd

NOW = datetime(2025, 5, 19, 9, 56, 40, tzinfo=UTC)
WINDOW = timedelta(minutes=5)
SECRET = b"wMZJ-signing-secret"


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def zendesk_body(event: str = "zen:event-type:ticket.soft_deleted", ticket: str = "5158") -> bytes:
    """The documented envelope (ids in `detail` are strings, statuses upper case)."""
    return json.dumps(
        {
            "account_id": 22129848,
            "detail": {"actor_id": "8447388090494", "id": ticket, "status": "DELETED"},
            "event": {},
            "id": "cbe4028c-7239-495d-b020-f22348516046",
            "subject": f"zen:ticket:{ticket}",
            "time": "2025-05-19T09:56:33.672717030Z"[:26] + "Z",
            "type": event,
            "zendesk_event_version": "2022-11-06",
        }
    ).encode()


def superoffice_body(
    event: str = "ticket.changed", stamp: str = "2025-05-19T09:56:33.1554128Z"
) -> bytes:
    """The documented sample (superoffice-api.md §6), deleted: FieldValues.status 4."""
    return json.dumps(
        {
            "EventId": "32a093ac-418a-40f1-a14a-f4193ea92b59",
            "Timestamp": stamp,
            "Changes": ["status"],
            "Event": event,
            "PrimaryKey": 76,
            "Entity": "ticket",
            "ContextIdentifier": "Cust31038",
            "ChangedByAssociateId": 19,
            "WebhookName": "bridge",
            "FieldValues": {"status": 4, "ticket_status": 1},
        }
    ).encode()


def test_the_registry_names_each_vendors_format() -> None:
    assert ZENDESK_VENDOR.webhooks is zd.FORMAT
    assert SUPEROFFICE_VENDOR.webhooks is so.FORMAT


def test_zendesk_signature_is_hmac_of_timestamp_then_body() -> None:
    # a value computed independently: base64(HMAC-SHA256(b"secret", b"2021-03-25T05:09:27Z{}"))
    import base64
    import hashlib
    import hmac

    expected = base64.b64encode(
        hmac.new(b"secret", b"2021-03-25T05:09:27Z{}", hashlib.sha256).digest()
    ).decode()
    assert zd.sign(b"secret", "2021-03-25T05:09:27Z", b"{}") == expected
    assert zd.sign(b"secret", "2021-03-25T05:09:27Z", b"{}") != zd.sign(
        b"secret", "{}", b"2021-03-25T05:09:27Z"
    )


def test_zendesk_call_verified_and_read() -> None:
    body = zendesk_body()
    headers = lower(
        zd.FORMAT.signed_headers(SECRET, body, now=NOW, delivery_id="8350205582", event="")
    )
    zd.FORMAT.verify(SECRET, headers, body, now=NOW, window=WINDOW)
    hint = zd.FORMAT.read(headers, body)
    assert hint is not None
    assert hint.side == "zendesk"
    assert hint.ticket_ids == (5158,)
    assert hint.delivery_id == "8350205582"
    assert hint.actor_id == 8447388090494
    assert hint.event == "zen:event-type:ticket.soft_deleted"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("body", "bad signature"),
        ("secret", "bad signature"),
        ("stale", "outside the replay window"),
        ("unsigned", "unsigned"),
    ],
)
def test_zendesk_forged_stale_or_unsigned_calls_are_refused(change: str, reason: str) -> None:
    body = zendesk_body()
    sent = NOW - timedelta(minutes=6) if change == "stale" else NOW
    secret = b"another" if change == "secret" else SECRET
    headers = lower(zd.FORMAT.signed_headers(secret, body, now=sent, delivery_id="1", event=""))
    if change == "body":
        body = zendesk_body(ticket="5159")
    if change == "unsigned":
        del headers[zd.SIGNATURE]
    with pytest.raises(WebhookRefusedError, match=reason):
        zd.FORMAT.verify(SECRET, headers, body, now=NOW, window=WINDOW)


def test_zendesk_other_events_are_no_hint() -> None:
    assert zd.FORMAT.read({}, zendesk_body(event="zen:event-type:ticket.created")) is None
    with pytest.raises(ValueError):
        zd.FORMAT.read({}, b"[1, 2]")
    with pytest.raises(ValueError):
        zd.FORMAT.read({}, zendesk_body(ticket="-3"))


def test_superoffice_call_verified_and_read() -> None:
    body = superoffice_body()
    headers = lower(
        so.FORMAT.signed_headers(SECRET, body, now=NOW, delivery_id="e-1", event="ticket.changed")
    )
    so.FORMAT.verify(SECRET, headers, body, now=NOW, window=WINDOW)
    hint = so.FORMAT.read(headers, body)
    assert hint is not None
    assert hint.ticket_ids == (76,)
    assert hint.actor_id == 19
    assert hint.delivery_id == "e-1"
    assert hint.occurred_at == datetime(2025, 5, 19, 9, 56, 33, 155412, tzinfo=UTC)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("body", "bad signature"),
        ("stale", "outside the replay window"),
        ("unsigned", "unsigned"),
        ("no-time", "no readable Timestamp"),
    ],
)
def test_superoffice_forged_stale_or_unsigned_calls_are_refused(change: str, reason: str) -> None:
    stamp = {"stale": "2025-05-19T09:40:00Z", "no-time": "yesterday"}.get(
        change, "2025-05-19T09:56:33.1554128Z"
    )
    body = superoffice_body(stamp=stamp)
    headers = lower(
        so.FORMAT.signed_headers(SECRET, body, now=NOW, delivery_id="e", event="ticket.changed")
    )
    if change == "body":
        body = body.replace(b'"PrimaryKey": 76', b'"PrimaryKey": 77')
    if change == "unsigned":
        del headers[so.SIGNATURE]
    with pytest.raises(WebhookRefusedError, match=reason):
        so.FORMAT.verify(SECRET, headers, body, now=NOW, window=WINDOW)


def test_superoffice_other_entities_are_no_hint() -> None:
    body = superoffice_body().replace(b'"Entity": "ticket"', b'"Entity": "contact"')
    assert so.FORMAT.read({}, body) is None
    assert so.FORMAT.read({}, superoffice_body(event="sale.changed")) is None
