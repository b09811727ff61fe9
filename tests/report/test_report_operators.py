"""Operator actions over real syncs against both simulators: `conflicts resolve --operator`
and a run with `--allow-mass-purge` record who did them, the report shows it on the rows,
the runs and the operator actions, and a resolved conflict is no longer open."""

from __future__ import annotations

import importlib
import io
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from bridge.cli import main
from bridge.cli.exitcodes import ExitCode
from bridge.config import load_config
from bridge.factory import build_adapters, policy_from_config
from bridge.report import Period, ReportMeta, build_document, write_report
from bridge.run.runner import RunResult, SyncRun
from bridge.run.state import RunOptions
from tests.report.conftest import Synced

EVERYTHING = Period(datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))


@dataclass
class Acted:
    synced: Synced
    resolve_output: str
    held: RunResult
    released: RunResult


def _run(synced: Synced, **options: Any) -> RunResult:
    config = load_config(synced.config_path)
    clock = synced.clock
    adapters = build_adapters(config, sleep=clock.sleep, clock=clock.now, monotonic=clock.timestamp)
    run = SyncRun(
        synced.ledger,
        adapters,
        RunOptions(policy=policy_from_config(config), **options),
        holder="test",
        now=clock.now,
        sleep=clock.sleep,
    )
    return run.execute()


def _cli(synced: Synced, *args: str) -> click.testing.Result:
    return CliRunner().invoke(main, ["--config", str(synced.config_path), *args])


@pytest.fixture(scope="module")
def acted(synced: Synced) -> Iterator[Acted]:
    """After the scripted history: Alice resolves pair 5's conflict (Zendesk wins), a sync
    carries it out; Zendesk purges pair 6 in a run capped at 0 purges (held), and Bob
    lets it through with --allow-mass-purge."""
    so_5, _ = synced.pairs[5]
    resolved = _cli(
        synced,
        "conflicts",
        "resolve",
        str(so_5),
        "--prefer",
        "zendesk",
        "--operator",
        "Alice Smith",
    )
    assert resolved.exit_code == 0, resolved.output
    synced.clock.advance(60)
    _run(synced)
    _, zd_6 = synced.pairs[6]
    synced.sandbox.zendesk.agent_act("delete", [zd_6], agent=(4242, "Ann"))
    synced.clock.advance(60)
    _run(synced)
    synced.sandbox.zendesk.agent_act("purge", [zd_6], agent=(4242, "Ann"))
    synced.clock.advance(60)
    held = _run(synced, max_purges_per_run=0)
    synced.clock.advance(60)
    released = _run(synced, max_purges_per_run=0, allow_mass_purge=True, operator="bob")
    return Acted(synced, resolved.output, held, released)


def _records(synced: Synced) -> list[dict[str, Any]]:
    out = io.StringIO()
    meta = ReportMeta(EVERYTHING, datetime(2026, 4, 1, tzinfo=UTC), "ledger.db", "test")
    write_report(synced.ledger, meta, "json", out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_resolve_names_who_settled_it(acted: Acted) -> None:
    assert "resolved by Alice Smith" in acted.resolve_output


def test_a_resolved_conflict_is_not_open_and_its_row_says_who_resolved_it(acted: Acted) -> None:
    synced = acted.synced
    meta = ReportMeta(EVERYTHING, datetime(2026, 4, 1, tzinfo=UTC), "ledger.db", "test")
    document = build_document(synced.ledger, meta, detail_rows=1000)
    assert document.summary.end.conflicts == 0
    assert "conflict" not in document.summary.outcomes
    so_5, zd_5 = synced.pairs[5]
    rows = [r for r in _records(synced) if r["zendesk_id"] == zd_5]
    # Zendesk's purge won: its copy is what became of it (SuperOffice purges by
    # retention), and the row names the person who decided it
    (winner,) = [r for r in rows if r["side"] == "zendesk" and r["transition"] == "purge"]
    assert winner["outcome"] == "pending_retention"
    assert (winner["operator"], winner["operator_action"]) == ("Alice Smith", "resolve")
    # the writes it planned carry who asked for them
    copies = [r for r in rows if r["record_type"] == "bridge_write" and r["side"] == "superoffice"]
    assert copies
    assert {(r["operator"], r["operator_action"]) for r in copies} == {("Alice Smith", "resolve")}
    # and the summary lists the action
    (action,) = [n for n in document.operator_actions if n.kind == "resolved"]
    assert (action.operator, action.first_id, action.second_id) == ("Alice Smith", so_5, zd_5)


def test_allow_mass_purge_records_the_operator_on_the_run_and_the_purges(acted: Acted) -> None:
    synced = acted.synced
    assert acted.held.counts["purges_held"] == 1
    assert acted.released.counts["purges_held"] == 0
    _so_6, zd_6 = synced.pairs[6]
    rows = [r for r in _records(synced) if r["zendesk_id"] == zd_6]
    (purge,) = [
        r for r in rows if r["record_type"] == "bridge_write" and r["transition"] == "purge"
    ]
    assert purge["side"] == "superoffice"
    assert purge["purge_verification"] == "pending_retention"  # SuperOffice purges by retention
    assert (purge["operator"], purge["operator_action"]) == ("bob", "allow_mass_purge")
    assert purge["run_id"] == acted.released.run_id
    # the soft delete before it went through a run without any override: no operator
    (soft,) = [
        r for r in rows if r["record_type"] == "bridge_write" and r["transition"] == "soft_delete"
    ]
    assert soft["operator"] is None
    meta = ReportMeta(EVERYTHING, datetime(2026, 4, 1, tzinfo=UTC), "ledger.db", "test")
    document = build_document(synced.ledger, meta, detail_rows=0)
    runs = {run.id: run for run in document.runs}
    assert runs[acted.released.run_id].operator == "bob"
    assert runs[acted.held.run_id].operator is None
    (override,) = [n for n in document.operator_actions if n.kind == "override"]
    assert (override.operator, override.detail, override.run_id) == (
        "bob",
        "allow_mass_purge",
        acted.released.run_id,
    )


def test_the_html_and_markdown_show_operators(acted: Acted) -> None:
    synced = acted.synced
    meta = ReportMeta(EVERYTHING, datetime(2026, 4, 1, tzinfo=UTC), "ledger.db", "test")
    for fmt in ("html", "md"):
        out = io.StringIO()
        write_report(synced.ledger, meta, fmt, out)
        text = out.getvalue()
        assert "bridge, for bob (allow_mass_purge)" in text
        assert "bridge, for Alice Smith (resolve)" in text
        assert "resolved by Alice Smith" in text


def test_sync_passes_the_operator_with_allow_mass_purge_only(
    synced: Synced, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The click layer: --operator goes with --allow-mass-purge, the login name is the
    default, a bad name is refused; the run itself is the library's (tested above)."""
    sync_cli = importlib.import_module("bridge.cli.sync")  # the module: `sync` is the command
    seen: list[RunOptions] = []

    def fake_run(config: object, ledger: object, options: RunOptions, *rest: object) -> Any:
        seen.append(options)
        return RunResult(run_id=1, outcome="converged", counts=Counter(), plan=[]), None

    monkeypatch.setattr(sync_cli, "_run_once", fake_run)
    monkeypatch.setenv("LOGNAME", "opsuser")
    assert _cli(synced, "sync", "--allow-mass-purge", "--operator", "Jane Roe").exit_code == 0
    assert _cli(synced, "sync", "--allow-mass-purge").exit_code == 0
    assert _cli(synced, "sync").exit_code == 0
    assert [(o.allow_mass_purge, o.operator) for o in seen] == [
        (True, "Jane Roe"),
        (True, "opsuser"),
        (False, None),
    ]
    alone = _cli(synced, "sync", "--operator", "Jane Roe")
    assert alone.exit_code == ExitCode.USAGE
    assert "--allow-mass-purge" in alone.output
    bad = _cli(synced, "sync", "--allow-mass-purge", "--operator", "x\ny")
    assert bad.exit_code == ExitCode.USAGE
    assert len(seen) == 3


def test_help_teaches_the_operator_options(tmp_path: Path) -> None:
    for args in (["sync", "--help"], ["conflicts", "resolve", "--help"], ["migrate", "--help"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0
        assert "--operator" in result.output
        assert "login name" in result.output
