"""Running a real client as its users do: a command in a subprocess; installing it once."""

from __future__ import annotations

import fcntl
import os
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
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


@contextmanager
def _exclusive(lock: Path) -> Iterator[None]:
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def installed_once(marker: Path, wanted: str, install: Callable[[], None]) -> None:
    """Run `install` unless `marker` already holds `wanted`, then write it there. Test
    processes running side by side (pytest-xdist workers) wait for one another instead
    of installing into the same folder at once."""
    with _exclusive(marker.parent.parent / f".{marker.parent.name}.lock"):
        if marker.exists() and marker.read_text() == wanted:
            return
        install()
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(wanted)
