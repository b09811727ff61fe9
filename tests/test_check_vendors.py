"""`bridge check` against the simulators: all well, bad credentials, no rights, unreachable."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import main
from bridge.cli.exitcodes import ExitCode
from bridge.sandbox import SimClock
from bridge.sandbox_pair import Sandbox


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(clock=SimClock(frozen=True)) as both:
        both.relax_limits()
        yield both


def check(config: Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--config", str(config), "check"])
    return result.exit_code, result.stdout, result.stderr


def test_all_checks_pass_against_the_sandbox(sandbox: Sandbox, tmp_path: Path) -> None:
    code, out, err = check(sandbox.write_config(tmp_path))
    assert code == 0, out + err
    assert out.count(" FAIL ") == 0
    assert "zendesk" in out
    assert "superoffice" in out
    assert "sandbox-token" not in out + err


def test_a_wrong_token_fails_with_one_clear_line(sandbox: Sandbox, tmp_path: Path) -> None:
    config = sandbox.write_config(tmp_path)
    (tmp_path / "secrets" / "zendesk.token").write_text("wrong-token\n", encoding="utf-8")
    code, out, err = check(config)
    assert code == ExitCode.VENDOR
    failing = [line for line in out.splitlines() if "FAIL" in line]
    assert failing
    assert all(line.startswith("zendesk") for line in failing)
    assert "wrong-token" not in out + err


def test_missing_delete_right_is_reported(sandbox: Sandbox, tmp_path: Path) -> None:
    config = sandbox.write_config(tmp_path)
    sandbox.superoffice.configure({"can_delete": False})
    code, out, _ = check(config)
    assert code == ExitCode.VENDOR
    assert any(line.startswith("superoffice") and "FAIL" in line for line in out.splitlines())


def test_an_unreachable_vendor_is_reported(sandbox: Sandbox, tmp_path: Path) -> None:
    config = sandbox.write_config(tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    text = config.read_text(encoding="utf-8").replace(
        sandbox.zendesk.base_url, f"http://127.0.0.1:{closed_port}"
    )
    config.write_text(text, encoding="utf-8")
    code, out, _ = check(config)
    assert code == ExitCode.VENDOR
    assert any(line.startswith("zendesk") and "FAIL" in line for line in out.splitlines())


def test_an_unreadable_archive_answer_is_not_called_unreachable(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """A tenant that answers with display text where ids are expected is reachable and
    authenticated: the line names the unreadable column, not the network."""
    config = sandbox.write_config(tmp_path)
    row = {"ticketId": 1, "lastChanged": "2024-05-01T12:00:00Z", "status": "Aktiv"}
    sandbox.superoffice.add_fault(
        "status", route="GET Archive/{provider}", status=200, body={"value": [row]}
    )
    code, out, _ = check(config)
    assert code == ExitCode.VENDOR
    lines = [line for line in out.splitlines() if line.startswith("superoffice")]
    reach = next(line for line in lines if "reachable" in line)
    auth = next(line for line in lines if "authenticated" in line)
    assert " ok " in reach
    assert "FAIL" in auth
    assert "unreadable" in auth
    assert "status" in auth
    assert "cannot reach" not in out
