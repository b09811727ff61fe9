"""Simulated time, so grace periods, scrubs, job durations and rate-limit windows can be
frozen, advanced or sped up; plus the ISO 8601 helpers the simulators format and parse with."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["SimClock", "iso_z", "parse_iso"]


def iso_z(moment: datetime) -> str:
    """ISO 8601 in UTC with a `Z` and whole seconds (no fraction, no offset)."""
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
