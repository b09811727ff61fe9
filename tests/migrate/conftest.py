"""Migration fixtures: both simulators over real HTTP, a bridge config, a ledger (on each
backend in turn: every test with a world runs on SQLite and on PostgreSQL).

The clock runs (sped up), because `bridge migrate` on the command line sleeps in real time
while Zendesk jobs progress in simulated time. Rate limits are off: these tests are about
what is sent, not how fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from bridge.cli import main
from bridge.config import load_config
from bridge.core.model import Side
from bridge.factory import build_adapters, policy_from_config
from bridge.run.migrate import MigrationOptions, migration_run
from bridge.run.runner import RunResult, SyncRun
from bridge.run.state import RunOptions
from bridge.vendors.registry import SIDES
from tests.conftest import BACKENDS
from tests.sandbox_world import DAY, SandboxWorld, frozen_sandbox, running_sandbox

__all__ = ["DAY", "SPEED", "WRITE_ROUTES", "Env"]

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


class Env(SandboxWorld):
    """Both simulators, a config written for them (short lease) and the ledger it names."""

    #: the adapter's own SuperOffice throttle (10/s of real time) would only slow tests
    client_rps = 1000

    def writes(self) -> dict[str, int]:
        """Write calls received by either simulator since the last reset, by route."""
        found = {**self.routes("zendesk"), **self.routes("superoffice")}
        return {route: n for route, n in found.items() if route in WRITE_ROUTES}

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
        return migration_run(
            self.ledger,
            self.adapters(),
            MigrationOptions(source, SIDES.other(source), **options),
            holder="test",
            now=clock.now,
            sleep=clock.sleep,
        ).execute()

    def sync(self, *, dry_run: bool = False) -> RunResult:
        clock = self.sandbox.clock
        config = load_config(self.config_path)
        options = RunOptions(policy=policy_from_config(config), dry_run=dry_run)
        return SyncRun(
            self.ledger,
            self.adapters(),
            options,
            holder="test",
            now=clock.now,
            sleep=clock.sleep,
        ).execute()

    # --- the command line ------------------------------------------------------

    def cli(self, *args: str) -> Result:
        """`bridge --config ... ARGS` in-process."""
        runner = CliRunner()
        return runner.invoke(main, ["--config", str(self.config_path), *args])


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Every migration world's ledger backend in turn (overrides tests/conftest.py's
    SQLite-only default): a test that builds `env` or `frozen` runs on both."""
    return str(request.param)


@pytest.fixture
def env(tmp_path: Path, world_ledger_url: str | None) -> Iterator[Env]:
    with running_sandbox(SPEED) as sandbox:
        world = Env(sandbox, tmp_path / "bridge", ledger_url=world_ledger_url, lease_seconds="1")
        try:
            yield world
        finally:
            world.close()


@pytest.fixture
def frozen(tmp_path: Path, world_ledger_url: str | None) -> Iterator[Env]:
    """Simulators on a frozen clock for in-process runs; the ledger uses the same clock."""
    with frozen_sandbox() as sandbox:
        world = Env(sandbox, tmp_path / "bridge", ledger_url=world_ledger_url, lease_seconds="1")
        try:
            yield world
        finally:
            world.close()
