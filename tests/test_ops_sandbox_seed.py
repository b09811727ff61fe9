"""`bridge sandbox serve --seed N --write-config DIR`: a newcomer's first commands have
something to show at once. End to end: the server and every command are child processes,
talking HTTP on loopback."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

BRIDGE = [sys.executable, "-m", "bridge"]


def _bridge(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BRIDGE, "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_seeded_sandbox_has_links_history_and_work_waiting(tmp_path: Path) -> None:
    folder = tmp_path / "try"
    server = subprocess.Popen(
        [
            *BRIDGE,
            *("sandbox", "serve", "--zendesk-port", "0", "--superoffice-port", "0"),
            *("--seed", "40", "--write-config", str(folder)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        said = [server.stdout.readline() for _ in range(4)]
        assert said[2].startswith("Seeded 40 linked tickets; history: migrate converged, "), said
        assert said[3].startswith(f"Wrote {folder / 'bridge.toml'}"), said
        config = folder / "bridge.toml"

        status = _bridge(config, "status", "--json")
        assert status.returncode == 0, status.stderr
        facts = json.loads(status.stdout)
        assert facts["links"] == 40
        assert [run["kind"] for run in reversed(facts["runs"])] == ["migrate", "sync", "sync"]
        assert facts["attention"] == {"conflict": 1}
        assert facts["health"][0]["overdue"] is False  # its last run is minutes old

        plan = _bridge(config, "sync", "--dry-run", "--json")
        assert plan.returncode == 0, plan.stderr
        summary = json.loads(plan.stdout)["summary"]
        assert sum(w["count"] for w in summary["writes"]) >= 3
        assert {w["target"] for w in summary["writes"]} == {"superoffice", "zendesk"}
        assert summary["open_attention"] == {"conflict": 1}

        report = _bridge(config, "report", "--format", "json", "-o", "-")
        assert report.returncode == 0, report.stderr
        assert report.stdout.count('"record_type"') >= 10
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    assert server.returncode == 0


def test_seed_needs_a_folder_for_its_ledger() -> None:
    result = subprocess.run(
        [*BRIDGE, "sandbox", "serve", "--seed", "20"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "--write-config" in result.stderr
