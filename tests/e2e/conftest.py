"""End-to-end fixtures: both simulators over real HTTP, a bridge config, a ledger.

`world` runs syncs in-process on a frozen simulated clock (vendor jobs finish because
the engine's `sleep` advances that clock). `live` runs the simulators on a real-time
clock for the subprocess tests (`python -m bridge ... sync` as a child process).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bridge.factory import build_adapters, policy_from_config
from bridge.run.runner import RunResult, SyncRun
from bridge.run.state import RunOptions
from tests.sandbox_world import DAY, START, SandboxWorld, frozen_sandbox, running_sandbox

__all__ = ["DAY", "START", "Live", "World", "states"]


class World(SandboxWorld):
    """Both simulators, the config written for them and the ledger it names."""

    # --- runs ------------------------------------------------------------------

    def sync(self, options: RunOptions | None = None, **overrides: Any) -> RunResult:
        config = self.config()
        now, sleep = self.engine_clock()
        adapters = build_adapters(config, sleep=sleep, clock=now, monotonic=self.monotonic)
        if options is None:
            values: dict[str, Any] = {
                "policy": policy_from_config(config),
                "max_purges_per_run": config.sync.max_purges_per_run,
            }
            values.update(overrides)
            options = RunOptions(**values)
        run = SyncRun(
            self.ledger,
            adapters,
            options,
            holder="e2e",
            now=now,
            sleep=sleep,
        )
        return run.execute()

    def engine_clock(self) -> tuple[Callable[[], datetime], Callable[[float], None]]:
        """What bridge runs on: here the simulators' frozen clock."""
        return self.clock.now, self.clock.sleep

    def monotonic(self) -> float:
        return self.clock.timestamp()


@pytest.fixture
def world(tmp_path: Path, world_ledger_url: str | None) -> Iterator[World]:
    """Simulators on a frozen clock, limits off, a fresh config and ledger (on SQLite, or
    each backend with `@both_backends`)."""
    with frozen_sandbox() as sandbox:
        world = World(sandbox, tmp_path / "bridge", ledger_url=world_ledger_url)
        try:
            yield world
        finally:
            world.close()


class Live(World):
    """Simulators on a running clock, for runs in a child process; in-process runs use
    the wall clock like the child does (`shift` moves bridge's notion of now)."""

    shift = timedelta(0)
    #: the simulators' limits are off: let bridge's SuperOffice throttle run fast too
    client_rps = 500

    def engine_clock(self) -> tuple[Callable[[], datetime], Callable[[float], None]]:
        return (lambda: datetime.now(UTC) + self.shift), time.sleep

    def monotonic(self) -> float:
        return time.monotonic()


@pytest.fixture
def live(tmp_path: Path, world_ledger_url: str | None) -> Iterator[Live]:
    """Simulators on a running clock, sped up 50 times (a 100-ticket job takes 0.25 s), that
    starts 20 days in the past: bridge in the child process runs on the wall clock, so
    advancing the simulators 15 days makes SuperOffice's retention job run for both."""
    with running_sandbox(50.0, start=datetime.now(UTC) - timedelta(days=20)) as sandbox:
        world = Live(
            sandbox,
            tmp_path / "bridge",
            ledger_url=world_ledger_url,
            lease_seconds="2",
            max_purges_per_run="1000",
        )
        try:
            yield world
        finally:
            world.close()


def states(world: World, pairs: Sequence[tuple[int, int]]) -> list[tuple[str, str | None]]:
    """(SuperOffice, Zendesk) simulator states of linked pairs."""
    return world.states(pairs)
