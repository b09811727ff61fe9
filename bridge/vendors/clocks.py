"""The clock an adapter runs on, handed in by whoever builds it.

`sleep`, `clock` (aware UTC now) and `monotonic` always come from one clock: the wall clock,
or a simulator's (the demo and the benchmarks run on a simulated clock), so that retries,
job polling and pacing cost no wall time there.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

__all__ = ["Clock", "Monotonic", "Sleep"]

Sleep = Callable[[float], None]
Clock = Callable[[], datetime]
Monotonic = Callable[[], float]
