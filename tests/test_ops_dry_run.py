"""`bridge sync --dry-run`: a summary first, the plan per link on request, nothing recorded.

Both simulators over real HTTP (a clock sped up 50 times, so that the real syncs that set
the scene finish their vendor jobs quickly), bridge in-process through click's runner; the
ledger on each backend in turn.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.badinput.conftest import Dump, ledger_dump
from tests.conftest import BACKENDS
from tests.migrate.conftest import SPEED, Env
from tests.sandbox_world import running_sandbox


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Every world's ledger backend in turn (overrides tests/conftest.py's SQLite-only
    default)."""
    return str(request.param)


@pytest.fixture
def env(tmp_path: Path, world_ledger_url: str | None) -> Iterator[Env]:
    """A cap of one purge per run: two purges planned are both held."""
    with running_sandbox(SPEED) as sandbox:
        world = Env(
            sandbox,
            tmp_path / "bridge",
            ledger_url=world_ledger_url,
            lease_seconds="1",
            max_purges_per_run="1",
        )
        try:
            yield world
        finally:
            world.close()


def _scene(env: Env) -> list[tuple[int, int]]:
    """14 links agreed on by a first sync; two deleted in Zendesk and copied; then, unsynced:
    Zendesk purges those two, deletes and purges an active one (a soft delete then a purge
    to copy), deletes two more; SuperOffice deletes three."""
    pairs = env.link(14)
    zd = [z for _, z in pairs]
    assert env.cli("sync").exit_code == 0
    env.zd.agent_act("delete", zd[0:2], agent=(7, "Ann"))
    assert env.cli("sync").exit_code == 0
    env.zd.agent_act("delete", [zd[7]], agent=(7, "Ann"))
    env.zd.agent_act("purge", [*zd[0:2], zd[7]], agent=(7, "Ann"))
    env.zd.finish_jobs()
    env.zd.agent_act("delete", zd[5:7], agent=(7, "Ann"))
    env.so.soft_delete([s for s, _ in pairs[2:5]])
    return pairs


def _dump(env: Env) -> Dump:
    """Every row of every table of the ledger, and its schema: equal dumps, equal ledgers."""
    return ledger_dump(env.config().ledger_url)


def _rows(env: Env) -> dict[str, int]:
    return {table: len(rows) for table, rows in _dump(env).items() if not table.startswith("(")}


def test_a_dry_run_records_nothing_in_the_ledger_and_writes_to_no_vendor(env: Env) -> None:
    _scene(env)
    before, rows = _dump(env), _rows(env)
    env.reset_counters()
    result = env.cli("sync", "--dry-run")
    assert result.exit_code == 0, result.output
    assert _dump(env) == before
    assert _rows(env) == rows
    assert rows["run"] == 2  # the scene's own syncs; the dry run added none
    assert env.writes() == {}


def test_the_summary_counts_writes_per_direction_and_transition_and_holds_purges_once(
    env: Env,
) -> None:
    _scene(env)
    result = env.cli("sync", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    summary = report["summary"]
    writes = {(w["source"], w["target"], w["transition"]): w for w in summary["writes"]}
    assert {key: w["count"] for key, w in writes.items()} == {
        ("superoffice", "zendesk", "soft_delete"): 3,
        ("zendesk", "superoffice", "soft_delete"): 3,
        ("zendesk", "superoffice", "purge"): 3,
    }
    # Zendesk: one bulk call and one job poll; SuperOffice writes are synchronous
    assert writes[("superoffice", "zendesk", "soft_delete")]["calls"] == 2
    assert writes[("zendesk", "superoffice", "soft_delete")]["calls"] == 1
    assert summary["calls"] == sum(w["calls"] for w in summary["writes"])
    assert writes[("superoffice", "zendesk", "soft_delete")]["seconds"] > 0
    # three links end in a purge (one after its soft delete), over the cap of one: all
    # three held, each counted once
    assert summary["held_purges"] == 3
    assert summary["conflicts"] == 0
    assert summary["divergences"] == 0
    assert report["run"] is None
    assert report["outcome"] == "dry_run"
    assert len(report["plan"]) == 8  # --json always carries the plan per link


def test_the_text_summary_comes_first_and_the_plan_per_link_only_with_details(
    env: Env,
) -> None:
    pairs = _scene(env)
    plain = env.cli("sync", "--dry-run")
    assert plain.exit_code == 0, plain.output
    lines = plain.output.splitlines()
    assert lines[0] == "Dry run: nothing was written to either vendor or to the ledger."
    assert any(line.split()[:5] == ["zendesk", "→", "superoffice", "purge", "3"] for line in lines)
    assert any(line.startswith("Held purges: 3 ") for line in lines)
    assert "Conflicts: 0; divergences: 0" in lines
    assert not any(line.lstrip().startswith("link ") for line in lines)
    assert "The plan per link: add --details (or --json)." in lines

    detailed = env.cli("sync", "--dry-run", "--details")
    assert detailed.exit_code == 0, detailed.output
    per_link = [line for line in detailed.output.splitlines() if line.startswith("  link ")]
    assert len(per_link) == 8
    assert any(
        f"zendesk {pairs[7][1]})" in line and "soft_delete then purge" in line for line in per_link
    )


def test_details_without_dry_run_is_a_usage_error(env: Env) -> None:
    result = env.cli("sync", "--details")
    assert result.exit_code == 2
    assert "--dry-run" in result.output


def test_a_dry_run_reports_conflicts_and_what_the_ledger_holds_open(env: Env) -> None:
    pairs = env.link(3)
    assert env.cli("sync").exit_code == 0
    env.so.soft_delete([pairs[0][0]])
    assert env.cli("sync").exit_code == 0  # base: soft_deleted on both sides
    env.so.restore([pairs[0][0]])
    env.zd.agent_act("purge", [pairs[0][1]], agent=(7, "Ann"))
    env.zd.finish_jobs()
    assert env.cli("sync").exit_code == 4  # the conflict is recorded
    env.zd.agent_act("delete", [pairs[1][1]], agent=(7, "Ann"))
    result = env.cli("sync", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)["summary"]
    assert summary["open_attention"] == {"conflict": 1}
    assert [(w["target"], w["transition"], w["count"]) for w in summary["writes"]] == [
        ("superoffice", "soft_delete", 1)
    ]
