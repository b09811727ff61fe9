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
