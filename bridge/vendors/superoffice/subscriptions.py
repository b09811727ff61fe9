"""bridge's SuperOffice webhook: a `Webhook` entity for `ticket.created` and
`ticket.changed` (all a ticket has; ../shared/reference/superoffice-api.md §6), with the
Secret bridge gives it. Registering again PUTs the entity with State `Active`, which is
how a webhook SuperOffice stopped (`TooManyErrors`) is switched back on."""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlsplit

from bridge.core.contract import Adapter, UnreadableAnswerError
from bridge.vendors.http import HttpClient, decode_json
from bridge.vendors.superoffice import SIDE
from bridge.vendors.superoffice.adapter import SuperOfficeAdapter
from bridge.vendors.superoffice.webhooks import EVENTS
from bridge.vendors.webhook_subscription import Registered, Subscription, vendor_adapter

__all__ = ["SUBSCRIPTIONS", "SuperOfficeSubscriptions"]

PATH: Final = "Webhook"
_LOOPBACK: Final = ("127.0.0.1", "localhost", "::1")


def _http(adapter: Adapter) -> HttpClient:
    return vendor_adapter(adapter, SuperOfficeAdapter).http


def _subscription(item: Any) -> Subscription:
    if not isinstance(item, dict) or not isinstance(item.get("WebhookId"), int):
        raise UnreadableAnswerError("a Webhook without a WebhookId")
    state = str(item.get("State") or "")
    return Subscription(
        side=SIDE,
        id=str(item["WebhookId"]),
        name=str(item.get("Name") or ""),
        target_url=str(item.get("TargetUrl") or ""),
        events=tuple(str(e) for e in item.get("Events") or ()),
        state=state,
        delivering=state == "Active",
    )


class SuperOfficeSubscriptions:
    vendor_makes_secret = False

    def find(self, adapter: Adapter, *, name: str, target_url: str) -> list[Subscription]:
        items = decode_json(_http(adapter).request("GET", PATH), PATH)
        if not isinstance(items, list):
            raise UnreadableAnswerError("GET Webhook answered without a list")
        return [
            s for s in map(_subscription, items) if s.name == name or s.target_url == target_url
        ]

    def register(
        self, adapter: Adapter, *, name: str, target_url: str, secret: str | None
    ) -> Registered:
        if not secret:
            raise ValueError("a SuperOffice webhook needs the secret bridge verifies with")
        http = _http(adapter)
        entity = {
            "Name": name,
            "Events": list(EVENTS),
            "TargetUrl": target_url,
            "Secret": secret,
            "State": "Active",
            "Type": "webhook",
        }
        existing = self.find(adapter, name=name, target_url=target_url)
        if existing:
            path = f"{PATH}/{existing[0].id}"
            answer = http.request("PUT", path, json=entity)
        else:
            path = PATH
            answer = http.request("POST", path, json=entity)
        return Registered(_subscription(decode_json(answer, path)), created=not existing)

    def remove(self, adapter: Adapter, subscription: Subscription) -> None:
        _http(adapter).request("DELETE", f"{PATH}/{subscription.id}", ok=(404,))

    def advice(self, target_url: str) -> str | None:
        parts = urlsplit(target_url)
        if parts.scheme != "https" and parts.hostname not in _LOOPBACK:
            return (
                "SuperOffice calls only an https TargetUrl with a valid certificate, and "
                "wants it to answer 200 to a test call when registered: set [serve] "
                "public_url to the https address of bridge serve"
            )
        return None


SUBSCRIPTIONS: Final = SuperOfficeSubscriptions()
