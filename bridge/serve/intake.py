"""One webhook call, judged: believed and queued, or refused, ignored, a duplicate.

No vendor is called and the ledger is not touched here: the call is checked against its
vendor's signature and replay window (`WebhookFormat.verify`), read (`read`), checked for a
duplicate (`queue.Deliveries`) and its hint handed to `TargetedRuns.submit`; the answer
follows at once. What each answer means, and why, is in docs/webhooks.md ("Answers").
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from bridge.core.hints import WebhookFormat, WebhookRefusedError
from bridge.core.model import Side
from bridge.metrics import WebhookCounters
from bridge.serve.queue import Deliveries
from bridge.serve.runner import TargetedRuns

__all__ = ["Endpoint", "Intake", "Verdict"]

log = structlog.get_logger("bridge.serve")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One vendor's webhook endpoint of one pair."""

    pair: str
    side: Side
    format: WebhookFormat
    #: the vendor's signing secret (None: webhooks not configured: every call refused)
    secret: bytes | None


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer to a call: its HTTP status and a short JSON body."""

    status: int
    body: dict[str, Any]


def _wall_clock() -> datetime:
    return datetime.now(UTC)


class Intake:
    """Judges the calls to every endpoint of `bridge serve`."""

    def __init__(
        self,
        endpoints: Mapping[tuple[Side, str], Endpoint],
        runs: TargetedRuns,
        counters: WebhookCounters,
        *,
        window: timedelta,
        max_body_bytes: int,
        now: Callable[[], datetime] = _wall_clock,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoints = dict(endpoints)
        pairs = {pair for _side, pair in self.endpoints}
        #: with one pair, `/webhooks/<side>` needs no pair name
        self._only = next(iter(pairs)) if len(pairs) == 1 else None
        self._runs = runs
        self._counters = counters
        self._window = window
        self.max_body_bytes = max_body_bytes
        self._now = now
        self._monotonic = monotonic
        self._deliveries = Deliveries(window.total_seconds())

    def endpoint(self, side: str, pair: str | None) -> Endpoint | None:
        """The endpoint of `side` for `pair` (None with one pair); None: no such one."""
        name = pair if pair is not None else self._only
        if name is None:
            return None
        return self.endpoints.get((Side(side), name))

    def received(self, endpoint: Endpoint) -> Verdict | None:
        """Count a call; refuse it (404) when its vendor's webhooks are not configured."""
        self._counters.received.labels(endpoint.pair, endpoint.side).inc()
        if endpoint.secret is None:
            return self._refuse(endpoint, 404, "not_configured", "no webhook secret configured")
        return None

    def too_large(self, endpoint: Endpoint) -> Verdict:
        return self._refuse(endpoint, 413, "too_large", f"body over {self.max_body_bytes} bytes")

    def accept(self, endpoint: Endpoint, headers: Mapping[str, str], body: bytes) -> Verdict:
        """Judge a call whose body was read (within the size limit); `headers` in lower
        case."""
        assert endpoint.secret is not None  # `received` refused it otherwise
        fmt, pair, side = endpoint.format, endpoint.pair, endpoint.side
        try:
            fmt.verify(endpoint.secret, headers, body, now=self._now(), window=self._window)
        except WebhookRefusedError as exc:
            reason = "replay" if "window" in str(exc) else "signature"
            return self._refuse(endpoint, 401, reason, str(exc))
        try:
            hint = fmt.read(headers, body)
        except (ValueError, TypeError, KeyError) as exc:
            # signed by the vendor, yet not its shape: a retry would not read either, and
            # errors count toward a vendor disabling the subscription; the scheduled
            # sync covers whatever it named
            self._counters.ignored.labels(pair, side, "unreadable").inc()
            log.warning("webhook.unreadable", pair=pair, side=side, error=type(exc).__name__)
            return Verdict(202, {"status": "ignored", "reason": "unreadable body"})
        if hint is None:
            event = headers.get(fmt.event_header) or _top_level(body, fmt.event_header)
            self._counters.ignored.labels(pair, side, "event").inc()
            log.info("webhook.ignored", pair=pair, side=side, vendor_event=event)
            return Verdict(202, {"status": "ignored", "reason": "event not about deletion"})
        digest = hashlib.sha256(body).hexdigest()
        keys = [f"{pair}:{side}:body:{digest}"]
        if hint.delivery_id:
            keys.append(f"{pair}:{side}:id:{hint.delivery_id}")
        if not self._deliveries.first_time(keys, self._monotonic()):
            self._counters.duplicates.labels(pair, side).inc()
            log.info("webhook.duplicate", pair=pair, side=side, delivery=hint.delivery_id)
            return Verdict(202, {"status": "duplicate"})
        self._runs.submit(pair, hint)
        return Verdict(202, {"status": "queued", "tickets": len(hint.ticket_ids)})

    def _refuse(self, endpoint: Endpoint, status: int, reason: str, why: str) -> Verdict:
        self._counters.refused.labels(endpoint.pair, endpoint.side, reason).inc()
        log.warning("webhook.refused", pair=endpoint.pair, side=endpoint.side, reason=why)
        return Verdict(status, {"error": why})


def _top_level(body: bytes, key: str) -> str | None:
    """A body's top-level string `key` (the event of a vendor that names it there)."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    value = document.get(key) if isinstance(document, dict) else None
    return value if isinstance(value, str) else None
