"""Benchmark: PostgreSQL's wall time against SQLite's, measured side by side in time (issue 18).

`large_tenant.py --backends sqlite,postgresql` measures each backend in a process of its
own, one after the other: on a shared machine whose speed drifts by half within minutes,
its ratio moved between 1.05 and 1.55 for the same code. Here both ledgers follow one
sandbox in one process, so that whatever the machine does falls on both alike:

* each **round** seeds N tickets a side and imports the same N links into a SQLite ledger
  and a PostgreSQL one (a fresh database), then runs the **first full sync** of each, the
  two in turn (which goes first alternates from round to round);
* then **idle syncs** (no change on either side), `--idle` of each, alternating one by one
  (the order swapped each time), and keeps each ledger's median.

PostgreSQL runs on a throwaway cluster with the server's durable defaults, as in
`large_tenant.py`. The table gives each round's figures and the median ratio over the
rounds against issue 18's targets (first sync within 1.3 times, no-change sync within 1.5 times).

    .venv/bin/python bench/paired_backends.py 100000 --rounds 3 --idle 30
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _util import table
from large_tenant import Bench, Sandbox, configure_logging, set_clock

from bridge.ledger import LinkRow
from tests.postgres.cluster import Cluster, ClusterUnavailableError

#: issue 18's targets: PostgreSQL's wall time ÷ SQLite's
TARGETS = {"first full sync": 1.3, "no changes": 1.5}


@dataclass
class Round:
    first_sqlite: float
    first_postgresql: float
    idle_sqlite: float
    idle_postgresql: float
    postgresql_first: bool


def one_round(links: int, idle: int, cluster: Cluster, *, postgresql_first: bool) -> Round:
    """Seed one sandbox, follow it with both ledgers; the walls in seconds."""
    database = cluster.create_database()
    sandbox = Sandbox()
    sandbox.clock.freeze()
    sandbox.clock.set(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    set_clock(sandbox.clock.now)
    try:
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b, sandbox:
            sandbox.relax_limits()
            sqlite = Bench(sandbox, Path(a), profile=None)
            postgresql = Bench(sandbox, Path(b), profile=None, ledger_url=cluster.url(database))
            pairs = sqlite.seed(links)
            rows = (LinkRow(n, s, z) for n, (s, z) in enumerate(pairs, 1))
            assert postgresql.ledger.import_links(rows, origin="csv").ok
            order = [postgresql, sqlite] if postgresql_first else [sqlite, postgresql]
            first: dict[int, float] = {}
            for bench in order:
                first[id(bench)] = _sync(bench, "first full sync")
            walls: dict[int, list[float]] = {id(sqlite): [], id(postgresql): []}
            for n in range(idle):
                for bench in order if n % 2 == 0 else order[::-1]:
                    walls[id(bench)].append(_sync(bench, "no changes"))
            sqlite.ledger.close()
            postgresql.ledger.close()
    finally:
        set_clock(None)
        cluster.drop_database(database)
    return Round(
        first[id(sqlite)],
        first[id(postgresql)],
        statistics.median(walls[id(sqlite)]),
        statistics.median(walls[id(postgresql)]),
        postgresql_first,
    )


def _sync(bench: Bench, phase: str) -> float:
    result, figures = bench.sync(phase)
    assert result.outcome == "converged", (phase, result.outcome, dict(result.counts))
    return figures.wall


def report(links: int, rounds: list[Round]) -> str:
    rows = [
        [
            n,
            "PostgreSQL" if r.postgresql_first else "SQLite",
            f"{r.first_sqlite:.3f}",
            f"{r.first_postgresql:.3f}",
            f"{r.first_postgresql / r.first_sqlite:.2f}",
            f"{r.idle_sqlite * 1000:.1f}",
            f"{r.idle_postgresql * 1000:.1f}",
            f"{r.idle_postgresql / r.idle_sqlite:.2f}",
        ]
        for n, r in enumerate(rounds, 1)
    ]
    headers = [
        "round",
        "first sync first",
        "first sync s SQLite",
        "PostgreSQL",
        "ratio",
        "idle ms SQLite (median)",
        "PostgreSQL",
        "ratio",
    ]
    ratios = {
        "first full sync": statistics.median(r.first_postgresql / r.first_sqlite for r in rounds),
        "no changes": statistics.median(r.idle_postgresql / r.idle_sqlite for r in rounds),
    }
    verdicts = [
        [phase, f"{links:,}", f"{ratio:.2f}", f"≤ {TARGETS[phase]}", _verdict(ratio, phase)]
        for phase, ratio in ratios.items()
    ]
    return "\n".join(
        [
            f"SQLite and PostgreSQL following one sandbox of {links:,} links, side by side:",
            "",
            table(headers, rows),
            "",
            "PostgreSQL's wall time ÷ SQLite's, median over the rounds (issue 18):",
            "",
            table(["run", "links", "wall ratio", "target", "verdict"], verdicts),
        ]
    )


def _verdict(ratio: float, phase: str) -> str:
    return "met" if ratio <= TARGETS[phase] else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("links", nargs="?", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3, help="fresh sandboxes (default 3)")
    parser.add_argument(
        "--idle", type=int, default=30, help="idle syncs of each ledger a round (default 30)"
    )
    args = parser.parse_args()
    configure_logging("json", "error")
    try:
        cluster = Cluster().start(durable=True)
    except ClusterUnavailableError as exc:
        sys.exit(str(exc))
    os.environ["PGPASSWORD"] = cluster.password  # libpq's own way: never in the URL
    try:
        rounds = [
            one_round(args.links, args.idle, cluster, postgresql_first=n % 2 == 1)
            for n in range(args.rounds)
        ]
    finally:
        cluster.stop()
    print(report(args.links, rounds))


if __name__ == "__main__":
    main()
