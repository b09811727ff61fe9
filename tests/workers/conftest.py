"""Sandbox pairs on a throwaway PostgreSQL, and `bridge worker` processes working them.

Every pair syncs every 2 s; workers poll every 0.2 s and count a worker silent for 2 s as
stalled, so that schedules, retries and the recovery of a killed worker show in seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bridge.sandbox_pair import Sandbox, write_pairs_config
from tests.pairs.conftest import Pairs
from tests.pairs.conftest import pairs as pairs  # the SQLite pairs, for these tests too

#: every pair's schedule in these tests
EVERY = "2s"
#: the worker options that make the tests fast
FAST = ("--poll-interval", "0.2", "--stalled-after", "2")


@dataclass
class Workers:
    """`bridge worker` child processes, each with its output in a file of its own."""

    pairs: Pairs
    folder: Path
    started: list[tuple[subprocess.Popen[bytes], Path]] = field(default_factory=list)

    def start(self, *args: str, crash_at: str | None = None) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if k != "BRIDGE_CRASH_AT"}
        if crash_at:
            env["BRIDGE_CRASH_AT"] = crash_at
        log = self.folder / f"worker-{len(self.started)}.log"
        command = [sys.executable, "-m", "bridge", "--config", str(self.pairs.config_path)]
        with log.open("wb") as out:
            process = subprocess.Popen(
                [*command, "worker", *FAST, *args], stdout=out, stderr=subprocess.STDOUT, env=env
            )
        self.started.append((process, log))
        return process

    def output(self, process: subprocess.Popen[bytes]) -> str:
        log = next(path for p, path in self.started if p is process)
        return log.read_text(encoding="utf-8", errors="replace")

    def stop_all(self) -> None:
        for process, _ in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process, _ in self.started:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


@contextmanager
def running_workers(pairs: Pairs, folder: Path) -> Iterator[Workers]:
    """`Workers` for `pairs` (started by the test), every one stopped however it ends."""
    running = Workers(pairs, folder)
    try:
        yield running
    finally:
        running.stop_all()


def wait_for(condition: Callable[[], bool], timeout: float = 40, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what or condition}")


def _as_written(config: str, _sandboxes: Mapping[str, Sandbox]) -> str:
    return config


@contextmanager
def pairs_on_postgres(
    folder: Path,
    postgres_url: str,
    names: tuple[str, ...],
    *,
    edit: Callable[[str, Mapping[str, Sandbox]], str] = _as_written,
) -> Iterator[Pairs]:
    """Pairs of the given names, their ledgers on PostgreSQL, each synced every 2 s;
    `edit` changes the config's text (knowing the sandboxes) before the ledgers are made."""
    sandboxes = {name: Sandbox().start() for name in names}
    try:
        for sandbox in sandboxes.values():
            sandbox.relax_limits()
        # SuperOffice's retention purges reach Zendesk: purges bridge sends, to count there
        path = write_pairs_config(
            folder / "config", dict(sandboxes), propagate_retention_purges="true"
        )
        text = path.read_text(encoding="utf-8")
        text = text.replace('url = "sqlite:///bridge.db"\n', f'url = "{postgres_url}"\n')
        text += "".join(f'\n[pairs.{name}]\nevery = "{EVERY}"\n' for name in sandboxes)
        path.write_text(edit(text, sandboxes), encoding="utf-8")
        pairs = Pairs(sandboxes, path)
        for name in sandboxes:  # each pair's ledger made, as `bridge link import` would
            pairs.ledger(name).close()
        yield pairs
    finally:
        for sandbox in sandboxes.values():
            sandbox.stop()


@pytest.fixture
def pg_pairs(tmp_path: Path, postgres_url: str) -> Iterator[Pairs]:
    """Two pairs, `acme` and `globex`, their ledgers on PostgreSQL, each synced every 2 s."""
    with pairs_on_postgres(tmp_path, postgres_url, ("acme", "globex")) as pairs:
        yield pairs


@pytest.fixture
def workers(pg_pairs: Pairs, tmp_path: Path) -> Iterator[Workers]:
    with running_workers(pg_pairs, tmp_path) as running:
        yield running
