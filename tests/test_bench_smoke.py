"""The large-tenant benchmarks still run, at a size CI can afford (issues 16 and 18).

Behaviour only: each benchmark completes, every run it measures converges, and it prints
its table. Their speed is what the benchmarks themselves report (docs/performance.md).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"

pytestmark = pytest.mark.slow


def _run(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _rows(output: str, first_cell: str) -> list[list[str]]:
    """The cells of the table rows whose first cell is `first_cell`."""
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in output.splitlines()]
    return [row for row in rows if row and row[0] == first_cell]


def test_large_tenant_runs_every_phase_and_prints_the_minimum() -> None:
    # the child asserts that each run converged: a run that did not fails the command
    output = _run("large_tenant.py", "2000", "--changes", "200")
    assert "| run | links | calls | vendor minimum | calls ÷ min |" in output
    phases = ["first full sync", "no changes", "200 changes each side", "sweep a day later"]
    for phase in phases:
        (row,) = _rows(output, phase)
        calls, minimum = int(row[2].replace(",", "")), int(row[3].replace(",", ""))
        assert calls >= minimum > 0, row  # nothing beats the vendors' minimum


def test_cli_scale_converges_through_the_command_line() -> None:
    output = _run("cli_scale.py", "300")
    rows = _rows(output, "300")
    assert [row[1] for row in rows] == ["first sync", "idle sync"]
    assert all(row[-1] == "converged" for row in rows), rows
    assert all(int(row[2]) > 0 for row in rows), rows  # the simulators were read


def test_large_tenant_sets_postgresql_beside_sqlite(pg_bin: Path) -> None:
    # issue 18: each run on both ledger backends (the child asserts every run converged)
    output = _run("large_tenant.py", "300", "--changes", "50", "--backends", "sqlite,postgresql")
    assert "ledger on sqlite:" in output
    assert "ledger on postgresql:" in output
    side_by_side = output.split("side by side", 1)[1]
    assert "| run | links | wall s SQLite | wall s PostgreSQL | wall ratio |" in side_by_side
    phases = ["first full sync", "no changes", "50 changes each side", "sweep a day later"]
    server_cpu = 0.0
    for phase in phases:
        row = _rows(side_by_side, phase)[0]
        lite, pg, ratio = (float(cell) for cell in row[2:5])
        assert lite > 0, row
        assert pg > 0, row
        # the printed ratio is the two walls' (each printed rounded to 0.005)
        assert (pg - 0.005) / (lite + 0.005) <= ratio + 0.005, row
        assert ratio - 0.005 <= (pg + 0.005) / (lite - 0.005), row
        assert min(int(cell.replace(",", "")) for cell in row[-2:]) > 0, row  # statements
        server_cpu += float(row[11])
    assert server_cpu > 0  # the PostgreSQL runs went through the server
    verdicts = {row[0]: row for row in _rows(side_by_side, "first full sync")[1:]}
    verdicts |= {row[0]: row for row in _rows(side_by_side, "no changes")[1:]}
    for phase, target in (("first full sync", 1.3), ("no changes", 1.5)):
        ratio, verdict = float(verdicts[phase][2]), verdicts[phase][4]
        assert verdict == ("met" if ratio <= target else "NOT met"), verdicts[phase]


def test_paired_backends_follows_one_sandbox_with_both_ledgers(pg_bin: Path) -> None:
    # issue 18's ratios measured side by side in time: each round's first syncs in turn
    # (who goes first alternating), then idle syncs alternating; every run converged
    output = _run("paired_backends.py", "300", "--rounds", "2", "--idle", "3")
    rounds = [_rows(output, str(n))[0] for n in (1, 2)]
    assert [r[1] for r in rounds] == ["SQLite", "PostgreSQL"]
    for row in rounds:
        first_lite, first_pg, first_ratio, idle_lite, idle_pg, idle_ratio = map(float, row[2:8])
        # each printed ratio is its two walls' (as printed: rounded)
        assert first_ratio == pytest.approx(first_pg / first_lite, rel=0.05), row
        assert idle_ratio == pytest.approx(idle_pg / idle_lite, rel=0.05), row
    for phase in ("first full sync", "no changes"):
        (verdict,) = _rows(output, phase)
        assert verdict[4] in ("met", "NOT met"), verdict


def test_large_tenant_refuses_an_unknown_backend() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / "large_tenant.py"), "300", "--backends", "sqlite,oracle"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "choose from sqlite, postgresql" in done.stderr


def test_webhooks_bench_answers_crosses_and_coalesces() -> None:
    # issue 19: the child asserts every load call was answered 202 and every delete crossed
    output = _run("webhooks.py", "--rate", "50", "--seconds", "1", "--events", "3", "--burst", "20")
    (load,) = _rows(output, "load: 50 calls at 50/s")
    assert load[2].startswith("p50 ")
    (crossing,) = _rows(output, "delete → other side: 3 single events")
    assert float(crossing[2].split()[1]) < 10  # seconds: no scheduled run did it
    (burst,) = [row for row in _rows(output, row_start(output, "burst:")) if row]
    calls, minimum = burst[1].removesuffix(")").split(" calls (minimum ")
    assert int(minimum) > 0
    assert int(calls) >= int(minimum)  # nothing beats the bulk minimum


def row_start(output: str, prefix: str) -> str:
    """The first cell of the row that starts with `prefix`."""
    return next(
        line.strip("| ").split(" |")[0]
        for line in output.splitlines()
        if line.startswith(f"| {prefix}")
    )


def test_workers_bench_converges_every_pair_through_kills(pg_bin: Path) -> None:
    # issue 18: pairs synced by 1 and 2 worker processes, then a round with a worker killed
    # at its first bulk write and others SIGKILLed; the command itself fails when a round
    # does not converge, a purge is repeated or an account goes over its budget
    output = _run(
        "workers.py", "--pairs", "3", "--links", "50", "--changes", "5", "--purges", "2",
        "--pairs-per-account", "1", "--workers", "1,2", "--kill-every", "5", "--timeout", "90",
    )  # fmt: skip
    rounds = {name: _rows(output, name)[0] for name in ("1 worker(s)", "2 worker(s)", "kills")}
    for row in rounds.values():
        assert float(row[3]) > 0, row  # seconds to converge: a number, not "did not converge"
        assert int(row[2]) == 3 * (5 + 5 + 2), row  # every pair's changes made
    assert "kills: 1 at the crash point before_send:1" in output
    (zendesk,) = _rows(output, "Zendesk (destroy_many)")
    assert int(zendesk[1]) == 3 * 2 * 3  # 2 purges a pair in each of 3 rounds, each once
    assert zendesk[2:] == ["0", "0"]  # no duplicate, no ticket purged twice
