"""Benchmark: `bridge serve` (issue 19): how fast it answers, how fast a deletion crosses,
and what a burst costs.

Both simulators run in this process on one clock (sped up 50 times, limits off; the
SuperOffice client keeps its own 10 requests a second, as against a real tenant); `bridge
serve` runs as its own process (`python -m bridge --config ... serve`), as an operator
would start it. Webhook calls are signed here with each vendor's own signing
(`WebhookFormat.signed_headers`), as the vendors sign them.

1. **Load**: `--rate` signed Zendesk calls a second for `--seconds` (ticket ids no link
   holds: the run they queue looks nothing up), from a pool of threads on keep-alive
   connections, paced; every answer must be 202. Latency of each answer: p50, p99.
2. **Delete to the other side**: `--events` single events one after the other: an agent
   soft-deletes a Zendesk ticket, its webhook is sent, and the SuperOffice ticket is
   polled (every 10 ms) until it is deleted too. p50, p95, max. No scheduled sync runs.
3. **Burst**: `--burst` Zendesk tickets deleted at once and their webhooks sent as fast
   as the threads go; the calls both vendors answered until every SuperOffice ticket
   is deleted, against the bulk minimum: Zendesk's lookup, ⌈B/b⌉ `show_many` and ⌈B/b⌉
   `deleted_tickets` pages (b = 100), SuperOffice's ⌈B/s⌉ bulk soft deletes and the
   archive reads confirming them: both providers (`Ticket`, `RecycleTicket`) per q ids,
   2⌈B/q⌉, as an authoritative SuperOffice lookup needs and as bench/large_tenant.py
   counts its sweep (s, q from the adapter).

4. **Faults** (`--faults N`, instead of 1-3): the simulators' own webhooks, registered to
   `bridge serve` as `bridge webhooks register` does, with 30 % of them dropped and 10 %
   duplicated or reordered (the simulators' fault rules); changes on N linked pairs on both
   sides (deletes, a delete then a restore, purges), the hints run, then one scheduled
   sync (`tests/serve/deliveries.py: faulty_changes`). How many links crossed by hints
   alone, how many the sync copied, wrong states, writes on untouched links, purges sent
   twice.

Run: `.venv/bin/python bench/webhooks.py [--rate 500 --seconds 5 --events 200 --burst
1000]` or `bench/webhooks.py --faults 1000`. Prints a markdown table. Targets (issue 19):
202 in < 50 ms p99 at 500/s; delete to the other side ≤ 2 s median, ≤ 5 s p95; a burst ≤
1.2 x the bulk minimum; under faults every change converged, 0 wrong writes, 0 duplicate
purges.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._util import table
from bridge.config import load_config
from bridge.factory import build_adapters
from bridge.vendors.registry import SUPEROFFICE, ZENDESK, ZENDESK_VENDOR
from bridge.vendors.superoffice.adapter import SuperOfficeAdapter
from tests.sandbox_world import SandboxWorld, running_sandbox
from tests.serve.conftest import SECRETS, add_webhook_config, zendesk_event
from tests.serve.deliveries import faulty_changes, hooked_world


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


class Caller:
    """Signed Zendesk webhook calls to `bridge serve`, one keep-alive session a thread."""

    def __init__(self, url: str) -> None:
        self.url = f"{url}/webhooks/zendesk"
        self._local = threading.local()

    def post(self, ticket: int) -> tuple[int, float]:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        body = zendesk_event(ticket)
        headers = ZENDESK_VENDOR.webhooks.signed_headers(
            SECRETS["zendesk"], body, now=datetime.now(UTC), delivery_id=str(uuid.uuid4()), event=""
        )
        started = time.perf_counter()
        answer = session.post(self.url, data=body, headers=headers, timeout=10)
        return answer.status_code, time.perf_counter() - started


def _in_threads(count: int, threads: int, work: Callable[[int], None]) -> None:
    def worker(start: int) -> None:
        for n in range(start, count, threads):
            work(n)

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()


def load(caller: Caller, rate: int, seconds: float, threads: int) -> list[object]:
    """Paced calls: call n is due at n / rate seconds after the start."""
    count = int(rate * seconds)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    start = time.perf_counter() + 0.2

    def one(n: int) -> None:
        wait = start + n / rate - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        status, took = caller.post(9_000_000 + n)
        with lock:
            latencies.append(took)
            statuses[status] = statuses.get(status, 0) + 1

    _in_threads(count, threads, one)
    elapsed = time.perf_counter() - start
    assert statuses == {202: count}, statuses
    return [
        f"load: {count} calls at {rate}/s",
        f"{count / elapsed:.0f}/s",
        f"p50 {_percentile(latencies, 0.5) * 1000:.1f} ms",
        f"p99 {_percentile(latencies, 0.99) * 1000:.1f} ms",
        f"max {max(latencies) * 1000:.1f} ms",
    ]


def crossing(world: SandboxWorld, caller: Caller, pairs: list[tuple[int, int]]) -> list[object]:
    """One event at a time: delete on Zendesk, its webhook, until SuperOffice follows."""
    took: list[float] = []
    for so_id, zd_id in pairs:
        world.zd.agent_act("delete", [zd_id], agent=(7, "Ann"))
        started = time.perf_counter()
        status, _ = caller.post(zd_id)
        assert status == 202
        while world.so_state(so_id) != "deleted":
            if time.perf_counter() - started > 60:
                raise SystemExit(f"SuperOffice ticket {so_id} not deleted within 60 s")
            time.sleep(0.01)
        took.append(time.perf_counter() - started)
    return [
        f"delete → other side: {len(pairs)} single events",
        "-",
        f"p50 {statistics.median(took):.2f} s",
        f"p95 {_percentile(took, 0.95):.2f} s",
        f"max {max(took):.2f} s",
    ]


def burst(
    world: SandboxWorld, caller: Caller, pairs: list[tuple[int, int]], threads: int
) -> list[object]:
    """B deletes at once, B webhooks: calls until all of SuperOffice follows."""
    size = len(pairs)
    adapters = build_adapters(load_config(world.config_path))
    zendesk, superoffice = adapters[ZENDESK], adapters[SUPEROFFICE]
    assert isinstance(superoffice, SuperOfficeAdapter)
    b, s, q = zendesk.batch_limit, superoffice.batch_limit, superoffice.lookup_chunk
    minimum = 2 * math.ceil(size / b) + math.ceil(size / s) + 2 * math.ceil(size / q)
    world.zd.agent_act("delete", [zd for _so, zd in pairs], agent=(7, "Ann"))
    world.reset_counters()
    started = time.perf_counter()
    _in_threads(size, threads, lambda n: caller.post(pairs[n][1]))
    sent = time.perf_counter() - started
    while not all(world.so_state(so) == "deleted" for so, _zd in pairs):
        if time.perf_counter() - started > 120:
            raise SystemExit("the burst did not cross within 120 s")
        time.sleep(0.05)
    done = time.perf_counter() - started
    time.sleep(1.0)  # the run's last confirming reads
    calls = sum(sum(world.routes(side).values()) for side in (ZENDESK, SUPEROFFICE))
    return [
        f"burst: {size} deletes, webhooks sent in {sent:.2f} s",
        f"{calls} calls (minimum {minimum})",
        f"{calls / minimum:.2f} x minimum",
        f"all crossed in {done:.2f} s",
        ", ".join(
            f"{k} {n}" for side in (ZENDESK, SUPEROFFICE) for k, n in world.routes(side).items()
        ),
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--coalesce", type=float, default=1.0, help="[serve] coalesce_seconds")
    parser.add_argument(
        "--faults", type=int, metavar="N", help="the faults mode over N linked pairs instead"
    )
    args = parser.parse_args(argv)
    if args.faults:
        faults(args.faults, args.coalesce)
        return
    start = datetime.now(UTC) - timedelta(days=20)
    with tempfile.TemporaryDirectory() as folder, running_sandbox(50.0, start) as sandbox:
        world = SandboxWorld(sandbox, Path(folder) / "bridge", max_purges_per_run="100000")
        port = _free_port()
        add_webhook_config(
            world.config_path, serve=f"port = {port}\ncoalesce_seconds = {args.coalesce}\n"
        )
        pairs = world.link(args.events + args.burst)
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        command = [sys.executable, "-m", "bridge", "--config", str(world.config_path)]
        subprocess.run([*command, "sync"], check=True, capture_output=True, env=env)
        server = subprocess.Popen([*command, "serve"], env=env, stdout=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(500):
                try:
                    if requests.get(f"{url}/health", timeout=1).ok:
                        break
                except requests.ConnectionError:
                    time.sleep(0.02)
            caller = Caller(url)
            rows = [
                load(caller, args.rate, args.seconds, args.threads),
                crossing(world, caller, pairs[: args.events]),
                burst(world, caller, pairs[args.events :], args.threads),
            ]
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
            world.close()
    print(f"bridge serve, coalesce_seconds = {args.coalesce}, {os.cpu_count()} cores\n")
    print(table(["measure", "rate / calls", "p50 / ratio", "p95-p99 / time", "max / detail"], rows))


def faults(links: int, coalesce: float) -> None:
    """Mode 4: convergence under lost, repeated and reordered webhooks."""
    with (
        tempfile.TemporaryDirectory() as folder,
        hooked_world(Path(folder) / "bridge", propagate_retention_purges="true") as world,
    ):
        world.start_serving(coalesce=coalesce)
        try:
            report = faulty_changes(world, links)
        finally:
            world.stop_serving()
    hooks = report.webhooks
    cores = os.cpu_count()
    print(f"bridge serve under webhook faults, coalesce_seconds = {coalesce}, {cores} cores\n")
    rows: list[list[object]] = [
        ["links / changed", f"{report.links} / {report.changes}"],
        [
            "webhook events sent",
            f"{sum(hooks.values())}: {hooks['drop']} dropped, {hooks['duplicate']} "
            f"duplicated, {hooks['reorder']} reordered",
        ],
        ["crossed by hints alone", f"{report.by_hints} in {report.hints_seconds:.1f} s"],
        ["copied by the scheduled sync", f"{report.by_sync} ({report.unannounced} unannounced)"],
        ["converged", "yes" if report.converged else "NO"],
        ["wrong states", report.wrong],
        ["writes on untouched links", report.writes_on_untouched],
        ["purges sent twice", report.duplicate_purges],
    ]
    print(table(["measure", "value"], rows))
    if not report.converged or report.duplicate_purges or report.writes_on_untouched:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
