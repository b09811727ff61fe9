"""Several pairs of simulators behind one config and one ledger URL (`[pairs.NAME]`)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bridge.config import Config, load_pairs
from bridge.ledger import Ledger, LinkRow
from bridge.sandbox_pair import Sandbox, write_pairs_config
from bridge.vendors.registry import SIDES


@dataclass
class Pairs:
    """Named sandboxes, the config that declares them as pairs, and a way to run bridge."""

    sandboxes: dict[str, Sandbox]
    config_path: Path

    def configs(self) -> dict[str, Config]:
        return load_pairs(self.config_path)

    def ledger(self, pair: str) -> Ledger:
        return Ledger.open(self.configs()[pair].ledger_url, sides=SIDES)

    def link(self, pair: str, count: int) -> list[tuple[int, int]]:
        """`count` new linked tickets in `pair`'s simulators (SuperOffice, Zendesk ids)."""
        sandbox = self.sandboxes[pair]
        so_ids = sandbox.superoffice.seed_tickets(count, title="Ticket {n}")
        zd_ids = sandbox.zendesk.seed_tickets(count=count)
        links = list(zip(so_ids, zd_ids, strict=True))
        with self.ledger(pair) as ledger:
            start = ledger.count_links() + 1
            rows = [LinkRow(start + n, s, z) for n, (s, z) in enumerate(links)]
            assert ledger.import_links(rows, origin="csv").ok
        return links

    def bridge(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bridge", "--config", str(self.config_path), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def _with_ledger_url(path: Path, url: str | None) -> None:
    if url is None:
        return
    text = path.read_text(encoding="utf-8")
    written = 'url = "sqlite:///bridge.db"\n'
    assert written in text
    path.write_text(text.replace(written, f'url = "{url}"\n'), encoding="utf-8")


@pytest.fixture
def pairs(tmp_path: Path, world_ledger_url: str | None) -> Iterator[Pairs]:
    """Two pairs, `acme` and `globex`, each with its own simulators (limits off)."""
    sandboxes = {name: Sandbox().start() for name in ("acme", "globex")}
    try:
        for sandbox in sandboxes.values():
            sandbox.relax_limits()
        path = write_pairs_config(tmp_path, dict(sandboxes))
        _with_ledger_url(path, world_ledger_url)
        yield Pairs(sandboxes, path)
    finally:
        for sandbox in sandboxes.values():
            sandbox.stop()
