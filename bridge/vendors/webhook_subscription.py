"""What every vendor's webhook registration offers (`bridge webhooks register|status|
unregister`), knowing no vendor: each vendor's `subscriptions.py` implements
`WebhookSubscriptions` over its adapter's own HTTP client (its auth, retries and pacing).

A subscription is found by its name or its target URL, so registering again updates the
one there instead of adding another."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeVar

from bridge.core.contract import Adapter
from bridge.core.model import Side

__all__ = ["Registered", "Subscription", "WebhookSubscriptions", "vendor_adapter"]

AdapterT = TypeVar("AdapterT")


def vendor_adapter(adapter: Adapter, kind: type[AdapterT]) -> AdapterT:
    """The adapter as its vendor's own class (its HTTP client), or TypeError: a vendor's
    subscriptions are only ever handed that vendor's adapter."""
    built: object = adapter
    if not isinstance(built, kind):
        raise TypeError(f"not a {kind.__name__}: {type(adapter).__name__}")
    return built


@dataclass(frozen=True, slots=True)
class Subscription:
    """One webhook as the vendor holds it (never its secret)."""

    side: Side
    id: str
    name: str
    target_url: str
    events: tuple[str, ...]
    #: the vendor's word for its state (`active`, `inactive`; `Active`, `TooManyErrors`)
    state: str
    #: whether the vendor calls it: False when disabled (by a person or by the vendor)
    delivering: bool


@dataclass(frozen=True, slots=True)
class Registered:
    subscription: Subscription
    #: True: made now; False: an existing one updated
    created: bool
    #: the secret the vendor signs with, when the vendor makes it (Zendesk); the caller
    #: stores it and never shows it
    signing_secret: str | None = None


class WebhookSubscriptions(Protocol):
    """One vendor's webhook subscriptions."""

    #: True: the vendor makes the signing secret and `register` returns it (Zendesk);
    #: False: bridge gives the vendor its secret (SuperOffice)
    vendor_makes_secret: bool

    def find(self, adapter: Adapter, *, name: str, target_url: str) -> list[Subscription]:
        """The subscriptions named `name` or calling `target_url`."""
        ...

    def register(
        self, adapter: Adapter, *, name: str, target_url: str, secret: str | None
    ) -> Registered:
        """Create the subscription, or update (and re-enable) the one found."""
        ...

    def remove(self, adapter: Adapter, subscription: Subscription) -> None: ...

    def advice(self, target_url: str) -> str | None:
        """What the vendor will object to in this target URL, if anything."""
        ...
