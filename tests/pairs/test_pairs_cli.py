"""Many pairs in one ledger (issue 18): each pair's rows are its own, every command takes
--pair, and a command that needs one pair refuses to guess."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from bridge.ledger import Ledger
from bridge.ledger.engine import pair_ledger_url
from bridge.vendors.registry import SIDES
from tests.conftest import both_backends
from tests.pairs.conftest import Pairs


@both_backends
def test_a_sync_of_one_pair_reads_and_writes_only_that_pairs_accounts(pairs: Pairs) -> None:
    # both pairs' simulators number tickets from the same start: the same ids in two
    # pairs are two different tickets, and each pair's ledger holds its own link
    acme = pairs.link("acme", 3)
    globex = pairs.link("globex", 3)
    assert [so for so, _ in acme] == [so for so, _ in globex]
    for pair in ("acme", "globex"):
        assert pairs.bridge("sync", "--pair", pair).returncode == 0

    so_id, zd_id = acme[0]
    pairs.sandboxes["acme"].superoffice.soft_delete([so_id])
    pairs.sandboxes["globex"].superoffice.soft_delete([globex[1][0]])
    for sandbox in pairs.sandboxes.values():
        sandbox.zendesk.counters.reset()

    result = pairs.bridge("--pair", "acme", "sync", "--json")
    assert result.returncode == 0, result.stderr
    assert pairs.sandboxes["acme"].zendesk.ticket_state(zd_id) == "deleted"
    # globex's deletion waits for globex's own run; its Zendesk saw no call at all
    assert pairs.sandboxes["globex"].zendesk.ticket_state(globex[1][1]) == "active"
    assert sum(pairs.sandboxes["globex"].zendesk.counts()["routes"].values()) == 0

    result = pairs.bridge("sync", "--pair", "globex")
    assert result.returncode == 0, result.stderr
    assert pairs.sandboxes["globex"].zendesk.ticket_state(globex[1][1]) == "deleted"
    assert pairs.sandboxes["acme"].zendesk.ticket_state(acme[1][1]) == "active"

    with pairs.ledger("acme") as ledger:
        acme_runs = ledger.status()["runs"]
    assert len(acme_runs) == 2


def test_a_command_without_pair_refuses_to_guess_and_names_the_pairs(pairs: Pairs) -> None:
    result = pairs.bridge("sync")
    assert result.returncode == 2
    assert "declares the pairs acme, globex: choose one with --pair NAME" in result.stderr
    result = pairs.bridge("sync", "--pair", "acme_corp")
    assert result.returncode == 2
    assert "no pair named 'acme_corp' (declared: acme, globex)" in result.stderr


@both_backends
def test_init_ledger_only_takes_pair_after_the_command(pairs: Pairs) -> None:
    """The upgrade step docs/workers.md gives (`init --ledger-only --pair NAME`, as
    `--pair` goes after every other command) creates that pair's ledger, and only its."""
    made = pairs.bridge("init", "--ledger-only", "--pair", "globex")
    assert made.returncode == 0, made.stderr
    assert "Ledger ready" in made.stdout
    with pairs.ledger("globex") as ledger:
        assert ledger.count_links() == 0
    refused = pairs.bridge("init", "--ledger-only")
    assert refused.returncode == 2
    assert "choose one with --pair NAME" in refused.stderr


def test_a_pair_without_a_ledger_is_named_with_the_command_that_makes_it(pairs: Pairs) -> None:
    url = pairs.configs()["globex"].ledger_url
    assert url.startswith("sqlite:///")
    Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
    shown = pairs.bridge("status")
    assert shown.returncode == 2
    assert "pair globex: " in shown.stderr
    # without --pair the command it names would refuse to guess among the pairs
    assert "`bridge init --ledger-only --pair globex`" in shown.stderr, shown.stderr
    assert pairs.bridge("init", "--ledger-only", "--pair", "globex").returncode == 0
    assert pairs.bridge("status").returncode == 0


def test_check_names_each_pairs_keys_as_the_file_spells_them(pairs: Pairs) -> None:
    shown = pairs.bridge("check", "--offline")
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout + shown.stderr
    for pair in ("acme", "globex"):  # the sandbox's loopback http: a warning per vendor
        assert f":pairs.{pair}.zendesk.base_url: plain http" in out, out
    assert ":zendesk.base_url: plain http" not in out


def test_pair_help_says_which_commands_cover_every_pair_without_it(pairs: Pairs) -> None:
    def pair_help(*command: str) -> str:
        shown = pairs.bridge(*command, "--help")
        assert shown.returncode == 0, shown.stderr
        after = shown.stdout.split("--pair NAME", 1)[1]
        return " ".join(after.split("-v, --verbose", 1)[0].split())

    for command in (["status"], ["check"], ["serve"], ["webhooks", "register"]):
        assert pair_help(*command).endswith("Default: every pair."), command
    for command in (["sync"], ["report"], ["ledger", "copy"], ["link", "import"]):
        assert pair_help(*command).endswith("needed when there are several."), command
    assert pair_help("init").startswith("With --ledger-only:")


def test_status_without_pair_shows_every_pair(pairs: Pairs) -> None:
    pairs.link("acme", 2)
    assert pairs.bridge("sync", "--pair", "acme").returncode == 0
    result = pairs.bridge("status", "--json")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert set(shown["pairs"]) == {"acme", "globex"}
    assert shown["pairs"]["acme"]["links"] == 2
    assert shown["pairs"]["globex"]["links"] == 0
    health = {row["pair"]: row for row in shown["health"]}
    assert health["acme"]["overdue"] is False
    assert health["globex"]["overdue"] is True  # never succeeded
    text_out = pairs.bridge("status").stdout
    assert "== pair acme" in text_out
    assert "== pair globex" in text_out
    one = json.loads(pairs.bridge("status", "--pair", "globex", "--json").stdout)
    assert one["pair"] == "globex"
    assert one["links"] == 0


@both_backends
def test_each_pair_has_its_own_lease(pairs: Pairs) -> None:
    """A run holding acme's lease does not keep globex's run waiting."""
    from datetime import timedelta

    pairs.link("acme", 1)
    pairs.link("globex", 1)
    with pairs.ledger("acme") as ledger:
        ledger.acquire_lease("sync", "elsewhere:1", timedelta(minutes=10))
        held = pairs.bridge("sync", "--pair", "acme")
        other = pairs.bridge("sync", "--pair", "globex")
    assert held.returncode == 3, held.stderr
    assert other.returncode == 0, other.stderr


@both_backends
def test_pairs_ledgers_are_apart_in_the_database(pairs: Pairs, backend: str) -> None:
    pairs.link("acme", 2)
    pairs.link("globex", 1)
    configs = pairs.configs()
    assert configs["acme"].ledger_url != configs["globex"].ledger_url
    assert configs["acme"].shared_ledger_url == configs["globex"].shared_ledger_url
    with pairs.ledger("acme") as ledger, ledger.engine.connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM link")).scalar_one() == 2
        if backend == "postgresql":
            schema = connection.execute(text("SELECT current_schema()")).scalar_one()
            assert schema == "bridge_acme"
    with pairs.ledger("globex") as ledger, ledger.engine.connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM link")).scalar_one() == 1


def test_check_without_pair_checks_every_pair(pairs: Pairs) -> None:
    result = pairs.bridge("check", "--json")
    assert result.returncode == 0, result.stderr
    checks = json.loads(result.stdout)["checks"]
    assert {row["pair"] for row in checks} == {"acme", "globex"}
    assert {row["side"] for row in checks if row["pair"] == "globex"} >= {"zendesk", "ledger"}
    pairs.sandboxes["globex"].zendesk.stop()  # one pair's vendor down: exit 5, named
    result = pairs.bridge("check")
    assert result.returncode == 5
    failed = [line for line in result.stdout.splitlines() if "FAIL" in line]
    assert failed
    assert all(line.startswith("[globex] zendesk") for line in failed)


@both_backends
def test_link_import_report_and_ledger_copy_work_per_pair(
    pairs: Pairs, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    """`link import`, `report` and `ledger copy` act on the named pair's ledger only; a
    pair's copy lands where that pair's ledger will be under the new URL."""
    so_ids = pairs.sandboxes["globex"].superoffice.seed_tickets(2, title="T {n}")
    zd_ids = pairs.sandboxes["globex"].zendesk.seed_tickets(count=2)
    links = tmp_path / "links.csv"
    links.write_text(
        "superoffice_id,zendesk_id\n"
        + "".join(f"{s},{z}\n" for s, z in zip(so_ids, zd_ids, strict=True)),
        encoding="utf-8",
    )
    result = pairs.bridge("link", "import", str(links), "--pair", "globex")
    assert result.returncode == 0, result.stderr
    with pairs.ledger("globex") as ledger:
        assert ledger.count_links() == 2
    with pairs.ledger("acme") as ledger:
        assert ledger.count_links() == 0
    assert pairs.bridge("sync", "--pair", "globex").returncode == 0
    pairs.sandboxes["globex"].superoffice.soft_delete([so_ids[1]])
    assert pairs.bridge("sync", "--pair", "globex").returncode == 0

    report = pairs.bridge("report", "--pair", "globex", "--format", "json", "-o", "-")
    assert report.returncode == 0, report.stderr
    records = [json.loads(line) for line in report.stdout.splitlines()]
    # the deletion on SuperOffice and its copy on Zendesk
    assert [record["transition"] for record in records] == ["soft_delete", "soft_delete"]
    assert str(zd_ids[1]) in report.stdout
    empty = pairs.bridge("report", "--pair", "acme", "--format", "json", "-o", "-")
    assert empty.returncode == 0
    assert empty.stdout == ""  # acme's ledger saw nothing of globex's

    if backend == "sqlite":
        target = f"sqlite:///{tmp_path / 'moved' / 'bridge.db'}"
    else:
        cluster = request.getfixturevalue("pg_cluster")
        target = cluster.url(cluster.create_database())
    copied = pairs.bridge("ledger", "copy", "--pair", "globex", "--to", target)
    assert copied.returncode == 0, copied.stderr
    assert "Copied pair globex's ledger" in copied.stdout
    assert "--pair acme" in copied.stdout
    with Ledger.open(pair_ledger_url(target, "globex"), sides=SIDES) as moved:
        assert moved.count_links() == 2
