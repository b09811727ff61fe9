"""`bridge demo`: the printed summary matches the ledger it leaves and the simulators."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from sqlmodel import select

from bridge.cli import main
from bridge.cli.demo import demo
from bridge.demo import DemoOptions, run_demo
from bridge.ledger import Ledger
from bridge.ledger.tables import Operation
from bridge.vendors.registry import SIDES


def test_the_demo_command_prints_its_rounds_and_leaves_a_usable_folder(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    result = CliRunner().invoke(demo, ["--dir", str(folder), "--tickets", "300"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"bridge demo in {folder}" in out
    assert "Seeded 300 tickets on each side" in out
    rounds = [line.split() for line in out.splitlines() if "-> " in line]
    assert [r[0] for r in rounds] == ["migration", "sync", "sync", "sync", "sync", "sync"]
    assert rounds[0][-1] == "converged"

    config = folder / "bridge.toml"
    with Ledger.open(f"sqlite:///{folder / 'bridge.db'}", sides=SIDES) as ledger:
        runs = sorted(ledger.recent_runs(20), key=lambda run: run.id or 0)
        status = ledger.status()
    real = [run for run in runs if not run.dry_run]
    assert [run.kind for run in real] == ["migrate"] + ["sync"] * 5
    for line, run in zip(rounds, real, strict=True):
        counts = json.loads(run.counts)
        copied = sum(n for key, n in counts.items() if key.endswith(".sent"))
        assert int(line[line.index("copied") + 1]) == copied
        assert int(line[line.index("confirmed") + 1]) == counts.get("confirmed", 0)
        assert line[-1] == run.outcome
    base = ", ".join(f"{n:,} {k}" for k, n in sorted(status["base"].items()))
    assert f"Agreed states now: {base}." in out
    assert status["pending_operations"] == 0
    assert status["attention"] == {"conflict": 3}
    assert (folder / "bridge-report.html").stat().st_size > 0
    assert "Audit report:" in out

    shown = CliRunner().invoke(main, ["--config", str(config), "status", "--json"])
    assert shown.exit_code in (0, 4), shown.output  # 4: the demo's conflicts need a person
    assert json.loads(shown.output)["links"] == 300

    again = CliRunner().invoke(demo, ["--dir", str(folder), "--tickets", "300"])
    assert again.exit_code == 2
    assert "already holds a bridge.toml" in again.output


def test_what_bridge_recorded_is_what_the_simulators_hold(tmp_path: Path) -> None:
    lines: list[str] = []
    result = run_demo(tmp_path / "d", DemoOptions(tickets=200, seed=3), echo=lines.append)
    status = result.status
    for side in ("superoffice", "zendesk"):
        assert result.vendor_states[side] == status[side], side
    base = status["base"]
    assert isinstance(base, dict)
    assert sum(base.values()) == 200
    # both retention windows passed: purges happened on both sides and were verified
    assert result.vendor_states["superoffice"]["purged"] > 0
    assert result.vendor_states["zendesk"]["purged"] > 0
    assert sum(r.purges_verified for r in result.rounds) > 0
    assert result.rounds[-1].copied == 0
    assert result.rounds[-1].changes_seen == 0
    assert len(lines) == 1 + len(result.rounds)


def test_the_webhook_step_shows_a_deletion_crossing_each_way_by_webhook(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    result = CliRunner().invoke(demo, ["--dir", str(folder), "--tickets", "100", "--webhooks"])
    assert result.exit_code == 0, result.output
    crossed = [
        line for line in result.output.splitlines() if "later, with no scheduled run" in line
    ]
    assert len(crossed) == 2, result.output
    targets = [
        (line.split("deleted in ")[2].split(" ")[0], int(line.split("(ticket ")[2].split(")")[0]))
        for line in crossed
    ]
    assert [side for side, _ in targets] == ["superoffice", "zendesk"]
    with Ledger.open(f"sqlite:///{folder / 'bridge.db'}", sides=SIDES) as ledger:
        runs = {run.id: run.kind for run in ledger.recent_runs(50) if not run.dry_run}
        with ledger.session() as session:
            ops = list(session.exec(select(Operation)))
        status = ledger.status()
    # the story's runs, then the targeted runs of the webhooks (and of their echoes)
    kinds = [runs[key] for key in sorted(runs, key=lambda key: key or 0)]
    assert kinds[:6] == ["migrate"] + ["sync"] * 5
    assert set(kinds[6:]) == {"hints"}
    # each deletion was written and confirmed by a targeted run, none by a scheduled one
    for side, ticket in targets:
        (op,) = [o for o in ops if o.target == side and o.ticket_id == ticket]
        assert op.transition == "soft_delete"
        assert op.status == "confirmed"
        assert runs[op.run_id] == "hints"
    assert status["pending_operations"] == 0
