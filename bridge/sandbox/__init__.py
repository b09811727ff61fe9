"""Vendor-neutral machinery for the local simulators of the vendor APIs (tests, the demo,
benchmarks).

A simulator is a real HTTP server on 127.0.0.1 whose state lives in memory and whose notion
of time comes from a `SimClock`, so that grace periods, scrubs, job durations and rate-limit
windows can be frozen, advanced or sped up. Nothing here knows a vendor: each vendor's
simulator (`bridge/vendors/<vendor>/sim/`) subclasses `SimulatorBase`, registers routes,
and implements the hooks `authenticate`, `rate_limit` and `tick` (plus the admin hooks for
seed/act/config), building on the pieces below rather than branching inside them:

* `clock`: `SimClock`, `iso_z`, `parse_iso`;
* `schedule`: `Schedule`, keys due at a time, for lazy ticks;
* `ratelimit`: `RateLimiter` and its `RateDecision`;
* `faults`: `FaultRule` and `FaultInjector`;
* `counters`: `Counters`, vendor requests seen per route and status;
* `purgelog`: `PurgeLog`, the ground truth of accepted irreversible requests;
* `http`: `Request`, `Response`, `HttpError`, `Route`, `Handler`;
* `server`: the threaded HTTP/1.1 server;
* `webhooks`: `WebhookDispatcher`, a simulator's outgoing webhook calls (retries on the
  simulated clock, drop/delay/duplicate/reorder faults), `Delivery`, `RetryPolicy`;
* `simulator`: `SimulatorBase` (request pipeline, lazy ticks, admin API under
  `ADMIN_PREFIX`).
"""

from __future__ import annotations

from bridge.sandbox.clock import SimClock, iso_z, parse_iso
from bridge.sandbox.counters import Counters
from bridge.sandbox.faults import FaultInjector, FaultRule
from bridge.sandbox.http import Handler, HttpError, Request, Response, Route
from bridge.sandbox.purgelog import PurgeLog, PurgeRecord
from bridge.sandbox.ratelimit import RateDecision, RateLimiter
from bridge.sandbox.schedule import Schedule
from bridge.sandbox.simulator import ADMIN_PREFIX, SimulatorBase
from bridge.sandbox.webhooks import Delivery, RetryPolicy, WebhookDispatcher

__all__ = [
    "ADMIN_PREFIX",
    "Counters",
    "Delivery",
    "FaultInjector",
    "FaultRule",
    "Handler",
    "HttpError",
    "PurgeLog",
    "PurgeRecord",
    "RateDecision",
    "RateLimiter",
    "Request",
    "Response",
    "RetryPolicy",
    "Route",
    "Schedule",
    "SimClock",
    "SimulatorBase",
    "WebhookDispatcher",
    "iso_z",
    "parse_iso",
]
