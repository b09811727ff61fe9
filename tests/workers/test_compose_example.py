"""examples/compose must agree with the CLI and the config: every command it runs parses,
every pair it imports is one bridge.toml declares, every secret file bridge.toml names is a
secret Compose mounts. (Docker is not here; `test_compose_rehearsal.py` plays what the
services run as processes.)"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from bridge.cli import main
from bridge.config import load_pairs

FOLDER = Path(__file__).parents[2] / "examples" / "compose"


def _compose() -> dict[str, Any]:
    return dict(yaml.safe_load((FOLDER / "docker-compose.yml").read_text(encoding="utf-8")))


def _parses(args: list[str]) -> None:
    """`args` (after `ticket-bridge`) name a command and only options it has: with --help
    appended, click parses them all (an unknown one is exit 2) and runs nothing."""
    result = CliRunner().invoke(main, [*args, "--help"])
    assert result.exit_code == 0, (args, result.output)
    assert "Usage: " in result.output


def test_the_compose_example_agrees_with_the_cli_and_its_config() -> None:
    compose = _compose()
    services = compose["services"]
    pairs = load_pairs(FOLDER / "bridge.toml")
    _parses(services["worker"]["command"])
    _parses(services["status"]["command"])
    _parses(services["serve"]["command"])
    assert services["serve"]["stop_signal"] == "SIGTERM"
    script = services["init"]["command"][0]
    imported = set()
    for line in filter(None, (raw.strip() for raw in script.splitlines())):
        words = shlex.split(line)
        assert words[0] == "ticket-bridge"
        _parses(words[1:])
        imported.add(words[words.index("--pair") + 1])
    assert imported == set(pairs)
    assert all(
        config.shared_ledger_url.startswith("postgresql+psycopg://") for config in pairs.values()
    )
    assert "@" in next(iter(pairs.values())).shared_ledger_url
    assert ":" not in next(iter(pairs.values())).shared_ledger_url.split("@")[0].split("//")[1]
    mounted = set(compose["secrets"])
    named = re.findall(r'_file = "/run/secrets/([a-z_]+)"', (FOLDER / "bridge.toml").read_text())
    assert named
    assert set(named) <= mounted
    assert set(named) <= set(compose["x-bridge"]["secrets"])
