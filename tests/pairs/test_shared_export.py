"""Pairs on one Zendesk account read its incremental export once between them (issue 18):
the export lists every ticket of the account, so each pair reading all of it made N pairs
cost N times the account's 10 pages a minute. A page one pair read (one that more pages
follow) is kept beside the ledgers, with ids, states and times only, and the other pairs
read it from there."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select, text

from bridge.budgets import Budgets, _pages
from bridge.config import load_pairs
from bridge.ledger import Ledger, LinkRow
from bridge.sandbox_pair import Sandbox, write_pairs_config
from bridge.vendors.registry import SIDES
from bridge.vendors.zendesk import wire

EXPORT = "GET incremental/tickets/cursor"
_BRIDGE = [sys.executable, "-m", "bridge"]


@dataclass
class OneAccount:
    """Pairs acme and globex: their own SuperOffice tenants, acme's Zendesk account."""

    acme: Sandbox
    globex: Sandbox
    config_path: Path

    def link(self, pair: str, so_ids: list[int], zd_ids: list[int]) -> None:
        config = load_pairs(self.config_path)[pair]
        with Ledger.open(config.ledger_url, sides=SIDES) as ledger:
            rows = [
                LinkRow(n + 1, s, z) for n, (s, z) in enumerate(zip(so_ids, zd_ids, strict=True))
            ]
            assert ledger.import_links(rows, origin="csv").ok

    def sync(self, pair: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*_BRIDGE, "--config", str(self.config_path), "sync", "--pair", pair],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def exports(self) -> int:
        """Export pages the account answered since the last look."""
        counts = self.acme.zendesk.counts()["routes"].get(EXPORT, 0)
        self.acme.zendesk.counters.reset()
        return int(counts)

    def zendesk_states(self, pair: str) -> dict[str, int]:
        config = load_pairs(self.config_path)[pair]
        with Ledger.open(config.ledger_url, sides=SIDES) as ledger, ledger.session() as s:
            rows = s.execute(
                text("SELECT second_state, count(*) FROM pair_state GROUP BY second_state")
            ).all()
        return {str(state): int(n) for state, n in rows}


@pytest.fixture
def one_account(tmp_path: Path, world_ledger_url: str | None) -> Iterator[OneAccount]:
    acme, globex = Sandbox().start(), Sandbox().start()
    try:
        for sandbox in (acme, globex):
            sandbox.relax_limits()
        path = write_pairs_config(tmp_path, {"acme": acme, "globex": globex})
        config = path.read_text(encoding="utf-8")
        config = config.replace(globex.zendesk.base_url, acme.zendesk.base_url)
        if world_ledger_url is not None:
            config = config.replace('url = "sqlite:///bridge.db"', f'url = "{world_ledger_url}"')
        path.write_text(config, encoding="utf-8")
        yield OneAccount(acme, globex, path)
    finally:
        acme.stop()
        globex.stop()


def test_the_second_pair_reads_the_first_pairs_pages_not_zendesk(one_account: OneAccount) -> None:
    """2,500 tickets in the account (three export pages of 1,000): acme reads all three,
    globex then only the last one (the end of the export is always read anew); both see
    their own tickets, and a later change is read by each pair."""
    world = one_account
    zd_ids = world.acme.zendesk.seed_tickets(count=2500, template={"subject": "Secret {n}"})
    acme_so = world.acme.superoffice.seed_tickets(1250, title="Ticket {n}")
    globex_so = world.globex.superoffice.seed_tickets(1250, title="Ticket {n}")
    world.link("acme", acme_so, zd_ids[:1250])
    world.link("globex", globex_so, zd_ids[1250:])
    world.exports()

    first = world.sync("acme")
    assert first.returncode == 0, first.stderr
    assert world.exports() == 3
    second = world.sync("globex")
    assert second.returncode == 0, second.stderr
    assert world.exports() == 1
    assert world.zendesk_states("acme") == {"active": 1250}
    assert world.zendesk_states("globex") == {"active": 1250}

    # the kept pages hold ids, states and times: no subject
    budgets = Budgets(
        load_pairs(world.config_path)["acme"].shared_ledger_url,
        clock=world.acme.clock.now,
        sleep=world.acme.clock.sleep,
    )
    with budgets.engine.connect() as connection:
        bodies = connection.execute(select(_pages.c.body)).scalars().all()
    budgets.close()
    assert len(bodies) == 2  # the two pages that more followed
    pages = [wire.read_shared_page(bytes(body)) for body in bodies]
    assert all(page is not None for page in pages)
    kept = [t for page in pages if page is not None for t in page.tickets]
    assert len(kept) == 2000
    assert {t.subject for t in kept} == {None}

    # a change after the kept pages: each pair reads it from its own cursor
    world.acme.zendesk.agent_act("delete", [zd_ids[0], zd_ids[-1]], agent=(7, "Ann"))
    for pair in ("acme", "globex"):
        again = world.sync(pair)
        assert again.returncode in (0, 3), again.stderr  # 3: a decision waits (manual)
        assert world.zendesk_states(pair) == {"active": 1249, "soft_deleted": 1}


def test_a_damaged_kept_page_is_read_from_zendesk(one_account: OneAccount) -> None:
    """A kept page that cannot be read (damaged, or kept by another version) is not
    trusted: the pair reads Zendesk, as a pair alone on its account would."""
    world = one_account
    zd_ids = world.acme.zendesk.seed_tickets(count=1500)
    world.link("acme", world.acme.superoffice.seed_tickets(750), zd_ids[:750])
    world.link("globex", world.globex.superoffice.seed_tickets(750), zd_ids[750:])
    assert world.sync("acme").returncode == 0
    budgets = Budgets(
        load_pairs(world.config_path)["acme"].shared_ledger_url,
        clock=world.acme.clock.now,
        sleep=world.acme.clock.sleep,
    )
    with budgets.engine.begin() as connection:
        assert connection.execute(_pages.update().values(body=b"not a page")).rowcount == 1
    budgets.close()
    world.exports()
    assert world.sync("globex").returncode == 0
    assert world.exports() == 2
    assert world.zendesk_states("globex") == {"active": 750}
