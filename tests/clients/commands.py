"""Running a real client as its users do: a command in a subprocess."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest


def run_client(
    argv: Sequence[str], env: Mapping[str, str], *, cwd: Path | None = None, timeout: float
) -> str:
    """Run `argv` with `env` added to this environment and return its stdout. A non-zero
    exit fails the test with what the client printed: its own error is what a reader
    needs to see."""
    done = subprocess.run(
        list(argv),
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        pytest.fail(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout
