"""Every foundation command through click's CliRunner, and the package as a real subprocess."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge import __version__
from bridge.cli import main
from bridge.cli.exitcodes import ExitCode


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def home(tmp_path: Path, runner: CliRunner) -> Path:
    result = runner.invoke(main, ["init", "--dir", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    return tmp_path / "b"


def invoke(runner: CliRunner, home: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(main, ["--config", str(home / "bridge.toml"), *args])
    return result.exit_code, result.stdout, result.stderr


def write_csv(path: Path, *rows: str) -> Path:
    path.write_text("\n".join(["superoffice_id,zendesk_id", *rows]) + "\n", encoding="utf-8")
    return path


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(main, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_init_creates_config_and_private_ledger(home: Path, runner: CliRunner) -> None:
    assert (home / "bridge.toml").read_text().startswith("#")
    ledger = home / "bridge.db"
    assert stat.S_IMODE(ledger.stat().st_mode) == 0o600
    again = runner.invoke(main, ["init", "--dir", str(home)])
    assert again.exit_code == ExitCode.USAGE
    assert "already exists" in again.stderr
    forced = runner.invoke(main, ["init", "--dir", str(home), "--force"])
    assert forced.exit_code == 0


def test_config_is_found_through_the_environment(
    home: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BRIDGE_CONFIG", str(home / "bridge.toml"))
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(main, ["status", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["links"] == 0


def test_missing_config_is_a_clear_usage_error(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BRIDGE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(main, ["status"])
    assert result.exit_code == ExitCode.USAGE
    assert "bridge.toml" in result.stderr
    assert "bridge init" in result.stderr


def test_invalid_config_names_file_and_key(home: Path, runner: CliRunner) -> None:
    config = home / "bridge.toml"
    config.write_text(
        config.read_text().replace('direction = "both"', 'direction = "sideways"'),
        encoding="utf-8",
    )
    code, _, err = invoke(runner, home, "status")
    assert code == ExitCode.USAGE
    assert f"{config}:sync.direction:" in err


def test_link_import_twice_leaves_three_links(home: Path, runner: CliRunner) -> None:
    csv = write_csv(home / "links.csv", "1,101", "2,102", "3,103")
    for _ in range(2):
        code, out, err = invoke(runner, home, "link", "import", str(csv))
        assert code == 0, err
    assert "0 new links" in out
    code, out, _ = invoke(runner, home, "link", "list", "--json")
    links = json.loads(out)
    assert [(x["superoffice_id"], x["zendesk_id"]) for x in links] == [
        (1, 101),
        (2, 102),
        (3, 103),
    ]
    assert {x["origin"] for x in links} == {"csv"}


def test_bad_link_file_names_every_bad_line_and_writes_nothing(
    home: Path, runner: CliRunner
) -> None:
    write_csv(home / "good.csv", "1,101")
    assert invoke(runner, home, "link", "import", str(home / "good.csv"))[0] == 0
    bad = write_csv(home / "bad.csv", "2,102", "x2,103", "4,104", "2,105", "-5,106", "1,107")
    code, _, err = invoke(runner, home, "link", "import", str(bad))
    assert code == ExitCode.USAGE
    assert "line 3: superoffice_id 'x2' is not a whole number (digits 0-9 only)" in err
    assert "line 5: superoffice_id 2 duplicates line 2" in err
    assert "line 6: superoffice_id '-5' is not a whole number" in err
    assert "line 7: superoffice_id 1 is already linked to zendesk_id 101" in err
    assert "nothing was imported" in err
    _, out, _ = invoke(runner, home, "link", "list", "--json")
    assert [x["superoffice_id"] for x in json.loads(out)] == [1]


def test_link_file_without_the_columns_is_refused(home: Path, runner: CliRunner) -> None:
    path = home / "cols.csv"
    path.write_text("superoffice,zendesk\n1,2\n", encoding="utf-8")
    code, _, err = invoke(runner, home, "link", "import", str(path))
    assert code == ExitCode.USAGE
    assert "header lacks column superoffice_id, zendesk_id" in err
    code, _, err = invoke(runner, home, "link", "import", str(home / "absent.csv"))
    assert code == ExitCode.USAGE
    assert "cannot read" in err


def test_link_list_in_columns(home: Path, runner: CliRunner) -> None:
    invoke(runner, home, "link", "import", str(write_csv(home / "l.csv", "7,70")))
    code, out, _ = invoke(runner, home, "link", "list")
    assert code == 0
    assert "     7           70  csv" in out
    assert "1 links" in out


def test_status_json_is_valid_and_counts(home: Path, runner: CliRunner) -> None:
    invoke(runner, home, "link", "import", str(write_csv(home / "l.csv", "1,2", "3,4")))
    code, out, _ = invoke(runner, home, "status", "--json")
    assert code == 0
    status = json.loads(out)
    assert status["links"] == 2
    assert status["pending_operations"] == 0
    assert status["runs"] == []
    code, out, _ = invoke(runner, home, "status")
    assert "Links: 2" in out


def test_check_offline_reports_missing_secrets(
    home: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("ZENDESK_API_TOKEN", "SUPEROFFICE_TICKET", "SUPEROFFICE_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    code, out, err = invoke(runner, home, "check", "--offline")
    assert code == ExitCode.USAGE
    assert "ledger   ok" in out
    assert "environment variable ZENDESK_API_TOKEN is not set" in err
    for name in ("ZENDESK_API_TOKEN", "SUPEROFFICE_TICKET", "SUPEROFFICE_APP_TOKEN"):
        monkeypatch.setenv(name, "s3cret-value")
    code, out, err = invoke(runner, home, "check", "--offline")
    assert code == 0, err
    assert "s3cret-value" not in out + err


def test_check_finds_a_ledger_readable_by_others(
    home: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("ZENDESK_API_TOKEN", "SUPEROFFICE_TICKET", "SUPEROFFICE_APP_TOKEN"):
        monkeypatch.setenv(name, "x")
    os.chmod(home / "bridge.db", 0o644)
    code, _, err = invoke(runner, home, "check", "--offline")
    assert code == ExitCode.USAGE
    assert "readable by others" in err


def test_help_teaches(runner: CliRunner) -> None:
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("init", "status", "check", "link", "sync", "conflicts"):
        assert command in result.output
    link_help = runner.invoke(main, ["link", "import", "--help"])
    assert "superoffice_id,zendesk_id" in link_help.output


def test_real_subprocess_end_to_end(tmp_path: Path) -> None:
    env = {**os.environ, "BRIDGE_CONFIG": str(tmp_path / "bridge.toml")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bridge", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )

    assert run("--version").stdout.strip().endswith(__version__)
    assert run("init", "--dir", str(tmp_path)).returncode == 0
    write_csv(tmp_path / "l.csv", "1,2", "3,4", "5,6")
    imported = run("link", "import", str(tmp_path / "l.csv"))
    assert imported.returncode == 0, imported.stderr
    status = run("status", "--json")
    assert json.loads(status.stdout)["links"] == 3
    listed = run("link", "list", "--json")
    assert len(json.loads(listed.stdout)) == 3


def test_a_sync_loads_no_simulator_demo_or_report() -> None:
    """A scheduled `sync` starts without the sandbox, the demo, the report, the webhook
    server or the workers' queue (and its PostgreSQL driver): commands and vendor parts are
    imported when used (`bridge.lazy`)."""
    probe = (
        "import sys, bridge.cli, bridge.cli.sync; "
        "print(sorted(m for m in sys.modules if '.sim.' in m or m.startswith("
        "('bridge.demo', 'bridge.report', 'bridge.cli.sandbox', 'bridge.sandbox_seed', "
        "'bridge.serve', 'bridge.worker', 'psycopg', 'procrastinate', 'starlette', "
        "'uvicorn'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
