"""The scripted HTTP server as a fixture (see `scripted.py`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from tests.adapters.scripted import ScriptedServer


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer()
    thread = threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
