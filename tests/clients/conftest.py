"""Real vendor clients, written by others, driving the simulators.

The Node clients (node-zendesk, `@superoffice/webapi`) are locked in
`tests/clients/node/package-lock.json` and installed by the tests themselves with
`npm ci`, once per lock file: `node_modules/.installed-lock` records the lock's hash.
A client script is a small Node program in `tests/clients/node/`; `run_node` starts it
with the simulator's address in its environment and returns what it printed as JSON.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.clients.commands import installed_once, run_client

NODE_DIR = Path(__file__).parent / "node"
_MARKER = NODE_DIR / "node_modules" / ".installed-lock"


def _lock_hash() -> str:
    return hashlib.sha256((NODE_DIR / "package-lock.json").read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def node_clients() -> Path:
    """`tests/clients/node` with its locked packages installed (`npm ci` when the lock
    changed). Node.js and npm are part of the test platform: missing, the tests fail."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        pytest.fail("Node.js and npm are needed for the real-client tests (tests/clients)")

    def npm_ci() -> None:
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            pytest.fail(f"npm ci failed in {NODE_DIR}:\n{done.stdout}\n{done.stderr}")

    installed_once(_MARKER, _lock_hash(), npm_ci)
    return NODE_DIR


def run_node(node_dir: Path, script: str, env: Mapping[str, str], *, timeout: float = 120) -> Any:
    """Run `script` (in `node_dir`) with `env` added; its last stdout line is JSON.

    A script that throws exits non-zero: the test fails with what it printed, so a
    client's own error message is what a reader sees."""
    node = shutil.which("node")
    assert node is not None
    stdout = run_client([node, script], env, cwd=node_dir, timeout=timeout)
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert lines, f"{script} printed nothing"
    return json.loads(lines[-1])


# the Zendesk simulator (frozen clock, limits off) and the Singer tap, for the Zendesk clients
from tests.clients.singer import tap_zendesk  # noqa: E402
from tests.sandbox.conftest import zendesk_sim  # noqa: E402

__all__ = ["node_clients", "run_node", "tap_zendesk", "zendesk_sim"]
