"""The large-tenant benchmarks still run, at a size CI can afford (issue 16).

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
