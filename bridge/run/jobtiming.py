"""When to poll a vendor job: learnt from the polls themselves.

Polling blindly (every second, or with a growing wait) costs more calls than the writes,
and polling late leaves job slots idle. Each poll says of every job in flight either
"done at age a" (its duration D <= a) or "still running at age a" (D > a); the estimate
keeps the tightest such bounds and aims the next poll just past the lower one, halving
the gap each time, so that after a few rounds each poll lands right after the oldest
job ends. Vendor job times drift: evidence that contradicts a bound replaces it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["JobDuration"]


@dataclass
class JobDuration:
    """Bounds on how long one vendor job takes, in seconds."""

    first_guess: float = 2.0
    #: bounds closer than this are close enough: poll at the upper one
    tolerance: float = 0.5
    #: longest age at which a job was seen still running
    lower: float = 0.0
    #: shortest age at which a job was seen done (None: none seen yet)
    upper: float | None = None

    def observe(self, age: float, done: bool) -> None:
        if done:
            self.upper = age if self.upper is None else min(self.upper, age)
            if self.lower >= self.upper:  # jobs got faster: the old lower bound is stale
                self.lower = max(0.0, self.upper - self.tolerance)
        else:
            self.lower = max(self.lower, age)
            if self.upper is not None and self.upper <= self.lower:
                self.upper = None  # jobs got slower: find the new upper bound

    def estimate(self) -> float:
        """The job age at which to poll next."""
        if self.upper is None:
            return max(self.first_guess, self.lower * 2)
        if self.upper - self.lower <= self.tolerance:
            return self.upper
        return (self.lower + self.upper) / 2
