"""A populated sandbox to try bridge on: `bridge sandbox serve --seed N --write-config DIR`.

An empty pair of simulators teaches little: `status` says nothing, `sync --dry-run` plans
nothing, `report` is blank. Seeding gives both tenants N linked tickets with a short
history, recorded in DIR's ledger as bridge would have recorded it: a migration from
SuperOffice (some tickets deleted there, one purged by retention), two scheduled syncs
copying agents' deletions and restores both ways, one conflict left open for a person; and
then changes made since the last sync, so the newcomer's first `sync --dry-run` has
something to show and `sync` something to do.

The history is played on a frozen clock starting two days ago, which bridge's waits
advance (vendor jobs finish, rate limits cost no real time); its last run ends minutes
ago, and then the clock runs in real time from the present, as `sandbox serve` always does.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bridge.config import load_config
from bridge.factory import build_adapters, policy_from_config
from bridge.ledger import Ledger, LinkRow
from bridge.ledger.tables import set_clock
from bridge.run.migrate import MigrationOptions, migration_run
from bridge.run.runner import RunResult, SyncRun
from bridge.run.state import RunOptions
from bridge.sandbox_pair import Sandbox
from bridge.vendors.registry import SIDES, SUPEROFFICE, ZENDESK

__all__ = ["SEED_HOLDER", "SeedResult", "seed_sandbox"]

SEED_HOLDER = "bridge-sandbox-seed"
#: agents acting in the simulators' UIs (ids only)
_SO_AGENT = 7
_ZD_AGENT = (4207, "Agent Ann")
_HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class SeedResult:
    config_path: Path
    links: int
    runs: list[tuple[str, str]]
    #: changes made since the last run, for the first `sync` to copy
    waiting: int


def _share(ids: list[int], start: int, fraction: float) -> tuple[list[int], int]:
    """At least one index from `start` on, about `fraction` of all; and where the next
    share starts."""
    size = max(1, round(len(ids) * fraction))
    return ids[start : start + size], start + size


def seed_sandbox(sandbox: Sandbox, folder: Path, links: int, seed: int = 7) -> SeedResult:
    """Write `folder/bridge.toml`, populate both simulators with `links` linked tickets
    and play their history through bridge into the folder's ledger (see the module)."""
    if links < 10:
        raise ValueError("a seeded sandbox needs at least 10 links")
    clock = sandbox.clock
    now = datetime.now(UTC)
    clock.set(now - timedelta(days=2))
    clock.freeze()
    set_clock(clock.now)
    try:
        config_path = sandbox.write_config(folder)
        config = load_config(config_path)
        with Ledger.open(config.ledger_url, sides=SIDES) as ledger:
            result = _play(sandbox, ledger, config_path, links, seed)
    finally:
        set_clock(None)
        clock.set(max(clock.now(), datetime.now(UTC)))
        clock.unfreeze()
    return result


def _play(sandbox: Sandbox, ledger: Ledger, config_path: Path, count: int, seed: int) -> SeedResult:
    so, zd, clock = sandbox.superoffice, sandbox.zendesk, sandbox.clock
    config = load_config(config_path)
    so_ids = so.seed_tickets(count, title="Sandbox request {n}")
    zd_ids = zd.seed_tickets(count=count, template={"subject": "Sandbox request {n}"})
    rows = [LinkRow(n + 1, s, z) for n, (s, z) in enumerate(zip(so_ids, zd_ids, strict=True))]
    assert ledger.import_links(rows, origin="csv").ok
    order = list(range(count))
    random.Random(seed).shuffle(order)
    at = 0

    def so_of(indexes: list[int]) -> list[int]:
        return [so_ids[i] for i in indexes]

    def zd_of(indexes: list[int]) -> list[int]:
        return [zd_ids[i] for i in indexes]

    def run(kind: str) -> RunResult:
        adapters = build_adapters(
            config, sleep=clock.sleep, clock=clock.now, monotonic=clock.timestamp
        )
        if kind == "migrate":
            options = MigrationOptions(SUPEROFFICE, ZENDESK, include_purges=True)
            return migration_run(
                ledger, adapters, options, holder=SEED_HOLDER, now=clock.now, sleep=clock.sleep
            ).execute()
        sync_options = RunOptions(
            policy=policy_from_config(config), max_purges_per_run=config.sync.max_purges_per_run
        )
        return SyncRun(
            ledger, adapters, sync_options, holder=SEED_HOLDER, now=clock.now, sleep=clock.sleep
        ).execute()

    history: list[tuple[str, str]] = []
    # before bridge: deletions in SuperOffice, one of them long gone by retention
    deleted, at = _share(order, at, 0.10)
    so.soft_delete(so_of(deleted), associate=_SO_AGENT)
    so.purge(so_of(deleted[:1]))
    clock.advance(_HOUR)
    history.append(("migrate", run("migrate").outcome))

    # a day of agents on both sides, then the scheduled sync
    clock.advance(20 * _HOUR)
    so_deleted, at = _share(order, at, 0.05)
    zd_deleted, at = _share(order, at, 0.05)
    so.soft_delete(so_of(so_deleted), associate=_SO_AGENT)
    zd.agent_act("delete", zd_of(zd_deleted), agent=_ZD_AGENT)
    zd.agent_act("restore", zd_of(deleted[1:2]), agent=_ZD_AGENT)
    clock.advance(_HOUR)
    history.append(("sync", run("sync").outcome))

    # a ticket restored in one system and purged in the other: a conflict for a person;
    # this last run is minutes old when the sandbox opens (`status` is not overdue)
    clock.set(max(clock.now() + timedelta(hours=1), datetime.now(UTC) - timedelta(minutes=10)))
    conflict = so_deleted[:1]
    so.restore(so_of(conflict), associate=_SO_AGENT)
    zd.agent_act("purge", zd_of(conflict), agent=_ZD_AGENT)
    zd.finish_jobs()
    clock.advance(_HOUR)
    history.append(("sync", run("sync").outcome))

    # since the last sync: more deletions and a restore, for the newcomer's first run
    clock.advance(_HOUR / 12)
    later_so, at = _share(order, at, 0.03)
    later_zd, at = _share(order, at, 0.02)
    so.soft_delete(so_of(later_so), associate=_SO_AGENT)
    zd.agent_act("delete", zd_of(later_zd), agent=_ZD_AGENT)
    so.restore(so_of(so_deleted[1:2]), associate=_SO_AGENT)
    zd.finish_jobs()
    waiting = len(later_so) + len(later_zd) + 1
    return SeedResult(config_path, count, history, waiting)
