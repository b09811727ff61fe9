"""`bridge sandbox serve --write-config DIR --webhooks` as a user starts it: a real process
whose simulators call the `[serve]` address of DIR/bridge.toml with calls that verify
against the secret files beside it (a receiver in the test stands in for `bridge serve`)."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

from bridge.config import load_config
from bridge.vendors.superoffice.webhooks import FORMAT as SO_FORMAT
from bridge.vendors.zendesk.webhooks import FORMAT as ZD_FORMAT
from tests.webhooks.receiver import Receiver


def test_sandbox_serve_webhooks_calls_the_serve_address_signed(tmp_path: Path) -> None:
    with Receiver() as rx:
        port = rx.url.rsplit(":", 1)[1]
        folder = tmp_path / "try"
        process = subprocess.Popen(
            [sys.executable, "-m", "bridge", "sandbox", "serve", "--zendesk-port", "0",
             "--superoffice-port", "0", "--write-config", str(folder), "--webhooks",
             "--serve-port", port],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        try:
            assert process.stdout is not None
            lines: list[str] = []
            while not lines or not lines[-1].startswith("Run `ticket-bridge"):
                line = process.stdout.readline()
                assert line, f"sandbox serve ended early: {lines}"
                lines.append(line.strip())
            zendesk = lines[0].split()[-1]
            config = load_config(folder / "bridge.toml")
            assert config.serve.url == rx.url
            assert f"Webhook zendesk: bridge-default -> {rx.url}/webhooks/zendesk" in lines
            seeded = requests.post(
                f"{zendesk}/_sandbox/seed", json={"tickets": [{"subject": "x"}]}, timeout=5
            ).json()
            acted = requests.post(
                f"{zendesk}/_sandbox/act",
                json={"action": "delete", "ids": seeded["ids"]},
                timeout=5,
            )
            assert acted.status_code == 200
            [call] = rx.wait_for(1, timeout=10)
            secret = (folder / "secrets" / "zendesk.webhook_secret").read_bytes().strip()
            now = datetime.now(UTC)
            ZD_FORMAT.verify(secret, call.headers, call.body, now=now, window=timedelta(minutes=5))
            assert call.path == "/webhooks/zendesk"
            superoffice = (
                lines[1].split()[-1].removesuffix(f"/{config.vendors['superoffice'].tenant}/api/v1")
            )
            requests.post(f"{superoffice}/_sandbox/seed", json={"count": 1}, timeout=5)
            so_call = rx.wait_for(2, timeout=10)[1]
            assert so_call.path == "/webhooks/superoffice"
            assert so_call.json()["Event"] == "ticket.created"
            so_secret = (folder / "secrets" / "superoffice.webhook_secret").read_bytes().strip()
            SO_FORMAT.verify(
                so_secret, so_call.headers, so_call.body, now=now, window=timedelta(minutes=5)
            )
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=20)
    assert process.returncode == 0
