"""The SuperOffice simulator's webhooks: `Webhook` entities and the ticket events they
are sent (../shared/reference/superoffice-api.md §6).

API: `POST/GET /api/v1/Webhook`, `GET/PUT/DELETE /api/v1/Webhook/{id}` (the list takes
`nameFilter`, `eventFilter`, `targetUrlFilter`, `statusFilter`). A `WebhookEntity` has
`WebhookId, Name, Events, TargetUrl, Secret, State, Type, Headers, Properties,
Registered, RegisteredAssociate, Updated, UpdatedAssociate`; the Secret is never echoed
back (ASSUMED). NOT modelled: SuperOffice wants an HTTPS TargetUrl that answers 200 to a
test POST at registration; the sandbox registers before `bridge serve` runs, on loopback.

Events: `ticket.created` when a ticket is made, `ticket.changed` on every change of it
(a soft delete arrives as `FieldValues.status` 4, a restore as 1: INFERRED in the
reference, UNCONFIRMED), nothing on a purge (the retention job or an admin's), as the
reference infers. Headers `X-SuperOffice-Event`, `-EventId`, `-Retry` (0 on the first
attempt) and, when the webhook has a Secret, `-Signature`.

Delivery: up to 3 attempts, the retries 1 s and 4 s after a failure (any answer but 2xx,
a timeout, a refused connection), then the event is discarded; every failed attempt adds
to the webhook's consecutive errors and a success clears them; at
`webhook_errors_to_stop` (9) the webhook's State becomes `TooManyErrors` and it gets
nothing until someone sets it back to `Active`. Whether SuperOffice counts failed attempts
or failed events towards the 9 is not said: attempts are counted here (3 lost events).
"""

from __future__ import annotations

import itertools
import json
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from bridge.sandbox import HttpError, Request
from bridge.sandbox.webhooks import Attempt, Delivery, RetryPolicy
from bridge.vendors.superoffice.sim.agents import field as prop
from bridge.vendors.superoffice.sim.store import Ticket
from bridge.vendors.superoffice.webhooks import FORMAT

if TYPE_CHECKING:
    from bridge.vendors.superoffice.sim.simulator import SuperOfficeSimulator

__all__ = ["CHANGED", "CREATED", "STATES", "SuperOfficeWebhooksApi", "retry_policy"]

CREATED: Final = "ticket.created"
CHANGED: Final = "ticket.changed"
#: `WebhookState`: its name as the REST API spells it, and its number
STATES: Final[Mapping[str, int]] = {"Unknown": 0, "Active": 1, "Stopped": 2, "TooManyErrors": 3}
USER_AGENT: Final = "NetServer-Webhook/8.8.6684.1719"


def retry_policy(timeout: float) -> RetryPolicy:
    """Three attempts, the retries 1 s and 4 s after a failure, whatever the failure."""
    return RetryPolicy(backoff=(1.0, 4.0), retried=lambda _status, _n: True, timeout=timeout)


@dataclass(slots=True)
class Webhook:
    webhook_id: int
    name: str
    events: list[str]
    target_url: str
    secret: str
    state: str
    type: str
    headers: dict[str, str]
    properties: dict[str, Any]
    registered: datetime
    registered_by: int
    updated: datetime
    updated_by: int
    consecutive_errors: int = 0
    total_calls: int = 0
    total_errors: int = 0
    last_error: str | None = None
    #: the status each ticket had in the last event sent for it (what `Changes` lists)
    seen: dict[int, int] = field(default_factory=dict)

    def entity(self) -> dict[str, Any]:
        return {
            "WebhookId": self.webhook_id,
            "Name": self.name,
            "Events": list(self.events),
            "TargetUrl": self.target_url,
            "Secret": None,
            "State": self.state,
            "Type": self.type,
            "Headers": dict(self.headers),
            "Properties": dict(self.properties),
            "Registered": _local(self.registered),
            "RegisteredAssociate": {"AssociateId": self.registered_by},
            "Updated": _local(self.updated),
            "UpdatedAssociate": {"AssociateId": self.updated_by},
        }


def _local(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _stamp(moment: datetime) -> str:
    """`2025-05-19T09:56:33.1554128Z`: seven decimals, as NetServer writes them."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def _bad(message: str) -> HttpError:
    return HttpError(
        400, {"Error": message, "ErrorType": "ArgumentError", "ErrorSource": "Webhook"}
    )


class SuperOfficeWebhooksApi:
    """The tenant's webhooks: their API, and the ticket events they are sent."""

    def __init__(self, sim: SuperOfficeSimulator) -> None:
        self.sim = sim
        self.hooks: dict[int, Webhook] = {}
        self._ids = itertools.count(1)
        self._rng = random.Random(sim.seed)
        self.timeout = 10.0
        self.errors_to_stop = 9
        self.dispatcher = sim.use_webhooks(
            retry_policy(self.timeout), gate=self._gate, on_result=self._on_result
        )

    def clear(self) -> None:
        self.hooks.clear()
        self._ids = itertools.count(1)

    def configure(self, *, timeout: float | None = None, errors_to_stop: int | None = None) -> None:
        if timeout is not None:
            self.timeout = float(timeout)
            self.dispatcher.policy = retry_policy(self.timeout)
        if errors_to_stop is not None:
            if errors_to_stop < 1:
                raise ValueError("config: webhook_errors_to_stop must be at least 1")
            self.errors_to_stop = int(errors_to_stop)

    # ---- API -------------------------------------------------------------------------------

    def register(self, api: str) -> None:
        add = self.sim._route
        add("POST", f"{api}/Webhook", self._create, "POST Webhook")
        add("GET", f"{api}/Webhook", self._list, "GET Webhook")
        add("GET", f"{api}/Webhook/{{id}}", self._show, "GET Webhook/{id}")
        add("PUT", f"{api}/Webhook/{{id}}", self._put, "PUT Webhook/{id}")
        add("DELETE", f"{api}/Webhook/{{id}}", self._delete, "DELETE Webhook/{id}")

    def _found(self, request: Request) -> Webhook:
        try:
            hook = self.hooks.get(int(request.params["id"]))
        except ValueError:
            hook = None
        if hook is None:
            raise HttpError(
                404,
                {"Error": "Webhook not found", "ErrorType": "NotFound", "ErrorSource": "Webhook"},
            )
        return hook

    def _create(self, request: Request) -> tuple[int, Any]:
        fields = _validated(self.sim._body_object(request), None)
        now, actor = self.sim.clock.now(), self.sim._actor(request)
        hook = Webhook(
            webhook_id=next(self._ids),
            registered=now,
            registered_by=actor,
            updated=now,
            updated_by=actor,
            **fields,
        )
        self.hooks[hook.webhook_id] = hook
        return 201, hook.entity()

    def _list(self, request: Request) -> tuple[int, Any]:
        def wanted(name: str) -> str:
            for key, values in request.query.items():
                if key.lower() == name.lower() and values:
                    return values[0].lower()
            return ""

        name, event, url, state = (
            wanted(n) for n in ("nameFilter", "eventFilter", "targetUrlFilter", "statusFilter")
        )
        shown = [
            hook.entity()
            for hook in self.hooks.values()
            if name in hook.name.lower()
            and (not event or event in (e.lower() for e in hook.events))
            and url in hook.target_url.lower()
            and (not state or state == hook.state.lower())
        ]
        return 200, shown

    def _show(self, request: Request) -> tuple[int, Any]:
        return 200, self._found(request).entity()

    def _put(self, request: Request) -> tuple[int, Any]:
        """Replace the webhook's settings; setting State Active clears its errors."""
        hook = self._found(request)
        for name, value in _validated(self.sim._body_object(request), hook).items():
            setattr(hook, name, value)
        if hook.state == "Active":
            hook.consecutive_errors = 0
        hook.updated, hook.updated_by = self.sim.clock.now(), self.sim._actor(request)
        return 200, hook.entity()

    def _delete(self, request: Request) -> tuple[int, Any]:
        self.hooks.pop(self._found(request).webhook_id)
        return 204, None

    # ---- events ----------------------------------------------------------------------------

    def ticket_touched(self, ticket: Ticket, actor: int, created: bool) -> None:
        """Queue `ticket.created` or `ticket.changed` for each active webhook that wants
        it (called under the simulator's lock by every change of a ticket)."""
        if not self.hooks:
            return
        event = CREATED if created else CHANGED
        now = self.sim.clock.now()
        for hook in self.hooks.values():
            if hook.state != "Active" or event not in hook.events:
                continue
            event_id = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
            document = {
                "EventId": event_id,
                "Timestamp": _stamp(now),
                "Changes": self._changes(hook, ticket, created),
                "Event": event,
                "PrimaryKey": ticket.ticket_id,
                "Entity": "ticket",
                "ContextIdentifier": self.sim.tenant,
                "ChangedByAssociateId": actor,
                "WebhookName": hook.name,
                "FieldValues": _field_values(ticket),
            }
            self.dispatcher.submit(
                Delivery(
                    target=str(hook.webhook_id),
                    url=hook.target_url,
                    event=event,
                    delivery_id=event_id,
                    body=json.dumps(document, separators=(",", ":")).encode(),
                    sign=self._sign,
                )
            )

    @staticmethod
    def _changes(hook: Webhook, ticket: Ticket, created: bool) -> list[str]:
        """The columns the change touched: all on a create; the status columns when the
        status moved since the last event about the ticket (or none was sent)."""
        status = ticket.status.status_id
        before = hook.seen.get(ticket.ticket_id)
        hook.seen[ticket.ticket_id] = status
        if created:
            return ["id", *_field_values(ticket)]
        moved = ["status", "ticket_status"] if before != status else []
        return [*moved, "last_changed"]

    def _sign(self, delivery: Delivery, attempt: int, now: datetime) -> dict[str, str]:
        with self.sim.lock:
            hook = self.hooks.get(int(delivery.target))
            secret = hook.secret if hook is not None else ""
            extra = dict(hook.headers) if hook is not None else {}
        headers = delivery.signed(FORMAT, secret, now)
        if not secret:  # sent signed only when the webhook has a Secret
            headers = {k: v for k, v in headers.items() if k.lower() != "x-superoffice-signature"}
        headers["X-SuperOffice-Retry"] = str(attempt - 1)
        return {**extra, **headers}

    def _gate(self, delivery: Delivery, now: datetime) -> bool | datetime:
        with self.sim.lock:
            hook = self.hooks.get(int(delivery.target))
            return hook is not None and hook.state == "Active"

    def _on_result(self, delivery: Delivery, attempt: Attempt, final: bool) -> None:
        with self.sim.lock:
            hook = self.hooks.get(int(delivery.target))
            if hook is None:
                return
            hook.total_calls += 1
            if attempt.ok:
                hook.consecutive_errors = 0
                return
            hook.total_errors += 1
            hook.consecutive_errors += 1
            hook.last_error = attempt.error or f"HTTP {attempt.status}"
            if hook.consecutive_errors >= self.errors_to_stop:
                hook.state = "TooManyErrors"

    def usage(self) -> list[dict[str, Any]]:
        """The admin view: each webhook's state and counters (`webhook_usage`)."""
        with self.sim.lock:
            return [
                {
                    "webhook_id": hook.webhook_id,
                    "name": hook.name,
                    "state": hook.state,
                    "total_calls": hook.total_calls,
                    "total_errors": hook.total_errors,
                    "consecutive_errors": hook.consecutive_errors,
                    "last_error": hook.last_error,
                }
                for hook in self.hooks.values()
            ]


def _field_values(ticket: Ticket) -> dict[str, Any]:
    """`FieldValues` of a ticket event (10.2.11+): `status` is the base status number."""
    return {
        "category": 0,
        "connect_id": ticket.connect_id,
        "contact_id": 0,
        "created_at": _local(ticket.created_at),
        "cust_id": 0,
        "has_attachment": 0,
        "last_changed": _local(ticket.last_changed),
        "owned_by": ticket.owned_by,
        "priority": 0,
        "project_id": 0,
        "sale_id": 0,
        "slevel": 1,
        "status": int(ticket.base_status),
        "ticket_status": ticket.status.status_id,
        "ticket_type": 1,
    }


def _validated(body: Mapping[str, Any], current: Webhook | None) -> dict[str, Any]:
    """The writable fields of a `WebhookEntity` (property names in any case); a PUT
    without a field keeps the current value."""

    def given(name: str, default: Any) -> Any:
        value = prop(body, name)
        return default if value is None else value

    name = given("Name", current.name if current else None)
    if not isinstance(name, str) or not name.strip():
        raise _bad("Name is required")
    events = given("Events", current.events if current else None)
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        raise _bad("Events must be a non-empty list of event names")
    target = given("TargetUrl", current.target_url if current else None)
    parts = urlsplit(target) if isinstance(target, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise _bad("TargetUrl must be an absolute http(s) URL")
    state = given("State", current.state if current else "Active")
    if isinstance(state, int) and not isinstance(state, bool):
        state = next((k for k, v in STATES.items() if v == state), state)
    if state not in STATES:
        raise _bad(f"State must be one of {', '.join(STATES)}")
    headers = given("Headers", current.headers if current else {})
    properties = given("Properties", current.properties if current else {})
    if not isinstance(headers, dict) or not isinstance(properties, dict):
        raise _bad("Headers and Properties must be objects")
    return {
        "name": name,
        "events": list(events),
        "target_url": target,
        "secret": str(given("Secret", current.secret if current else "")),
        "state": state,
        "type": str(given("Type", current.type if current else "webhook")),
        "headers": {str(k): str(v) for k, v in headers.items()},
        "properties": dict(properties),
    }
