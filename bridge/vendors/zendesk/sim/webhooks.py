"""The Zendesk simulator's webhooks: the Webhooks API and the event deliveries it feeds.

API (developer.zendesk.com/api-reference/webhooks/webhooks-api; ../shared/reference/
zendesk-api.md "Event webhooks"): `POST/GET /api/v2/webhooks`, `GET/PUT/PATCH/DELETE
/api/v2/webhooks/{id}`, `GET|POST /api/v2/webhooks/{id}/signing_secret` (read, reset).
Event subscriptions (`zen:event-type:...`) need `http_method` POST and `request_format`
json. Only the three deletion events are ever sent (`EVENTS`): other subscriptions are
stored and never fire.

Delivery (`bridge.sandbox.webhooks`), what is modelled and where it comes from:

* the envelope of the reference (`account_id`, `detail` with string ids and upper-case
  status, `event: {}`, `id`, `subject` `zen:ticket:ID`, `time`, `type`,
  `zendesk_event_version`), signed per `bridge.vendors.zendesk.webhooks.FORMAT` with the
  webhook's signing secret at the moment of each attempt; an invocation id per delivery,
  kept on its retries;
* retries ("Webhook retries", developer.zendesk.com/api-reference/webhooks/introduction):
  a timeout or refused connection up to 5 times, a 409, 429 or 503 up to 3 times, other
  answers not at all; the waits (1, 2, 4, 8, 16 s) are ASSUMED, as is ignoring
  `Retry-After`;
* the circuit breaker (same page; also alboz.eu "Master webhooks"): 70 % of a webhook's
  attempts in 5 minutes failed (of at least `webhook_breaker_min_requests`, ASSUMED), or
  over 1,000 failures in 5 minutes, pause it for 5 s; then one attempt decides whether it
  resumes. Deliveries wait while it is paused (ASSUMED: not dropped);
* an `inactive` webhook gets nothing; what was queued for it is discarded;
* the 30-day scrub sends `permanently_deleted` only if `scrub_sends_webhook` (UNCONFIRMED,
  open question 6 of the reference; off by default).
"""

from __future__ import annotations

import base64
import itertools
import json
import random
import secrets
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from bridge.sandbox import HttpError, Request, Response, iso_z
from bridge.sandbox.webhooks import Attempt, Delivery, RetryPolicy
from bridge.vendors.zendesk.sim.store import Ticket
from bridge.vendors.zendesk.webhooks import FORMAT, WEBHOOK_ID

if TYPE_CHECKING:
    from bridge.vendors.zendesk.sim.simulator import ZendeskSimulator

__all__ = ["EVENT_PREFIX", "ZendeskWebhooksApi", "retry_policy"]

EVENT_PREFIX: Final = "zen:event-type:"
#: the events the simulator sends (each ticket change that alters its deletion state)
SOFT_DELETED: Final = EVENT_PREFIX + "ticket.soft_deleted"
PERMANENTLY_DELETED: Final = EVENT_PREFIX + "ticket.permanently_deleted"
UNDELETED: Final = EVENT_PREFIX + "ticket.undeleted"
EVENT_VERSION: Final = "2022-11-06"
METHODS: Final = ("GET", "POST", "PUT", "PATCH", "DELETE")
FORMATS: Final = ("json", "xml", "form_encoded")
STATUSES: Final = ("active", "inactive")
#: the circuit breaker (see the module docstring)
BREAKER_WINDOW: Final = timedelta(minutes=5)
BREAKER_RATIO: Final = 0.7
BREAKER_MAX_ERRORS: Final = 1000
BREAKER_PAUSE: Final = timedelta(seconds=5)
_ULID_ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def retry_policy(timeout: float) -> RetryPolicy:
    """Zendesk's retries (module docstring): what is retried, how often, how long apart."""

    def retried(status: int | None, attempt: int) -> bool:
        if status is None:
            return attempt <= 5
        return status in (409, 429, 503) and attempt <= 3

    return RetryPolicy(backoff=(1.0, 2.0, 4.0, 8.0, 16.0), retried=retried, timeout=timeout)


@dataclass(slots=True)
class Webhook:
    id: str
    name: str
    endpoint: str
    subscriptions: list[str]
    status: str
    http_method: str
    request_format: str
    description: str | None
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str
    secret: str
    #: the attempts of the last 5 minutes: (when, whether it failed)
    outcomes: deque[tuple[datetime, bool]] = field(default_factory=deque)
    #: the breaker is open until then (None: closed)
    paused_until: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "status": self.status,
            "endpoint": self.endpoint,
            "http_method": self.http_method,
            "request_format": self.request_format,
            "subscriptions": list(self.subscriptions),
            "created_at": iso_z(self.created_at),
            "created_by": self.created_by,
            "updated_at": iso_z(self.updated_at),
            "updated_by": self.updated_by,
        }


def _invalid(detail: str, status: int = 400) -> HttpError:
    """The Webhooks API's error list (its exact codes are ASSUMED)."""
    return HttpError(
        status, {"errors": [{"code": "InvalidValue", "title": "Invalid value", "detail": detail}]}
    )


_NOT_FOUND = {"errors": [{"code": "WebhookNotFound", "title": "Webhook not found"}]}


class ZendeskWebhooksApi:
    """The webhooks of one simulated account: their API, and the events they are sent."""

    def __init__(self, sim: ZendeskSimulator) -> None:
        self.sim = sim
        self.hooks: dict[str, Webhook] = {}
        self._rng = random.Random(sim.seed)
        self._invocations = itertools.count(8_350_200_000)
        self.dispatcher = sim.use_webhooks(
            retry_policy(sim.config.webhook_timeout_seconds),
            gate=self._gate,
            on_result=self._on_result,
        )

    def clear(self) -> None:
        self.hooks.clear()

    def configured(self) -> None:
        """The sim's config changed: the attempt timeout follows it."""
        self.dispatcher.policy = retry_policy(self.sim.config.webhook_timeout_seconds)

    # ---- API -------------------------------------------------------------------------------

    def register(self, api: str) -> None:
        add = self.sim.route
        add("POST", f"{api}/webhooks", self._create, name="POST webhooks")
        add("GET", f"{api}/webhooks", self._list, name="GET webhooks")
        add("GET", f"{api}/webhooks/{{id}}", self._show, name="GET webhooks/{id}")
        add("PUT", f"{api}/webhooks/{{id}}", self._put, name="PUT webhooks/{id}")
        add("PATCH", f"{api}/webhooks/{{id}}", self._patch, name="PATCH webhooks/{id}")
        add("DELETE", f"{api}/webhooks/{{id}}", self._delete, name="DELETE webhooks/{id}")
        add(
            "GET",
            f"{api}/webhooks/{{id}}/signing_secret",
            self._secret,
            name="GET webhooks/{id}/signing_secret",
        )
        add(
            "POST",
            f"{api}/webhooks/{{id}}/signing_secret",
            self._reset_secret,
            name="POST webhooks/{id}/signing_secret",
        )

    def _found(self, request: Request) -> Webhook:
        hook = self.hooks.get(request.params["id"])
        if hook is None:
            raise HttpError(404, _NOT_FOUND)
        return hook

    def _actor(self, request: Request) -> str:
        principal = request.principal or self.sim._api_user()
        return str(principal[0])

    def _create(self, request: Request) -> Response:
        body = request.json()
        spec = body.get("webhook") if isinstance(body, dict) else None
        if not isinstance(spec, dict):
            raise _invalid("a webhook object is required")
        fields = _validated({**_DEFAULTS, **spec}, partial=False)
        now, actor = self.sim.clock.now(), self._actor(request)
        hook = Webhook(
            id=self._new_id(now),
            created_at=now,
            created_by=actor,
            updated_at=now,
            updated_by=actor,
            secret=_new_secret(),
            **fields,
        )
        self.hooks[hook.id] = hook
        return Response(201, {"webhook": hook.to_json()})

    def _list(self, request: Request) -> Response:
        """All webhooks, oldest first, in one cursor page; `filter[name_contains]` and
        `filter[status]` narrow them."""
        name = (request.arg("filter[name_contains]") or "").lower()
        status = request.arg("filter[status]")
        shown = [
            hook.to_json()
            for hook in self.hooks.values()
            if name in hook.name.lower() and (status is None or hook.status == status)
        ]
        return Response(
            200,
            {
                "webhooks": shown,
                "meta": {"has_more": False, "after_cursor": None, "before_cursor": None},
                "links": {"next": None, "prev": None},
            },
        )

    def _show(self, request: Request) -> Response:
        return Response(200, {"webhook": self._found(request).to_json()})

    def _put(self, request: Request) -> Response:
        """Replace the webhook's settings (204, no body)."""
        return self._update(request, partial=False)

    def _patch(self, request: Request) -> Response:
        """A JSON merge patch of its settings (204, no body)."""
        return self._update(request, partial=True)

    def _update(self, request: Request, *, partial: bool) -> Response:
        hook = self._found(request)
        body = request.json()
        spec = body.get("webhook") if isinstance(body, dict) else None
        if not isinstance(spec, dict):
            raise _invalid("a webhook object is required")
        merged = {**_settings(hook), **spec} if partial else {**_DEFAULTS, **spec}
        for name, value in _validated(merged, partial=partial).items():
            setattr(hook, name, value)
        hook.updated_at, hook.updated_by = self.sim.clock.now(), self._actor(request)
        if hook.status == "active":
            hook.paused_until = None
        return Response(204)

    def _delete(self, request: Request) -> Response:
        self.hooks.pop(self._found(request).id)
        return Response(204)

    def _secret(self, request: Request) -> Response:
        hook = self._found(request)
        return Response(200, {"signing_secret": {"secret": hook.secret, "algorithm": "SHA256"}})

    def _reset_secret(self, request: Request) -> Response:
        hook = self._found(request)
        hook.secret = _new_secret()
        return Response(201, {"signing_secret": {"secret": hook.secret, "algorithm": "SHA256"}})

    def _new_id(self, now: datetime) -> str:
        """A ULID, as Zendesk's webhook ids are (`01EJFTSCC78X5V07NPY2MHR00M`)."""
        number = (int(now.timestamp() * 1000) << 80) | self._rng.getrandbits(80)
        return "".join(_ULID_ALPHABET[(number >> (5 * i)) & 31] for i in reversed(range(26)))

    # ---- events ----------------------------------------------------------------------------

    def emit(self, event: str, ticket: Ticket, actor: tuple[int, str], at: datetime) -> None:
        """Queue `event` about `ticket` for every active webhook subscribed to it (called
        under the simulator's lock by whatever changed the ticket)."""
        wanted = [
            h for h in self.hooks.values() if h.status == "active" and event in h.subscriptions
        ]
        if not wanted:
            return
        document = {
            "account_id": self.sim.config.account_id,
            "detail": self._detail(event, ticket, actor),
            "event": {},
            "id": str(uuid.UUID(int=self._rng.getrandbits(128), version=4)),
            "subject": f"zen:ticket:{ticket.id}",
            "time": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "type": event,
            "zendesk_event_version": EVENT_VERSION,
        }
        body = json.dumps(document, separators=(",", ":")).encode()
        for hook in wanted:
            self.dispatcher.submit(
                Delivery(
                    target=hook.id,
                    url=hook.endpoint,
                    event=event,
                    delivery_id=str(next(self._invocations)),
                    body=body,
                    sign=self._sign,
                )
            )

    def _detail(self, event: str, ticket: Ticket, actor: tuple[int, str]) -> dict[str, Any]:
        """The ticket as event payloads show it: ids as strings, enums in upper case."""

        def text_id(value: int | None) -> str | None:
            return None if value is None else str(value)

        status = ticket.status.upper() if event == UNDELETED else "DELETED"
        via = "web_service" if actor[0] == self.sim.config.api_user_id else "web"
        return {
            "actor_id": str(actor[0]),
            "assignee_id": text_id(ticket.assignee_id),
            "brand_id": None,
            "created_at": iso_z(ticket.created_at),
            "custom_status": None,
            "description": ticket.description,
            "external_id": ticket.external_id,
            "form_id": None,
            "group_id": None,
            "id": str(ticket.id),
            "is_public": True,
            "organization_id": None,
            "priority": ticket.priority.upper() if ticket.priority else None,
            "requester_id": text_id(ticket.requester_id),
            "status": status,
            "subject": ticket.subject,
            "submitter_id": text_id(ticket.submitter_id),
            "tags": list(ticket.tags),
            "type": ticket.type.upper() if ticket.type else None,
            "updated_at": iso_z(ticket.updated_at),
            "via": {"channel": via},
        }

    def _sign(self, delivery: Delivery, attempt: int, now: datetime) -> dict[str, str]:
        """Signed with the webhook's secret of the moment (a reset one signs what follows)."""
        with self.sim.lock:
            hook = self.hooks.get(delivery.target)
            secret = hook.secret if hook is not None else ""
        headers = delivery.signed(FORMAT, secret, now)
        headers[WEBHOOK_ID] = delivery.target
        headers["User-Agent"] = "Zendesk Webhook"
        return headers

    def _gate(self, delivery: Delivery, now: datetime) -> bool | datetime:
        with self.sim.lock:
            hook = self.hooks.get(delivery.target)
            if hook is None or hook.status != "active":
                return False
            if hook.paused_until is not None and now < hook.paused_until:
                return hook.paused_until
            return True

    def _on_result(self, delivery: Delivery, attempt: Attempt, final: bool) -> None:
        """The circuit breaker: count the attempt; trip, stay open or close."""
        with self.sim.lock:
            hook = self.hooks.get(delivery.target)
            if hook is None:
                return
            failed = not attempt.ok
            if hook.paused_until is not None:  # this was the one attempt after a pause
                hook.paused_until = attempt.at + BREAKER_PAUSE if failed else None
                hook.outcomes.clear()
                return
            hook.outcomes.append((attempt.at, failed))
            while hook.outcomes and hook.outcomes[0][0] < attempt.at - BREAKER_WINDOW:
                hook.outcomes.popleft()
            errors = sum(1 for _, bad in hook.outcomes if bad)
            total = len(hook.outcomes)
            tripped = errors > BREAKER_MAX_ERRORS or (
                total >= self.sim.config.webhook_breaker_min_requests
                and errors >= BREAKER_RATIO * total
            )
            if failed and tripped:
                hook.paused_until = attempt.at + BREAKER_PAUSE

    def state(self) -> list[dict[str, Any]]:
        """The admin view of each webhook, with its breaker (never its secret)."""
        with self.sim.lock:
            return [
                {
                    **hook.to_json(),
                    "paused_until": iso_z(hook.paused_until) if hook.paused_until else None,
                }
                for hook in self.hooks.values()
            ]


_DEFAULTS: Final[Mapping[str, Any]] = {"http_method": "POST", "request_format": "json"}


def _settings(hook: Webhook) -> dict[str, Any]:
    return {
        "name": hook.name,
        "endpoint": hook.endpoint,
        "subscriptions": hook.subscriptions,
        "status": hook.status,
        "http_method": hook.http_method,
        "request_format": hook.request_format,
        "description": hook.description,
    }


def _validated(spec: Mapping[str, Any], *, partial: bool) -> dict[str, Any]:
    """The writable settings of a webhook, checked as Zendesk checks them."""
    name = spec.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _invalid("name is required")
    endpoint = spec.get("endpoint")
    parts = urlsplit(endpoint) if isinstance(endpoint, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise _invalid("endpoint must be an absolute http(s) URL")
    status = spec.get("status")
    if status not in STATUSES:
        raise _invalid(f"status must be one of {', '.join(STATUSES)}")
    method = str(spec.get("http_method", "")).upper()
    if method not in METHODS:
        raise _invalid(f"http_method must be one of {', '.join(METHODS)}")
    request_format = spec.get("request_format")
    if request_format not in FORMATS:
        raise _invalid(f"request_format must be one of {', '.join(FORMATS)}")
    subscriptions = spec.get("subscriptions")
    if not partial and (
        not isinstance(subscriptions, list)
        or not subscriptions
        or not all(isinstance(s, str) for s in subscriptions)
    ):
        raise _invalid("subscriptions must be a non-empty list of strings")
    subscriptions = list(subscriptions or [])
    if any(s.startswith(EVENT_PREFIX) for s in subscriptions) and (
        method != "POST" or request_format != "json"
    ):
        raise _invalid("event subscriptions require http_method POST and request_format json")
    description = spec.get("description")
    return {
        "name": name,
        "endpoint": endpoint,
        "subscriptions": subscriptions,
        "status": status,
        "http_method": method,
        "request_format": request_format,
        "description": None if description is None else str(description),
    }


def _new_secret() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode("ascii")
