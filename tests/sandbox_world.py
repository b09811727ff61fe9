"""Both simulators, a bridge config written for them and the ledger it names: the set-up the
end-to-end, migration and crash tests share."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlmodel import col, select

from bridge.config import Config, load_config
from bridge.ledger import Ledger, LinkRow
from bridge.ledger.tables import Event, Operation, set_clock
from bridge.sandbox_pair import Sandbox
from bridge.vendors.registry import SIDES

__all__ = ["DAY", "START", "SandboxWorld", "frozen_sandbox", "running_sandbox"]

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = 86_400.0


@contextmanager
def frozen_sandbox() -> Iterator[Sandbox]:
    """Both simulators on a frozen clock at START, limits off, and the ledger on that clock
    (in-process runs: the engine's sleep advances the clock, so vendor jobs finish)."""
    sandbox = Sandbox()
    sandbox.clock.set(START)
    sandbox.clock.freeze()
    set_clock(sandbox.clock.now)
    sandbox.start()
    sandbox.relax_limits()
    try:
        yield sandbox
    finally:
        sandbox.stop()
        set_clock(None)


@contextmanager
def running_sandbox(speed: float, start: datetime | None = None) -> Iterator[Sandbox]:
    """Both simulators on a clock running `speed` times real time (runs in a child process
    sleep in real time while vendor jobs progress in simulated time), limits off."""
    sandbox = Sandbox()
    if start is not None:
        sandbox.clock.set(start)
    sandbox.clock.set_speed(speed)
    sandbox.start()
    sandbox.relax_limits()
    try:
        yield sandbox
    finally:
        sandbox.stop()


class SandboxWorld:
    """The simulators, the config written for them and the ledger it names."""

    #: bridge's own SuperOffice request rate (the simulators' limits are off in tests)
    client_rps: int | None = None

    def __init__(
        self, sandbox: Sandbox, folder: Path, *, ledger_url: str | None = None, **sync: str
    ) -> None:
        """`ledger_url`: the ledger elsewhere than the written config's SQLite file (a
        PostgreSQL database, tests/conftest.py), as a user would change `[ledger] url`."""
        self.sandbox = sandbox
        self.ledger_url = ledger_url
        self.folder = folder
        self.zd = sandbox.zendesk
        self.so = sandbox.superoffice
        self.clock = sandbox.clock
        self.config_path = folder / "bridge.toml"
        self.rewrite_config(**sync)
        self.ledger = Ledger.open(self.config().ledger_url, sides=SIDES)

    def config(self) -> Config:
        return load_config(self.config_path)

    def rewrite_config(self, **sync: str) -> None:
        """Write the config again with these `[sync]` values (raw TOML)."""
        self.config_path = self.sandbox.write_config(self.folder, **sync)
        if self.ledger_url is not None:
            text = self.config_path.read_text(encoding="utf-8")
            written = 'url = "sqlite:///bridge.db"\n'
            assert written in text, "the sandbox config's ledger line changed"
            text = text.replace(written, f'url = "{self.ledger_url}"\n')
            self.config_path.write_text(text, encoding="utf-8")
        if self.client_rps is not None:
            text = self.config_path.read_text(encoding="utf-8")
            text = text.replace(
                "requests_per_second = 10\n", f"requests_per_second = {self.client_rps}\n"
            )
            self.config_path.write_text(text, encoding="utf-8")

    def close(self) -> None:
        self.ledger.close()

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
        """`active`, `deleted` or `purged` (the same words as the Zendesk simulator)."""
        if self.so.is_purged(ticket_id):
            return "purged"
        info = self.so.ticket_state(ticket_id)
        assert info is not None, f"superoffice ticket {ticket_id} never existed"
        return "deleted" if info["base_status"] == "Deleted" else "active"

    def zd_state(self, ticket_id: int) -> str | None:
        return self.zd.ticket_state(ticket_id)

    def states(self, pairs: Sequence[tuple[int, int]]) -> list[tuple[str, str | None]]:
        """(SuperOffice, Zendesk) simulator states of linked pairs."""
        return [(self.so_state(s), self.zd_state(z)) for s, z in pairs]

    # --- counters and the ledger -----------------------------------------------------

    def reset_counters(self) -> None:
        self.zd.counters.reset()
        self.so.counters.reset()

    def routes(self, side: str) -> dict[str, int]:
        """Calls the simulator of `side` received since its last reset, by route."""
        sim = self.zd if side == "zendesk" else self.so
        return {k: v for k, v in sim.counts()["routes"].items() if v}

    def ops(self) -> list[Operation]:
        with self.ledger.session() as session:
            return list(session.exec(select(Operation).order_by(col(Operation.id))))

    def events(self, kind: str) -> list[Event]:
        with self.ledger.session() as session:
            query = select(Event).where(col(Event.kind) == kind).order_by(col(Event.id))
            return list(session.exec(query))

    # --- bridge as a child process ---------------------------------------------------

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "bridge", "--config", str(self.config_path), *args]

    def env(self, crash_at: str | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "BRIDGE_CRASH_AT"}
        if crash_at:
            env["BRIDGE_CRASH_AT"] = crash_at
        return env

    def bridge(
        self, *args: str, crash_at: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """`python -m bridge --config ... ARGS`, killed at `crash_at` when given."""
        return subprocess.run(
            self.command(*args),
            env=self.env(crash_at),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def popen(self, *args: str, crash_at: str | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(*args),
            env=self.env(crash_at),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
