"""`bridge link discover` against both simulators."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from bridge.cli import main
from bridge.cli.discover import discover
from bridge.factory import build_adapters
from bridge.ledger import LinkRow
from bridge.links_discover import discover_links
from bridge.vendors.registry import SUPEROFFICE, ZENDESK
from tests.conftest import both_backends
from tests.e2e.conftest import World

pytestmark = both_backends


@pytest.fixture
def cli() -> click.Group:
    """The `bridge` command group, with `link discover` wired in."""
    link = main.get_command(click.Context(main), "link")
    assert isinstance(link, click.Group)
    assert link.commands["discover"] is discover
    return main


def _seed(world: World) -> dict[str, int]:
    """SuperOffice 1-5; Zendesk tickets naming them in various ways."""
    so = world.so.seed_tickets(5, title="T {n}")
    tickets = [
        {"subject": "a", "external_id": f"superoffice-{so[0]}"},  # clean
        {"subject": "b", "external_id": f"superoffice-{so[1]}"},  # clean, soft-deleted
        {"subject": "c", "external_id": f"superoffice-{so[2]}"},  # ambiguous (twice)
        {"subject": "d", "external_id": f"superoffice-{so[2]}"},
        {"subject": "e", "external_id": "superoffice-999"},  # dangling
        {"subject": "f", "external_id": "crm-7"},  # not the pattern
        {"subject": "g"},  # no external id
        {"subject": "h", "external_id": f"superoffice-{so[3]}"},  # clashes with a link
        {"subject": "i", "external_id": f"superoffice-{so[4]}"},  # already linked
    ]
    zd = world.zd.seed_tickets(tickets)
    world.zd.agent_act("delete", [zd[1]], agent=(7, "Ann"))
    extra = world.zd.seed_tickets([{"subject": "other"}])
    assert world.ledger.import_links(
        [LinkRow(1, so[3], extra[0]), LinkRow(2, so[4], zd[8])], origin="csv"
    ).ok
    return {"so0": so[0], "so1": so[1], "so2": so[2], "zd0": zd[0], "zd1": zd[1]}


def test_discover_links_clean_pairs_and_reports_the_rest(world: World) -> None:
    ids = _seed(world)
    config = world.config()
    adapters = build_adapters(config, sleep=world.clock.sleep, clock=world.clock.now)
    report = discover_links(world.ledger, adapters[ZENDESK], adapters[SUPEROFFICE], config.links)
    assert report.linked == [(ids["so0"], ids["zd0"]), (ids["so1"], ids["zd1"])]
    assert report.already_linked == 1
    assert [(a.superoffice_id, len(a.zendesk_ids)) for a in report.ambiguous] == [
        (ids["so2"], 2),
        (4, 1),
    ]
    assert "already linked to zendesk" in report.ambiguous[1].reason
    assert [(d.superoffice_id) for d in report.dangling] == [999]
    assert report.matched == 7
    assert report.scanned == 10
    linked = {(link.first_id, link.second_id, link.origin) for link in world.ledger.iter_links()}
    assert (ids["so0"], ids["zd0"], "external_id") in linked
    assert (ids["so1"], ids["zd1"], "external_id") in linked
    assert world.ledger.count_links() == 4
    # a second run links nothing new and reports the same problems
    again = discover_links(world.ledger, adapters[ZENDESK], adapters[SUPEROFFICE], config.links)
    assert again.linked == []
    assert again.already_linked == 3
    assert world.ledger.count_links() == 4


def test_discover_cli_dry_run_links_nothing_and_exits_4_on_problems(
    world: World, cli: click.Group
) -> None:
    ids = _seed(world)
    runner = CliRunner()
    result = runner.invoke(
        cli, ["--config", str(world.config_path), "link", "discover", "--dry-run"]
    )
    assert result.exit_code == 4, result.output
    assert "Would link 2 new pairs (1 already linked)." in result.output
    assert f"superoffice {ids['so0']} ↔ zendesk {ids['zd0']}" in result.output
    assert "Dangling, not linked (1)" in result.output
    assert world.ledger.count_links() == 2
    result = runner.invoke(cli, ["--config", str(world.config_path), "link", "discover", "--json"])
    assert result.exit_code == 4
    body = json.loads(result.output)
    assert body["linked"] == [
        {"superoffice_id": ids["so0"], "zendesk_id": ids["zd0"]},
        {"superoffice_id": ids["so1"], "zendesk_id": ids["zd1"]},
    ]
    assert world.ledger.count_links() == 4


def test_discover_cli_clean_exits_0_and_a_dead_vendor_exits_5(
    world: World, cli: click.Group
) -> None:
    so = world.so.seed_tickets(2, title="T {n}")
    world.zd.seed_tickets([{"subject": "x", "external_id": f"superoffice-{i}"} for i in so])
    runner = CliRunner()
    world.zd.add_fault("status", status=401, route="GET incremental/tickets/cursor")
    failed = runner.invoke(cli, ["--config", str(world.config_path), "link", "discover"])
    assert failed.exit_code == 5
    assert world.ledger.count_links() == 0
    world.zd.clear_faults()
    ok = runner.invoke(cli, ["--config", str(world.config_path), "link", "discover"])
    assert ok.exit_code == 0, ok.output
    assert "Linked 2 new pairs" in ok.output
    assert world.ledger.count_links() == 2
