"""Test-wide set-up: quiet logs (warnings and errors only, to stderr)."""

from __future__ import annotations

import pytest

from bridge.logging import configure_logging


@pytest.fixture(autouse=True, scope="session")
def _quiet_logs() -> None:
    configure_logging("json", "warning")
