"""Vendor-neutral plumbing shared by the sandbox simulators.

A simulator is a real HTTP server on 127.0.0.1 whose state lives in memory and whose notion
of time comes from a `SimClock`, so that grace periods, scrubs, job durations and rate-limit
windows can be frozen, advanced or sped up. This module has no vendor knowledge: the
Zendesk and SuperOffice simulators subclass `SimulatorBase`, register routes, and implement
the hooks `authenticate`, `rate_limit` and `tick` (plus the admin hooks for seed/act/config).

Request pipeline for a vendor (non-admin) request::

    parse -> count -> fault rule (before) -> [lock: tick, authenticate, rate_limit, handler]
          -> fault rule (after) -> write

Admin requests under `/_sandbox/` skip counting, faults, auth and rate limits.

Each simulator also keeps a `PurgeLog`: the ground truth of the irreversible (purge)
requests it accepted, per ticket, with whether each one was a duplicate (the ticket was
already purged, or already had a purge under way). A handler records into it only once it
has acted, so a fault injected `before` the handler never shows there and one injected
`after` it always does. Harnesses read it with `purge_log()` or `GET /_sandbox/purges`.

Time-driven behaviour is lazy: nothing runs in the background; `tick(now)` is called under
the state lock before every request (and after every admin clock change), and the subclass
applies whatever fell due since the previous tick (use `Schedule` to keep that O(due)).
"""

from __future__ import annotations

import contextlib
import heapq
import json
import logging
import math
import random
import re
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Generic, Literal, Self, TypeVar
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "ADMIN_PREFIX",
    "Counters",
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
    "Route",
    "Schedule",
    "SimClock",
    "SimulatorBase",
    "iso_z",
    "parse_iso",
]

log = logging.getLogger("bridge.sandbox")

#: every admin endpoint lives under this path prefix (no auth, no limits, no faults, no counts)
ADMIN_PREFIX = "/_sandbox/"

K = TypeVar("K")


# --------------------------------------------------------------------------------------------
# time helpers


def iso_z(moment: datetime) -> str:
    """ISO-8601 in UTC with a `Z` and whole seconds, the way Zendesk writes timestamps."""
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    """Parse ISO-8601 (`Z` or an offset; a naive value is taken as UTC) into aware UTC."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


class SimClock:
    """Simulated time: follows real time at `speed` (1 by default) unless frozen.

    Thread-safe. `sleep` is meant to be handed to clients (`HttpClient(sleep=clock.sleep)`):
    on a frozen clock it advances simulated time instead of sleeping, so a client honouring a
    `Retry-After` of 60 s costs no wall time in a test.
    """

    def __init__(
        self, start: datetime | None = None, *, speed: float = 1.0, frozen: bool = False
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._lock = threading.Lock()
        self._anchor_sim = _aware(start) if start is not None else datetime.now(UTC)
        self._anchor_real = time.monotonic()
        self._speed = float(speed)
        self._frozen = frozen

    def _now_locked(self) -> datetime:
        if self._frozen:
            return self._anchor_sim
        elapsed = (time.monotonic() - self._anchor_real) * self._speed
        return self._anchor_sim + timedelta(seconds=elapsed)

    def _rebase_locked(self) -> None:
        self._anchor_sim = self._now_locked()
        self._anchor_real = time.monotonic()

    def now(self) -> datetime:
        """The current simulated time, aware UTC."""
        with self._lock:
            return self._now_locked()

    def timestamp(self) -> float:
        """The current simulated time as Unix seconds."""
        return self.now().timestamp()

    @property
    def frozen(self) -> bool:
        return self._frozen

    @property
    def speed(self) -> float:
        return self._speed

    def advance(self, seconds: float) -> datetime:
        """Move simulated time forward (frozen or not); returns the new time."""
        if seconds < 0:
            raise ValueError("the clock only advances; use set() to go back")
        with self._lock:
            self._rebase_locked()
            self._anchor_sim += timedelta(seconds=seconds)
            return self._anchor_sim

    def freeze(self) -> None:
        with self._lock:
            self._rebase_locked()
            self._frozen = True

    def unfreeze(self) -> None:
        with self._lock:
            self._rebase_locked()
            self._frozen = False

    def set_speed(self, factor: float) -> None:
        """Run simulated time `factor` times faster than real time (from now on)."""
        if factor <= 0:
            raise ValueError("speed must be positive")
        with self._lock:
            self._rebase_locked()
            self._speed = float(factor)

    def set(self, moment: datetime) -> None:
        """Jump to `moment` (naive values are taken as UTC)."""
        with self._lock:
            self._anchor_sim = _aware(moment)
            self._anchor_real = time.monotonic()

    def sleep(self, seconds: float) -> None:
        """Wait `seconds` of simulated time: advance when frozen, else sleep seconds/speed."""
        if seconds <= 0:
            return
        if self._frozen:
            self.advance(seconds)
        else:
            time.sleep(seconds / self._speed)

    def state(self) -> dict[str, Any]:
        """The admin API's view: `{"now": iso, "frozen": bool, "speed": float}`."""
        with self._lock:
            now = self._now_locked()
            return {"now": now.isoformat(), "frozen": self._frozen, "speed": self._speed}


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


class Schedule(Generic[K]):
    """Keys due at a time, popped in due order: O(log n) per change, O(due) per tick.

    Re-pushing a key moves it (the older entry goes stale); `discard` forgets it. Use it for
    "scrub 30 days after deletion", retention jobs and job progress, so that a tick never
    scans every ticket.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, K]] = []
        self._due: dict[K, float] = {}
        self._seq = 0

    def push(self, key: K, due: datetime) -> None:
        stamp = due.timestamp()
        self._due[key] = stamp
        self._seq += 1
        heapq.heappush(self._heap, (stamp, self._seq, key))

    def discard(self, key: K) -> None:
        self._due.pop(key, None)

    def due_at(self, key: K) -> datetime | None:
        stamp = self._due.get(key)
        return None if stamp is None else datetime.fromtimestamp(stamp, UTC)

    def pop_due(self, now: datetime) -> list[K]:
        """Remove and return, oldest first, every key whose due time is at or before `now`."""
        return [key for _, key in self.pop_due_items(now)]

    def pop_due_items(self, now: datetime) -> list[tuple[datetime, K]]:
        """Like `pop_due`, with each key's due time (apply effects *as of* that time)."""
        limit = now.timestamp()
        out: list[tuple[datetime, K]] = []
        while self._heap and self._heap[0][0] <= limit:
            stamp, _, key = heapq.heappop(self._heap)
            if self._due.get(key) == stamp:
                del self._due[key]
                out.append((datetime.fromtimestamp(stamp, UTC), key))
        return out

    def next_due(self) -> datetime | None:
        while self._heap and self._due.get(self._heap[0][2]) != self._heap[0][0]:
            heapq.heappop(self._heap)
        return datetime.fromtimestamp(self._heap[0][0], UTC) if self._heap else None

    def clear(self) -> None:
        self._heap.clear()
        self._due.clear()

    def __len__(self) -> int:
        return len(self._due)

    def __contains__(self, key: object) -> bool:
        return key in self._due


# --------------------------------------------------------------------------------------------
# rate limiting


@dataclass(frozen=True, slots=True)
class RateDecision:
    """One rate-limit answer. `reset` is seconds until the window frees capacity."""

    allowed: bool
    retry_after: float
    limit: int
    remaining: int
    reset: float

    @property
    def retry_after_header(self) -> str:
        """`Retry-After` as whole seconds, at least 1 (never tell a client to retry at once)."""
        return str(max(1, math.ceil(self.retry_after)))


class RateLimiter:
    """Fixed or sliding windows per key, measured on the simulated clock.

    Fixed windows are aligned to multiples of `window` since the epoch (a per-minute limit
    resets on the minute, as Zendesk's `ratelimit-reset` suggests). Sliding windows remember
    each hit. A denied request does not consume capacity. Thread-safe.
    """

    def __init__(self, clock: SimClock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._fixed: dict[str, tuple[float, int]] = {}
        self._sliding: dict[str, deque[float]] = {}
        self.enabled = True

    def _decide(
        self, key: str, limit: int, window: float, sliding: bool, cost: int, consume: bool
    ) -> RateDecision:
        now = self._clock.timestamp()
        if sliding:
            hits = self._sliding.setdefault(key, deque())
            while hits and hits[0] <= now - window:
                hits.popleft()
            used = len(hits)
            reset = (hits[0] + window - now) if hits else window
            allowed = not self.enabled or used + cost <= limit
            if allowed and consume:
                hits.extend([now] * cost)
                used += cost
            # a denied caller must wait until enough old hits leave the window
            if allowed:
                retry = 0.0
            else:
                index = min(len(hits) - 1, max(0, used + cost - limit - 1))
                retry = hits[index] + window - now
        else:
            start = math.floor(now / window) * window
            current_start, used = self._fixed.get(key, (start, 0))
            if current_start != start:
                used = 0
            reset = start + window - now
            allowed = not self.enabled or used + cost <= limit
            if allowed and consume:
                used += cost
            self._fixed[key] = (start, used)
            retry = 0.0 if allowed else reset
        return RateDecision(
            allowed=allowed,
            retry_after=max(0.0, retry),
            limit=limit,
            remaining=max(0, limit - used),
            reset=max(0.0, reset),
        )

    def hit(
        self, key: str, limit: int, window: float = 60.0, *, sliding: bool = False, cost: int = 1
    ) -> RateDecision:
        """Count one request (when allowed) and answer whether it may proceed."""
        with self._lock:
            return self._decide(key, limit, window, sliding, cost, consume=True)

    def peek(
        self, key: str, limit: int, window: float = 60.0, *, sliding: bool = False, cost: int = 1
    ) -> RateDecision:
        """Answer as `hit` would without counting: check several limits, then `hit` them all."""
        with self._lock:
            return self._decide(key, limit, window, sliding, cost, consume=False)

    def reset(self) -> None:
        with self._lock:
            self._fixed.clear()
            self._sliding.clear()


# --------------------------------------------------------------------------------------------
# fault injection

FaultKind = Literal["status", "slow", "malformed", "drop"]
CORE_FAULT_KINDS: frozenset[str] = frozenset({"status", "slow", "malformed", "drop"})


@dataclass(slots=True)
class FaultRule:
    """One fault: what it does (`kind`), where (`route`/`path`/`method`), how often.

    * `route`: a route name such as ``"DELETE tickets/destroy_many"`` (exact match);
      `path`: a regex searched in the request path; neither: every vendor request.
    * `kind`: ``status`` (answer `status` with optional `retry_after` and `body`),
      ``slow`` (wait `delay` real seconds, then answer normally), ``malformed`` (answer 200
      with the real body cut short: the vendor acted, the client cannot read the answer),
      ``drop`` (close the connection without an answer). Subclasses may define more kinds
      and look them up with `FaultInjector.take`.
    * `when`: ``before`` the handler runs (the vendor did not act) or ``after`` it ran (it
      acted, then the answer was lost or replaced). Defaults: ``after`` for malformed,
      ``before`` otherwise.
    * trigger: `count` fires on the next N matches; `probability` fires at random from the
      injector's seeded RNG (reproducible); both: at most `count` random firings; neither:
      every match.
    """

    kind: str
    route: str | None = None
    path: str | None = None
    method: str | None = None
    status: int = 503
    retry_after: float | None = None
    body: Any = None
    delay: float = 0.0
    probability: float | None = None
    count: int | None = None
    when: Literal["before", "after"] | None = None
    fired: int = 0
    _path_re: re.Pattern[str] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.method = self.method.upper() if self.method else None
        self._path_re = re.compile(self.path) if self.path else None
        if self.kind == "malformed":
            self.when = "after"  # a malformed answer needs the real one to cut short
        elif self.when is None:
            self.when = "before"
        if self.when not in ("before", "after"):
            raise ValueError(f"fault rule: when must be before or after, not {self.when!r}")
        if self.probability is not None and not 0.0 <= self.probability <= 1.0:
            raise ValueError("fault rule: probability must be within 0..1")
        if self.count is not None and self.count < 0:
            raise ValueError("fault rule: count must be >= 0")

    _FIELDS: ClassVar[tuple[str, ...]] = (
        "kind",
        "route",
        "path",
        "method",
        "status",
        "retry_after",
        "body",
        "delay",
        "probability",
        "count",
        "when",
    )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultRule:
        """Build from admin JSON; unknown keys are an error (typos must not pass silently)."""
        unknown = set(data) - set(cls._FIELDS)
        if unknown:
            raise ValueError(f"fault rule: unknown keys {sorted(unknown)}")
        if "kind" not in data:
            raise ValueError("fault rule: 'kind' is required")
        return cls(**{k: data[k] for k in cls._FIELDS if k in data})

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self._FIELDS}
        out["fired"] = self.fired
        return out

    def matches(self, method: str, path: str, route: str | None) -> bool:
        if self.method and self.method != method.upper():
            return False
        if self.route is not None and self.route != route:
            return False
        return not (self._path_re is not None and not self._path_re.search(path))


class FaultInjector:
    """An ordered list of fault rules; the first rule that matches and fires wins. Thread-safe."""

    def __init__(self, seed: int = 0) -> None:
        self._seed = seed
        self._rng = random.Random(seed)
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()

    @property
    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def add(self, rule: FaultRule | Mapping[str, Any]) -> FaultRule:
        made = rule if isinstance(rule, FaultRule) else FaultRule.from_dict(rule)
        with self._lock:
            self._rules.append(made)
        return made

    def set_rules(self, rules: Iterable[FaultRule | Mapping[str, Any]]) -> None:
        made = [r if isinstance(r, FaultRule) else FaultRule.from_dict(r) for r in rules]
        with self._lock:
            self._rules = made

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def reset(self) -> None:
        """Forget every rule and re-seed the RNG (same seed: same sequence of firings)."""
        with self._lock:
            self._rules.clear()
            self._rng = random.Random(self._seed)

    def take(
        self,
        method: str,
        path: str,
        route: str | None,
        *,
        kinds: Iterable[str] = CORE_FAULT_KINDS,
        when: str | None = None,
    ) -> FaultRule | None:
        """The rule that fires for this request, if any (consuming one of its `count`)."""
        wanted = frozenset(kinds)
        with self._lock:
            for rule in self._rules:
                if rule.kind not in wanted or (when is not None and rule.when != when):
                    continue
                if rule.count is not None and rule.count <= 0:
                    continue
                if not rule.matches(method, path, route):
                    continue
                if rule.probability is not None and self._rng.random() >= rule.probability:
                    continue
                rule.fired += 1
                if rule.count is not None:
                    rule.count -= 1
                return rule
        return None


# --------------------------------------------------------------------------------------------
# counters


class Counters:
    """Vendor requests seen: total, per route name (``"GET tickets/show_many"``), per status.

    Requests that match no route count as ``"<METHOD> ?"``. Admin calls never count.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total = 0
        self.routes: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()

    def record(self, route_name: str) -> None:
        with self._lock:
            self.total += 1
            self.routes[route_name] += 1

    def record_status(self, status: int) -> None:
        with self._lock:
            self.statuses[status] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "total": self.total,
                "routes": dict(sorted(self.routes.items())),
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            }

    def reset(self) -> dict[str, Any]:
        """Zero everything; returns the counts as they were just before."""
        with self._lock:
            before = {
                "total": self.total,
                "routes": dict(sorted(self.routes.items())),
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            }
            self.total = 0
            self.routes.clear()
            self.statuses.clear()
            return before

    def __getitem__(self, route_name: str) -> int:
        with self._lock:
            return self.routes.get(route_name, 0)


# --------------------------------------------------------------------------------------------
# the purge log: ground truth of accepted irreversible requests

#: why a purge request was a duplicate: the ticket was gone, or a purge of it was under way
PurgePrior = Literal["purged", "queued"]


@dataclass(slots=True)
class PurgeRecord:
    """One ticket of one accepted irreversible request.

    * `request`: the request's number in this log (the tickets of one bulk call share it);
    * `state`: the ticket's state when the request was accepted (the simulator's words:
      ``active``, ``deleted``, ``purged``, or None for an id it never had);
    * `prior`: ``purged`` (already gone) or ``queued`` (another accepted purge of it was
      still queued or working), or None; `duplicate` is ``prior is not None``;
    * `outcome`: ``done`` (this request purged it), ``failed`` (its job failed: the
      vendor did nothing, a retry is legitimate), ``skipped`` (when its job ran the ticket
      was not purgeable: restored, never deleted, or already purged), or ``pending``
      (its job has not run yet).
    """

    request: int
    ticket_id: int
    at: datetime
    route: str
    state: str | None
    prior: PurgePrior | None
    job_id: str | None = None
    outcome: str = "pending"

    @property
    def duplicate(self) -> bool:
        return self.prior is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "request": self.request,
            "ticket_id": self.ticket_id,
            "at": self.at.isoformat(),
            "route": self.route,
            "duplicate": self.duplicate,
            "prior": self.prior,
            "state": self.state,
            "job_id": self.job_id,
            "outcome": self.outcome,
        }


class PurgeLog:
    """Every irreversible request a simulator accepted, one record per ticket. Thread-safe.

    The simulator calls `record` from the handler, after it has acted (queued the purge
    job, removed the row), so the log is exactly what the vendor did: a request refused by
    a `before` fault, the rate limiter, auth or a 404 never appears; one whose answer an
    `after` fault replaced or lost does. `settle` fills in what the job finally did.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[PurgeRecord] = []
        self._requests = 0

    def record(
        self,
        route: str,
        at: datetime,
        tickets: Iterable[tuple[int, str | None, PurgePrior | None]],
        *,
        job_id: str | None = None,
        outcome: str = "pending",
    ) -> int:
        """Log one accepted request: `(ticket_id, state, prior)` per ticket; returns its
        request number."""
        with self._lock:
            self._requests += 1
            for ticket_id, state, prior in tickets:
                self._records.append(
                    PurgeRecord(self._requests, ticket_id, at, route, state, prior, job_id, outcome)
                )
            return self._requests

    def settle(self, job_id: str, outcomes: Mapping[int, str]) -> None:
        """Record what job `job_id` did to each of its tickets (`done|failed|skipped`)."""
        with self._lock:
            for entry in self._records:
                if entry.job_id == job_id and entry.ticket_id in outcomes:
                    entry.outcome = outcomes[entry.ticket_id]

    @property
    def records(self) -> list[PurgeRecord]:
        with self._lock:
            return list(self._records)

    def snapshot(self) -> list[dict[str, Any]]:
        """The log as JSON-able dicts, oldest first."""
        with self._lock:
            return [entry.to_dict() for entry in self._records]

    def duplicates(self) -> list[PurgeRecord]:
        with self._lock:
            return [entry for entry in self._records if entry.duplicate]

    @property
    def requests(self) -> int:
        with self._lock:
            return self._requests

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
            self._requests = 0


# --------------------------------------------------------------------------------------------
# requests, responses, routing


@dataclass(slots=True)
class Request:
    """A parsed HTTP request as handlers see it.

    `path` has the query removed and a trailing `.json` stripped; `raw_path` is as sent.
    `headers` keys are lower-case. `params` holds the `{name}` values of the matched route.
    `principal` is whatever `authenticate` chose to remember (e.g. the API user).
    `response_headers` are added to the answer, whatever it is (rate-limit headers).
    """

    method: str
    path: str
    raw_path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    route: Route | None = None
    principal: Any = None
    response_headers: dict[str, str] = field(default_factory=dict)

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The first value of query parameter `name`."""
        values = self.query.get(name)
        return values[0] if values else default

    def args(self, name: str) -> list[str]:
        return list(self.query.get(name, []))

    def json(self) -> Any:
        """The body as JSON (None when empty); malformed JSON raises a 400 `HttpError`."""
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            raise HttpError(400, {"error": "BadRequest", "description": "Malformed JSON"}) from None


@dataclass(slots=True)
class Response:
    """An answer: `body` is JSON-able, `bytes` (sent as is) or None (empty body)."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class HttpError(Exception):
    """Raise from a handler or hook to answer with this status and body."""

    def __init__(
        self, status: int, body: Any = None, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"HTTP {status}")
        self.response = Response(status, body, dict(headers or {}))


HandlerResult = Response | tuple[int, Any] | tuple[int, Any, Mapping[str, str]]
Handler = Callable[[Request], HandlerResult]


@dataclass(frozen=True, slots=True)
class Route:
    """`pattern` uses `{name}` segments; a trailing `.json` is accepted on every route."""

    method: str
    pattern: str
    name: str
    handler: Handler
    auth: bool = True
    limited: bool = True
    regex: re.Pattern[str] = field(default=re.compile(""), compare=False)
    params: int = 0


def _compile(pattern: str) -> tuple[re.Pattern[str], int]:
    parts: list[str] = []
    count = 0
    for piece in re.split(r"(\{\w+\})", pattern):
        if piece.startswith("{") and piece.endswith("}"):
            parts.append(f"(?P<{piece[1:-1]}>[^/]+?)")
            count += 1
        else:
            parts.append(re.escape(piece))
    return re.compile("^" + "".join(parts) + r"/?$"), count


def _normalise(result: HandlerResult) -> Response:
    if isinstance(result, Response):
        return result
    if len(result) == 2:
        return Response(result[0], result[1])
    status, body, headers = result
    return Response(status, body, dict(headers))


def _encode(response: Response) -> tuple[bytes, str | None]:
    body = response.body
    if body is None:
        return b"", None
    if isinstance(body, bytes | bytearray):
        return bytes(body), "application/octet-stream"
    if isinstance(body, str):
        return body.encode(), "text/plain; charset=utf-8"
    return (
        json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode(),
        "application/json; charset=utf-8",
    )


def _malformed(data: bytes) -> bytes:
    """A body that is certainly not valid JSON: the real one cut in half (or a lone brace)."""
    if len(data) < 4:
        return b'{"'
    return data[: len(data) // 2]


# --------------------------------------------------------------------------------------------
# the HTTP server


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sim: SimulatorBase) -> None:
        self.sim = sim
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(address, _HandlerClass)


class _HandlerClass(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections
    server_version = "bridge-sandbox"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 60  # idle keep-alive connections close after a minute
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.sockets_lock:
            self.server.open_sockets.add(self.connection)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        with self.server.sockets_lock:
            self.server.open_sockets.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("sandbox http: " + format, *args)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        body = self._read_body()
        split = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        raw_path = split.path or "/"
        path = raw_path[:-5] if raw_path.endswith(".json") else raw_path
        request = Request(
            method=self.command.upper(),
            path=path,
            raw_path=raw_path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers=headers,
            body=body,
        )
        outcome = self.server.sim._handle(request)
        if outcome is None:  # drop: close without answering
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        status, payload, out_headers = outcome
        if (request.header("connection") or "").lower() == "close":
            self.close_connection = True
        reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
        lines = [f"HTTP/1.1 {status} {reason}"]
        lines.extend(f"{k}: {v}" for k, v in out_headers.items())
        lines.append(f"Content-Length: {len(payload) if self.command != 'HEAD' else 0}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            self.wfile.write(head + (payload if self.command != "HEAD" else b""))
        except OSError:  # the client gave up (a timeout on a slow fault): nothing to answer
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _dispatch  # noqa: N815


# --------------------------------------------------------------------------------------------
# the simulator base


AdminHandler = Callable[[Request], Any]


class SimulatorBase:
    """A vendor simulator: HTTP server, router, clock, limits, faults, counters, admin API.

    Subclasses call `route()` in `__init__` (after `super().__init__`), keep their state in
    plain attributes guarded by `self.lock` (an RLock held while hooks and handlers run), and
    override:

    * `authenticate(request) -> Response | None`: None accepts (optionally set
      `request.principal`), a Response (usually 401) rejects;
    * `rate_limit(request, route) -> Response | None`: None lets the request through; may add
      headers to `request.response_headers`; a Response (usually 429) rejects;
    * `tick(now)`: apply everything that fell due on the simulated clock;
    * `reset_state()`, `admin_seed(body)`, `admin_act(body)`, `config_state()`,
      `configure(body)`: the vendor-specific admin operations;
    * optionally `not_found(request)`, `error_response(status, code, description)` and
      `fault_response(rule, request)` for the vendor's error body shapes.

    Use it as a context manager or call `start()`/`stop()`; the CLI calls `serve_forever()`.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: SimClock | None = None,
        seed: int = 0,
    ) -> None:
        self.host = host
        self.port = port
        self.clock = clock or SimClock()
        self.seed = seed
        self.limiter = RateLimiter(self.clock)
        self.faults = FaultInjector(seed)
        self.counters = Counters()
        #: irreversible requests accepted (subclasses record into it from their handlers)
        self.purges = PurgeLog()
        self.lock = threading.RLock()
        self._routes: list[Route] = []
        self._admin: dict[tuple[str, str], AdminHandler] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._register_core_admin()

    # ---- lifecycle -------------------------------------------------------------------------

    @property
    def origin(self) -> str:
        """`http://host:port` (the admin API is at `origin + "/_sandbox/"`)."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """Where a client points its base URL. Subclasses may add a path (a tenant)."""
        return self.origin

    @property
    def admin_url(self) -> str:
        return self.origin + ADMIN_PREFIX.rstrip("/")

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> str:
        """Bind (port 0 picks a free port), serve in a daemon thread, return `base_url`."""
        if self._server is not None:
            return self.base_url
        server = _Server((self.host, self.port), self)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"{type(self).__name__}:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        """Stop serving and close every open connection (idempotent)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        with server.sockets_lock:
            sockets = list(server.open_sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def serve_forever(self) -> None:
        """Start if needed and block until KeyboardInterrupt, then stop (for the CLI)."""
        self.start()
        stop = threading.Event()
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- routing ---------------------------------------------------------------------------

    def route(
        self,
        method: str,
        pattern: str,
        handler: Handler,
        *,
        name: str | None = None,
        auth: bool = True,
        limited: bool = True,
    ) -> Route:
        """Register a vendor endpoint. Routes with fewer `{params}` win over ones with more,
        so `/tickets/show_many` beats `/tickets/{id}` whatever the order of registration."""
        regex, params = _compile(pattern)
        made = Route(
            method=method.upper(),
            pattern=pattern,
            name=name or f"{method.upper()} {pattern}",
            handler=handler,
            auth=auth,
            limited=limited,
            regex=regex,
            params=params,
        )
        self._routes.append(made)
        self._routes.sort(key=lambda r: r.params)
        return made

    def admin_route(self, method: str, name: str, handler: AdminHandler) -> None:
        """Register `METHOD /_sandbox/<name>`; the handler returns a JSON-able body (200)."""
        self._admin[(method.upper(), name.strip("/"))] = handler

    @property
    def routes(self) -> list[Route]:
        return list(self._routes)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        method = method.upper()
        for candidate in self._routes:
            if candidate.method != method:
                continue
            found = candidate.regex.match(path)
            if found:
                return candidate, found.groupdict()
        return None

    # ---- hooks (override) ------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        return None

    def rate_limit(self, request: Request, route: Route) -> Response | None:
        return None

    def tick(self, now: datetime) -> None:
        """Apply what fell due by `now` (called under the lock before every request)."""

    def reset_state(self) -> None:
        """Forget all vendor data (tickets, jobs...)."""

    def admin_seed(self, body: Any) -> Any:
        raise HttpError(404, {"error": "NotSupported", "description": "no seed for this sim"})

    def admin_act(self, body: Any) -> Any:
        raise HttpError(404, {"error": "NotSupported", "description": "no act for this sim"})

    def config_state(self) -> dict[str, Any]:
        return {"rate_limits": self.limiter.enabled}

    def configure(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Apply admin config (`{"rate_limits": false}` is understood here); return the state."""
        if "rate_limits" in body:
            self.limiter.enabled = bool(body["rate_limits"])
        return self.config_state()

    def not_found(self, request: Request) -> Response:
        return self.error_response(404, "NotFound", "No such endpoint")

    def error_response(self, status: int, code: str, description: str) -> Response:
        return Response(status, {"error": code, "description": description})

    def fault_response(self, rule: FaultRule, request: Request) -> Response:
        """The answer of a `status` fault: the rule's body, else the vendor's error shape."""
        headers: dict[str, str] = {}
        if rule.retry_after is not None:
            headers["Retry-After"] = str(max(0, math.ceil(rule.retry_after)))
        if rule.body is not None:
            return Response(rule.status, rule.body, headers)
        phrase = (
            HTTPStatus(rule.status).phrase if rule.status in HTTPStatus._value2member_map_ else ""
        )
        made = self.error_response(
            rule.status, phrase.replace(" ", "") or "Error", "Injected fault"
        )
        made.headers.update(headers)
        return made

    # ---- Python API (same operations as the admin endpoints) --------------------------------

    def reset(self) -> None:
        """Forget vendor data, counters, the purge log, fault rules and rate-limit windows
        (not the clock)."""
        with self.lock:
            self.reset_state()
            self.purges.clear()
            self.counters.reset()
            self.faults.reset()
            self.limiter.reset()

    def set_faults(
        self, rules: Iterable[FaultRule | Mapping[str, Any]], *, replace: bool = True
    ) -> None:
        if replace:
            self.faults.set_rules(rules)
        else:
            for rule in rules:
                self.faults.add(rule)

    def add_fault(self, kind: str, **fields: Any) -> FaultRule:
        """E.g. `sim.add_fault("status", route="GET deleted_tickets", status=429, count=1)`."""
        return self.faults.add(FaultRule.from_dict({"kind": kind, **fields}))

    def clear_faults(self) -> None:
        self.faults.clear()

    def counts(self) -> dict[str, Any]:
        return self.counters.snapshot()

    def purge_log(self) -> list[dict[str, Any]]:
        """Accepted irreversible requests, one dict per ticket and request, oldest first:
        `{request, ticket_id, at, route, duplicate, prior, state, job_id, outcome}` (see
        `PurgeRecord`)."""
        return self.purges.snapshot()

    def advance(self, seconds: float) -> datetime:
        """Advance the clock and apply what fell due."""
        moment = self.clock.advance(seconds)
        with self.lock:
            self.tick(self.clock.now())
        return moment

    def seed_data(self, body: Any) -> Any:
        with self.lock:
            self.tick(self.clock.now())
            return self.admin_seed(body)

    def act(self, body: Any) -> Any:
        with self.lock:
            self.tick(self.clock.now())
            return self.admin_act(body)

    # ---- request handling ------------------------------------------------------------------

    def _handle(self, request: Request) -> tuple[int, bytes, dict[str, str]] | None:
        """Turn a request into (status, body bytes, headers), or None to drop the connection."""
        if request.path.startswith(ADMIN_PREFIX) or request.path == ADMIN_PREFIX.rstrip("/"):
            return self._finish(self._handle_admin(request), request)
        found = self.match(request.method, request.path)
        route_name = found[0].name if found else f"{request.method} ?"
        self.counters.record(route_name)

        rule = self.faults.take(request.method, request.path, route_name, when="before")
        if rule is not None:
            if rule.kind == "drop":
                return None
            if rule.kind == "status":
                return self._finish(self.fault_response(rule, request), request)
            if rule.kind == "slow":
                time.sleep(rule.delay)

        response = self._run(request, found)
        after = self.faults.take(request.method, request.path, route_name, when="after")
        if after is not None:
            if after.kind == "drop":
                return None
            if after.kind == "status":
                response = self.fault_response(after, request)
            elif after.kind == "slow":
                time.sleep(after.delay)
        status, payload, headers = self._finish(response, request)
        if after is not None and after.kind == "malformed":
            status = 200
            payload = _malformed(payload)
            headers["Content-Type"] = "application/json; charset=utf-8"
        return status, payload, headers

    def _run(self, request: Request, found: tuple[Route, dict[str, str]] | None) -> Response:
        try:
            with self.lock:
                self.tick(self.clock.now())
                if found is None:
                    return self.not_found(request)
                route, params = found
                request.route, request.params = route, params
                if route.auth:
                    denied = self.authenticate(request)
                    if denied is not None:
                        return denied
                if route.limited:
                    limited = self.rate_limit(request, route)
                    if limited is not None:
                        return limited
                return _normalise(route.handler(request))
        except HttpError as exc:
            return exc.response
        except Exception:
            log.exception("sandbox handler failed: %s %s", request.method, request.path)
            return self.error_response(500, "InternalError", "Simulator error")

    def _finish(self, response: Response, request: Request) -> tuple[int, bytes, dict[str, str]]:
        payload, content_type = _encode(response)
        headers: dict[str, str] = {}
        if content_type:
            headers["Content-Type"] = content_type
        headers.update(request.response_headers)
        headers.update(response.headers)
        if not request.path.startswith(ADMIN_PREFIX):
            self.counters.record_status(response.status)
        return response.status, payload, headers

    # ---- admin API -------------------------------------------------------------------------

    def _handle_admin(self, request: Request) -> Response:
        name = request.path[len(ADMIN_PREFIX) :].strip("/")
        handler = self._admin.get((request.method, name))
        if handler is None:
            methods = sorted(m for (m, n) in self._admin if n == name)
            if methods:
                return Response(405, {"error": "MethodNotAllowed", "allowed": methods})
            return Response(404, {"error": "NotFound", "description": f"no admin {name!r}"})
        try:
            with self.lock:
                self.tick(self.clock.now())
                result = handler(request)
                self.tick(self.clock.now())
        except HttpError as exc:
            return exc.response
        except (ValueError, TypeError, KeyError, re.error) as exc:
            return Response(400, {"error": "BadRequest", "description": str(exc)})
        if isinstance(result, Response):
            return result
        return Response(200, result)

    def _register_core_admin(self) -> None:
        self.admin_route("GET", "clock", lambda r: self.clock.state())
        self.admin_route("POST", "clock", self._admin_clock)
        self.admin_route("GET", "faults", self._admin_faults_get)
        self.admin_route("POST", "faults", self._admin_faults_post)
        self.admin_route("DELETE", "faults", self._admin_faults_delete)
        self.admin_route("GET", "counters", lambda r: self.counters.snapshot())
        self.admin_route("DELETE", "counters", lambda r: self.counters.reset())
        self.admin_route("GET", "purges", self._admin_purges_get)
        self.admin_route("DELETE", "purges", self._admin_purges_delete)
        self.admin_route("POST", "reset", self._admin_reset)
        self.admin_route("POST", "seed", lambda r: self.admin_seed(r.json()))
        self.admin_route("POST", "act", lambda r: self.admin_act(r.json()))
        self.admin_route("GET", "config", lambda r: self.config_state())
        self.admin_route("POST", "config", lambda r: self.configure(_object(r.json())))

    def _admin_clock(self, request: Request) -> dict[str, Any]:
        body = _object(request.json())
        unknown = set(body) - {"set", "freeze", "speed", "advance"}
        if unknown:
            raise ValueError(f"clock: unknown keys {sorted(unknown)}")
        if "set" in body:
            self.clock.set(parse_iso(str(body["set"])))
        if "freeze" in body:
            if body["freeze"]:
                self.clock.freeze()
            else:
                self.clock.unfreeze()
        if "speed" in body:
            self.clock.set_speed(float(body["speed"]))
        if "advance" in body:
            self.clock.advance(float(body["advance"]))
        return self.clock.state()

    def _admin_faults_get(self, request: Request) -> dict[str, Any]:
        return {"rules": [rule.to_dict() for rule in self.faults.rules]}

    def _admin_faults_post(self, request: Request) -> dict[str, Any]:
        """`{"rules": [...], "replace": false}` appends rules; `"replace": true` swaps them."""
        body = _object(request.json())
        rules = body.get("rules", [])
        if not isinstance(rules, list):
            raise ValueError("faults: 'rules' must be a list")
        self.set_faults(rules, replace=bool(body.get("replace", False)))
        return self._admin_faults_get(request)

    def _admin_faults_delete(self, request: Request) -> dict[str, Any]:
        self.faults.clear()
        return {"rules": []}

    def _admin_purges_get(self, request: Request) -> dict[str, Any]:
        """`{"purges": [...], "requests": n, "duplicates": n}` (see `purge_log`)."""
        entries = self.purges.snapshot()
        return {
            "purges": entries,
            "requests": self.purges.requests,
            "duplicates": sum(1 for entry in entries if entry["duplicate"]),
        }

    def _admin_purges_delete(self, request: Request) -> dict[str, Any]:
        self.purges.clear()
        return {"purges": [], "requests": 0, "duplicates": 0}

    def _admin_reset(self, request: Request) -> dict[str, Any]:
        self.reset()
        return {"ok": True, "clock": self.clock.state()}


def _object(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    return value


def chunks(items: list[K], size: int) -> Iterator[list[K]]:
    """Split `items` into lists of at most `size` (bulk calls take at most 100 ids)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
