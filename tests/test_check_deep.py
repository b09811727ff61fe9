"""`bridge check --deep`: read-only probes of the assumed vendor behaviours, against the
simulators (which model them as assumed), and one simulator set to contradict one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import main
from bridge.cli.exitcodes import ExitCode
from bridge.sandbox import SimClock
from bridge.sandbox_pair import Sandbox
from bridge.vendors.registry import VENDORS


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(clock=SimClock(frozen=True)) as both:
        both.relax_limits()
        yield both


def _seed_deleted(sandbox: Sandbox) -> Callable[[], list[object]]:
    """Tickets on both sides, some soft-deleted; returns a reader of all their states."""
    so_ids = sandbox.superoffice.seed_tickets(4)
    sandbox.superoffice.soft_delete(so_ids[:2])
    sandbox.zendesk.configure({"audit_logs": True})
    zd_ids = sandbox.zendesk.seed_tickets(
        [{"subject": "kept"}, {"subject": "gone", "state": "deleted"}, {"state": "deleted"}]
    )
    purged = sandbox.zendesk.seed_tickets([{"subject": "purged"}])
    sandbox.zendesk.agent_act("purge", purged, agent=(7, "Ann"))
    return lambda: (
        [sandbox.superoffice.ticket_state(i) for i in so_ids]
        + [sandbox.zendesk.ticket_state(i) for i in zd_ids]
    )


def check(config: Path, *args: str) -> tuple[int, list[str], str]:
    result = CliRunner().invoke(main, ["--config", str(config), "check", *args])
    return result.exit_code, result.stdout.splitlines(), result.stderr


def _deep_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if " deep " in line]


def test_every_probe_passes_and_only_reads(sandbox: Sandbox, tmp_path: Path) -> None:
    states = _seed_deleted(sandbox)
    states_before = states()
    config = sandbox.write_config(tmp_path)
    code, _, _ = check(config)
    assert code == 0
    plain = {
        sim: dict(sim.counters.reset()["routes"]) for sim in (sandbox.superoffice, sandbox.zendesk)
    }

    code, lines, err = check(config, "--deep")

    assert code == 0, "\n".join(lines) + err
    deep = _deep_lines(lines)
    for side_vendor in VENDORS:
        probes = [line for line in deep if line.startswith(side_vendor.name)]
        assert probes, f"no probe lines for {side_vendor.name}"
    assert all(" ok " in line for line in deep), deep
    # with deleted tickets on both sides and an audit log, every probe has data
    idle = [line for line in deep if "not exercised" in line]
    assert idle == [], idle
    # the probes add GETs only: whatever else was sent, the plain check sent too
    for sim, before in plain.items():
        added = set(sim.counters.snapshot()["routes"]) - set(before)
        assert all(route.startswith("GET") for route in added), added
    assert states() == states_before


def test_an_empty_tenant_is_not_exercised_rather_than_failed(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    code, lines, _ = check(sandbox.write_config(tmp_path), "--deep")
    assert code == 0
    idle = [line for line in _deep_lines(lines) if "not exercised" in line]
    assert any("recycle bin is empty" in line for line in idle)
    assert any("no soft-deleted tickets" in line for line in idle)


def test_a_contradicted_assumption_fails_with_what_was_seen(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    _seed_deleted(sandbox)
    # a tenant where soft-deleted requests are not readable by id (404)
    sandbox.superoffice.configure({"deleted_readable": False})
    code, lines, _ = check(sandbox.write_config(tmp_path), "--deep")
    assert code == ExitCode.VENDOR
    failed = [line for line in _deep_lines(lines) if "FAIL" in line]
    assert len(failed) == 1, failed
    assert "so.ticket.deleted-readable" in failed[0]
    assert "answered 404" in failed[0]


def test_deep_and_offline_cannot_be_combined(sandbox: Sandbox, tmp_path: Path) -> None:
    code, _, err = check(sandbox.write_config(tmp_path), "--deep", "--offline")
    assert code == ExitCode.USAGE
    assert "--offline" in err


def test_an_unreadable_ticket_log_says_actors_will_be_missing(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    _seed_deleted(sandbox)
    sandbox.superoffice.configure({"ticket_log_readable": False})
    code, lines, _ = check(sandbox.write_config(tmp_path), "--deep")
    assert code == ExitCode.VENDOR
    [failed] = [line for line in _deep_lines(lines) if "FAIL" in line]
    assert "so.log.actor" in failed
    assert "no SuperOffice actors" in failed
