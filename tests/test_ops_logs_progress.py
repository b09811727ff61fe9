"""What a run says while it works: log lines per batch at info (per link only at debug),
and progress bars on a terminal only (a world's ledger on each backend in turn)."""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from bridge.cli import main
from bridge.cli.progress_bars import TerminalProgress
from bridge.logging import configure_logging
from bridge.progress import NO_PROGRESS, current, reporting
from tests.conftest import BACKENDS
from tests.e2e.conftest import World
from tests.sandbox_world import frozen_sandbox


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Every world's ledger backend in turn (overrides tests/conftest.py's SQLite-only
    default)."""
    return str(request.param)


@pytest.fixture
def world(tmp_path: Path, world_ledger_url: str | None) -> Iterator[World]:
    with frozen_sandbox() as sandbox:
        world = World(sandbox, tmp_path / "bridge", ledger_url=world_ledger_url)
        try:
            yield world
        finally:
            world.close()


def _logged(world: World, level: str, links: int) -> list[dict[str, object]]:
    """The log lines (JSON) of a sync that copies `links` soft deletes, at `level`."""
    pairs = world.link(links)
    assert world.sync().outcome == "converged"
    world.so.soft_delete([s for s, _ in pairs])
    stream = io.StringIO()
    configure_logging("json", level, stream=stream)
    try:
        assert world.sync().outcome == "converged"
    finally:
        configure_logging("json", "warning")
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_info_has_a_line_per_batch_and_the_summary_not_one_per_link(world: World) -> None:
    events = Counter(str(line["event"]) for line in _logged(world, "info", 250))
    assert "decision" not in events
    assert events["vendor.batch"] == 3  # 250 soft deletes in bulk calls of 100
    assert events["run.start"] == events["run.finish"] == 1
    assert 1 <= events["decide.batch"] <= 3
    assert sum(events.values()) <= 12


def test_debug_has_the_decision_of_every_link(world: World) -> None:
    decisions = [
        line
        for line in _logged(world, "debug", 40)
        if line.get("event") == "decision" and line.get("outcome") == "apply"
    ]
    assert len(decisions) == 40
    assert {d["level"] for d in decisions} == {"debug"}


def test_the_terminal_sink_draws_counts_and_totals() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, color_system=None)
    with TerminalProgress(console) as bars, reporting(bars):
        current().expect("writing zendesk", 300)
        current().advance("writing zendesk", 200)
        current().advance("reading superoffice", 1234)
        current().finish("reading superoffice")
    assert current() is NO_PROGRESS  # the block's sink is gone with it
    text = out.getvalue()
    assert "writing zendesk" in text
    assert "200/300" in text
    assert "1,234/1,234" in text


def _dry_run(world: World, env: dict[str, str]) -> str:
    pairs = world.link(30)
    world.so.soft_delete([s for s, _ in pairs[:10]])
    runner = CliRunner()
    result = runner.invoke(main, ["--config", str(world.config_path), "sync", "--dry-run"], env=env)
    assert result.exit_code == 0, result.output
    return result.stderr


def test_no_progress_when_stderr_is_not_a_terminal(world: World) -> None:
    err = _dry_run(world, {"BRIDGE_PROGRESS": ""})
    assert "reading" not in err
    assert "deciding" not in err


def test_progress_bars_when_the_terminal_is_forced(world: World) -> None:
    err = _dry_run(world, {"BRIDGE_PROGRESS": "always"})
    assert "reading superoffice" in err
    assert "reading zendesk" in err
    assert "deciding" in err


def test_the_report_shows_its_progress_on_a_terminal_only(world: World, tmp_path: Path) -> None:
    pairs = world.link(30)
    world.sync()
    world.clock.advance(120)
    world.so.soft_delete([s for s, _ in pairs[:10]])
    world.sync()  # ten soft deletes copied: rows to report
    runner = CliRunner()
    config = ["--config", str(world.config_path)]
    for env, shown in (({"BRIDGE_PROGRESS": "always"}, True), ({"BRIDGE_PROGRESS": ""}, False)):
        out = tmp_path / f"report-{shown}.csv"
        result = runner.invoke(
            main, [*config, "report", "--format", "csv", "-o", str(out)], env=env
        )
        assert result.exit_code == 0, result.output
        assert ("building the report" in result.stderr) is shown
        assert out.read_text(encoding="utf-8").count("\n") > 10
