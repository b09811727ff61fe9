"""A sync run's world on in-memory vendors (`tests/fakes.py`): both sides, a ledger, a clock.

The ledger is the test's `ledger_url` (tests/conftest.py): a world fixture built with
`fake_world` runs its tests once on SQLite and once on PostgreSQL."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import TypeVar

from sqlmodel import col, select

from bridge.core.model import Transition
from bridge.ledger import Ledger, LinkRow
from bridge.ledger.tables import Event, Operation, set_clock
from bridge.run.migrate import MigrationOptions, migration_run
from bridge.run.runner import RunResult, SyncRun
from bridge.run.state import RunOptions
from bridge.vendors.registry import SIDES, SUPEROFFICE, ZENDESK
from tests.fakes import FakeClock, FakeVendor

__all__ = ["SO", "ZD", "World", "fake_world"]

SO, ZD = SUPEROFFICE, ZENDESK


class World:
    def __init__(self, ledger: Ledger, clock: FakeClock) -> None:
        self.ledger = ledger
        self.clock = clock
        self.so = FakeVendor(
            SO,
            clock,
            retention=timedelta(days=14),
            purge_mode="retention",
            retention_is_silent=True,
        )
        self.zd = FakeVendor(ZD, clock, retention=timedelta(days=30), job_limit=30)

    def link(self, *pairs: tuple[int, int]) -> None:
        for so_id, zd_id in pairs:
            self.so.seed(so_id)
            self.zd.seed(zd_id)
        rows = [LinkRow(n, so_id, zd_id) for n, (so_id, zd_id) in enumerate(pairs, 1)]
        assert self.ledger.import_links(rows, origin="csv").ok

    def sync(self, **options: object) -> RunResult:
        run = SyncRun(
            self.ledger,
            {SO: self.so, ZD: self.zd},
            RunOptions(**options),  # type: ignore[arg-type]
            holder="test",
            now=self.clock,
            sleep=self.clock.sleep,
        )
        return run.execute()

    def migrate(self, options: MigrationOptions) -> RunResult:
        run = migration_run(
            self.ledger,
            {SO: self.so, ZD: self.zd},
            options,
            holder="test",
            now=self.clock,
            sleep=self.clock.sleep,
        )
        return run.execute()

    def events(self, kind: str) -> list[Event]:
        with self.ledger.session() as session:
            return list(
                session.exec(select(Event).where(col(Event.kind) == kind).order_by(col(Event.id)))
            )

    def ops(self) -> list[Operation]:
        with self.ledger.session() as session:
            return list(session.exec(select(Operation).order_by(col(Operation.id))))

    def purges_sent(self, vendor: FakeVendor) -> Counter[int]:
        return Counter(
            ticket
            for transition, ids in vendor.submitted
            if transition is Transition.PURGE
            for ticket in ids
        )


W = TypeVar("W", bound=World)


def fake_world(ledger_url: str, kind: type[W]) -> Iterator[W]:
    """The body of a `world` fixture: the ledger at `ledger_url` (each backend in turn),
    on the fake clock for the test's length."""
    clock = FakeClock()
    set_clock(clock)
    try:
        with Ledger.open(ledger_url, sides=SIDES) as ledger:
            yield kind(ledger, clock)
    finally:
        set_clock(None)
