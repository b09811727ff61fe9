"""`bridge migrate` reads each side once: it plans while reading, shows the estimate, then
writes (it used to run a hidden dry run first: two full reads). Counted on the simulators'
per-route counters, against a dry run, which reads each side exactly once. The ledger on
each backend in turn."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bridge.vendors.registry import SUPEROFFICE
from tests.migrate.conftest import SPEED, Env
from tests.migrate.test_refusals import MIGRATE
from tests.sandbox_world import running_sandbox

#: the reads of a linked ticket's state: lookups by id and each side's change stream
_READS = {
    "superoffice": ("GET Archive/{provider}",),
    "zendesk": ("GET tickets/show_many", "GET deleted_tickets", "GET incremental/tickets/cursor"),
}


@pytest.fixture
def env(tmp_path: Path, ledger_url: str) -> Iterator[Env]:
    with running_sandbox(SPEED) as sandbox:
        world = Env(sandbox, tmp_path / "bridge", ledger_url=ledger_url, lease_seconds="1")
        try:
            yield world
        finally:
            world.close()


def _reads(env: Env, side: str) -> dict[str, int]:
    routes = env.routes(side)
    return {route: routes.get(route, 0) for route in _READS[side]}


def _scene(env: Env) -> list[tuple[int, int]]:
    pairs = env.link(250)
    env.so.soft_delete([s for s, _ in pairs[:120]])
    env.reset_counters()
    return pairs


def test_migrate_reads_each_side_once_and_shows_its_estimate_before_writing(
    env: Env, tmp_path: Path, more_ledger_urls: Callable[[], str]
) -> None:
    """The baseline is one migration run (the pipeline alone, in-process: one read pass
    of each side, the writes, their confirmation) of the same scene on a twin sandbox; the
    command must read no more than it (it used to read both sides once more before)."""
    with running_sandbox(SPEED) as sandbox:
        twin = Env(sandbox, tmp_path / "twin", ledger_url=more_ledger_urls(), lease_seconds="1")
        try:
            _scene(twin)
            for adapter in twin.adapters().values():
                assert all(check.ok for check in adapter.check())  # as the command's preflight
            assert twin.migrate(SUPEROFFICE).outcome == "converged"
            once = {side: _reads(twin, side) for side in _READS}
        finally:
            twin.close()
    assert once["superoffice"]["GET Archive/{provider}"] > 0
    assert once["zendesk"]["GET tickets/show_many"] > 0

    pairs = _scene(env)
    result = env.cli(*MIGRATE)
    assert result.exit_code == 0, result.output
    assert {side: _reads(env, side) for side in _READS} == once
    lines = result.output.splitlines()
    assert lines[0] == "Migration plan:"
    assert any(line.split() == ["zendesk", "soft_delete", "120"] for line in lines[:3])
    assert any(line.startswith("API calls: about ") for line in lines)
    assert [env.zd_state(z) for _, z in pairs[:120]] == ["deleted"] * 120


def test_unflagged_purges_are_refused_after_one_read_and_nothing_is_planned(env: Env) -> None:
    pairs = env.link(10)
    env.so.soft_delete([s for s, _ in pairs[:3]])
    env.so.purge([s for s, _ in pairs[3:5]])
    env.reset_counters()
    result = env.cli(*MIGRATE)
    assert result.exit_code == 2, result.output
    assert "2 tickets are purged in superoffice" in result.output
    assert "nothing was written" in result.output
    assert env.ops() == []  # no operation planned, so no later sync sends one
    assert env.writes() == {"POST Agents/Ticket/SetDeletedStatusByIds": 1}  # the rights probe
    flagged = env.cli(*MIGRATE, "--include-purges")
    assert flagged.exit_code == 0, flagged.output
    assert [env.zd_state(z) for _, z in pairs[:5]] == ["deleted"] * 3 + ["purged"] * 2
