"""Fixtures for the SuperOffice simulator (import them, or re-export from conftest.py).

`superoffice_sim` is a live simulator on port 0 with a frozen clock (2024-05-01 12:00 UTC),
the sandbox partner key configured for the system-user exchange, and rate limits OFF (as
for `zendesk_sim`): on a frozen clock a 10-per-second window would never reopen. Tests of
the limit switch it on with `sim.configure({"rate_limits": True})`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from bridge.sandbox import SimClock
from bridge.vendors.superoffice.sim.auth import partner_keypair
from bridge.vendors.superoffice.sim.simulator import SuperOfficeSimulator

SO_START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class SuperOfficeClient:
    """A thin `requests` wrapper: SOTicket auth by default, paths relative to `/api/v1/`."""

    def __init__(self, sim: SuperOfficeSimulator) -> None:
        self.sim = sim
        self.session = requests.Session()
        self.session.headers.update(
            {
                "Authorization": f"SOTicket {sim.ticket}",
                "SO-AppToken": sim.app_token,
                "Accept": "application/json",
                "SO-TimeZone": "UTC, includeTZOffset",
            }
        )

    def url(self, path: str) -> str:
        return f"{self.sim.base_url}/api/v1/{path.lstrip('/')}"

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(self.url(path), timeout=10, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.post(self.url(path), timeout=10, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.patch(self.url(path), timeout=10, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.delete(self.url(path), timeout=10, **kwargs)

    def archive(self, provider: str, **params: Any) -> requests.Response:
        return self.get(f"Archive/{provider}", params={f"${k}": v for k, v in params.items()})

    def admin(self, method: str, name: str, body: Any = None) -> requests.Response:
        return requests.request(method, f"{self.sim.admin_url}/{name}", json=body, timeout=10)


@pytest.fixture
def superoffice_sim() -> Iterator[SuperOfficeSimulator]:
    _, public_pem = partner_keypair()
    sim = SuperOfficeSimulator(clock=SimClock(SO_START, frozen=True), public_key_pem=public_pem)
    sim.configure({"rate_limits": False})
    with sim:
        yield sim


@pytest.fixture
def so(superoffice_sim: SuperOfficeSimulator) -> Iterator[SuperOfficeClient]:
    client = SuperOfficeClient(superoffice_sim)
    yield client
    client.session.close()
