"""Webhook delivery for the simulators: each vendor's events are POSTed, signed, to the
subscribed URLs off the request thread, retried by the vendor's policy, and lost, delayed,
duplicated or reordered on request, so that every test and the demo can show what bridge
does with hints that arrive late, twice, out of order or never (docs/sandbox.md,
"Webhooks").

Nothing here knows a vendor. A simulator builds one `WebhookDispatcher` with its
`RetryPolicy` and two callbacks: `gate` (may this attempt go now: the webhook is active,
its circuit is closed) and `on_result` (what the vendor does with an attempt's outcome:
count errors, trip a breaker, stop the webhook). It `submit`s a `Delivery` (the body and a
function that signs each attempt) whenever one of its tickets changes; the API call that
changed the ticket never waits on it.

Time is the simulator's clock: a retry "4 s later" is 4 simulated seconds later, so on a
frozen clock a test advances the clock to see it (and `wait_idle` to see it sent).
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import urlsplit

import requests

from bridge.core.hints import WebhookFormat
from bridge.sandbox.clock import SimClock, iso_z
from bridge.sandbox.faults import FaultInjector, FaultRule

__all__ = [
    "WEBHOOK_FAULT_KINDS",
    "Attempt",
    "Delivery",
    "Gate",
    "ResultHook",
    "RetryPolicy",
    "WebhookDispatcher",
]

#: what a webhook fault rule does to a delivery (its first attempt): never send it, send it
#: `delay` simulated seconds late, send it twice (same delivery id), or hold it back until
#: the next delivery to the same webhook has gone (at most `delay`, default 1, seconds)
WEBHOOK_FAULT_KINDS: Final = frozenset({"drop", "delay", "duplicate", "reorder"})
#: attempts kept for `GET /_sandbox/webhooks` (oldest forgotten first)
LOG_SIZE: Final = 10_000

#: the headers of one attempt, signed at the moment it is sent: (delivery, attempt number
#: from 1, simulated now) -> headers
Signer = Callable[["Delivery", int, datetime], dict[str, str]]
#: before each attempt: True sends it now, False discards the delivery (the webhook was
#: deleted, deactivated or stopped), a time puts it off until then (a tripped breaker)
Gate = Callable[["Delivery", datetime], "bool | datetime"]
#: after each attempt: (delivery, its attempt, whether no attempt of it follows)
ResultHook = Callable[["Delivery", "Attempt", bool], None]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a vendor retries one delivery: after the n-th failed attempt it waits
    `backoff[n-1]` simulated seconds, if `retried(status, n)` says so (status None: a
    timeout or a connection that failed); `len(backoff)` retries at most."""

    backoff: tuple[float, ...]
    retried: Callable[[int | None, int], bool]
    #: how long one attempt may take, in real seconds, before it counts as a timeout
    timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event for one webhook. Its `delivery_id` is the vendor's id of it, the same on
    every retry and on a duplicate."""

    target: str
    url: str
    event: str
    delivery_id: str
    body: bytes
    sign: Signer = field(repr=False, compare=False)

    def signed(self, webhooks: WebhookFormat, secret: str, now: datetime) -> dict[str, str]:
        """The vendor's headers for this delivery, signed with `secret` at `now`."""
        return webhooks.signed_headers(
            secret.encode(), self.body, now=now, delivery_id=self.delivery_id, event=self.event
        )


@dataclass(frozen=True, slots=True)
class Attempt:
    """One POST tried (or a delivery a fault or the vendor disposed of): what the
    admin log shows."""

    target: str
    event: str
    delivery_id: str
    attempt: int
    at: datetime
    #: the receiver's answer; None when none came (timeout, refused, dropped)
    status: int | None = None
    #: `timeout`, `connection`, or the fault or vendor decision (`dropped`, `discarded`)
    error: str | None = None
    fault: str | None = None

    @classmethod
    def of(cls, delivery: Delivery, attempt: int, at: datetime, **outcome: Any) -> Attempt:
        """The attempt number `attempt` of `delivery`, made (or disposed of) `at`."""
        return cls(delivery.target, delivery.event, delivery.delivery_id, attempt, at, **outcome)

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "event": self.event,
            "delivery_id": self.delivery_id,
            "attempt": self.attempt,
            "at": iso_z(self.at),
            "status": self.status,
            "ok": self.ok,
            "error": self.error,
            "fault": self.fault,
        }


@dataclass(order=True, slots=True)
class _Entry:
    due: float
    seq: int
    delivery: Delivery = field(compare=False)
    attempt: int = field(default=1, compare=False)
    live: bool = field(default=True, compare=False)
    #: a reordered delivery: released when the next one to its target has gone
    held: bool = field(default=False, compare=False)
    fault: str | None = field(default=None, compare=False)


class WebhookDispatcher:
    """The simulator's outbox of webhook calls, sent by one daemon thread in due order.

    One thread keeps the order of deliveries to a receiver what the vendor sent, unless a
    fault reorders them; an attempt that times out holds the others up for `timeout`
    (keep it short in tests).
    """

    def __init__(
        self,
        clock: SimClock,
        policy: RetryPolicy,
        *,
        gate: Gate,
        on_result: ResultHook,
        seed: int = 0,
        name: str = "webhooks",
    ) -> None:
        self.clock = clock
        self.policy = policy
        self.faults = FaultInjector(seed)
        self._gate = gate
        self._on_result = on_result
        self._name = name
        self._heap: list[_Entry] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._busy = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._log: deque[Attempt] = deque(maxlen=LOG_SIZE)
        self._session = requests.Session()

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        with self._cond:
            if self._thread is not None:
                return
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop sending (what is still queued is forgotten)."""
        with self._cond:
            thread, self._thread = self._thread, None
            self._stopping = True
            self._cond.notify_all()
        if thread is not None:
            thread.join(timeout=self.policy.timeout + 5)

    def reset(self) -> None:
        """Forget queued deliveries, the log and the fault rules."""
        with self._cond:
            self._heap.clear()
            self._log.clear()
            self._cond.notify_all()
        self.faults.reset()

    # ---- the simulator's side --------------------------------------------------------------

    def submit(self, delivery: Delivery) -> None:
        """Queue a delivery to go as soon as the clock allows; apply the fault rules that
        match it (`route`: the event name, `path`: a regex on the URL's path). Never
        blocks on the network."""
        now = self.clock.now()
        rule = self.faults.take(
            "POST", urlsplit(delivery.url).path, delivery.event, kinds=WEBHOOK_FAULT_KINDS
        )
        kind = rule.kind if rule is not None else None
        if kind == "drop":
            self._record(Attempt.of(delivery, 0, now, error="dropped", fault="drop"))
            return
        due = now
        if rule is not None and kind == "delay":
            due = now + timedelta(seconds=rule.delay)
        held = kind == "reorder"
        if held:
            due = now + timedelta(seconds=rule.delay if rule and rule.delay > 0 else 1.0)
        with self._cond:
            self._push(due, delivery, 1, held=held, fault=kind)
            if kind == "duplicate":
                self._push(now, replace(delivery), 1, fault="duplicate")
            self._cond.notify_all()

    def pending(self) -> int:
        with self._cond:
            return sum(1 for entry in self._heap if entry.live)

    def attempts(self) -> list[Attempt]:
        with self._cond:
            return list(self._log)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait (real seconds) until no delivery is due on the simulated clock and none is
        being sent; False on timeout. Tests call it after acting, and after advancing a
        frozen clock past a retry."""
        deadline = threading.Event()
        timer = threading.Timer(timeout, deadline.set)
        timer.start()
        try:
            with self._cond:
                while self._busy or self._due_entry() is not None:
                    if deadline.is_set():
                        return False
                    self._cond.wait(0.02)
                return True
        finally:
            timer.cancel()

    def state(self) -> dict[str, Any]:
        """The admin view: the attempts (oldest first), what is queued, the fault rules."""
        return {
            "deliveries": [attempt.to_dict() for attempt in self.attempts()],
            "pending": self.pending(),
            "faults": [rule.to_dict() for rule in self.faults.rules],
        }

    def set_faults(self, rules: Iterable[FaultRule | Mapping[str, Any]], *, replace: bool) -> None:
        made = [r if isinstance(r, FaultRule) else FaultRule.from_dict(r) for r in rules]
        for rule in made:
            if rule.kind not in WEBHOOK_FAULT_KINDS:
                known = ", ".join(sorted(WEBHOOK_FAULT_KINDS))
                raise ValueError(f"webhook fault: kind must be one of {known}, not {rule.kind!r}")
        if replace:
            self.faults.set_rules(made)
        else:
            for rule in made:
                self.faults.add(rule)

    # ---- the sending thread ----------------------------------------------------------------

    def _push(
        self,
        due: datetime,
        delivery: Delivery,
        attempt: int,
        *,
        held: bool = False,
        fault: str | None = None,
    ) -> None:
        entry = _Entry(due.timestamp(), next(self._seq), delivery, attempt, held=held, fault=fault)
        heapq.heappush(self._heap, entry)

    def _due_entry(self) -> _Entry | None:
        while self._heap and not self._heap[0].live:
            heapq.heappop(self._heap)
        if self._heap and self._heap[0].due <= self.clock.now().timestamp():
            return self._heap[0]
        return None

    def _run(self) -> None:
        while True:
            with self._cond:
                entry = None
                while not self._stopping:
                    entry = self._due_entry()
                    if entry is not None:
                        break
                    # a frozen clock moves without telling anyone: look again shortly
                    self._cond.wait(0.02 if self._heap else 0.5)
                if self._stopping or entry is None:
                    return
                heapq.heappop(self._heap)
                self._busy = True
            try:
                self._attempt(entry)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _attempt(self, entry: _Entry) -> None:
        delivery, number = entry.delivery, entry.attempt
        now = self.clock.now()
        verdict = self._gate(delivery, now)
        if verdict is False:
            self._record(Attempt.of(delivery, number, now, error="discarded"))
            return
        if isinstance(verdict, datetime):
            with self._cond:
                self._push(max(verdict, now), delivery, number, fault=entry.fault)
            return
        status, error = self._post(delivery, number, now)
        fault = entry.fault if number == 1 else None
        attempt = Attempt.of(delivery, number, now, status=status, error=error, fault=fault)
        self._record(attempt)
        retry = (
            not attempt.ok
            and number <= len(self.policy.backoff)
            and self.policy.retried(status, number)
        )
        self._on_result(delivery, attempt, not retry)
        with self._cond:
            if retry:
                wait = timedelta(seconds=self.policy.backoff[number - 1])
                self._push(now + wait, delivery, number + 1)
            if number == 1 and not entry.held:
                self._release_held(delivery.target, now)

    def _release_held(self, target: str, now: datetime) -> None:
        """The delivery a `reorder` held back goes right after this one."""
        held = [e for e in self._heap if e.live and e.held and e.delivery.target == target]
        for entry in held:
            entry.live = False
            self._push(now, entry.delivery, entry.attempt, fault=entry.fault)

    def _post(
        self, delivery: Delivery, number: int, now: datetime
    ) -> tuple[int | None, str | None]:
        headers = delivery.sign(delivery, number, now)
        try:
            response = self._session.post(
                delivery.url, data=delivery.body, headers=headers, timeout=self.policy.timeout
            )
        except requests.Timeout:
            return None, "timeout"
        except requests.RequestException:
            return None, "connection"
        response.close()
        return response.status_code, None

    def _record(self, attempt: Attempt) -> None:
        with self._cond:
            self._log.append(attempt)
