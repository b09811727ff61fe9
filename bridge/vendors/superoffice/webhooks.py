"""SuperOffice's webhooks (../shared/reference/superoffice-api.md §6).

Signed, when the webhook has a Secret, as base64(HMAC-SHA256(secret, RAW BODY)) in
`X-SuperOffice-Signature`; there is no signed timestamp header, so the replay window is
read from the body's `Timestamp`, which the signature covers. Tickets have only
`ticket.created` and `ticket.changed` (no delete event): a soft delete or a restore arrives
as `ticket.changed` (with `FieldValues.status` 4 or back to 1, INFERRED), a purge as
nothing at all — the scheduled sync's sweep finds those.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from bridge.core.hints import Hint, WebhookRefusedError
from bridge.vendors.superoffice import SIDE

__all__ = ["EVENTS", "FORMAT", "SuperOfficeWebhooks", "sign"]

SIGNATURE = "x-superoffice-signature"
EVENT = "x-superoffice-event"
EVENT_ID = "x-superoffice-eventid"

#: the events a bridge webhook subscribes to (all a ticket has)
EVENTS = ("ticket.created", "ticket.changed")


def sign(secret: bytes, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest()).decode("ascii")


def _timestamp(text: str) -> datetime:
    """`2025-05-19T09:56:33.1554128Z`: seven decimals, more than Python reads."""
    head, dot, rest = text.rstrip("Z").partition(".")
    value = datetime.fromisoformat(head)
    if dot:
        digits = "".join(c for c in rest if c.isdigit())[:6].ljust(6, "0")
        value = value.replace(microsecond=int(digits))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _document(body: bytes) -> dict[str, object]:
    document = json.loads(body)
    if not isinstance(document, dict):
        raise ValueError("not a JSON object")
    return document


class SuperOfficeWebhooks:
    side = SIDE
    event_header = EVENT

    def verify(
        self,
        secret: bytes,
        headers: Mapping[str, str],
        body: bytes,
        *,
        now: datetime,
        window: timedelta,
    ) -> None:
        signature = headers.get(SIGNATURE)
        if not signature:
            raise WebhookRefusedError("unsigned: no X-SuperOffice-Signature header")
        if not hmac.compare_digest(sign(secret, body), signature.strip()):
            raise WebhookRefusedError("bad signature")
        try:
            stamp = _document(body).get("Timestamp")
            sent = _timestamp(stamp) if isinstance(stamp, str) else None
        except ValueError:
            sent = None
        if sent is None:
            raise WebhookRefusedError("no readable Timestamp in the signed body")
        if abs(now - sent) > window:
            raise WebhookRefusedError("Timestamp outside the replay window")

    def read(self, headers: Mapping[str, str], body: bytes) -> Hint | None:
        document = _document(body)
        event = document.get("Event") or headers.get(EVENT)
        if not isinstance(event, str):
            raise ValueError("no Event")
        if event not in EVENTS or document.get("Entity", "ticket") != "ticket":
            return None
        key = document.get("PrimaryKey")
        if isinstance(key, bool) or not isinstance(key, int) or key <= 0:
            raise ValueError("PrimaryKey must be a positive ticket id")
        actor = document.get("ChangedByAssociateId")
        stamp = document.get("Timestamp")
        delivery = headers.get(EVENT_ID) or str(document.get("EventId") or "")
        return Hint(
            side=self.side,
            ticket_ids=(key,),
            event=event,
            delivery_id=delivery,
            actor_id=actor if isinstance(actor, int) and not isinstance(actor, bool) else None,
            occurred_at=_timestamp(stamp) if isinstance(stamp, str) else None,
        )

    def signed_headers(
        self, secret: bytes, body: bytes, *, now: datetime, delivery_id: str, event: str
    ) -> dict[str, str]:
        del now  # the time is the body's Timestamp
        return {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "NetServer-Webhook/8.8.6684.1719",
            EVENT: event,
            EVENT_ID: delivery_id,
            SIGNATURE: sign(secret, body),
        }


FORMAT = SuperOfficeWebhooks()
