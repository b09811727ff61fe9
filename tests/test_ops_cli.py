"""The command line as operators meet it: pipes closed early, the command names, the
options every command takes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BRIDGE = [sys.executable, "-m", "bridge"]


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BRIDGE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def many_links(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A config and a ledger with 6,000 links: more output than a pipe buffer holds."""
    folder = tmp_path_factory.mktemp("pipe")
    assert _run("init", "--dir", str(folder)).returncode == 0
    rows = "\n".join(f"{n},{100_000 + n}" for n in range(1, 6001))
    (folder / "links.csv").write_text(f"superoffice_id,zendesk_id\n{rows}\n", encoding="utf-8")
    config = folder / "bridge.toml"
    assert (
        _run("--config", str(config), "link", "import", str(folder / "links.csv")).returncode == 0
    )
    return config


@pytest.mark.parametrize(
    "command",
    [
        ["link", "list"],
        ["link", "list", "--json"],
        ["report", "-o", "-"],
        ["report", "--format", "md", "-o", "-"],
        ["status", "--json"],
        ["conflicts", "list", "--json"],
    ],
)
def test_a_reader_that_goes_away_ends_the_command_quietly(
    many_links: Path, command: list[str]
) -> None:
    """`bridge ... | head -1`: a real pipe, closed after one line."""
    writer = subprocess.Popen(
        [*BRIDGE, "--config", str(many_links), *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None
    assert writer.stderr is not None
    head = subprocess.run(
        ["head", "-1"], stdin=writer.stdout, capture_output=True, text=True, timeout=60
    )
    writer.stdout.close()  # only `head` holds the reading end now
    code = writer.wait(timeout=60)
    err = writer.stderr.read()
    assert head.stdout.strip()
    assert "Traceback" not in err
    assert "BrokenPipe" not in err
    assert "Exception ignored" not in err
    assert code in (0, 141)  # 141: the reader left before the end (128 + SIGPIPE)


def test_logging_is_chosen_option_then_environment_then_config() -> None:
    from bridge.logging import choose_logging

    env = {"BRIDGE_LOG_LEVEL": "info", "BRIDGE_LOG_FORMAT": "console"}
    assert choose_logging(None, None, None, None, {}) == ("auto", "warning")
    assert choose_logging(None, None, "json", "error", {}) == ("json", "error")
    assert choose_logging(None, None, "json", "error", env) == ("console", "info")
    assert choose_logging("json", "debug", "auto", "error", env) == ("json", "debug")
    with pytest.raises(ValueError, match="BRIDGE_LOG_LEVEL"):
        choose_logging(None, None, None, None, {"BRIDGE_LOG_LEVEL": "loud"})


def test_every_command_takes_v_and_q() -> None:
    import click

    from bridge.cli import main

    def commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
        found = []
        for name, command in group.commands.items():
            found.append((*path, name))
            if isinstance(command, click.Group):
                found += commands(command, (*path, name))
        return found

    for path in commands(main):
        help_text = _run(*path, "--help").stdout
        assert "-v, --verbose" in help_text, path
        assert "-q, --quiet" in help_text, path


def test_ticket_bridge_is_the_same_command_as_bridge() -> None:
    scripts = Path(sys.executable).parent
    for name in ("ticket-bridge", "bridge"):
        done = subprocess.run(
            [str(scripts / name), "--help"], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0
        assert "Keep ticket deletion state consistent" in done.stdout


def test_init_ledger_only_creates_the_ledger_and_keeps_the_config(tmp_path: Path) -> None:
    assert _run("init", "--dir", str(tmp_path)).returncode == 0
    config = tmp_path / "bridge.toml"
    config.write_text(config.read_text("utf-8") + "\n# edited by hand\n", encoding="utf-8")
    (tmp_path / "bridge.db").unlink()
    done = _run("--config", str(config), "init", "--ledger-only")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "bridge.db").exists()
    assert config.read_text("utf-8").endswith("# edited by hand\n")
    again = _run("--config", str(config), "init", "--ledger-only")  # idempotent
    assert again.returncode == 0
    refused = _run("init", "--dir", str(tmp_path))
    assert refused.returncode == 2
    assert "--ledger-only" in refused.stderr
