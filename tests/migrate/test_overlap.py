"""A migration fills its waits: one side is read while the other's rate limit holds it back,
the writes are re-read while vendor jobs still run, and a purge goes out as soon as its
soft delete is confirmed. Asserted on the order of the calls both simulators receive (on
a frozen simulated clock), with Zendesk's rate limits on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from bridge.core.model import Side
from bridge.ledger import LinkRow
from bridge.run.migrate import MigrationOptions, migration_run
from bridge.vendors.http import HttpClient
from bridge.vendors.registry import SUPEROFFICE, ZENDESK
from bridge.vendors.zendesk.adapter import ZendeskAdapter
from tests.migrate.conftest import Env

EXPORT = "api/v2/incremental/tickets/cursor"
SOFT_DELETE = "api/v2/tickets/destroy_many"
PURGE = "api/v2/deleted_tickets/destroy_many"
POLL = "api/v2/job_statuses/show_many"


@dataclass(frozen=True)
class Call:
    at: float  # simulated seconds since the run started
    side: Side
    path: str


def _record(client: HttpClient, side: Side, env: Env, calls: list[Call], start: float) -> None:
    send = client.request

    def request(method: str, path: str, **kwargs: Any) -> Any:
        calls.append(Call(env.clock.timestamp() - start, side, path))
        return send(method, path, **kwargs)

    client.request = request  # type: ignore[method-assign]


@dataclass
class Traced:
    env: Env
    zendesk_ids: list[int]
    calls: list[Call]


@pytest.fixture
def traced(frozen: Env) -> Traced:
    """30 links: 25 soft-deleted and 5 purged in SuperOffice, all active in Zendesk; the
    Zendesk export at its real limit (10 pages a minute) and pages of 2 tickets, bulk
    calls of 5 ids and 2 jobs at a time, so that every wait of a large migration shows."""
    so_ids = frozen.so.seed_tickets(30, title="T {n}")
    zd_ids = frozen.zd.seed_tickets(count=30)
    frozen.so.soft_delete(so_ids)
    frozen.so.purge(so_ids[25:])
    rows = [LinkRow(n, s, z) for n, (s, z) in enumerate(zip(so_ids, zd_ids, strict=True), 1)]
    assert frozen.ledger.import_links(rows, origin="csv").ok
    frozen.zd.configure({"rate_limits": True, "max_jobs": 2})
    frozen.clock.advance(120)  # a fresh export window
    frozen.reset_counters()
    return Traced(frozen, zd_ids, [])


def _migrate(traced: Traced) -> list[str | None]:
    """Migrate SuperOffice → Zendesk with purges; Zendesk's states afterwards."""
    env, calls = traced.env, traced.calls
    clock = env.sandbox.clock
    adapters = env.adapters()
    zendesk = ZendeskAdapter(
        base_url=env.zd.base_url,
        email=env.zd.email,
        token="sandbox-token",
        job_limit=2,
        export_per_page=2,
        sleep=clock.sleep,
        clock=clock.now,
    )
    zendesk.batch_limit = 5
    adapters[ZENDESK] = zendesk
    start = clock.timestamp()
    for side, adapter in adapters.items():
        _record(adapter.http, side, env, calls, start)
    result = migration_run(
        env.ledger,
        adapters,
        MigrationOptions(SUPEROFFICE, ZENDESK, include_purges=True),
        holder="test",
        now=clock.now,
        sleep=clock.sleep,
    ).execute()
    assert result.outcome == "converged"
    return [env.zd_state(z) for z in traced.zendesk_ids]


def test_superoffice_is_read_while_the_zendesk_export_waits_for_its_limit(
    traced: Traced,
) -> None:
    calls = traced.calls
    assert _migrate(traced) == ["deleted"] * 25 + ["purged"] * 5
    exports = [c for c in calls if c.path == EXPORT]
    # the account is 15 pages: the 11th has to wait for the next minute
    assert exports[10].at >= 55
    # SuperOffice's per-ticket reads (one per purged ticket) did not wait behind it
    purged_reads = [c for c in calls if c.side == SUPEROFFICE and c.path.startswith("Ticket/")]
    assert len(purged_reads) == 5
    assert max(c.at for c in purged_reads) < exports[10].at


def test_writes_are_re_read_and_purges_sent_while_jobs_still_run(
    traced: Traced,
) -> None:
    calls = traced.calls
    assert _migrate(traced) == ["deleted"] * 25 + ["purged"] * 5
    zendesk = [c.path for c in calls if c.side == ZENDESK]
    first_write = zendesk.index(SOFT_DELETE)
    last_poll = len(zendesk) - 1 - zendesk[::-1].index(POLL)
    soft_deletes = [i for i, p in enumerate(zendesk) if p == SOFT_DELETE]
    assert len(soft_deletes) == 6  # 30 ids, 5 a call: none sent twice
    # confirming export reads between the first write and the last job poll
    assert any(p == EXPORT for p in zendesk[first_write:last_poll])
    # the purges' soft deletes went first; the purge call did not wait for the others' jobs
    purge = zendesk.index(PURGE)
    assert purge < last_poll
    assert zendesk.count(PURGE) == 1
