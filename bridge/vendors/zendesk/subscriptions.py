"""bridge's Zendesk webhook: one webhook subscribed to the three deletion events
(../shared/reference/zendesk-api.md "Event webhooks"), through the Webhooks API
(`/api/v2/webhooks`). Zendesk makes its signing secret; `register` reads it back
(`GET /api/v2/webhooks/{id}/signing_secret`) for the caller to store, never to show."""

from __future__ import annotations

from typing import Any, Final

from bridge.core.contract import Adapter, UnreadableAnswerError
from bridge.vendors.http import HttpClient, decode_json
from bridge.vendors.webhook_subscription import Registered, Subscription, vendor_adapter
from bridge.vendors.zendesk import SIDE
from bridge.vendors.zendesk.adapter import ZendeskAdapter
from bridge.vendors.zendesk.webhooks import EVENTS

__all__ = ["SUBSCRIPTIONS", "ZendeskSubscriptions"]

PATH: Final = "api/v2/webhooks"
#: pages of webhooks read at most (100 each): an account holds far fewer
MAX_PAGES: Final = 50


def _http(adapter: Adapter) -> HttpClient:
    return vendor_adapter(adapter, ZendeskAdapter).http


def _subscription(item: Any) -> Subscription:
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        raise UnreadableAnswerError("a webhook without an id")
    status = str(item.get("status") or "")
    return Subscription(
        side=SIDE,
        id=item["id"],
        name=str(item.get("name") or ""),
        target_url=str(item.get("endpoint") or ""),
        events=tuple(str(s) for s in item.get("subscriptions") or ()),
        state=status,
        delivering=status == "active",
    )


class ZendeskSubscriptions:
    vendor_makes_secret = True

    def find(self, adapter: Adapter, *, name: str, target_url: str) -> list[Subscription]:
        http = _http(adapter)
        found: list[Subscription] = []
        params: dict[str, Any] | None = {"page[size]": 100}
        path = PATH
        for _ in range(MAX_PAGES):
            body = decode_json(http.request("GET", path, params=params), path)
            items = body.get("webhooks") if isinstance(body, dict) else None
            if not isinstance(items, list):
                raise UnreadableAnswerError("GET webhooks answered without a 'webhooks' list")
            found += [
                s for s in map(_subscription, items) if s.name == name or s.target_url == target_url
            ]
            meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
            after = meta.get("after_cursor") if meta.get("has_more") else None
            if not after:
                break
            params = {"page[size]": 100, "page[after]": after}
        return found

    def register(
        self, adapter: Adapter, *, name: str, target_url: str, secret: str | None
    ) -> Registered:
        del secret  # Zendesk makes its own
        http = _http(adapter)
        spec = {
            "name": name,
            "endpoint": target_url,
            "http_method": "POST",
            "request_format": "json",
            "status": "active",
            "subscriptions": list(EVENTS),
            "description": "bridge serve: ticket deletion hints",
        }
        existing = self.find(adapter, name=name, target_url=target_url)
        if existing:
            webhook_id, created = existing[0].id, False
            http.request("PUT", f"{PATH}/{webhook_id}", json={"webhook": spec})
        else:
            made = decode_json(http.request("POST", PATH, json={"webhook": spec}), PATH)
            webhook_id, created = _subscription(made.get("webhook")).id, True
        shown = decode_json(http.request("GET", f"{PATH}/{webhook_id}"), PATH)
        secret_path = f"{PATH}/{webhook_id}/signing_secret"
        answer = decode_json(http.request("GET", secret_path), secret_path)
        signing = answer.get("signing_secret") if isinstance(answer, dict) else None
        value = signing.get("secret") if isinstance(signing, dict) else None
        if not isinstance(value, str) or not value:
            raise UnreadableAnswerError("the webhook's signing secret could not be read")
        return Registered(_subscription(shown.get("webhook")), created, signing_secret=value)

    def remove(self, adapter: Adapter, subscription: Subscription) -> None:
        _http(adapter).request("DELETE", f"{PATH}/{subscription.id}", ok=(404,))

    def advice(self, target_url: str) -> str | None:
        return None


SUBSCRIPTIONS: Final = ZendeskSubscriptions()
