"""`bridge serve` as an operator starts it: a real process on the config's [serve] port,
answering webhooks and /health, stopping cleanly on SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import requests
from click.testing import CliRunner

from bridge.cli import main
from tests.conftest import both_backends
from tests.serve.conftest import Served, zendesk_event


def test_help_teaches_with_examples() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    for text in ("POST /webhooks/zendesk", "GET  /health", "Examples:", "--port", "401", "413"):
        assert text in result.output


@both_backends
def test_serve_runs_as_a_process_and_stops_on_sigterm(served: Served) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with served.config_path.open("a", encoding="utf-8") as config:
        config.write(f"port = {port}\n")  # into [serve], the file's last section
    pairs = served.link(2)
    served.sync()
    so_id, zd_id = pairs[0]
    process = subprocess.Popen(
        [sys.executable, "-m", "bridge", "--config", str(served.config_path), "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if requests.get(f"{url}/health", timeout=1).json()["ok"]:
                    break
            except requests.ConnectionError:
                time.sleep(0.05)
        served.zd.agent_act("delete", [zd_id], agent=(7, "Ann"))
        forged = served.post("zendesk", zendesk_event(zd_id), url=url, secret=b"guess")
        assert forged.status_code == 401
        assert served.post("zendesk", zendesk_event(zd_id), url=url).status_code == 202
        served.wait_for(lambda: served.so_state(so_id) == "deleted")
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err[-2000:]
    assert f"listening on http://127.0.0.1:{port}" in out
    assert "targeted runs: in-process" in out  # no `bridge worker` made a queue
