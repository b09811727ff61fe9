"""Benchmark: `bridge migrate` SuperOffice → Zendesk against Enterprise limits, beside a naive
one-ticket-per-call script (goals: calls ≤ 1.1 x the minimum, simulated time ≤ 1.15 x the
floor, peak memory < 250 MB at 100,000).

Run: `.venv/bin/python bench/migrate.py [N ...]` (default: 10000 100000). Prints a markdown
table. Both simulators run in a child process (`_sandbox_process.py`) and bridge in this one,
so the peak-memory figure is bridge's alone. Time is a frozen simulated clock that waiting
advances (jobs, Retry-After, throttles; this process moves the child's clock), so simulated
time is what the run would take against a real account with these limits, and wall time is
only what this machine needed to simulate it.

The Zendesk simulator is set to Enterprise: 700 requests a minute (plus its per-endpoint
limits), 30 concurrent jobs, and jobs that queue 1 s then take 1.5 s + 0.1 s per ticket
(12.5 s for 100 ids; Zendesk publishes no figure: an assumption, see docs/sandbox.md).
"""

from __future__ import annotations

import gc
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _sandbox_process import RemoteClock, SandboxProcess
from _util import table

from bridge.collector import tune_collector
from bridge.config import load_config
from bridge.factory import build_adapters
from bridge.ledger import Ledger, LinkRow
from bridge.ledger.tables import set_clock
from bridge.logging import configure_logging
from bridge.run.migrate import MigrationOptions, migration_run
from bridge.sandbox import SimClock
from bridge.vendors.registry import SIDES, SUPEROFFICE, ZENDESK
from bridge.vendors.zendesk.sim.simulator import ZendeskSimulator

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PURGES = 1_000
PER_MINUTE = 700
JOB_LIMIT = 30
BATCH = 100
EXPORT_PAGE = 1000
EXPORT_PER_MINUTE = 10  # the incremental export's own limit
JOB_QUEUE, JOB_BASE, JOB_ITEM = 1.0, 1.5, 0.1
ENTERPRISE = {
    "plan": "enterprise",
    "rate_limits": True,
    "max_jobs": JOB_LIMIT,
    "job_queue_seconds": JOB_QUEUE,
    "job_base_seconds": JOB_BASE,
    "job_item_seconds": JOB_ITEM,
}
WRITE_ROUTES = ("DELETE tickets/destroy_many", "DELETE deleted_tickets/destroy_many")
POLL_ROUTES = ("GET job_statuses/show_many", "GET job_statuses/{id}")


@dataclass
class Measured:
    calls: int
    writes: int
    polls: int
    reads: int
    sim_seconds: float
    wall_seconds: float
    peak_mb: float | None
    outcome: str


def _rss_mb(field: str) -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def _reset_peak() -> None:
    """Linux: writing 5 to clear_refs resets VmHWM to the current RSS."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as out:
            out.write("5")
    except OSError:
        pass


def minimum(soft_deletes: int, purges: int, tickets: int) -> dict[str, int]:
    """The fewest Zendesk calls any correct tool needs: ⌈n/100⌉ bulk writes per transition
    (a ticket purged at the source is soft-deleted, then purged), one job poll per round of
    `JOB_LIMIT` jobs (show_many takes 100 job ids), one read of the account (export pages of
    1000), one confirming read of what changed, and a re-read before purging (⌈p/100⌉)."""
    writes = math.ceil((soft_deletes + purges) / BATCH) + math.ceil(purges / BATCH)
    polls = math.ceil(math.ceil((soft_deletes + purges) / BATCH) / JOB_LIMIT) + math.ceil(
        math.ceil(purges / BATCH) / JOB_LIMIT
    )
    reads = (
        math.ceil(tickets / EXPORT_PAGE)
        + math.ceil((soft_deletes + purges) / EXPORT_PAGE)
        + math.ceil(purges / BATCH)
    )
    return {"writes": writes, "polls": polls, "reads": reads, "calls": writes + polls + reads}


def floor_seconds(soft_deletes: int, purges: int, tickets: int, calls: int) -> float:
    """Simulated time no tool can beat: the largest of the account limit for the minimum
    calls, the export's own limit (10 pages a minute) for its minimum pages, and the job
    floor (rounds of `JOB_LIMIT` jobs of 100, soft deletes then their purges)."""
    job = JOB_QUEUE + JOB_BASE + JOB_ITEM * BATCH
    soft_rounds = math.ceil(math.ceil((soft_deletes + purges) / BATCH) / JOB_LIMIT)
    purge_rounds = math.ceil(math.ceil(purges / BATCH) / JOB_LIMIT)
    pages = math.ceil(tickets / EXPORT_PAGE) + math.ceil((soft_deletes + purges) / EXPORT_PAGE)
    return max(
        calls / PER_MINUTE * 60,
        pages / EXPORT_PER_MINUTE * 60,
        (soft_rounds + purge_rounds) * job,
    )


def run_bridge(soft_deletes: int, purges: int, folder: Path) -> Measured:
    """Migrate against simulators in a child process, so that the peak-RSS growth measured
    here is bridge's alone (the child holds the 2 x (n + purges) simulated tickets)."""
    with SandboxProcess(
        folder,
        start=START,
        zendesk_config=ENTERPRISE,
        soft_deletes=soft_deletes,
        purges=purges,
    ) as child:
        seeded = child.start()
        assert seeded.now == START, f"seeding moved the simulated clock: {seeded.now}"
        clock = RemoteClock(seeded.zendesk_admin, seeded.now)
        set_clock(clock.now)
        try:
            config = load_config(seeded.config_path)
            with Ledger.open(config.ledger_url, sides=SIDES) as ledger:
                pairs = zip(seeded.so_ids, seeded.zd_ids, strict=True)
                rows = (LinkRow(n, s, z) for n, (s, z) in enumerate(pairs, 1))
                assert ledger.import_links(rows, origin="csv").ok
                adapters = build_adapters(
                    config, sleep=clock.sleep, clock=clock.now, monotonic=clock.timestamp
                )
                child.reset_zendesk_counters()
                gc.collect()
                _reset_peak()
                before = _rss_mb("VmRSS")
                started, wall = clock.now(), time.perf_counter()
                result = migration_run(
                    ledger,
                    adapters,
                    MigrationOptions(SUPEROFFICE, ZENDESK, include_purges=True),
                    holder="bench",
                    now=clock.now,
                    sleep=clock.sleep,
                ).execute()
                wall = time.perf_counter() - wall
                sim = (clock.now() - started).total_seconds()
                peak = _rss_mb("VmHWM") - before
            # both simulators share the child's clock: each must have followed every sleep
            for admin in (seeded.zendesk_admin, seeded.superoffice_admin):
                assert clock.remote_now(admin) == clock.now(), f"{admin} missed a sleep"
            routes, states = child.zendesk_report()
        finally:
            clock.close()
            set_clock(None)
    routes = {k: v for k, v in routes.items() if v}
    assert states.get("deleted", 0) == soft_deletes, "not every soft delete arrived"
    assert states.get("purged", 0) == purges, "not every purge arrived"
    writes = sum(routes.get(r, 0) for r in WRITE_ROUTES)
    polls = sum(routes.get(r, 0) for r in POLL_ROUTES)
    calls = sum(routes.values())
    print(f"  bridge {soft_deletes:,}: Zendesk routes {routes}", file=sys.stderr)
    return Measured(calls, writes, polls, calls - writes - polls, sim, wall, peak, result.outcome)


def run_naive(soft_deletes: int, purges: int) -> Measured:
    """One `DELETE /api/v2/tickets/{id}` per ticket, then one `DELETE deleted_tickets/{id}`
    per purge, sleeping Retry-After on a 429: what a hand-written script does."""
    clock = SimClock(START, frozen=True)
    with ZendeskSimulator(clock=clock) as zd:
        zd.configure(ENTERPRISE)
        total = soft_deletes + purges
        ids = zd.seed_tickets(count=total, template={"subject": "Bench {n}"})
        zd.counters.reset()
        session = requests.Session()
        session.auth = (f"{zd.email}/token", "sandbox-token")
        started, wall = clock.now(), time.perf_counter()

        def call(path: str) -> None:
            while True:
                response = session.delete(f"{zd.base_url}/api/v2/{path}", timeout=30)
                if response.status_code != 429:
                    response.raise_for_status()
                    return
                clock.sleep(float(response.headers.get("Retry-After", "1")))

        for ticket_id in ids:
            call(f"tickets/{ticket_id}")
        for ticket_id in ids[soft_deletes:]:
            call(f"deleted_tickets/{ticket_id}")
        zd.finish_jobs()
        wall = time.perf_counter() - wall
        sim = (clock.now() - started).total_seconds()
        routes = {k: v for k, v in zd.counts()["routes"].items() if v}
        states = [zd.ticket_state(i) for i in ids]
        assert states.count("purged") == purges
        assert states.count("deleted") == soft_deletes
        calls = sum(routes.values())
        return Measured(calls, calls, 0, 0, sim, wall, None, "done")


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:,.1f} min"


def main(sizes: list[int]) -> None:
    configure_logging("json", "error")
    headers = [
        "soft deletes + purges",
        "run",
        "Zendesk calls (writes/polls/reads)",
        "minimum",
        "calls ÷ min (goal ≤ 1.1)",
        "simulated time",
        "floor",
        "time ÷ floor (goal ≤ 1.15)",
        "peak MB (goal < 250)",
        "wall s",
    ]
    rows: list[list[object]] = []
    for n in sizes:
        least = minimum(n, PURGES, n + PURGES)
        floor = floor_seconds(n, PURGES, n + PURGES, least["calls"])
        with tempfile.TemporaryDirectory() as folder:
            ours = run_bridge(n, PURGES, Path(folder))
        naive = run_naive(n, PURGES)
        label = f"{n:,} + {PURGES:,}"
        rows.append(
            [
                label,
                f"bridge migrate ({ours.outcome})",
                f"{ours.calls:,} ({ours.writes}/{ours.polls}/{ours.reads})",
                f"{least['calls']:,} ({least['writes']}/{least['polls']}/{least['reads']})",
                f"{ours.calls / least['calls']:.2f}",
                _minutes(ours.sim_seconds),
                _minutes(floor),
                f"{ours.sim_seconds / floor:.2f}",
                f"{ours.peak_mb:.0f}" if ours.peak_mb is not None else "-",
                f"{ours.wall_seconds:.1f}",
            ]
        )
        rows.append(
            [
                label,
                "naive: one DELETE per ticket",
                f"{naive.calls:,}",
                "",
                f"{naive.calls / least['calls']:.1f}",
                _minutes(naive.sim_seconds),
                "",
                f"{naive.sim_seconds / floor:.1f}",
                "-",
                f"{naive.wall_seconds:.1f}",
            ]
        )
        rows.append(
            [
                label,
                "naive ÷ bridge",
                f"{naive.calls / ours.calls:.1f}x the calls",
                "",
                "",
                f"{naive.sim_seconds / ours.sim_seconds:.1f}x the time",
                "",
                "",
                "",
                "",
            ]
        )
    print(table(headers, rows))
    print()
    print(
        "Minimum = ⌈n/100⌉ bulk writes per transition (a source purge is a soft delete then "
        "a purge) + one job poll per round of 30 jobs + one export read of the account and "
        "one of the changes (1000 a page) + one re-read per 100 purges. Floor = the largest of "
        "the minimum calls at 700/min, the minimum export pages at 10/min, and the job "
        "rounds (12.5 s per round of 30 jobs of 100; "
        "purges after their soft deletes). Peak MB: growth of this process's peak RSS during "
        "the migration; the simulators run in a child process."
    )


if __name__ == "__main__":
    tune_collector()  # as the command line runs it (bridge/collector.py)
    main([int(a) for a in sys.argv[1:]] or [10_000, 100_000])
