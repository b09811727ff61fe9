"""Zendesk's event webhooks (../shared/reference/zendesk-api.md, "Event webhooks").

Signed as base64(HMAC-SHA256(signing secret, TIMESTAMP + RAW BODY)), the timestamp in
`X-Zendesk-Webhook-Signature-Timestamp` (ISO 8601, UTC); each delivery has an
`X-Zendesk-Webhook-Invocation-Id` (developer.zendesk.com/documentation/webhooks/
anatomy-of-a-webhook-request). The events bridge subscribes to are the three ticket events
that change deletion state (developer.zendesk.com/api-reference/webhooks/event-types/
ticket-events); the ticket id is `detail.id`, a string, also in `subject` as
`zen:ticket:ID`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from bridge.core.hints import Hint, WebhookRefusedError
from bridge.vendors.zendesk import SIDE

__all__ = ["EVENTS", "FORMAT", "ZendeskWebhooks", "sign"]

SIGNATURE = "x-zendesk-webhook-signature"
TIMESTAMP = "x-zendesk-webhook-signature-timestamp"
INVOCATION = "x-zendesk-webhook-invocation-id"
WEBHOOK_ID = "x-zendesk-webhook-id"

#: the event types a bridge webhook subscribes to
EVENTS = (
    "zen:event-type:ticket.soft_deleted",
    "zen:event-type:ticket.permanently_deleted",
    "zen:event-type:ticket.undeleted",
)


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret, timestamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def _timestamp(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError("timestamp without a zone")
    return value.astimezone(UTC)


class ZendeskWebhooks:
    side = SIDE
    event_header = "type"  # the event is in the body's `type`, not a header

    def verify(
        self,
        secret: bytes,
        headers: Mapping[str, str],
        body: bytes,
        *,
        now: datetime,
        window: timedelta,
    ) -> None:
        signature, stamp = headers.get(SIGNATURE), headers.get(TIMESTAMP)
        if not signature or not stamp:
            raise WebhookRefusedError("unsigned: no signature or timestamp header")
        if not hmac.compare_digest(sign(secret, stamp, body), signature.strip()):
            raise WebhookRefusedError("bad signature")
        try:
            sent = _timestamp(stamp)
        except ValueError:
            raise WebhookRefusedError("unreadable signature timestamp") from None
        if abs(now - sent) > window:
            raise WebhookRefusedError("signature timestamp outside the replay window")

    def read(self, headers: Mapping[str, str], body: bytes) -> Hint | None:
        document = json.loads(body)
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
        event = document.get("type")
        if not isinstance(event, str):
            raise ValueError("no event type")
        if event not in EVENTS:
            return None
        detail = document.get("detail")
        raw_id = detail.get("id") if isinstance(detail, dict) else None
        if raw_id is None:
            subject = document.get("subject")
            raw_id = subject.rpartition(":")[2] if isinstance(subject, str) else None
        ticket_id = int(str(raw_id))  # ids in `detail` are strings
        if ticket_id <= 0:
            raise ValueError("ticket id must be positive")
        actor = detail.get("actor_id") if isinstance(detail, dict) else None
        occurred = document.get("time")
        delivery = headers.get(INVOCATION) or str(document.get("id") or "")
        return Hint(
            side=self.side,
            ticket_ids=(ticket_id,),
            event=event,
            delivery_id=delivery,
            actor_id=int(actor) if isinstance(actor, (int, str)) and str(actor).isdigit() else None,
            occurred_at=_timestamp(occurred) if isinstance(occurred, str) else None,
        )

    def signed_headers(
        self, secret: bytes, body: bytes, *, now: datetime, delivery_id: str, event: str
    ) -> dict[str, str]:
        del event  # Zendesk names the event in the body only
        stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "Content-Type": "application/json",
            SIGNATURE: sign(secret, stamp, body),
            TIMESTAMP: stamp,
            INVOCATION: delivery_id,
        }


FORMAT = ZendeskWebhooks()
