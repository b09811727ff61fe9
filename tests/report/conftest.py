"""A ledger filled by real syncs against both simulators (frozen simulated clock), and a
synthetic ledger with exact times for the cases a sandbox cannot pin down: each on both
ledger backends (SQLite and PostgreSQL, tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import main
from bridge.config import load_config
from bridge.factory import build_adapters, policy_from_config
from bridge.ledger import Ledger, LinkRow
from bridge.ledger.tables import set_clock
from bridge.run.runner import RunResult, SyncRun
from bridge.run.state import RunOptions
from bridge.sandbox import SimClock
from bridge.sandbox_pair import Sandbox
from bridge.vendors.registry import SIDES

DAY = 86_400.0
#: the ledger line of the configs `bridge init` and the sandbox write
SQLITE_LEDGER_LINE = 'url = "sqlite:///bridge.db"\n'
#: seeded subjects and titles: they must never reach a report
SUBJECT = "Confidential subject {n} about Jane Roe"


@dataclass
class Synced:
    """The sandbox, its config and the ledger after a scripted history of syncs."""

    sandbox: Sandbox
    config_path: Path
    ledger: Ledger
    pairs: list[tuple[int, int]]

    @property
    def clock(self) -> SimClock:
        return self.sandbox.clock


def point_config_at(config_path: Path, ledger_url: str) -> None:
    """Change the config's `[ledger] url` from its own SQLite file to `ledger_url`, as a
    user would."""
    text = config_path.read_text(encoding="utf-8")
    assert SQLITE_LEDGER_LINE in text, "the written config's ledger line changed"
    text = text.replace(SQLITE_LEDGER_LINE, f'url = "{ledger_url}"\n')
    config_path.write_text(text, encoding="utf-8")


def _sync(sandbox: Sandbox, config_path: Path, ledger: Ledger) -> RunResult:
    config = load_config(config_path)
    clock = sandbox.clock
    adapters = build_adapters(config, sleep=clock.sleep, clock=clock.now, monotonic=clock.timestamp)
    options = RunOptions(
        policy=policy_from_config(config), max_purges_per_run=config.sync.max_purges_per_run
    )
    run = SyncRun(ledger, adapters, options, holder="test", now=clock.now, sleep=clock.sleep)
    return run.execute()


@pytest.fixture(scope="module")
def synced(
    tmp_path_factory: pytest.TempPathFactory, module_ledger_url: str | None
) -> Iterator[Synced]:
    """History (z = Zendesk agent, s = SuperOffice associate), pairs 0..6:

    day 0   first sync (all active)
    +1 min  z deletes 0, 1 and 5; s deletes 2 and 5               → copies confirmed
    +1 h    z restores 0; z purges 1; s deletes 3; z hard-deletes 4;
            s restores 5 while z purges 5 (a conflict)             → 1's and 4's purges pending
    +15 d   SuperOffice retention removes 1, 2, 3 and 4              → pending purges verified,
            retention purges of 2 and 3 not copied (policy), the conflict still open
    """
    folder = tmp_path_factory.mktemp("report-sandbox")
    clock = SimClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC), frozen=True)
    sandbox = Sandbox(clock=clock).start()
    set_clock(clock.now)
    try:
        sandbox.relax_limits()
        config_path = sandbox.write_config(folder)
        if module_ledger_url is not None:
            point_config_at(config_path, module_ledger_url)
        config = load_config(config_path)
        ledger = Ledger.open(config.ledger_url, sides=SIDES)
        zd = sandbox.zendesk.seed_tickets(count=7, template={"subject": SUBJECT})
        so = sandbox.superoffice.seed_tickets(7, title=SUBJECT)
        pairs = list(zip(so, zd, strict=True))
        rows = [LinkRow(n, s, z) for n, (s, z) in enumerate(pairs, 1)]
        assert ledger.import_links(rows, origin="csv").ok

        def sync() -> RunResult:
            return _sync(sandbox, config_path, ledger)

        sync()
        clock.advance(60)
        sandbox.zendesk.agent_act("delete", [zd[0], zd[1], zd[5]], agent=(4242, "Ann"))
        sandbox.superoffice.soft_delete([so[2], so[5]], associate=77)
        clock.advance(30)
        assert sync().outcome == "converged"
        clock.advance(3600)
        sandbox.zendesk.agent_act("restore", [zd[0]], agent=(4242, "Ann"))
        sandbox.zendesk.agent_act("purge", [zd[1], zd[4]], agent=(4242, "Ann"))
        sandbox.superoffice.soft_delete([so[3]], associate=77)
        sandbox.superoffice.restore([so[5]], associate=77)
        sandbox.zendesk.agent_act("purge", [zd[5]], agent=(4242, "Ann"))
        clock.advance(45)
        assert sync().outcome == "attention"
        clock.advance(15 * DAY)
        sync()
        yield Synced(sandbox, config_path, ledger, pairs)
        ledger.close()
    finally:
        set_clock(None)
        sandbox.stop()


T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def synthetic(ledger_url: str) -> Iterator[Ledger]:
    """A ledger written directly, with exact times (see `fill_synthetic`), on each backend
    (tests/conftest.py)."""
    with Ledger.open(ledger_url, sides=SIDES) as ledger:
        fill_synthetic(ledger)
        yield ledger


def fill_synthetic(ledger: Ledger) -> None:
    """Write a small history with exact times.

    link 1: z soft-deletes at T0 (vendor), seen +1 min, copy confirmed at +3 min
    link 2: s soft-deletes at +10, seen +12, copy confirmed at +20
    link 3: z purges (active→purged) at +30, seen +31; soft delete confirmed at +33, purge
            pending retention until +14 d (never confirmed)
    link 4: z soft-deletes at +40, seen +41: copy failed at +42
    link 5: a conflict at +50, resolved on day 2 (+1500 min)
    link 6: z purges at +60, seen +61: purge held by the cap at +62
    """
    ledger.bulk_append(
        "run",
        [
            {
                "id": 1,
                "kind": "sync",
                "holder": "t",
                "started_at": at(0),
                "ended_at": at(70),
                "outcome": "attention",
                "counts": "{}",
            }
        ],
    )
    ledger.bulk_append(
        "link",
        [
            {
                "id": i,
                "first_id": 100 + i,
                "second_id": 200 + i,
                "origin": "csv",
                "created_at": at(-60),
            }
            for i in range(1, 7)
        ],
    )
    ledger.bulk_append(
        "pair_state",
        [
            {"link_id": i, "base_version": 0, "pending_decision": False, "updated_at": at(0)}
            for i in range(1, 7)
        ],
    )

    def ev(id_: int, minute: float, kind: str, link: int, **more: object) -> dict[str, object]:
        return {"id": id_, "at": at(minute), "run_id": 1, "link_id": link, "kind": kind, **more}

    def obs(
        id_: int,
        minute: float,
        link: int,
        side: str,
        transition: str,
        vendor: float,
        frm: str,
        to: str,
    ) -> dict[str, object]:
        ticket = (100 if side == "superoffice" else 200) + link
        return ev(
            id_,
            minute,
            "observed",
            link,
            side=side,
            ticket_id=ticket,
            transition=transition,
            from_state=frm,
            to_state=to,
            cause="user",
            actor_id=9,
            vendor_time=at(vendor),
        )

    def conf(
        id_: int,
        minute: float,
        link: int,
        side: str,
        transition: str,
        op: int,
        frm: str,
        to: str,
    ) -> dict[str, object]:
        ticket = (100 if side == "superoffice" else 200) + link
        return ev(
            id_,
            minute,
            "confirmed",
            link,
            side=side,
            ticket_id=ticket,
            transition=transition,
            from_state=frm,
            to_state=to,
            cause="bridge",
            operation_id=op,
        )

    events = [
        obs(1, 1, 1, "zendesk", "soft_delete", 0, "active", "soft_deleted"),
        ev(2, 1, "planned", 1, side="superoffice", transition="soft_delete", operation_id=1),
        conf(3, 3, 1, "superoffice", "soft_delete", 1, "active", "soft_deleted"),
        obs(4, 12, 2, "superoffice", "soft_delete", 10, "active", "soft_deleted"),
        ev(5, 12, "planned", 2, side="zendesk", transition="soft_delete", operation_id=2),
        conf(6, 20, 2, "zendesk", "soft_delete", 2, "active", "soft_deleted"),
        obs(7, 31, 3, "zendesk", "soft_delete+purge", 30, "active", "purged"),
        conf(8, 33, 3, "superoffice", "soft_delete", 3, "active", "soft_deleted"),
        ev(
            9,
            34,
            "pending_retention",
            3,
            side="superoffice",
            transition="purge",
            operation_id=4,
            detail="until x",
        ),
        obs(10, 41, 4, "zendesk", "soft_delete", 40, "active", "soft_deleted"),
        ev(
            11,
            42,
            "failed",
            4,
            side="superoffice",
            transition="soft_delete",
            operation_id=5,
            detail="403 no right",
        ),
        ev(12, 50, "conflict", 5, detail="both changed"),
        obs(13, 61, 6, "zendesk", "purge", 60, "soft_deleted", "purged"),
        ev(
            14,
            62,
            "held",
            6,
            side="superoffice",
            transition="purge",
            operation_id=6,
            detail="cap",
        ),
        ev(15, 1500, "resolved", 5, detail="by hand"),
    ]
    ledger.bulk_append("event", events)

    def op(
        id_: int,
        link: int,
        target: str,
        transition: str,
        step: int,
        status: str,
        source: int,
        finished: float | None = None,
        **more: object,
    ) -> dict[str, object]:
        ticket = (100 if target == "superoffice" else 200) + link
        return {
            "id": id_,
            "key": f"{link}:{target}:{transition}:0",
            "link_id": link,
            "target": target,
            "ticket_id": ticket,
            "transition": transition,
            "step": step,
            "base_version": 0,
            "cause": "user",
            "source_event_id": source,
            "status": status,
            "run_id": 1,
            "finished_at": at(finished) if finished is not None else None,
            "created_at": at(0),
            "updated_at": at(0),
            **more,
        }

    ledger.bulk_append(
        "operation",
        [
            op(1, 1, "superoffice", "soft_delete", 0, "confirmed", 1, 3),
            op(2, 2, "zendesk", "soft_delete", 0, "confirmed", 4, 20),
            op(3, 3, "superoffice", "soft_delete", 0, "confirmed", 7, 33),
            op(
                4,
                3,
                "superoffice",
                "purge",
                1,
                "pending_retention",
                7,
                pending_until=at(14 * 1440 + 33),
            ),
            op(5, 4, "superoffice", "soft_delete", 0, "failed", 10, 42, error="403 no right"),
            op(6, 6, "superoffice", "purge", 0, "held", 13),
        ],
    )


@pytest.fixture
def home(tmp_path: Path, ledger_url: str) -> Path:
    """A folder with a config and an empty ledger (`bridge init`), on each backend: on
    SQLite the config's own file, on PostgreSQL `ledger_url` (its schema made as `init`
    makes the SQLite one)."""
    folder = tmp_path / "b"
    result = CliRunner().invoke(main, ["init", "--dir", str(folder)])
    assert result.exit_code == 0, result.output
    if not ledger_url.startswith("sqlite"):
        point_config_at(folder / "bridge.toml", ledger_url)
        Ledger.open(ledger_url, sides=SIDES).close()
    return folder


@pytest.fixture
def filled(home: Path) -> Path:
    """`home` with the synthetic history in its ledger."""
    with Ledger.open(load_config(home / "bridge.toml").ledger_url, sides=SIDES) as ledger:
        fill_synthetic(ledger)
    return home


def run(home: Path, *args: str) -> tuple[int, str, str]:
    """`bridge --config HOME/bridge.toml report ARGS`: exit code, stdout, stderr."""
    result = CliRunner().invoke(main, ["--config", str(home / "bridge.toml"), "report", *args])
    return result.exit_code, result.stdout, result.stderr
