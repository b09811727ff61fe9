"""The base every vendor simulator subclasses: server lifecycle, router, request pipeline,
hooks and the admin API, so a simulator only adds its routes, state and hooks.

Request pipeline for a vendor (non-admin) request::

    parse -> count -> fault rule (before) -> [lock: tick, authenticate, rate_limit, handler]
          -> fault rule (after) -> write

Admin requests under `/_sandbox/` skip counting, faults, auth and rate limits.

Time-driven behaviour is lazy: nothing runs in the background; `tick(now)` is called under
the state lock before every request (and after every admin clock change), and the subclass
applies whatever fell due since the previous tick (use `Schedule` to keep that O(due)). The
one exception is the vendor's outgoing webhook calls (`use_webhooks`): a dispatcher thread
sends them, so that no request waits on a receiver.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from http import HTTPStatus
from typing import Any, Self

from bridge.sandbox.clock import SimClock, parse_iso
from bridge.sandbox.counters import Counters
from bridge.sandbox.faults import FaultInjector, FaultRule
from bridge.sandbox.http import (
    Handler,
    HttpError,
    Request,
    Response,
    Route,
    compile_route,
    encode_body,
    to_response,
)
from bridge.sandbox.purgelog import PurgeLog
from bridge.sandbox.ratelimit import RateLimiter
from bridge.sandbox.server import Answer, SimServer
from bridge.sandbox.webhooks import Gate, ResultHook, RetryPolicy, WebhookDispatcher

__all__ = ["ADMIN_PREFIX", "SimulatorBase"]

log = logging.getLogger("bridge.sandbox")

#: every admin endpoint lives under this path prefix (no auth, no limits, no faults, no counts)
ADMIN_PREFIX = "/_sandbox/"

#: an admin endpoint: its result is the JSON body of a 200 (or a `Response`)
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
        self._server: SimServer | None = None
        self._thread: threading.Thread | None = None
        #: the vendor's webhook calls (`use_webhooks`); None: this simulator sends none
        self.webhooks: WebhookDispatcher | None = None
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
        server = SimServer((self.host, self.port), self._handle)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"{type(self).__name__}:{self.port}",
            daemon=True,
        )
        self._thread.start()
        if self.webhooks is not None:
            self.webhooks.start()
        return self.base_url

    def stop(self) -> None:
        """Stop serving and close every open connection (idempotent)."""
        server, self._server = self._server, None
        if server is None:
            return
        if self.webhooks is not None:
            self.webhooks.stop()
        server.shutdown()
        server.close_connections()
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
        so `/items/special` beats `/items/{id}` whatever the order of registration."""
        regex, params = compile_route(pattern)
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

    def use_webhooks(
        self, policy: RetryPolicy, *, gate: Gate, on_result: ResultHook
    ) -> WebhookDispatcher:
        """Send this vendor's webhooks through a dispatcher on this simulator's clock and
        seed (started and stopped with the server, emptied by `reset`), retried by
        `policy`, with its admin API: `GET /_sandbox/webhooks` (the attempts, what is
        queued, the fault rules), `POST` `{"faults": [...], "replace": bool}` and `DELETE`
        (forget the log, the queue and the rules)."""
        dispatcher = WebhookDispatcher(
            self.clock,
            policy,
            gate=gate,
            on_result=on_result,
            seed=self.seed,
            name=f"{type(self).__name__}:webhooks",
        )
        self.webhooks = dispatcher

        def post(request: Request) -> dict[str, Any]:
            body = _object(request.json())
            unknown = set(body) - {"faults", "replace"}
            if unknown:
                raise ValueError(f"webhooks: unknown keys {sorted(unknown)}")
            rules = body.get("faults", [])
            if not isinstance(rules, list):
                raise ValueError("webhooks: 'faults' must be a list")
            dispatcher.set_faults(rules, replace=bool(body.get("replace", False)))
            return dispatcher.state()

        def delete(request: Request) -> dict[str, Any]:
            dispatcher.reset()
            return dispatcher.state()

        self.admin_route("GET", "webhooks", lambda r: dispatcher.state())
        self.admin_route("POST", "webhooks", post)
        self.admin_route("DELETE", "webhooks", delete)
        return dispatcher

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
            if self.webhooks is not None:
                self.webhooks.reset()

    def set_faults(
        self, rules: Iterable[FaultRule | Mapping[str, Any]], *, replace: bool = True
    ) -> None:
        if replace:
            self.faults.set_rules(rules)
        else:
            for rule in rules:
                self.faults.add(rule)

    def add_fault(self, kind: str, **fields: Any) -> FaultRule:
        """E.g. `sim.add_fault("status", route="GET item", status=429, count=1)`."""
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

    def _handle(self, request: Request) -> Answer | None:
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
                return to_response(route.handler(request))
        except HttpError as exc:
            return exc.response
        except Exception:
            log.exception("sandbox handler failed: %s %s", request.method, request.path)
            return self.error_response(500, "InternalError", "Simulator error")

    def _finish(self, response: Response, request: Request) -> Answer:
        payload, content_type = encode_body(response)
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


def _malformed(data: bytes) -> bytes:
    """A body that is certainly not valid JSON: the real one cut in half (or a lone brace)."""
    if len(data) < 4:
        return b'{"'
    return data[: len(data) // 2]
