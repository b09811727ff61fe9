"""Benchmark: many pairs synced by `bridge worker` processes, and workers killed (issue 18).

P pairs (`--pairs`, default 50) of N linked tickets each (`--links`, default 10,000), their
ledgers in one throwaway PostgreSQL cluster (`tests/postgres/cluster.py`, the server's own
durable defaults), their simulators in child processes (`--sim-processes`, default 2), so
that what is measured is bridge's workers. Pairs share Zendesk accounts in groups
(`--pairs-per-account`, default 5: one Zendesk simulator per account, the same base URL,
so one shared budget of `--requests-per-minute` calls and 10 export pages a minute, as
docs/pairs.md says); each pair has its own SuperOffice tenant. Each pair syncs `--every`
(default 1s: a pair is due again as soon as its run ends).

Rounds, each on every pair at once (`--changes` C, `--purges` K per pair):

* **warm-up** (not a scaling figure): the workers' first sync of every pair (every link
  read for the first time), then C SuperOffice soft deletes each, copied to Zendesk;
* **W workers**, for each W of `--workers` (default 1,2,4; `bridge worker` processes of
  `--concurrency` threads each, as docs/workers.md scales out): W workers started and
  warm (each pair synced once), then C soft deletes in SuperOffice, C in Zendesk and K
  SuperOffice purges (its retention job removing tickets the round before soft-deleted,
  which bridge finds by its sweep and copies to Zendesk as purges) on every pair; timed
  until every change has reached the other side and each pair's last run since converged
  (a run that ended for a shared account's turn, `waiting`, aside);
* **kills**: the same with `--kill-workers` workers (default 2), one of them SIGKILLed every
  `--kill-every` seconds (default 5) and restarted at once; the first dies at its first bulk
  write (crash point `before_send:1`: after the ledger marked it sent, before the request
  left), so that a kill lands where a duplicate would happen. With `--kill-for S` the
  kills stop after S seconds: a worker killed every 2 s lives about 4, less than a run of
  a large round takes, so the round's last converged run can only come once they stop;
  the benchmark then says how many copies were still missing when they stopped, when
  every change had reached its target, and how long the convergence took after the last
  kill.

Figures per round: time to converge, pairs converged a second, runs a second, links
decided a second (the runs' decisions), CPU seconds of the workers, the simulators and the
PostgreSQL server in that time, and the speed-up over 1 worker. Per Zendesk account: the
most requests it received in one minute (counted where they arrive, at its simulator),
against its budget, and how many it answered 429. At the end: the irreversible requests
the simulators accepted (Zendesk purges), flagged duplicates and tickets purged twice
(both must be 0). The command fails (exit 1) when a round does not converge within
`--timeout`, a purge was repeated or an account went over its budget; it then says, per
pair, the copies still missing and its runs by outcome, and keeps its folder (the config
and each worker's log; `--keep DIR` keeps them in DIR in any case).

Why `retention_days = 0` in the config: every run then sweeps the soft-deleted SuperOffice
tickets (a retention purge is silent in SuperOffice's change stream), so that the purges the
benchmark makes are found in seconds instead of at the next `sweep_period_hours`.

`--limits` keeps the simulators' own limits (Zendesk's account limit set to
`--requests-per-minute`, its endpoint limits, SuperOffice's 10 a second, which the client
then keeps to as well); without it they are off and SuperOffice's client is not paced, so
that the workers are what bounds the time (the vendors' limits are not the bottleneck).

Run: `.venv/bin/python bench/workers.py [--pairs 50] [--links 10000] [--changes 100]
[--purges 20] [--pairs-per-account 5] [--requests-per-minute 700] [--workers 1,2,4]
[--concurrency 1] [--kill-workers 2] [--kill-every 5] [--kill-for S] [--limits] [--keep DIR]`
(the CI smoke: `--pairs 3 --links 50 --changes 5 --purges 2 --workers 1,2 --kill-every 3`).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from _pairs_sims import PairSims, SimsProcess
from _util import process_tree_cpu, python, table
from psycopg import sql

from bridge.budgets import SHARED_NAMESPACE
from bridge.config import load_pairs
from bridge.ledger import Ledger, LinkRow
from bridge.sandbox_pair import Sandbox, write_pairs_config
from bridge.vendors.registry import SIDES
from tests.postgres.cluster import Cluster, ClusterUnavailableError

#: the worker options that keep a benchmark's rounds short: poll often, and take back the
#: job of a worker silent for 3 s (a kill) instead of 30
WORKER_OPTIONS = ("--poll-interval", "0.2", "--stalled-after", "3")
#: the speed-up at 2 workers over 1 that issue 18 asks for
SCALING_TARGET = 1.7
#: the benchmark server's connection limit (the tests' 100 is too few for 4 workers x 50
#: pairs: each worker holds connections to each pair's ledger)
MAX_CONNECTIONS = 1000
#: seconds between looks at the simulators and the ledgers while a round converges
POLL = 0.25

Changes = dict[str, dict[str, list[int]]]


@dataclass
class Round:
    """One round's changes and what they must lead to, per pair."""

    name: str
    changes: Changes
    expected: Changes

    def count(self) -> int:
        return sum(len(ids) for change in self.changes.values() for ids in change.values())


@dataclass
class Figures:
    """One round's measurements."""

    name: str
    workers: int
    seconds: float | None  # None: did not converge within the timeout
    changes: int
    runs: int = 0
    decided: int = 0
    resent: int = 0
    worker_cpu: float = 0.0
    sims_cpu: float = 0.0
    server_cpu: float = 0.0
    kills: int = 0
    crashes: int = 0
    stalled_retried: int = 0
    tracebacks: int = 0
    load: float = 0.0
    connections: int = 0  # the most the server had open at one look
    copied_seconds: float | None = None  # until every change was at its target
    missing_at_last_kill: int | None = None  # copies not yet made when the kills stopped
    after_last_kill: float | None = None  # seconds from the last kill to convergence


@dataclass
class Workers:
    """`bridge worker` child processes, each with its output in a file of its own."""

    config_path: Path
    folder: Path
    concurrency: int
    started: list[tuple[subprocess.Popen[bytes], Path]] = field(default_factory=list)

    def start(self, *, crash_at: str | None = None) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if k != "BRIDGE_CRASH_AT"}
        if crash_at:
            env["BRIDGE_CRASH_AT"] = crash_at
        log = self.folder / f"worker-{len(self.started)}.log"
        command = [python(), "-m", "bridge", "--config", str(self.config_path), "worker"]
        command += [*WORKER_OPTIONS, "--concurrency", str(self.concurrency)]
        with log.open("wb") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        self.started.append((process, log))
        return process

    def living(self) -> list[subprocess.Popen[bytes]]:
        return [process for process, _ in self.started if process.poll() is None]

    def ready(self) -> bool:
        """Every living worker has opened its pairs' ledgers and works the queue."""
        logs = [log for process, log in self.started if process.poll() is None]
        return all("Worker for" in log.read_text(errors="replace") for log in logs)

    def cpu(self) -> float:
        return sum(process_tree_cpu(process.pid) for process in self.living())

    def logs(self) -> str:
        return "".join(log.read_text(errors="replace") for _, log in self.started)

    def stop_all(self) -> None:
        for process in self.living():
            process.send_signal(signal.SIGTERM)
        for process, _ in self.started:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


class Bench:
    """The pairs, their simulators and ledgers, and the rounds run on them."""

    def __init__(self, args: argparse.Namespace, folder: Path, cluster: Cluster) -> None:
        self.args = args
        self.folder = folder
        self.cluster = cluster
        width = len(str(args.pairs))
        self.pairs = [f"p{n:0{width}d}" for n in range(1, args.pairs + 1)]
        self.accounts = {
            f"zd{n // args.pairs_per_account + 1}": self.pairs[n : n + args.pairs_per_account]
            for n in range(0, args.pairs, args.pairs_per_account)
        }
        self.sims: list[SimsProcess] = []
        self.sims_of: dict[str, SimsProcess] = {}
        self.facts: dict[str, PairSims] = {}
        self.database = cluster.create_database()
        self.config_path = Path()
        self.round_index = 0
        self.base_minute = int(time.time() // 60)

    # -- set-up --------------------------------------------------------------------------
    def start_sims(self) -> float:
        """Spawn the simulator processes (accounts dealt round-robin) and seed them."""
        started = time.perf_counter()
        shares: list[dict[str, list[str]]] = [{} for _ in range(self.args.sim_processes)]
        for n, (account, pairs) in enumerate(self.accounts.items()):
            shares[n % len(shares)][account] = pairs
        for share in shares:
            if not share:
                continue
            sims = SimsProcess(
                share,
                links=self.args.links,
                limits=self.args.limits,
                rpm=self.args.requests_per_minute,
            )
            sims.start()
            self.sims.append(sims)
        for sims, share in zip(self.sims, [s for s in shares if s], strict=True):
            self.facts.update(sims.facts())
            for pairs in share.values():
                self.sims_of.update(dict.fromkeys(pairs, sims))
        return time.perf_counter() - started

    def write_config(self) -> None:
        """The pairs' config (written as `bridge sandbox serve --write-config` does), its
        ledger moved to PostgreSQL, each pair synced `--every`."""
        sandboxes: dict[str | None, Sandbox] = {
            pair: Sandbox(zendesk_port=f.zendesk_port, superoffice_port=f.superoffice_port)
            for pair, f in self.facts.items()
        }
        path = write_pairs_config(
            self.folder / "config",
            sandboxes,
            propagate_retention_purges="true",
            max_purges_per_run="1000000",
        )
        text = path.read_text(encoding="utf-8")
        text = text.replace('url = "sqlite:///bridge.db"\n', f'url = "{self.ledger_url}"\n')
        text = text.replace("retention_days = 14\n", "retention_days = 0\n")
        if not self.args.limits:  # SuperOffice's client paces itself: not here
            text = text.replace("requests_per_second = 10\n", "requests_per_second = 10000\n")
        if self.args.pairs_per_account > 1:
            rpm = self.args.requests_per_minute
            text = text.replace(
                "job_limit = 30\n", f"job_limit = 30\nrequests_per_minute = {rpm}\n"
            )
        # a worker killed just before it sends a purge (the kill round's crash point) leaves
        # it `sent` with no answer: bridge waits Zendesk's `outcome_wait_seconds` (15 min by
        # default, for a request that may still be queued) before it may send it again. The
        # simulators answer at once, so a round need not wait that long to converge.
        text = text.replace("job_limit = 30\n", "job_limit = 30\noutcome_wait_seconds = 10\n")
        text += "".join(f'\n[pairs.{pair}]\nevery = "{self.args.every}"\n' for pair in self.pairs)
        path.write_text(text, encoding="utf-8")
        self.config_path = path

    @property
    def ledger_url(self) -> str:
        return self.cluster.url(self.database)

    def import_links(self) -> float:
        """Each pair's links into its ledger (as `bridge link import` would)."""
        started = time.perf_counter()
        configs = load_pairs(self.config_path)
        for pair in self.pairs:
            f = self.facts[pair]
            rows = (
                LinkRow(n, s, z) for n, (s, z) in enumerate(zip(f.so_ids, f.zd_ids, strict=True), 1)
            )
            with Ledger.open(configs[pair].ledger_url, sides=SIDES) as ledger:
                assert ledger.import_links(rows, origin="csv").ok
        return time.perf_counter() - started

    # -- the ledgers, read directly (one query for every pair) ----------------------------
    @contextmanager
    def _db(self) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        with psycopg.connect(
            host="127.0.0.1",
            port=self.cluster.port,
            user="bridge",
            password=self.cluster.password,
            dbname=self.database,
            autocommit=True,
        ) as connection:
            yield connection

    def _union(self, select: str) -> sql.Composed:
        return sql.SQL(" UNION ALL ").join(
            sql.SQL(select).format(pair=sql.Literal(p), run=sql.Identifier(f"bridge_{p}", "run"))
            for p in self.pairs
        )

    def last_run_ids(self) -> dict[str, int]:
        with self._db() as db:
            rows = db.execute(self._union("SELECT {pair}, coalesce(max(id), 0) FROM {run}"))
            return {pair: int(last) for pair, last in rows}

    def runs_since(self, base: Mapping[str, int]) -> dict[str, list[tuple[str, dict[str, int]]]]:
        """Each pair's runs after `base` (outcome, counts), oldest first."""
        query = self._union("SELECT {pair}, id, outcome, counts FROM {run}")
        runs: dict[str, list[tuple[str, dict[str, int]]]] = {p: [] for p in self.pairs}
        with self._db() as db:
            for pair, run_id, outcome, counts in sorted(db.execute(query), key=lambda r: r[1]):
                if run_id > base[pair]:
                    runs[pair].append((outcome, json.loads(counts or "{}")))
        return runs

    def converged_runs(self, base: Mapping[str, int]) -> bool:
        """Every pair's last finished run since `base` converged, runs that ended for a
        shared account's turn (`waiting`) aside: on an account spent every minute they
        are often a pair's last for a while, and whatever they left the next run does
        (the copies themselves are checked apart, `pending`)."""
        for runs in self.runs_since(base).values():
            done = [outcome for outcome, _ in runs if outcome not in ("running", "waiting")]
            if not done or done[-1] != "converged":
                return False
        return True

    def connections(self) -> int:
        """Client connections the server has open now (this look's own included)."""
        with self._db() as db:
            row = db.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
            ).fetchone()
            return int(row[0]) if row else 0

    def budget_peaks(self) -> dict[str, int]:
        """The most calls each shared account's budget gave out in one minute (the budget
        table bridge keeps: `bridge.budgets`); empty when no account is shared."""
        schema = f"bridge_{SHARED_NAMESPACE}"
        with self._db() as db:
            try:
                rows = db.execute(
                    sql.SQL(
                        "SELECT account, max(used) FROM {} WHERE kind = 'calls' GROUP BY account"
                    ).format(sql.Identifier(schema, "budget_minute"))
                )
                return {str(account): int(used) for account, used in rows}
            except psycopg.errors.UndefinedTable:
                return {}

    # -- the simulators -------------------------------------------------------------------
    def _each_sims(self, command: str, per_pair: Changes) -> list[Any]:
        answers = []
        for sims in self.sims:
            mine = {p: v for p, v in per_pair.items() if self.sims_of[p] is sims}
            answers.append(sims.request(command, mine))
        return answers

    def pending(self, expected: Changes) -> dict[str, int]:
        """Per pair not there yet, how many of its expected copies are missing."""
        return {p: n for answer in self._each_sims("pending", expected) for p, n in answer.items()}

    def report(self) -> tuple[dict[str, Any], list[dict[str, int]]]:
        accounts: dict[str, Any] = {}
        superoffice: list[dict[str, int]] = []
        for sims in self.sims:
            answer = sims.request("report", self.base_minute)
            accounts.update(answer["accounts"])
            superoffice.extend(answer["superoffice"])
        return accounts, superoffice

    def sims_cpu(self) -> float:
        return sum(process_tree_cpu(s.process.pid) for s in self.sims if s.process.pid)

    def stop(self) -> None:
        for sims in self.sims:
            sims.stop()

    # -- rounds --------------------------------------------------------------------------
    def next_round(self, name: str, *, purges: bool = True) -> Round:
        """Round r's tickets: SuperOffice soft deletes from the front of each pair's links,
        Zendesk ones from the back, purges of the previous round's SuperOffice deletes."""
        c, r = self.args.changes, self.round_index
        self.round_index += 1
        changes: Changes = {}
        expected: Changes = {}
        for pair in self.pairs:
            so_ids, zd_ids = self.facts[pair].so_ids, self.facts[pair].zd_ids
            n = len(so_ids)
            front = slice(r * c, (r + 1) * c)
            back = slice(n - (r + 1) * c, n - r * c)
            purged = slice((r - 1) * c, (r - 1) * c + self.args.purges) if purges and r else None
            changes[pair] = {
                "so_delete": so_ids[front],
                "zd_delete": zd_ids[back],
                "so_purge": so_ids[purged] if purged else [],
            }
            expected[pair] = {
                "zd_deleted": zd_ids[front],
                "so_deleted": so_ids[back],
                "zd_purged": zd_ids[purged] if purged else [],
            }
        return Round(name, changes, expected)

    def warm(self, workers: Workers, base: Mapping[str, int], timeout: float) -> float | None:
        """Wait until the workers serve and every pair ran since `base`."""
        started = time.perf_counter()
        deadline = started + timeout
        while time.perf_counter() < deadline:
            if workers.ready():
                runs = self.runs_since(base)
                if all(any(o != "running" for o, _ in r) for r in runs.values()):
                    return time.perf_counter() - started
            time.sleep(POLL)
        return None

    def converge(
        self,
        expected: Changes,
        base: Mapping[str, int],
        tick: Callable[[], None],
        copied: Figures | None = None,
    ) -> float | None:
        """Seconds until every expected change is at its target and every pair's last run
        converged (None: not within `--timeout`); `tick` is called between looks; the
        seconds until every change was at its target go to `copied.copied_seconds`."""
        started = time.perf_counter()
        deadline = started + self.args.timeout
        while time.perf_counter() < deadline:
            tick()
            if not self.pending(expected):
                if copied is not None and copied.copied_seconds is None:
                    copied.copied_seconds = time.perf_counter() - started
                if self.converged_runs(base):
                    return time.perf_counter() - started
            time.sleep(POLL)
        return None

    def run_round(
        self,
        name: str,
        count: int,
        *,
        kill_every: float | None = None,
        kill_for: float | None = None,
        purges: bool = True,
    ) -> Figures:
        """Start `count` workers, let them warm, make the round's changes and time them to
        convergence (with a worker SIGKILLed every `kill_every` seconds, if given, for the
        first `kill_for` seconds, if given)."""
        workers = Workers(
            self.config_path, self.folder / name.replace(" ", "-"), self.args.concurrency
        )
        workers.folder.mkdir(parents=True, exist_ok=True)
        for n in range(count):
            workers.start(crash_at="before_send:1" if kill_every and n == 0 else None)
        try:
            if self.warm(workers, self.last_run_ids(), self.args.timeout) is None:
                raise SystemExit(f"{name}: the workers did not start within --timeout")
            round_ = self.next_round(name, purges=purges)
            figures = Figures(name, count, None, round_.count())
            base = self.last_run_ids()
            cpu = (workers.cpu(), self.sims_cpu(), process_tree_cpu(self.cluster.server_pid()))
            kills = Killer(workers, kill_every, kill_for) if kill_every else None

            def tick() -> None:
                figures.connections = max(figures.connections, self.connections())
                if kills and kills.tick():
                    figures.missing_at_last_kill = sum(self.pending(round_.expected).values())

            self._each_sims("act", round_.changes)
            figures.seconds = self.converge(round_.expected, base, tick, figures)
            converged_at = time.perf_counter()
            if figures.seconds is None:
                self.explain_not_converged(name, round_.expected, base)
            figures.worker_cpu = workers.cpu() - cpu[0]
            figures.sims_cpu = self.sims_cpu() - cpu[1]
            figures.server_cpu = process_tree_cpu(self.cluster.server_pid()) - cpu[2]
            figures.load = os.getloadavg()[0]
            for runs in self.runs_since(base).values():
                figures.runs += sum(1 for outcome, _ in runs if outcome != "running")
                for _, counts in runs:
                    figures.decided += sum(
                        v for k, v in counts.items() if k.startswith("decision.")
                    )
                    figures.resent += counts.get("resent_after_reread", 0)
            if kills:
                figures.kills, figures.crashes = kills.kills, kills.crashes
                if figures.seconds is not None and kills.ended is not None:
                    figures.after_last_kill = converged_at - kills.ended
        finally:
            workers.stop_all()
        logs = workers.logs()
        figures.stalled_retried = logs.count("worker.stalled_job_retried")
        figures.tracebacks = logs.count("Traceback")
        return figures

    def explain_not_converged(self, name: str, expected: Changes, base: Mapping[str, int]) -> None:
        """What each pair still lacked when a round timed out, for the kept logs' reader."""
        pending = self.pending(expected)
        lines = [
            f"{name}: not converged; per pair: copies missing, runs since the round "
            "began by outcome, the last finished run's counts"
        ]
        for pair, runs in self.runs_since(base).items():
            outcomes: dict[str, int] = {}
            for outcome, _ in runs:
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
            done = [(o, c) for o, c in runs if o != "running"]
            last = done[-1] if done else ("none", {})
            lines.append(f"  {pair}: missing={pending.get(pair, 0)} runs={outcomes} last={last}")
        print("\n".join(lines), file=sys.stderr)


class Killer:
    """SIGKILL the longest-lived worker every `every` seconds and start another at once;
    restart at once any worker that died on its own (the crash point). With `kill_for`,
    the kills stop that many seconds after the first look (`ended`: when)."""

    def __init__(self, workers: Workers, every: float, kill_for: float | None = None) -> None:
        self.workers = workers
        self.every = every
        self.kills = 0
        self.crashes = 0
        self.last = time.perf_counter()
        self.until = None if kill_for is None else self.last + kill_for
        self.ended: float | None = None

    def tick(self) -> bool:
        """One look; True the once the kills end."""
        for process, _ in self.workers.started:
            if process.returncode is None and process.poll() is not None:
                self.crashes += 1  # died at its crash point
                self.workers.start()
        if self.ended is not None:
            return False
        now = time.perf_counter()
        if self.until is not None and now >= self.until:
            self.ended = now
            return True
        if now - self.last >= self.every:
            self.last = now
            living = self.workers.living()
            if living:
                living[0].kill()
                living[0].wait(10)
                self.kills += 1
                self.workers.start()
        return False


# -- tables ------------------------------------------------------------------------------
def _seconds(value: float | None) -> str:
    return "did not converge" if value is None else f"{value:.1f}"


def _per_second(amount: int, seconds: float | None) -> str:
    return f"{amount / seconds:,.1f}" if seconds else "-"


def rounds_table(rounds: Sequence[Figures], pairs: int, concurrency: int) -> str:
    one = next((f.seconds for f in rounds if f.workers == 1 and f.name != "kills"), None)
    rows = []
    for f in rounds:
        speedup = f"{one / f.seconds:.2f}" if one and f.seconds else "-"
        rows.append(
            [
                f.name,
                f"{f.workers} x {concurrency}",
                f"{f.changes:,}",
                _seconds(f.seconds),
                _per_second(pairs, f.seconds),
                _per_second(f.runs, f.seconds),
                _per_second(f.decided, f.seconds),
                speedup,
                "-"
                if f.name == "kills"
                else f"{f.worker_cpu:.1f}",  # a killed worker's CPU is lost
                f"{f.sims_cpu:.1f}",
                f"{f.server_cpu:.1f}",
                f"{f.load:.1f}",
                f.connections,
            ]
        )
    headers = ["round", "workers x threads", "changes", "seconds to converge"]
    headers += ["pairs/s", "runs/s", "links decided/s", "speed-up vs 1"]
    headers += ["workers CPU s", "simulators CPU s", "server CPU s", "load (1 min)"]
    headers += ["server connections"]
    return table(headers, rows)


def scaling_verdict(rounds: Sequence[Figures]) -> str:
    by = {f.workers: f.seconds for f in rounds if f.name.endswith("worker(s)")}
    if not by.get(1) or not by.get(2):
        return "scaling at 2 workers: not measured (needs rounds with 1 and 2 workers)"
    speedup = by[1] / by[2]  # type: ignore[operator]
    verdict = "met" if speedup >= SCALING_TARGET else "NOT met"
    return f"speed-up at 2 workers: {speedup:.2f} (target ≥ {SCALING_TARGET}): {verdict}"


def accounts_table(
    accounts: Mapping[str, Any], members: Mapping[str, Sequence[str]], budget: int | None
) -> tuple[str, list[str]]:
    """Per account: its budget, the busiest minute at its simulator, its 429s; and the
    accounts whose busiest minute went over the budget."""
    rows, over = [], []
    for account, figures in accounts.items():
        minutes = figures["minutes"]
        peak = max(minutes.values(), default=0)
        busiest = max(minutes, key=minutes.__getitem__) if minutes else None
        if budget is not None and peak > budget:
            over.append(account)
        rows.append(
            [
                account,
                len(members[account]),
                "-" if budget is None else f"{budget:,}",
                f"{peak:,}",
                len(minutes),
                f"{figures['throttled']:,}",
                "-" if busiest is None else time.strftime("%H:%M", time.gmtime(busiest * 60)),
            ]
        )
    headers = ["account", "pairs", "budget/min", "peak requests in a minute (simulator)"]
    headers += ["minutes", "429s", "busiest minute UTC"]
    return table(headers, rows), over


def purges_table(accounts: Mapping[str, Any], superoffice: Sequence[Mapping[str, int]]) -> str:
    zd = {k: sum(a[k] for a in accounts.values()) for k in ("purges", "duplicates", "purged_twice")}
    so = {k: sum(s[k] for s in superoffice) for k in ("purges", "duplicates", "purged_twice")}
    rows = [
        ["Zendesk (destroy_many)", f"{zd['purges']:,}", zd["duplicates"], zd["purged_twice"]],
        ["SuperOffice", f"{so['purges']:,}", so["duplicates"], so["purged_twice"]],
    ]
    return table(["irreversible requests", "accepted", "duplicates", "tickets purged twice"], rows)


def parse_counts(text: str) -> list[int]:
    """`--workers 1,2,4`."""
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"a comma-separated list of numbers: {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"at least one worker per round: {text!r}")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--links", type=int, default=10_000, help="links per pair")
    parser.add_argument(
        "--changes", type=int, default=100, help="soft deletes per side and pair, each round"
    )
    parser.add_argument(
        "--purges", type=int, default=20, help="SuperOffice purges per pair, each round"
    )
    parser.add_argument("--pairs-per-account", type=int, default=5)
    parser.add_argument(
        "--requests-per-minute", type=int, default=700, help="each shared account's budget"
    )
    parser.add_argument(
        "--workers", type=parse_counts, default=[1, 2, 4], help="worker processes per round"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="threads per worker (bridge worker --concurrency)",
    )
    parser.add_argument(
        "--kill-workers", type=int, default=2, help="workers in the kill round (0: no kill round)"
    )
    parser.add_argument("--kill-every", type=float, default=5.0, help="seconds between SIGKILLs")
    parser.add_argument(
        "--kill-for",
        type=float,
        help="seconds the kills go on (default: until the round converges or times out)",
    )
    parser.add_argument("--every", default="1s", help="each pair's schedule")
    parser.add_argument("--sim-processes", type=int, default=2)
    parser.add_argument(
        "--limits", action="store_true", help="keep the simulators' own rate limits"
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds a round may take")
    parser.add_argument(
        "--keep",
        type=Path,
        help="folder for the config and the workers' logs, kept afterwards (default: a "
        "temporary folder, removed unless a round failed)",
    )
    args = parser.parse_args()
    rounds_needed = 1 + len(args.workers) + (1 if args.kill_workers else 0)
    if args.links < 2 * args.changes * rounds_needed or args.purges > args.changes:
        parser.error(
            f"--links must be at least 2 x --changes x {rounds_needed} rounds, and --purges at "
            "most --changes"
        )
    # SIGTERM unwinds as an exception: the workers, simulators and cluster are stopped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped by SIGTERM"))
    print(f"command: {shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])}")
    print(f"machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} at start\n")
    try:
        # each worker holds connections to every pair's ledger (measured: `connections`)
        cluster = Cluster().start(durable=True, max_connections=MAX_CONNECTIONS)
    except ClusterUnavailableError as exc:
        sys.exit(str(exc))
    os.environ["PGPASSWORD"] = cluster.password  # the workers' driver reads it
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-workers-"))
    folder.mkdir(parents=True, exist_ok=True)
    failed = True
    try:
        measure(args, Bench(args, folder, cluster))
        failed = False
    finally:
        cluster.stop()
        if failed or args.keep:
            print(f"\nthe config and the workers' logs are kept in {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)


def measure(args: argparse.Namespace, bench: Bench) -> None:
    failures: list[str] = []
    try:
        seed_s = bench.start_sims()
        bench.write_config()
        import_s = bench.import_links()
        print(
            f"{args.pairs} pairs x {args.links:,} links, {len(bench.accounts)} Zendesk account(s) "
            f"of up to {args.pairs_per_account} pairs, simulators in {len(bench.sims)} "
            f"process(es) ({'their own limits' if args.limits else 'limits off'}); seeding "
            f"{seed_s:.1f} s, link import {import_s:.1f} s (not timed below)\n"
        )
        started = time.perf_counter()
        warm = bench.run_round("warm-up: first sync", max(args.workers), purges=False)
        first_sync = time.perf_counter() - started
        rounds: list[Figures] = []
        for count in args.workers:
            rounds.append(bench.run_round(f"{count} worker(s)", count))
        if args.kill_workers:
            rounds.append(
                bench.run_round(
                    "kills", args.kill_workers, kill_every=args.kill_every, kill_for=args.kill_for
                )
            )
        accounts, superoffice = bench.report()
        peaks = bench.budget_peaks()
    finally:
        bench.stop()
    print(
        f"warm-up with {warm.workers} workers: every pair's first sync and "
        f"{warm.changes:,} changes in {first_sync:.1f} s (workers' start-up included)\n"
    )
    print(rounds_table(rounds, args.pairs, args.concurrency))
    print()
    print(scaling_verdict(rounds))
    kill = next((f for f in rounds if f.name == "kills"), None)
    if kill is not None:
        print(
            f"kills: {kill.crashes} at the crash point before_send:1 and {kill.kills} "
            f"SIGKILLs every {args.kill_every:g} s, {kill.stalled_retried} stalled jobs taken "
            f"back, {kill.resent} operations resent after a re-read, {kill.tracebacks} tracebacks"
        )
        if args.kill_for is not None:
            if kill.after_last_kill is not None:
                stopped = f"converged {kill.after_last_kill:.1f} s after the last kill"
            elif kill.seconds is not None:
                stopped = "converged while the kills went on"
            else:
                stopped = "did not converge after the last kill"
            copied = (
                f"every change at its target after {kill.copied_seconds:.1f} s"
                if kill.copied_seconds is not None
                else "not every change at its target"
            )
            print(
                f"the kills stopped after {args.kill_for:g} s, with "
                f"{kill.missing_at_last_kill or 0:,} of the round's {kill.changes:,} changes not "
                f"yet copied; {copied}; {stopped}"
            )
    budget = args.requests_per_minute if args.pairs_per_account > 1 or args.limits else None
    print("\nZendesk requests per account and minute (every round):\n")
    text, over = accounts_table(accounts, bench.accounts, budget)
    print(text)
    if peaks:
        print("\nThe budget table's busiest minute per shared account (calls given out):\n")
        print(table(["account", "calls"], [[a, f"{n:,}"] for a, n in sorted(peaks.items())]))
    print("\nIrreversible requests the simulators accepted:\n")
    print(purges_table(accounts, superoffice))
    for f in [warm, *rounds]:
        if f.seconds is None:
            failures.append(f"{f.name}: did not converge within {args.timeout:g} s")
    repeats = sum(a["duplicates"] + a["purged_twice"] for a in accounts.values())
    repeats += sum(s["duplicates"] + s["purged_twice"] for s in superoffice)
    if repeats:
        failures.append(f"{repeats} repeated irreversible requests")
    if over:
        failures.append(f"over budget: {', '.join(over)}")
    if failures:
        sys.exit("; ".join(failures))


if __name__ == "__main__":
    main()
