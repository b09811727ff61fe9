"""Webhooks as hints (docs/webhooks.md): what a vendor's call tells bridge, and how each
vendor's calls are checked and read.

A webhook names tickets that may have changed; it never sets a state. Whatever it says is
re-read from the vendor's API and decided three-way like any change, so a lost, repeated,
reordered or forged call changes nothing a scheduled sync would not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from bridge.core.model import Side

__all__ = ["Hint", "WebhookFormat", "WebhookRefusedError"]


@dataclass(frozen=True, slots=True)
class Hint:
    """Tickets of one side a vendor's webhook named, and what it said happened."""

    side: Side
    ticket_ids: tuple[int, ...]
    #: the vendor's event name (`zen:event-type:ticket.soft_deleted`, `ticket.changed`)
    event: str
    #: the vendor's id of this delivery: the same id again is a duplicate
    delivery_id: str
    #: who the vendor says made the change (echo suppression), when it says so
    actor_id: int | None = None
    occurred_at: datetime | None = None


class WebhookRefusedError(ValueError):
    """A webhook call that must not be believed: bad or missing signature, or outside the
    replay window. Its message says which, never the secret or the body."""


class WebhookFormat(Protocol):
    """One vendor's webhooks: how they are signed and what they say."""

    side: Side
    #: the header naming the event (logged for an ignored event)
    event_header: str

    def verify(
        self,
        secret: bytes,
        headers: Mapping[str, str],
        body: bytes,
        *,
        now: datetime,
        window: timedelta,
    ) -> None:
        """Raise `WebhookRefusedError` unless the call is signed with `secret` and was sent
        within `window` of `now`. `headers` are looked up in lower case."""
        ...

    def read(self, headers: Mapping[str, str], body: bytes) -> Hint | None:
        """The hint in a verified call; None when its event says nothing about a ticket's
        deletion state (answered 202 and ignored). Raises `ValueError` for a body that is
        not the vendor's shape."""
        ...

    def signed_headers(
        self, secret: bytes, body: bytes, *, now: datetime, delivery_id: str, event: str
    ) -> dict[str, str]:
        """The headers the vendor sends with `body` (the simulators sign with this)."""
        ...
