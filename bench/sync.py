"""Benchmark: `bridge sync` over 100,000 links against both simulators (rate limits ON).

Goals (issue 5): (a) a sync with no changes makes at most 10 API calls and takes < 5 s of
wall time; (b) 1,000 changes on each side cost at most 1.2 times the bulk minimum of calls.

Everything runs in this process on a frozen simulated clock: waits (Retry-After, job
polls, SuperOffice's 10 requests a second) advance simulated time, so wall time measures
bridge's own work and the simulators', never sleeping. Tickets are created over ~100
simulated minutes, as a real account's are, not all in one instant.

The sweep for vanished tickets (issue 12) is reported in a row of its own: its minimum is
two archive calls (both SuperOffice providers) and one `show_many` per 100 links swept.

Run: `.venv/bin/python bench/sync.py [LINKS] [CHANGES]`. Prints a markdown table.
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import peak_rss_mb, table

from bridge.collector import tune_collector
from bridge.config import load_config
from bridge.factory import build_adapters, policy_from_config
from bridge.ledger import Ledger, LinkRow
from bridge.ledger.tables import set_clock
from bridge.logging import configure_logging
from bridge.run.runner import RunResult, SyncRun
from bridge.run.state import RunOptions
from bridge.sandbox_pair import Sandbox
from bridge.vendors.registry import SIDES

BATCH = 100  # both vendors' bulk limit
SEED_CHUNKS = 100
RUN_GAP = 300.0  # simulated seconds between scheduled runs


class Bench:
    def __init__(self, sandbox: Sandbox, folder: Path) -> None:
        self.sandbox = sandbox
        self.clock = sandbox.clock
        self.config_path = sandbox.write_config(folder, max_purges_per_run="100000")
        self.config = load_config(self.config_path)
        self.ledger = Ledger.open(self.config.ledger_url, sides=SIDES)

    def seed(self, links: int) -> list[tuple[int, int]]:
        pairs: list[tuple[int, int]] = []
        size = math.ceil(links / SEED_CHUNKS)
        for start in range(0, links, size):
            count = min(size, links - start)
            so = self.sandbox.superoffice.seed_tickets(count, title="Ticket {n}")
            zd = self.sandbox.zendesk.seed_tickets(count=count)
            pairs.extend(zip(so, zd, strict=True))
            self.clock.advance(60)
        rows = (LinkRow(n, s, z) for n, (s, z) in enumerate(pairs, 1))
        assert self.ledger.import_links(rows, origin="csv").ok
        return pairs

    def sync(self) -> tuple[RunResult, Counter[str], float]:
        """One run; returns its result, the API calls per route and its wall time."""
        self.clock.advance(RUN_GAP)
        for sim in (self.sandbox.zendesk, self.sandbox.superoffice):
            sim.counters.reset()
        adapters = build_adapters(
            self.config,
            sleep=self.clock.sleep,
            clock=self.clock.now,
            monotonic=self.clock.timestamp,
        )
        options = RunOptions(
            policy=policy_from_config(self.config),
            max_purges_per_run=self.config.sync.max_purges_per_run,
        )
        run = SyncRun(
            self.ledger,
            adapters,
            options,
            holder="bench",
            now=self.clock.now,
            sleep=self.clock.sleep,
        )
        started = time.perf_counter()
        result = run.execute()
        elapsed = time.perf_counter() - started
        calls: Counter[str] = Counter()
        for side, sim in (
            ("zendesk", self.sandbox.zendesk),
            ("superoffice", self.sandbox.superoffice),
        ):
            for route, count in sim.counts()["routes"].items():
                calls[f"{side} {route}"] += count
        return result, calls, elapsed


def _writes(calls: Counter[str]) -> int:
    return sum(
        n
        for route, n in calls.items()
        if "destroy_many" in route or "restore_many" in route or "Agents/Ticket" in route
    )


def _polls(calls: Counter[str]) -> int:
    return sum(n for route, n in calls.items() if "job_statuses" in route)


def main(links: int, changes: int) -> None:
    configure_logging("json", "error")
    sandbox = Sandbox()
    sandbox.clock.set(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    sandbox.clock.freeze()
    set_clock(sandbox.clock.now)
    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory() as folder, sandbox:
        bench = Bench(sandbox, Path(folder))
        pairs = bench.seed(links)
        first, first_calls, first_s = bench.sync()
        assert first.outcome == "converged", first.outcome
        rows.append(
            [
                "first full sync",
                f"{links:,}",
                sum(first_calls.values()),
                "-",
                "-",
                f"{first_s:.1f}",
                "-",
            ]
        )

        idle, idle_calls, idle_s = bench.sync()
        assert idle.outcome == "converged", idle.outcome
        total = sum(idle_calls.values())
        met = total <= 10 and idle_s < 5
        rows.append(
            [
                "no changes",
                f"{links:,}",
                total,
                "≤ 10",
                "-",
                f"{idle_s:.2f}",
                "met" if met else "MISSED",
            ]
        )

        # (b) `changes` soft deletes in SuperOffice, as many in Zendesk on other links
        so_side = [s for s, _ in pairs[:changes]]
        zd_side = [z for _, z in pairs[changes : 2 * changes]]
        sandbox.superoffice.soft_delete(so_side)
        sandbox.zendesk.agent_act("delete", zd_side, agent=(7, "Ann"))
        busy, busy_calls, busy_s = bench.sync()
        assert busy.outcome == "converged", (busy.outcome, dict(busy.counts))
        jobs = math.ceil(changes / BATCH)  # Zendesk soft deletes run as jobs
        write_min = 2 * math.ceil(changes / BATCH)  # one target each, one transition each
        poll_min = math.ceil(jobs / BATCH)  # one show_many can poll all of them at once
        minimum = write_min + poll_min
        writes, polls = _writes(busy_calls), _polls(busy_calls)
        ratio = (writes + polls) / minimum
        rows.append(
            [
                f"{changes:,} changes each side: writes + job polls",
                f"{links:,}",
                writes + polls,
                minimum,
                f"{ratio:.2f}",
                f"{busy_s:.1f}",
                "met" if ratio <= 1.2 else "MISSED",
            ]
        )
        reads = sum(busy_calls.values()) - writes - polls
        rows.append(
            [
                f"{changes:,} changes each side: all calls (+ {reads} reads)",
                f"{links:,}",
                sum(busy_calls.values()),
                "-",
                "-",
                f"{busy_s:.1f}",
                "-",
            ]
        )
        # the vanished-ticket sweep, reported apart: a day later every link is due, and
        # one run checks sync.sweep_max_per_run of them per side with bulk reads
        bench.clock.advance(25 * 3600)
        swept, sweep_calls, sweep_s = bench.sync()
        assert swept.outcome == "converged", (swept.outcome, dict(swept.counts))
        per_side = min(links, bench.config.sync.sweep_max_per_run)
        sweep_min = 2 * math.ceil(per_side / BATCH) + math.ceil(per_side / BATCH)
        sweep_total = sum(sweep_calls.values())
        rows.append(
            [
                f"sweep a day later ({per_side:,} links each side; + reads)",
                f"{links:,}",
                sweep_total,
                sweep_min,
                f"{sweep_total / sweep_min:.2f}",
                f"{sweep_s:.1f}",
                "-",
            ]
        )
        ledger = bench.ledger
        ledger.close()
    set_clock(None)
    print(
        table(
            ["run", "links", "calls made", "minimum", "ratio", "wall s", "goal"],
            rows,
        )
    )
    print()
    print(f"peak memory (this process, simulators included): {peak_rss_mb():.0f} MB")
    print()
    print("calls per route, 1,000 changes each side:")
    for route, count in sorted(busy_calls.items()):
        print(f"  {route}: {count}")
    print("calls per route, no changes:")
    for route, count in sorted(idle_calls.items()):
        print(f"  {route}: {count}")


if __name__ == "__main__":
    tune_collector()  # as the command line runs it (bridge/collector.py)
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 100_000,
        int(sys.argv[2]) if len(sys.argv) > 2 else 1_000,
    )
