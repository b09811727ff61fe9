"""Sandbox fixtures.

`zendesk_sim` is a live Zendesk simulator on port 0 with a frozen clock
(2024-05-01 12:00 UTC) and rate limits OFF: on a frozen clock a per-minute window never
reopens, so only tests of the limits switch them on (`sim.configure({"rate_limits": True})`).
`zd` is a `requests` client for it with API-token Basic auth.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from bridge.sandbox import SimClock
from bridge.vendors.zendesk.sim.simulator import ZendeskSimulator

ZD_START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class ZendeskClient:
    """Plain `requests` against the simulator; `path` is relative to `/api/v2/`."""

    def __init__(self, sim: ZendeskSimulator) -> None:
        self.sim = sim
        self.session = requests.Session()
        self.session.auth = (f"{sim.email}/token", "sandbox-token")
        self.session.headers["Accept"] = "application/json"

    def url(self, path: str) -> str:
        return f"{self.sim.base_url}/api/v2/{path.lstrip('/')}"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        return self.session.request(method, self.url(path), **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def admin(self, method: str, name: str, body: Any = None) -> Any:
        """Call `/_sandbox/<name>` (no auth) and return the JSON answer (asserting 200)."""
        response = requests.request(method, f"{self.sim.admin_url}/{name}", json=body, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def zendesk_sim() -> Iterator[ZendeskSimulator]:
    sim = ZendeskSimulator(clock=SimClock(ZD_START, frozen=True))
    sim.configure({"rate_limits": False})
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def zd(zendesk_sim: ZendeskSimulator) -> ZendeskClient:
    return ZendeskClient(zendesk_sim)


# SuperOffice simulator fixtures (`superoffice_sim`, `so`), defined in conftest_superoffice.py
from tests.sandbox.conftest_superoffice import so, superoffice_sim  # noqa: E402

__all__ = ["so", "superoffice_sim"]
