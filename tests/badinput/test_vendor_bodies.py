"""Vendor answers that cannot be believed: `bridge sync` must exit 5 and decide nothing.

README, exit code 5: "a vendor could not be read or refused us: for `sync` and `migrate`,
nothing was decided or written and the unreadable side's cursor stayed"; `bridge/adapters/
wire.py`: "A body that does not fit is a failed read ... naming the endpoint". So for a
malformed 200, a wrong-shaped body, a repeating cursor, a 503 without end or a 401 on
every read of one side, each case expects exit 5, the endpoint named on stderr (in the
`Error:` line or the log), no write request to either simulator, the broken side's cursor
where it was, and nothing in the ledger but the run's own record (its `run` row, its lease
and its `run_started`/`run_finished` events) and what the readable side's change stream
showed (facts, which the run may record; no decision is taken on them).

Before each case a ticket changes on each side (a soft delete in SuperOffice, a deletion
by an agent in Zendesk), so that a run that wrongly believes the broken side has changes
of the other side to decide and copy.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql
from sqlalchemy import make_url

from tests.badinput.conftest import (
    Dump,
    Expect,
    Verdict,
    World,
    ids,
    ledger_dump,
    run_bridge,
    sandbox_world,
    unique_ids,
)
from tests.postgres.cluster import Cluster

EXPORT = "GET incremental/tickets/cursor"
ARCHIVE = "GET Archive/{provider}"
#: the run's own record: what a run that reads nothing may still write
RUN_TABLES = frozenset({"run", "lease"})
RUN_EVENTS = frozenset({"run_started", "run_finished"})
#: two links change before each case
LINKS = 64


@dataclass(frozen=True)
class VendorCase:
    id: str
    #: the simulator that answers badly, and the fault rules it gets (`add_fault` fields)
    side: str
    faults: tuple[dict[str, Any], ...]
    #: what stderr must name: the endpoint that could not be read
    endpoint: str


def zendesk(case_id: str, **fault: Any) -> VendorCase:
    fault.setdefault("route", EXPORT)
    return VendorCase(f"zendesk-{case_id}", "zendesk", (fault,), "incremental/tickets/cursor")


def zendesk_body(case_id: str, body: Any) -> VendorCase:
    return zendesk(case_id, kind="status", status=200, body=body)


def superoffice(case_id: str, **fault: Any) -> VendorCase:
    if "path" not in fault:
        fault.setdefault("route", ARCHIVE)
    return VendorCase(f"superoffice-{case_id}", "superoffice", (fault,), "Archive")


def superoffice_rows(case_id: str, rows: Any) -> VendorCase:
    return superoffice(case_id, kind="status", status=200, body={"value": rows})


def _page(*tickets: Any, end: Any = True, after: Any = None) -> dict[str, Any]:
    return {"tickets": list(tickets), "after_cursor": after, "end_of_stream": end}


WHEN = "2026-01-01T00:00:00Z"

CASES = unique_ids(
    [
        # --- the Zendesk incremental export ---------------------------------------------
        zendesk("malformed-200", kind="malformed", count=1000),
        zendesk_body("tickets-is-a-string", {"tickets": "x"}),
        zendesk_body("ticket-id-is-a-string", {"tickets": [{"id": "7"}]}),
        zendesk_body("no-end-of-stream", {"tickets": [], "after_cursor": None}),
        zendesk_body("cursor-repeats", _page(end=False, after="c2FtZQ==")),
        zendesk_body("body-is-a-list", []),
        zendesk_body("body-is-an-empty-object", {}),
        zendesk_body("ticket-id-is-a-boolean", _page({"id": True, "status": "open"})),
        zendesk_body("ticket-id-negative", _page({"id": -5, "status": "open"})),
        zendesk_body("ticket-id-beyond-64-bit", _page({"id": 10**30, "status": "deleted"})),
        zendesk_body("ticket-status-unknown", _page({"id": 1, "status": "exploded"})),
        zendesk_body("ticket-is-null", _page(None)),
        zendesk("503-on-every-read", kind="status", status=503, retry_after=0),
        zendesk("401-on-every-read", kind="status", status=401),
        # --- the SuperOffice archive providers ------------------------------------------
        superoffice("malformed-200", kind="malformed", count=1000),
        superoffice("value-is-a-string", kind="status", status=200, body={"value": "x"}),
        superoffice("body-is-a-list", kind="status", status=200, body=[]),
        superoffice_rows(
            "row-id-not-a-number", [{"ticketId": "abc", "status": "Active", "lastChanged": WHEN}]
        ),
        superoffice_rows(
            "row-status-unknown", [{"ticketId": 1, "status": "Exploded", "lastChanged": WHEN}]
        ),
        superoffice_rows("rows-not-objects", [None, 5, "x"]),
        superoffice_rows(
            "row-date-unreadable", [{"ticketId": 1, "status": "Active", "lastChanged": "soon"}]
        ),
        superoffice(
            "recycle-bin-malformed", kind="malformed", path="(?i)archive/recycleticket", count=1000
        ),
        superoffice("401-on-every-read", kind="status", status=401),
    ]
)


@dataclass(frozen=True)
class Baseline:
    """The world after one clean sync, and a copy of its ledger to start each case from
    (a case that moves a cursor to nowhere must not break the cases after it)."""

    world: World
    pairs: list[tuple[int, int]]
    #: the ledger's URL
    ledger: str
    #: puts the copy back in the ledger's place
    restore: Callable[[], None]


@pytest.fixture(scope="module")
def baseline(
    tmp_path_factory: pytest.TempPathFactory,
    module_ledger_url: str | None,
    request: pytest.FixtureRequest,
) -> Iterator[Baseline]:
    """Linked pairs that both sides and the ledger agree on, after one clean sync (on
    each backend in turn)."""
    folder = tmp_path_factory.mktemp("vendor")
    with sandbox_world(folder / "bridge", ledger_url=module_ledger_url) as world:
        pairs = world.link(LINKS)
        first = run_bridge(world.config_path, "sync", cwd=world.folder, timeout=120)
        assert first.code == 0, first.shown()
        world.close()  # from here on only the child processes open the ledger
        url = world.config().ledger_url
        if module_ledger_url is None:
            yield Baseline(world, pairs, url, _sqlite_copy(world.folder / "bridge.db", folder))
            return
        cluster: Cluster = request.getfixturevalue("pg_cluster")
        name = make_url(url).database
        assert name
        copy = f"{name}_baseline"
        with cluster.admin() as admin:
            admin.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(copy), sql.Identifier(name)
                )
            )

        def restore() -> None:
            cluster.drop_database(name)
            with cluster.admin() as admin:
                admin.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                        sql.Identifier(name), sql.Identifier(copy)
                    )
                )

        try:
            yield Baseline(world, pairs, url, restore)
        finally:
            cluster.drop_database(copy)


def _sqlite_copy(ledger: Path, folder: Path) -> Callable[[], None]:
    """A copy of the SQLite ledger (checkpointed first), and what puts it back."""
    copy = folder / "baseline.db"
    connection = sqlite3.connect(ledger)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    shutil.copyfile(ledger, copy)

    def restore() -> None:
        for sidecar in ("-wal", "-shm"):
            Path(f"{ledger}{sidecar}").unlink(missing_ok=True)
        shutil.copyfile(copy, ledger)

    return restore


def _cursors(dump: Dump) -> dict[str, str]:
    return {row[0]: row[1] for row in dump.get("cursor", [])}


def _beyond_the_run(dump: Dump, readable: str) -> Dump:
    """The dump without the run's own record, without the cursors (checked apart) and
    without what the readable side's change stream showed: its observations are facts
    the run may record (docs/design.md, "A failed read decides nothing"). What is left must
    not change: no decision, no base, no operation, nothing about the unreadable side."""
    columns = dict(dump["(columns)"])
    kind, side = columns["event"].index("kind"), columns["event"].index("side")
    kept = {
        table: rows
        for table, rows in dump.items()
        if table not in RUN_TABLES and table not in ("cursor", "(columns)")
    }
    kept["event"] = [
        row
        for row in dump["event"]
        if row[kind] not in RUN_EVENTS
        and not (row[kind] in ("observed", "first_seen") and row[side] == readable)
    ]
    prefix = "first_" if readable == "superoffice" else "second_"
    pair_columns = columns["pair_state"]
    shown = [
        i
        for i, name in enumerate(pair_columns)
        if not name.startswith(prefix) and name not in ("pending_decision", "updated_at")
    ]
    kept["pair_state"] = [tuple(row[i] for i in shown) for row in dump["pair_state"]]
    return kept


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_unreadable_vendor_changes_nothing(
    baseline: Baseline, case: VendorCase, tmp_path: Path
) -> None:
    world, pairs = baseline.world, baseline.pairs
    baseline.restore()
    n = CASES.index(case)
    so_changed, zd_changed = pairs[2 * n][0], pairs[2 * n + 1][1]
    world.so.soft_delete([so_changed])
    world.zd.agent_act("delete", [zd_changed], agent=(7, "Ann"))
    before = ledger_dump(baseline.ledger)
    world.reset_counters()
    sim = world.zd if case.side == "zendesk" else world.so
    for fault in case.faults:
        sim.add_fault(**fault)
    try:
        outcome = run_bridge(world.config_path, "sync", cwd=tmp_path, timeout=90)
    finally:
        sim.clear_faults()
    after = ledger_dump(baseline.ledger)
    verdict = Verdict(outcome, Expect(code=5, words=(case.endpoint,)))
    verdict.exit_code()
    verdict.message()
    if case.endpoint.lower() not in outcome.stderr.lower():
        verdict.add("endpoint", f"stderr (message and log) does not name {case.endpoint!r}")
    verdict.no_writes(world.sandbox)
    old, new = _cursors(before), _cursors(after)
    if old.get(case.side) != new.get(case.side):
        verdict.add(
            "cursor",
            f"the broken side's ({case.side}) cursor moved: "
            f"{old.get(case.side)} -> {new.get(case.side)}",
        )
    readable = "superoffice" if case.side == "zendesk" else "zendesk"
    verdict.same_dump(
        _beyond_the_run(before, readable),
        _beyond_the_run(after, readable),
        what="the run decided, or recorded something of the broken side",
    )
    verdict.conclude(
        f"changed before the run: superoffice ticket {so_changed} soft-deleted, "
        f"zendesk ticket {zd_changed} deleted by an agent",
        f"faults on {case.side}: {list(case.faults)}",
        promise=(
            "no writes, no decision, the broken side's cursor where it was; only the "
            "readable side's observations recorded"
        ),
    )
