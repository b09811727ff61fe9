"""How many vendor requests a simulator saw, per route and per status, for assertions on
how many calls a client made."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

__all__ = ["Counters"]


class Counters:
    """Vendor requests seen: total, per route name (``"GET item"``), per status.

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
