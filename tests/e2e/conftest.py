"""End-to-end fixtures: both simulators over real HTTP, a bridge config, a ledger.

`world` runs syncs in-process on a frozen simulated clock (vendor jobs finish because
the engine's `sleep` advances that clock). `live` runs the simulators on a real-time
clock for the subprocess tests (`python -m bridge ... sync` as a child process).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from bridge.config import Config, load_config
from bridge.factory import build_adapters, policy_from_config
from bridge.ledger import Ledger, LinkRow
from bridge.ledger.tables import Event, Operation, set_clock
from bridge.reconcile.engine import RunOptions, RunResult, SyncRun
from bridge.sandbox.setup import Sandbox

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = 86_400.0


class World:
    """Both simulators, the config written for them and the ledger it names."""

    #: bridge's own SuperOffice request rate, when a test changes it
    client_rps: int | None = None

    def __init__(self, sandbox: Sandbox, folder: Path) -> None:
        self.sandbox = sandbox
        self.folder = folder
        self.zd = sandbox.zendesk
        self.so = sandbox.superoffice
        self.clock = sandbox.clock
        self.config_path = sandbox.write_config(folder)
        self.ledger = Ledger.open(self.config().ledger_url)

    def config(self) -> Config:
        return load_config(self.config_path)

    def rewrite_config(self, **sync: str) -> None:
        self.config_path = self.sandbox.write_config(self.folder, **sync)
        if self.client_rps is not None:
            text = self.config_path.read_text(encoding="utf-8")
            text = text.replace(
                "requests_per_second = 10\n", f"requests_per_second = {self.client_rps}\n"
            )
            self.config_path.write_text(text, encoding="utf-8")

    # --- data ------------------------------------------------------------------

    def link(self, count: int) -> list[tuple[int, int]]:
        """`count` new tickets on each side, linked one to one (SuperOffice id, Zendesk id)."""
        so_ids = self.so.seed_tickets(count, title="Ticket {n}")
        zd_ids = self.zd.seed_tickets(count=count)
        pairs = list(zip(so_ids, zd_ids, strict=True))
        rows = [LinkRow(n, s, z) for n, (s, z) in enumerate(pairs, 1)]
        assert self.ledger.import_links(rows, origin="csv").ok
        return pairs

    def zd_state(self, ticket_id: int) -> str | None:
        return self.zd.ticket_state(ticket_id)

    def so_state(self, ticket_id: int) -> str:
        """`active`, `deleted` or `purged` (the same words as the Zendesk simulator)."""
        if self.so.is_purged(ticket_id):
            return "purged"
        info = self.so.ticket_state(ticket_id)
        assert info is not None, f"superoffice ticket {ticket_id} never existed"
        return "deleted" if info["base_status"] == "Deleted" else "active"

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

    # --- ledger ----------------------------------------------------------------

    def ops(self) -> list[Operation]:
        with self.ledger.session() as session:
            return list(session.exec(select(Operation).order_by(col(Operation.id))))

    def events(self, kind: str) -> list[Event]:
        with self.ledger.session() as session:
            query = select(Event).where(col(Event.kind) == kind).order_by(col(Event.id))
            return list(session.exec(query))

    def routes(self, side: str) -> dict[str, int]:
        sim = self.zd if side == "zendesk" else self.so
        return dict(sim.counts()["routes"])


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """Simulators on a frozen clock, limits off, a fresh config and ledger."""
    sandbox = Sandbox()
    sandbox.clock.set(START)
    sandbox.clock.freeze()
    set_clock(sandbox.clock.now)
    sandbox.start()
    sandbox.relax_limits()
    world = World(sandbox, tmp_path / "bridge")
    try:
        yield world
    finally:
        world.ledger.close()
        sandbox.stop()
        set_clock(None)


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

    def bridge(
        self,
        *args: str,
        crash_at: str | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args),
            env=self.env(crash_at),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "bridge", "--config", str(self.config_path), *args]

    def env(self, crash_at: str | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "BRIDGE_CRASH_AT"}
        if crash_at:
            env["BRIDGE_CRASH_AT"] = crash_at
        return env

    def popen(self, *args: str, crash_at: str | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(*args),
            env=self.env(crash_at),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    """Simulators on a running clock, sped up 50 times (a 100-ticket job takes 0.25 s), that
    starts 20 days in the past: bridge in the child process runs on the wall clock, so
    advancing the simulators 15 days makes SuperOffice's retention job run for both."""
    sandbox = Sandbox()
    sandbox.clock.set(datetime.now(UTC) - timedelta(days=20))
    sandbox.clock.set_speed(50.0)
    sandbox.start()
    sandbox.relax_limits()
    world = Live(sandbox, tmp_path / "bridge")
    world.rewrite_config(lease_seconds="2", max_purges_per_run="1000")
    try:
        yield world
    finally:
        world.ledger.close()
        sandbox.stop()


def states(world: World, pairs: Sequence[tuple[int, int]]) -> list[tuple[str, str | None]]:
    """(SuperOffice, Zendesk) simulator states of linked pairs."""
    return [(world.so_state(s), world.zd_state(z)) for s, z in pairs]
