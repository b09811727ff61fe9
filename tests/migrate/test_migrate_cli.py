"""`bridge migrate` on the command line (in-process through click's CliRunner)."""

from __future__ import annotations

import io
import json
from collections import Counter
from datetime import UTC, datetime

from bridge.report import Period, ReportMeta, build_document, write_report
from tests.migrate.conftest import Env
from tests.migrate.test_refusals import MIGRATE, RIGHTS_PROBE

#: any time the sandbox's clock may show
_ALL_TIME = Period(datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


def _seed(env: Env) -> list[tuple[int, int]]:
    """10 links: SuperOffice soft-deletes 4 and purges 2; Zendesk deleted 1 on its own."""
    pairs = env.link(10)
    env.so.soft_delete([s for s, _ in pairs[:4]])
    env.so.purge([s for s, _ in pairs[4:6]])
    env.zd.agent_act("delete", [pairs[9][1]], agent=(7, "Ann"))
    return pairs


def test_dry_run_prints_the_plan_and_writes_nothing(env: Env) -> None:
    pairs = _seed(env)
    env.reset_counters()
    result = env.cli(*MIGRATE, "--include-purges", "--dry-run")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Migration plan (dry run: nothing was written):"
    assert any(line.split() == ["zendesk", "soft_delete", "6"] for line in lines)
    assert any(line.split() == ["zendesk", "purge", "2"] for line in lines)
    assert any("restore not requested" in line and line.endswith(" 1") for line in lines)
    assert lines[-1].startswith("API calls: about ")
    assert "time: about" in lines[-1]
    assert "requests/min" in lines[-1]
    assert env.writes() == RIGHTS_PROBE
    assert env.ops() == []
    assert [env.zd_state(z) for _, z in pairs] == ["active"] * 9 + ["deleted"]


def test_dry_run_as_json_counts_transitions_calls_and_time(env: Env) -> None:
    _seed(env)
    result = env.cli(*MIGRATE, "--include-purges", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert plan["transitions"] == {"zendesk purge": 2, "zendesk soft_delete": 6}
    # one soft-delete batch and one purge batch, one poll round, one re-read each
    assert plan["api_calls"] == 5
    assert plan["estimated_seconds"] > 0
    assert plan["not_migrated"] == {"skip: restore not requested (--restore)": 1}
    assert env.ops() == []


def test_a_full_migration_converges_records_bases_and_is_not_repeated(env: Env) -> None:
    pairs = _seed(env)
    env.reset_counters()
    result = env.cli(*MIGRATE, "--include-purges")
    assert result.exit_code == 0, result.output
    assert "converged" in result.output
    assert env.states(pairs) == (
        [("deleted", "deleted")] * 4
        + [("purged", "purged")] * 2
        + [("active", "active")] * 3
        + [("active", "deleted")]  # restores were not asked for
    )
    writes = env.writes()
    assert writes["DELETE tickets/destroy_many"] == 1
    assert writes["DELETE deleted_tickets/destroy_many"] == 1
    assert "PUT deleted_tickets/restore_many" not in writes
    assert Counter(op.status for op in env.ops()) == {"confirmed": 8}
    base = env.ledger.status()["base"]
    assert base == {"soft_deleted": 4, "purged": 2, "active": 3, "unknown": 1}

    env.reset_counters()
    again = env.cli(*MIGRATE, "--include-purges")
    assert again.exit_code == 0, again.output
    assert env.writes() == RIGHTS_PROBE
    assert len(env.ops()) == 8


def test_after_a_migration_sync_plans_nothing(env: Env) -> None:
    pairs = env.link(6)
    env.so.soft_delete([s for s, _ in pairs[:3]])
    assert env.cli(*MIGRATE).exit_code == 0
    plan = env.cli("sync", "--dry-run")
    assert plan.exit_code == 0, plan.output
    assert "nothing to do" in plan.output
    env.reset_counters()
    result = env.cli("sync")
    assert result.exit_code == 0, result.output
    assert env.writes() == {}
    assert len(env.ops()) == 3
    assert env.ledger.status()["base"] == {"soft_deleted": 3, "active": 3}


def test_restore_only_when_asked(env: Env) -> None:
    pairs = env.link(4)
    env.zd.agent_act("delete", [z for _, z in pairs[:2]], agent=(7, "Ann"))
    first = env.cli(*MIGRATE)
    assert first.exit_code == 0, first.output
    assert [env.zd_state(z) for _, z in pairs] == ["deleted", "deleted", "active", "active"]
    env.reset_counters()
    result = env.cli(*MIGRATE, "--restore")
    assert result.exit_code == 0, result.output
    assert [env.zd_state(z) for _, z in pairs] == ["active"] * 4
    assert env.writes() == {**RIGHTS_PROBE, "PUT deleted_tickets/restore_many": 1}
    assert env.ledger.status()["base"] == {"active": 4}


def test_who_ran_the_migration_is_on_the_run_and_on_its_purges(env: Env) -> None:
    """A migration lifts the per-run purge cap: `--operator` names who asked, on the run,
    on its `override` event and on the audit rows of the purges it sent; a bad name is
    refused before anything is read or written."""
    pairs = _seed(env)
    env.reset_counters()
    bad = env.cli(*MIGRATE, "--include-purges", "--operator", "x\ny")
    assert bad.exit_code == 2
    assert "--operator" in bad.output
    assert env.routes("zendesk") == env.routes("superoffice") == {}
    assert env.ops() == []

    result = env.cli(*MIGRATE, "--include-purges", "--operator", "Jane Roe")
    assert result.exit_code == 0, result.output
    meta = ReportMeta(_ALL_TIME, datetime(2026, 4, 1, tzinfo=UTC), "ledger", "test")
    document = build_document(env.ledger, meta, detail_rows=0)
    (run,) = [r for r in document.runs if r.kind == "migrate"]
    assert run.operator == "Jane Roe"
    (override,) = [n for n in document.operator_actions if n.kind == "override"]
    assert (override.operator, override.detail, override.run_id) == (
        "Jane Roe",
        "allow_mass_purge",
        run.id,
    )
    out = io.StringIO()
    write_report(env.ledger, meta, "json", out)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    purged = {z for _, z in pairs[4:6]}
    purges = [
        r
        for r in rows
        if r.get("record_type") == "bridge_write"
        and r.get("transition") == "purge"
        and r.get("zendesk_id") in purged
    ]
    assert len(purges) == 2
    # the action a purge row names is the command that lifted the cap
    assert {(r["operator"], r["operator_action"]) for r in purges} == {("Jane Roe", "migrate")}
