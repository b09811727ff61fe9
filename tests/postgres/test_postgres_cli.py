"""The commands against PostgreSQL, as a user gets there: a config written for the
simulators, its `[ledger] url` changed to a PostgreSQL URL (no password in it: the driver
reads PGPASSWORD), and nothing else. The schema is created by the first `link import`;
`migrate`, `sync`, `status`, `report` and `check` then work on it; `ledger copy` moves it to SQLite
and back with the audit report unchanged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bridge.ledger import Ledger
from bridge.vendors.registry import SIDES
from tests.sandbox_world import running_sandbox

REPORT = ("report", "--since", "2000-01-01", "--until", "2100-01-01", "--format", "json")


def _bridge(
    config: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge", "--config", str(config), *args],
        env=env if env is not None else dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _config_for(folder: Path, written: Path, url: str) -> Path:
    """A copy of the written config with only its ledger URL changed."""
    text = written.read_text(encoding="utf-8")
    assert 'url = "sqlite:///bridge.db"\n' in text
    folder.mkdir(exist_ok=True)
    path = folder / "bridge.toml"
    path.write_text(text.replace('url = "sqlite:///bridge.db"', f'url = "{url}"'))
    (folder / "secrets").symlink_to(written.parent / "secrets")
    return path


def test_link_import_migrate_sync_status_and_report_run_on_postgresql(
    postgres_url: str, tmp_path: Path
) -> None:
    with running_sandbox(50.0) as sandbox:
        written = sandbox.write_config(tmp_path / "sandbox", max_purges_per_run="1000")
        config = _config_for(tmp_path / "pg", written, postgres_url)
        so_ids = sandbox.superoffice.seed_tickets(6, title="Ticket {n}")
        zd_ids = sandbox.zendesk.seed_tickets(count=6)
        links = tmp_path / "links.csv"
        rows = "".join(f"{s},{z}\n" for s, z in zip(so_ids, zd_ids, strict=True))
        links.write_text("superoffice_id,zendesk_id\n" + rows)

        never_made = _bridge(config, "status")
        assert never_made.returncode == 2
        assert "holds no ledger yet" in never_made.stderr
        assert "Imported 6 new links" in _ok(_bridge(config, "link", "import", str(links)))

        sandbox.superoffice.soft_delete(so_ids[:2])
        migrate = ("migrate", "--from", "superoffice", "--to", "zendesk", "--include-purges")
        assert "converged" in _ok(_bridge(config, *migrate))
        assert [sandbox.zendesk.ticket_state(z) for z in zd_ids[:3]] == [
            "deleted",
            "deleted",
            "active",
        ]
        sandbox.zendesk.agent_act("delete", [zd_ids[2]], agent=(7, "Ann"))
        _ok(_bridge(config, "sync"))
        assert sandbox.superoffice.ticket_state(so_ids[2])["base_status"] == "Deleted"

        status = json.loads(_ok(_bridge(config, "status", "--json")))
        assert status["links"] == 6
        assert status["superoffice"] == {"active": 3, "soft_deleted": 3}
        assert "@127.0.0.1" in status["ledger"]
        _ok(_bridge(config, "check", "--offline"))  # the ledger's own health included
        report = _ok(_bridge(config, *REPORT, "-o", "-")).splitlines()
        records = [json.loads(line) for line in report]
        # the migration's two writes; Zendesk's own delete and its copy to SuperOffice
        assert [(r["record_type"], r["side"], r["transition"]) for r in records] == [
            ("bridge_write", "zendesk", "soft_delete"),
            ("bridge_write", "zendesk", "soft_delete"),
            ("observed_change", "zendesk", "soft_delete"),
            ("bridge_write", "superoffice", "soft_delete"),
        ]

        # moving down to SQLite and back up keeps the audit trail exactly
        copied = tmp_path / "copy.db"
        moved = _ok(_bridge(config, "ledger", "copy", "--to", f"sqlite:///{copied}"))
        assert "verified" in moved
        down = _config_for(tmp_path / "sqlite", written, f"sqlite:///{copied}")
        assert _ok(_bridge(down, *REPORT, "-o", "-")).splitlines() == report
        assert json.loads(_ok(_bridge(down, "status", "--json")))["links"] == 6

        without_password = {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}
        refused = _bridge(config, "status", env=without_password)
        assert refused.returncode == 2
        assert "cannot connect to the ledger" in refused.stderr
    with Ledger.open(postgres_url, sides=SIDES) as ledger:
        assert ledger.check() == []
