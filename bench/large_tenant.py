"""Benchmark: a large tenant's first full sync, and the runs after it (issue 16).

For each size N given on the command line: seed N tickets on each simulator (created over
about 100 simulated minutes, as a real account's are), import the N links into the ledger,
switch the sandbox's rate limits off (`--limits` keeps them), and time, in this order:

* the **first full sync** (every link observed for the first time),
* a **no-change sync**,
* **1,000 changes each side** (`--changes`; soft deletes on one side's links, as many on
  the other side's),
* the **sweep** a day later (every link due; `sync.sweep_max_per_run` per side).

Everything runs in one process per size (bridge and both simulators, on a frozen simulated
clock, as `bench/sync.py` does), so the peak RSS covers the simulators too; it is taken per
run (the peak is reset before each), beside the RSS the process had before the run. Time is
split three ways: the ledger's own (time spent inside `Ledger` methods, wall and CPU), the
rest of bridge (the main thread's CPU outside the ledger: adapters, HTTP client, decisions)
and the simulators (CPU of every other thread: their HTTP servers). `stmts` counts the SQL
statements the ledger sent (an executemany counts once): a set-based ledger sends a few
per batch, not a few per link.

`--same-second` seeds every ticket of both sides in one second (a bulk import, a migration, a
mass delete): the change streams then hold N rows sharing one timestamp.

Run: `.venv/bin/python bench/large_tenant.py [N ...] [--changes C] [--limits] [--same-second]
[--profile DIR]`
(default N: 100000; the CI smoke size is 2000). Each N runs in a child process of its own;
the table ends with the growth exponent of each run's wall time and ledger CPU between
consecutive sizes. `--profile DIR` writes a cProfile of each run's main thread to DIR.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import inspect
import json
import math
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import itertools

from _util import exponent, python, reset_peak_rss, rss_mb, table, window_peak_rss_mb
from sqlalchemy import event

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
PHASES = ("first full sync", "no changes", "changes each side", "sweep a day later")


class LedgerMeter:
    """Time spent inside the ledger's public methods (outermost calls only), and the SQL
    statements its engine sent."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0
        self.statements = 0
        self._depth = 0

    def reset(self) -> None:
        self.wall = self.cpu = 0.0
        self.statements = 0

    def install(self, ledger: Ledger) -> None:
        for name, method in inspect.getmembers(type(ledger), inspect.isfunction):
            if name.startswith("_") or name == "session" or inspect.isgeneratorfunction(method):
                continue
            setattr(ledger, name, self._timed(getattr(ledger, name)))

        @event.listens_for(ledger.engine, "before_cursor_execute")
        def _count(*_args: Any) -> None:
            self.statements += 1

    def _timed(self, bound: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(bound)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if self._depth or threading.current_thread() is not threading.main_thread():
                return bound(*args, **kwargs)
            self._depth += 1
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return bound(*args, **kwargs)
            finally:
                self.wall += time.perf_counter() - wall
                self.cpu += time.thread_time() - cpu
                self._depth -= 1

        return timed


@dataclass
class Figures:
    """One run's measurements."""

    phase: str
    calls: int = 0
    wall: float = 0.0
    ledger_wall: float = 0.0
    ledger_cpu: float = 0.0
    bridge_cpu: float = 0.0  # main thread outside the ledger
    sim_cpu: float = 0.0  # every other thread
    statements: int = 0
    rss_before: float = 0.0
    peak_rss: float = 0.0
    outcome: str = ""
    routes: dict[str, int] = field(default_factory=dict)


class Bench:
    def __init__(self, sandbox: Sandbox, folder: Path, *, profile: Path | None) -> None:
        self.sandbox = sandbox
        self.clock = sandbox.clock
        self.config_path = sandbox.write_config(folder, max_purges_per_run="10000000")
        self.config = load_config(self.config_path)
        self.ledger = Ledger.open(self.config.ledger_url, sides=SIDES)
        self.meter = LedgerMeter()
        self.meter.install(self.ledger)
        self.profile = profile

    def seed(self, links: int, *, same_second: bool = False) -> list[tuple[int, int]]:
        pairs: list[tuple[int, int]] = []
        size = math.ceil(links / SEED_CHUNKS)
        for start in range(0, links, size):
            count = min(size, links - start)
            so = self.sandbox.superoffice.seed_tickets(count, title="Ticket {n}")
            zd = self.sandbox.zendesk.seed_tickets(count=count)
            pairs.extend(zip(so, zd, strict=True))
            if not same_second:
                self.clock.advance(60)
        rows = (LinkRow(n, s, z) for n, (s, z) in enumerate(pairs, 1))
        assert self.ledger.import_links(rows, origin="csv").ok
        return pairs

    def sync(self, phase: str) -> tuple[RunResult, Figures]:
        """One run, measured."""
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
            sweep_max=self.config.sync.sweep_max_per_run,
            keep_plan=False,
        )
        run = SyncRun(
            self.ledger,
            adapters,
            options,
            holder="bench",
            now=self.clock.now,
            sleep=self.clock.sleep,
        )
        figures = Figures(phase, rss_before=rss_mb())
        self.meter.reset()
        reset_peak_rss()
        with self._profiled(phase):
            wall, cpu, main = time.perf_counter(), time.process_time(), time.thread_time()
            result = run.execute()
            figures.wall = time.perf_counter() - wall
            cpu, main = time.process_time() - cpu, time.thread_time() - main
        figures.peak_rss = window_peak_rss_mb()
        figures.ledger_wall, figures.ledger_cpu = self.meter.wall, self.meter.cpu
        figures.bridge_cpu = main - self.meter.cpu
        figures.sim_cpu = cpu - main
        figures.statements = self.meter.statements
        figures.outcome = result.outcome
        routes: Counter[str] = Counter()
        for side, sim in self.sandbox.simulators.items():
            for route, count in sim.counts()["routes"].items():
                routes[f"{side} {route}"] += count
        figures.routes = dict(routes)
        figures.calls = sum(routes.values())
        return result, figures

    @contextmanager
    def _profiled(self, phase: str) -> Iterator[None]:
        if self.profile is None:
            yield
            return
        profiler = cProfile.Profile()
        profiler.enable()
        try:
            yield
        finally:
            profiler.disable()
            self.profile.mkdir(parents=True, exist_ok=True)
            profiler.dump_stats(self.profile / f"{phase.replace(' ', '_')}.prof")


def one(
    links: int, changes: int, *, limits: bool, profile: Path | None, same_second: bool = False
) -> dict[str, Any]:
    """Seed, then measure the four runs at one size; JSON-ready."""
    configure_logging("json", "error")
    sandbox = Sandbox()
    sandbox.clock.freeze()
    sandbox.clock.set(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    set_clock(sandbox.clock.now)
    measured: list[Figures] = []
    with tempfile.TemporaryDirectory() as folder, sandbox:
        if not limits:
            sandbox.relax_limits()
        bench = Bench(sandbox, Path(folder), profile=profile)
        started = time.perf_counter()
        pairs = bench.seed(links, same_second=same_second)
        seed_s = time.perf_counter() - started
        for phase in PHASES:
            if phase == "changes each side":
                count = min(changes, links // 2)
                sandbox.superoffice.soft_delete([s for s, _ in pairs[:count]])
                sandbox.zendesk.agent_act(
                    "delete", [z for _, z in pairs[count : 2 * count]], agent=(7, "Ann")
                )
            if phase == "sweep a day later":
                bench.clock.advance(25 * 3600)
            result, figures = bench.sync(phase)
            assert result.outcome == "converged", (phase, result.outcome, dict(result.counts))
            measured.append(figures)
        bench.ledger.close()
    set_clock(None)
    return {"links": links, "seed_s": seed_s, "runs": [asdict(f) for f in measured]}


def _row(links: int, f: dict[str, Any]) -> list[object]:
    return [
        f["phase"],
        f"{links:,}",
        f["calls"],
        f"{f['wall']:.2f}",
        f"{f['ledger_wall']:.2f}",
        f"{f['ledger_cpu']:.2f}",
        f"{f['bridge_cpu']:.2f}",
        f"{f['sim_cpu']:.2f}",
        f"{f['statements']:,}",
        f"{f['rss_before']:.0f}",
        f"{f['peak_rss']:.0f}",
    ]


def report(results: list[dict[str, Any]], changes: int) -> str:
    headers = [
        "run",
        "links",
        "calls",
        "wall s",
        "ledger s",
        "ledger CPU s",
        "other bridge CPU s",
        "simulators CPU s",
        "stmts",
        "RSS before MB",
        "peak RSS MB",
    ]
    rows = [_row(r["links"], f) for r in results for f in r["runs"]]
    out = [table(headers, rows).replace("changes each side", f"{changes:,} changes each side")]
    if len(results) > 1:
        growth: list[list[object]] = []
        for small, large in itertools.pairwise(results):
            for a, b in zip(small["runs"], large["runs"], strict=True):
                points = [
                    exponent((small["links"], a[key]), (large["links"], b[key]))
                    for key in ("wall", "ledger_cpu", "peak_rss")
                ]
                growth.append(
                    [
                        a["phase"],
                        f"{small['links']:,} → {large['links']:,}",
                        *("-" if k is None else f"{k:.2f}" for k in points),
                    ]
                )
        out += ["", table(["run", "sizes", "k wall", "k ledger CPU", "k peak RSS"], growth)]
    out += [""]
    out += [f"seeding {r['links']:,} links: {r['seed_s']:.1f} s (not timed above)" for r in results]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[100_000])
    parser.add_argument("--changes", type=int, default=1_000)
    parser.add_argument("--limits", action="store_true", help="keep the sandbox's rate limits")
    parser.add_argument("--profile", type=Path, help="write cProfile stats per run here")
    parser.add_argument("--routes", action="store_true", help="print the calls per route")
    parser.add_argument(
        "--same-second", action="store_true", help="seed every ticket in one second"
    )
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child's single size
    args = parser.parse_args()
    if args.one is not None:
        profile = args.profile / str(args.one) if args.profile else None
        figures = one(
            args.one,
            args.changes,
            limits=args.limits,
            profile=profile,
            same_second=args.same_second,
        )
        print(json.dumps(figures))
        return
    results = []
    for links in sorted(args.sizes):
        command = [python(), __file__, "--one", str(links), "--changes", str(args.changes)]
        command += ["--limits"] if args.limits else []
        command += ["--same-second"] if args.same_second else []
        command += ["--profile", str(args.profile)] if args.profile else []
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode:
            sys.exit(f"{links:,} links failed:\n{done.stderr}")
        results.append(json.loads(done.stdout.splitlines()[-1]))
    mode = "rate limits on" if args.limits else "rate limits off"
    mode += ", every ticket changed in one second" if args.same_second else ""
    print(f"large tenant, {mode}, {changes_note(args.changes)}\n")
    print(report(results, args.changes))
    if args.routes:
        for r in results:
            for f in r["runs"]:
                print(f"\ncalls per route, {f['phase']}, {r['links']:,} links:")
                for route, count in sorted(f["routes"].items()):
                    print(f"  {route}: {count}")


def changes_note(changes: int) -> str:
    return f"{changes:,} changes each side"


if __name__ == "__main__":
    main()
