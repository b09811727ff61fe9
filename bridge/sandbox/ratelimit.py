"""Request quotas measured on the simulated clock, for the simulators' `rate_limit` hooks."""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass

from bridge.sandbox.clock import SimClock

__all__ = ["RateDecision", "RateLimiter"]


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
    resets on the minute). Sliding windows remember each hit. A denied request does not
    consume capacity. Thread-safe.
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
        if not self.enabled:
            # limits off: nothing is counted, and the answers say so (a client that paces
            # itself by the headers must not wait for a window that does not exist)
            return RateDecision(
                allowed=True, retry_after=0.0, limit=limit, remaining=limit, reset=window
            )
        if sliding:
            hits = self._sliding.setdefault(key, deque())
            while hits and hits[0] <= now - window:
                hits.popleft()
            used = len(hits)
            reset = (hits[0] + window - now) if hits else window
            allowed = used + cost <= limit
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
            allowed = used + cost <= limit
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
