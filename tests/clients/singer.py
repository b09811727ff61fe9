"""Singer taps, installed from PyPI into their own virtualenvs and run as their users do.

A tap pins old dependencies, so it never enters the project's environment: each one gets a
virtualenv under `tests/clients/.venvs/<name>-<version>/` (ignored by git), created once
and kept while its marker file names the same requirement. Installing needs PyPI; a
failed install fails the test (nothing is skipped). `run_tap` runs the tap's command in
discovery or sync mode and returns what it printed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.clients.commands import installed_once, run_client

VENVS = Path(__file__).parent / ".venvs"
TAP_ZENDESK = "tap-zendesk==2.8.2"


def tap_venv(requirement: str) -> Path:
    """The virtualenv with `requirement` (`name==version`) installed; created if needed."""
    name, _, version = requirement.partition("==")
    venv = VENVS / f"{name}-{version}"

    def install() -> None:
        shutil.rmtree(venv, ignore_errors=True)
        steps = [
            [sys.executable, "-m", "venv", str(venv)],
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", requirement],
        ]
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True, timeout=900)
            if done.returncode != 0:
                pytest.fail(f"installing {requirement} failed:\n{done.stdout}\n{done.stderr}")

    installed_once(venv / ".installed", requirement, install)
    return venv


@pytest.fixture(scope="session")
def tap_zendesk() -> Path:
    """The `tap-zendesk` command of the pinned release."""
    return tap_venv(TAP_ZENDESK) / "bin" / "tap-zendesk"


def run_tap(command: Path, args: list[str], env: Mapping[str, str], *, timeout: float = 300) -> str:
    """Run the tap's `command` with `args` and `env` added; return its stdout."""
    return run_client([str(command), *args], env, timeout=timeout)


def messages(stdout: str) -> list[dict[str, Any]]:
    """The Singer messages (one JSON object a line) a sync printed."""
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]
