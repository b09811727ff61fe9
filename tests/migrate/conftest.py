"""Migration fixtures: both simulators over real HTTP, a bridge config, a ledger.

The clock runs (sped up), because `bridge migrate` on the command line sleeps in real time
while Zendesk jobs progress in simulated time. Rate limits are off: these tests are about
what is sent, not how fast.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlmodel import col, select

from bridge.cli import main
from bridge.config import load_config
from bridge.factory import build_adapters, policy_from_config
from bridge.ledger import Ledger, LinkRow
from bridge.ledger.tables import Operation, set_clock
from bridge.model import Side
from bridge.reconcile.engine import RunOptions, RunResult, SyncRun
from bridge.reconcile.migrate import MigrationOptions, MigrationRun
from bridge.sandbox.setup import Sandbox

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = 86_400.0
#: simulated seconds per real second: a Zendesk job of 100 ids (~12 s) takes ~0.25 s
SPEED = 50.0
#: every write route of both simulators (reads are free to happen)
WRITE_ROUTES = frozenset(
    {
        "DELETE tickets/destroy_many",
        "DELETE tickets/{id}",
        "PUT deleted_tickets/restore_many",
        "PUT deleted_tickets/{id}/restore",
        "DELETE deleted_tickets/destroy_many",
        "DELETE deleted_tickets/{id}",
        "POST imports/tickets",
        "POST imports/tickets/create_many",
        "POST Agents/Ticket/SetDeletedStatusByIds",
        "POST Agents/Ticket/UndeleteByIds",
        "POST Agents/Ticket/DeleteTicketEntity",
        "PATCH Ticket/{id}",
        "DELETE Ticket/{id}",
        "POST Ticket",
    }
)


class Env:
    """Both simulators, a config written for them (short lease) and the ledger it names."""

    def __init__(self, sandbox: Sandbox, folder: Path) -> None:
        self.sandbox = sandbox
        self.folder = folder
        self.zd = sandbox.zendesk
        self.so = sandbox.superoffice
        self.config_path = sandbox.write_config(folder, lease_seconds="1")
        # the adapter's own SuperOffice throttle (10/s of real time) would only slow tests
        text = self.config_path.read_text(encoding="utf-8")
        self.config_path.write_text(
            text.replace("requests_per_second = 10\n", "requests_per_second = 1000\n"),
            encoding="utf-8",
        )
        self.ledger = Ledger.open(f"sqlite:///{folder / 'bridge.db'}")

    # --- data ------------------------------------------------------------------

    def link(self, count: int) -> list[tuple[int, int]]:
        """`count` new active tickets on each side, linked one to one (SuperOffice, Zendesk)."""
        so_ids = self.so.seed_tickets(count, title="Ticket {n}")
        zd_ids = self.zd.seed_tickets(count=count)
        pairs = list(zip(so_ids, zd_ids, strict=True))
        start = self.ledger.count_links() + 1
        rows = [LinkRow(start + n, s, z) for n, (s, z) in enumerate(pairs)]
        assert self.ledger.import_links(rows, origin="csv").ok
        return pairs

    def so_state(self, ticket_id: int) -> str:
        """`active`, `deleted` or `purged` (the Zendesk simulator's words)."""
        if self.so.is_purged(ticket_id):
            return "purged"
        info = self.so.ticket_state(ticket_id)
        assert info is not None
        return "deleted" if info["base_status"] == "Deleted" else "active"

    def zd_state(self, ticket_id: int) -> str | None:
        return self.zd.ticket_state(ticket_id)

    def states(self, pairs: Sequence[tuple[int, int]]) -> list[tuple[str, str | None]]:
        return [(self.so_state(s), self.zd_state(z)) for s, z in pairs]

    # --- counters --------------------------------------------------------------

    def reset_counters(self) -> None:
        self.zd.counters.reset()
        self.so.counters.reset()

    def routes(self, side: str) -> dict[str, int]:
        sim = self.zd if side == "zendesk" else self.so
        return {k: v for k, v in sim.counts()["routes"].items() if v}

    def writes(self) -> dict[str, int]:
        """Write calls received by either simulator since the last reset, by route."""
        found = {**self.routes("zendesk"), **self.routes("superoffice")}
        return {route: n for route, n in found.items() if route in WRITE_ROUTES}

    # --- ledger ----------------------------------------------------------------

    def ops(self) -> list[Operation]:
        with self.ledger.session() as session:
            return list(session.exec(select(Operation).order_by(col(Operation.id))))

    # --- in-process runs (a frozen clock: the engine's sleep advances it) ---------

    def adapters(self) -> dict[Side, Any]:
        clock = self.sandbox.clock
        return build_adapters(
            load_config(self.config_path),
            sleep=clock.sleep,
            clock=clock.now,
            monotonic=clock.timestamp,
        )

    def migrate(self, source: Side, **options: bool) -> RunResult:
        clock = self.sandbox.clock
        return MigrationRun(
            self.ledger,
            self.adapters(),
            MigrationOptions(source, **options),
            holder="test",
            now=clock.now,
            sleep=clock.sleep,
        ).execute()

    def sync(self, *, dry_run: bool = False) -> RunResult:
        clock = self.sandbox.clock
        config = load_config(self.config_path)
        options = RunOptions(policy=policy_from_config(config), dry_run=dry_run)
        return SyncRun(
            self.ledger, self.adapters(), options, holder="test", now=clock.now, sleep=clock.sleep
        ).execute()

    # --- the command line ------------------------------------------------------

    def cli(self, *args: str) -> Result:
        """`bridge --config ... ARGS` in-process."""
        runner = CliRunner()
        return runner.invoke(main, ["--config", str(self.config_path), *args])

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "bridge", "--config", str(self.config_path), *args]

    def env(self, crash_at: str | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "BRIDGE_CRASH_AT"}
        if crash_at:
            env["BRIDGE_CRASH_AT"] = crash_at
        return env

    def bridge(self, *args: str, crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
        """`python -m bridge --config ... ARGS` as a child process."""
        return subprocess.run(
            self.command(*args),
            env=self.env(crash_at),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    sandbox = Sandbox()
    sandbox.clock.set_speed(SPEED)
    sandbox.start()
    sandbox.relax_limits()
    world = Env(sandbox, tmp_path / "bridge")
    try:
        yield world
    finally:
        world.ledger.close()
        sandbox.stop()


@pytest.fixture
def frozen(tmp_path: Path) -> Iterator[Env]:
    """Simulators on a frozen clock for in-process runs; the ledger uses the same clock."""
    sandbox = Sandbox()
    sandbox.clock.set(START)
    sandbox.clock.freeze()
    set_clock(sandbox.clock.now)
    sandbox.start()
    sandbox.relax_limits()
    world = Env(sandbox, tmp_path / "bridge")
    try:
        yield world
    finally:
        world.ledger.close()
        sandbox.stop()
        set_clock(None)
