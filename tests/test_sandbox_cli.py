"""`bridge sandbox ...` as a user starts it: a real process that prints its URL and serves."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests


@contextmanager
def serving(*args: str) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "bridge", "sandbox", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        lines.append(process.stdout.readline().strip())
        yield process, lines
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            raise


def test_zendesk_sandbox_serves_until_interrupted() -> None:
    with serving("zendesk", "--port", "0") as (process, lines):
        assert lines[0].startswith("Zendesk simulator: http://127.0.0.1:")
        url = lines[0].split()[2]
        ok = requests.get(
            f"{url}/api/v2/deleted_tickets.json",
            auth=("admin@example.com/token", "sandbox-token"),
            timeout=10,
        )
        assert ok.status_code == 200
        assert ok.json()["deleted_tickets"] == []
        denied = requests.get(f"{url}/api/v2/deleted_tickets.json", timeout=10)
        assert denied.status_code == 401
        assert denied.json() == {"error": "Couldn't authenticate you"}
    assert process.returncode == 0


def test_superoffice_sandbox_serves_until_interrupted() -> None:
    with serving("superoffice", "--port", "0", "--tenant", "Cust777") as (process, lines):
        assert lines[0].startswith("SuperOffice simulator: http://127.0.0.1:")
        api = lines[0].split()[2]
        assert api.endswith("/Cust777/api/v1")
        answer = requests.get(
            f"{api}/Archive/RecycleTicket",
            headers={"Authorization": "SOTicket 7T:sandbox", "SO-AppToken": "sandbox-app"},
            timeout=10,
        )
        assert answer.status_code == 200
        assert answer.json()["value"] == []
    assert process.returncode == 0


def test_serve_writes_a_config_that_works(tmp_path: Path) -> None:
    folder = tmp_path / "try"
    with serving(
        "serve", "--zendesk-port", "0", "--superoffice-port", "0", "--write-config", str(folder)
    ) as (process, _lines):
        assert process.stdout is not None
        for _ in range(3):
            line = process.stdout.readline()
            if line.startswith("Wrote"):
                break
        assert (folder / "bridge.toml").exists()
        checked = subprocess.run(
            [sys.executable, "-m", "bridge", "--config", str(folder / "bridge.toml"), "check"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
        synced = subprocess.run(
            [sys.executable, "-m", "bridge", "--config", str(folder / "bridge.toml"), "sync"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert synced.returncode == 0, synced.stdout + synced.stderr
        assert "converged" in synced.stdout
