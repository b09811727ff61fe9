"""Benchmark: the Zendesk simulator's cost per request at tenant sizes (issue 16).

For each size N: seed N tickets (in 100 chunks a simulated minute apart, as
`bench/large_tenant.py` does) and time, in the simulator's own thread (requests handed to
its request pipeline directly: no sockets, no client decoding), the reads of a first sync
and of the sweep: the whole incremental export (1,000 a page), `show_many` over 100,000
ids (100 a call), 1,000 agent deletes spread over the tenant, `deleted_tickets` pages
(newest first) and audit-log pages over a 14-day window. A page that costs the page, not
the tenant, costs the same at every N.

Run: `.venv/bin/python bench/zendesk_sim.py [N ...]` (default 100000 1000000).
"""

from __future__ import annotations

import argparse
import base64
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import table

from bridge.sandbox import SimClock
from bridge.sandbox.http import Request
from bridge.vendors.zendesk.sim.simulator import ZendeskSimulator

AUTH = "Basic " + base64.b64encode(b"admin@example.com/token:sandbox-token").decode()
_TAIL = re.compile(rb'"after_cursor":"([^"]*)".*"end_of_stream":(true|false)\}$')


def measure(size: int) -> list[object]:
    clock = SimClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC), frozen=True)
    sim = ZendeskSimulator(clock=clock)
    sim.configure({"rate_limits": False, "audit_logs": True})

    def get(path: str, **query: object) -> bytes:
        request = Request(
            method="GET",
            path=f"/api/v2/{path}",
            raw_path=f"/api/v2/{path}",
            query={k: [str(v)] for k, v in query.items()},
            headers={"authorization": AUTH},
            body=b"",
        )
        answer = sim._handle(request)
        assert answer is not None, path
        assert answer[0] == 200, answer
        return answer[1]

    started = time.process_time()
    for _ in range(100):
        sim.seed_tickets(count=size // 100)
        clock.advance(60)
    seed = time.process_time() - started
    clock.advance(300)

    started, pages = time.process_time(), 1
    body = get("incremental/tickets/cursor", start_time=0, per_page=1000)
    while (match := _TAIL.search(body[-2000:])) and match[2] == b"false":
        body = get("incremental/tickets/cursor", cursor=match[1].decode(), per_page=1000)
        pages += 1
    export = (time.process_time() - started) / pages

    started, calls = time.process_time(), 0
    for first in range(1, min(size, 100_000) + 1, 100):
        get("tickets/show_many", ids=",".join(str(i) for i in range(first, first + 100)))
        calls += 1
    show_many = (time.process_time() - started) / calls

    spread = list(range(1, size + 1, max(1, size // 1000)))[:1000]
    started = time.process_time()
    sim.agent_act("delete", spread, agent=(7, "Ann"))
    deletes = time.process_time() - started

    started = time.process_time()
    for _ in range(10):
        get("deleted_tickets", **{"page[size]": 100, "sort_by": "deleted_at", "sort_order": "desc"})
    deleted = (time.process_time() - started) / 10

    now = clock.now()
    window = [f"{now - timedelta(days=14):%Y-%m-%dT%H:%M:%SZ}", f"{now:%Y-%m-%dT%H:%M:%SZ}"]
    started = time.process_time()
    for _ in range(10):
        request = Request(
            method="GET",
            path="/api/v2/audit_logs",
            raw_path="/api/v2/audit_logs",
            query={
                "filter[action]": ["destroy"],
                "filter[source_type]": ["ticket"],
                "filter[created_at][]": window,
                "page[size]": ["100"],
            },
            headers={"authorization": AUTH},
            body=b"",
        )
        sim._handle(request)
    audit = (time.process_time() - started) / 10
    return [
        f"{size:,}",
        f"{seed:.1f}",
        f"{pages:,}",
        f"{export * 1000:.1f}",
        f"{show_many * 1000:.2f}",
        f"{deletes * 1000:.0f}",
        f"{deleted * 1000:.2f}",
        f"{audit * 1000:.2f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[100_000, 1_000_000])
    args = parser.parse_args()
    headers = [
        "tickets",
        "seed CPU s",
        "export pages",
        "export ms/page",
        "show_many ms/call",
        "1,000 deletes ms",
        "deleted_tickets ms/page",
        "audit_logs ms/page",
    ]
    print(table(headers, [measure(size) for size in args.sizes]))


if __name__ == "__main__":
    main()
