"""What each start-up imports: a command loads what it uses, when it uses it (`bridge.lazy`).

Every case runs the command in a fresh interpreter and reads `sys.modules` once it has
ended, so that an import added at the top of a module on the way (the config, the
registry, the command line's context) shows here as the weight it puts on every run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import COMMANDS, main
from bridge.config import example_config_text
from bridge.lazy import import_attribute
from tests.sandbox_world import SandboxWorld, frozen_sandbox

#: runs `bridge ARGS` (or reads a config) in this interpreter, then writes the exit code
#: and every module loaded to the file named last
_PROBE = """
import json, sys
what, args, out = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
code = 0
if what == "config":
    from bridge.config import load_config
    load_config(args[0])
else:
    from bridge.cli import main
    try:
        main(args, prog_name="bridge")
    except SystemExit as exc:
        code = exc.code
with open(out, "w", encoding="utf-8") as handle:
    json.dump({"code": code, "modules": sorted(sys.modules)}, handle)
"""

#: what neither `--version` nor `--help` needs: the ledger, the vendors' HTTP client and
#: answer models, any command's own module, the run, the sandbox, the optional extras
NOT_AT_START = (
    "sqlalchemy",
    "sqlmodel",
    "pydantic",
    "requests",
    "urllib3",
    "msgspec",
    "rich",
    "jwt",
    "cryptography",
    "prometheus_client",
    "psycopg",
    "procrastinate",
    "bridge.ledger",
    "bridge.run",
    "bridge.once",
    "bridge.factory",
    "bridge.sandbox",
    "bridge.vendors.http",
    "bridge.vendors.superoffice.adapter",
    "bridge.vendors.zendesk.adapter",
    *sorted({entry.path.partition(":")[0] for entry in COMMANDS.values()}),
)

#: what a scheduled sync (stderr no terminal, SOTicket login, no metrics asked for) never
#: uses: progress bars, the system-user login's crypto, prometheus, SQLAlchemy's
#: PostgreSQL dialects, the sandbox, the demo, the report, the webhook server, the workers
NOT_IN_A_SYNC = (
    "rich",
    "jwt",
    "cryptography",
    "prometheus_client",
    "bridge.metrics",
    "sqlalchemy.dialects.postgresql",
    "psycopg",
    "procrastinate",
    "starlette",
    "uvicorn",
    "bridge.sandbox",
    "bridge.vendors.superoffice.sim",
    "bridge.vendors.zendesk.sim",
    "bridge.demo",
    "bridge.report",
    "bridge.serve",
    "bridge.worker",
    "bridge.cli.sandbox",
    "bridge.cli.progress_bars",
)


@dataclass(frozen=True)
class Probe:
    """How a probed command ended, and every module it had loaded by then."""

    code: int
    modules: frozenset[str]


def _probe(tmp_path: Path, what: str, *args: str, env: dict[str, str] | None = None) -> Probe:
    out = tmp_path / f"probe-{len(list(tmp_path.glob('probe-*')))}.json"
    subprocess.run(
        [sys.executable, "-c", _PROBE, what, json.dumps(args), str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, **(env or {})},
    )
    result = json.loads(out.read_text(encoding="utf-8"))
    return Probe(int(result["code"] or 0), frozenset(result["modules"]))


def _loaded(modules: Iterable[str], packages: Iterable[str]) -> list[str]:
    """Those of `packages` (a package, or a module with its submodules) in `modules`."""
    wanted = tuple(packages)
    return sorted(m for m in modules if any(m == p or m.startswith(f"{p}.") for p in wanted))


@pytest.mark.parametrize("args", [["--version"], ["--help"]], ids=["version", "help"])
def test_version_and_help_load_no_command_no_ledger_and_no_vendor(
    tmp_path: Path, args: list[str]
) -> None:
    probe = _probe(tmp_path, "cli", *args)
    assert probe.code == 0
    assert _loaded(probe.modules, NOT_AT_START) == []
    assert "bridge.cli" in probe.modules  # the probe did run the command line


def _help(*, load_all: bool) -> str:
    """`bridge --help` in a fresh interpreter, 100 columns wide; with `load_all`, after
    every command is imported (what click would list from the commands themselves)."""
    script = (
        "import click; from bridge.cli import COMMANDS, main\n"
        + (
            "for name in COMMANDS: main.get_command(click.Context(main), name)\n"
            if load_all
            else ""
        )
        + "main(['--help'], prog_name='bridge')"
    )
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "COLUMNS": "100"},
    ).stdout


def test_help_lists_each_command_by_its_own_summary() -> None:
    """`--help` lists the commands from `COMMANDS` without importing them: each summary
    is its command's own first sentence, and the listing is what click prints with every
    command loaded."""
    for name, entry in COMMANDS.items():
        command = import_attribute(entry.path)
        assert command.get_short_help_str(10**6) == entry.summary, name
    lazy = _help(load_all=False)
    assert lazy == _help(load_all=True)
    assert "  sync       One reconciliation run: copy soft deletes" in lazy


def test_reading_a_config_loads_no_ledger_and_no_adapter(tmp_path: Path) -> None:
    """A config is read with the vendors' settings readers and SQLAlchemy's URL parser:
    no ledger engine, tables or migrations, no adapter, no HTTP client."""
    config = tmp_path / "bridge.toml"
    config.write_text(example_config_text(), encoding="utf-8")
    probe = _probe(tmp_path, "config", str(config))
    assert probe.code == 0
    heavy = (
        "bridge.ledger",
        "sqlmodel",
        "pydantic",
        "requests",
        "msgspec",
        "jwt",
        "cryptography",
        "bridge.vendors.http",
        "bridge.vendors.superoffice.adapter",
        "bridge.vendors.zendesk.adapter",
    )
    assert _loaded(probe.modules, heavy) == []
    assert "bridge.vendors.superoffice.settings" in probe.modules


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SandboxWorld]:
    with frozen_sandbox() as sandbox:
        world = SandboxWorld(sandbox, tmp_path / "bridge")
        try:
            world.link(5)
            first = world.bridge("sync")
            assert first.returncode == 0, first.stderr
            yield world
        finally:
            world.close()


def test_an_idle_sync_loads_only_what_it_uses(world: SandboxWorld, tmp_path: Path) -> None:
    config = str(world.config_path)
    idle = _probe(tmp_path, "cli", "--config", config, "sync", "--json")
    assert idle.code == 0
    assert _loaded(idle.modules, NOT_IN_A_SYNC) == []
    # it did run: the ledger and both adapters were loaded by the run itself
    ran = {"sqlmodel", "bridge.vendors.superoffice.adapter", "bridge.vendors.zendesk.adapter"}
    assert ran <= idle.modules

    # what an option asks for is loaded when asked: metrics, progress bars on a terminal
    metrics = tmp_path / "bridge.prom"
    asked = _probe(
        tmp_path,
        "cli",
        "--config",
        config,
        "sync",
        "--metrics-file",
        str(metrics),
        env={"BRIDGE_PROGRESS": "always"},
    )
    assert asked.code == 0
    assert {"prometheus_client", "bridge.metrics", "rich.progress"} <= asked.modules
    assert "bridge_links 5.0" in metrics.read_text(encoding="utf-8")


def test_a_variable_that_makes_rich_see_a_terminal_still_draws_the_bars(
    world: SandboxWorld, tmp_path: Path
) -> None:
    """Progress bars skip rich only when it would surely say "no terminal" (stderr no tty
    and no variable of rich's saying otherwise); `FORCE_COLOR` is still rich's to read."""
    config = str(world.config_path)
    unset: dict[str, str | None] = {"BRIDGE_PROGRESS": None, "TTY_COMPATIBLE": None}
    plain = CliRunner().invoke(
        main, ["--config", config, "sync", "--dry-run"], env={**unset, "FORCE_COLOR": None}
    )
    assert plain.exit_code == 0, plain.output
    assert "reading superoffice" not in plain.stderr
    forced = CliRunner().invoke(
        main, ["--config", config, "sync", "--dry-run"], env={**unset, "FORCE_COLOR": "1"}
    )
    assert forced.exit_code == 0, forced.output
    assert "reading superoffice" in forced.stderr
