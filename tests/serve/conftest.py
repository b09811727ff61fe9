"""`bridge serve` over real HTTP on 127.0.0.1, against both simulators.

The simulators run on a sped-up clock (`tests/e2e/conftest.py: Live`); bridge's targeted
runs use the wall clock, as `bridge serve` does. Webhook calls are signed here with each
vendor's own `signed_headers`, as the vendor would sign them.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from bridge.config import Config
from bridge.ledger.tables import Run
from bridge.serve.server import BackgroundServer, Service
from bridge.vendors.registry import SUPEROFFICE_VENDOR, ZENDESK_VENDOR
from tests.e2e.conftest import Live
from tests.sandbox_world import running_sandbox

SECRETS = {"zendesk": b"zd-webhook-signing-secret", "superoffice": b"so-webhook-secret"}
SO_EVENT = "ticket.changed"
ZD_DELETED = "zen:event-type:ticket.soft_deleted"


def add_webhook_config(config_path: Path, *, serve: str = "", **vendor_lines: str) -> None:
    """Give both vendor sections a webhook secret file (and `vendor_lines`), and add a
    `[serve]` section, as a user would edit the written config."""
    folder = config_path.parent
    text = config_path.read_text(encoding="utf-8")
    for side, secret in SECRETS.items():
        path = folder / "secrets" / f"{side}.webhook"
        path.write_bytes(secret + b"\n")
        path.chmod(0o600)
        extra = vendor_lines.get(side, "")
        header = f"[{side}]\n"
        text = text.replace(
            header, f'{header}webhook_secret_file = "secrets/{side}.webhook"\n{extra}', 1
        )
    text += f"\n[serve]\n{serve}"
    config_path.write_text(text, encoding="utf-8")


class Served(Live):
    """The simulators, a config with webhook secrets, and `bridge serve` on a free port."""

    service: Service
    server: BackgroundServer

    def start_serving(self, *, lease_retry: float = 0.3) -> None:
        config: Config = self.config()
        self.service = Service({config.pair: config}, lease_retry=lease_retry)
        self.service.start()
        self.server = BackgroundServer(self.service.app).start()

    def stop_serving(self) -> None:
        self.server.stop()
        self.service.close()

    # --- calls -------------------------------------------------------------------------

    def post(
        self,
        side: str,
        body: bytes,
        *,
        secret: bytes | None = None,
        delivery: str | None = None,
        signed_at: datetime | None = None,
        headers: dict[str, str] | None = None,
        path: str | None = None,
        url: str | None = None,
    ) -> requests.Response:
        """POST `body` to `side`'s endpoint (of the server at `url`, else the one started
        here), signed as the vendor signs (with `secret`, else the configured one)."""
        fmt = (ZENDESK_VENDOR if side == "zendesk" else SUPEROFFICE_VENDOR).webhooks
        signed = fmt.signed_headers(
            secret or SECRETS[side],
            body,
            now=signed_at or datetime.now(UTC),
            delivery_id=delivery or str(uuid.uuid4()),
            event=SO_EVENT,
        )
        return requests.post(
            f"{url or self.server.url}{path or f'/webhooks/{side}'}",
            data=body,
            headers={**signed, **(headers or {})},
            timeout=10,
        )

    def health(self) -> dict[str, Any]:
        answer = requests.get(f"{self.server.url}/health", timeout=10)
        return dict(answer.json())

    def metrics(self) -> str:
        return requests.get(f"{self.server.url}/metrics", timeout=10).text

    def runs(self) -> list[Run]:
        return list(reversed(self.ledger.recent_runs(100)))

    def wait_for(self, done: Callable[[], bool], timeout: float = 10.0) -> float:
        """Seconds until `done()` holds; fails after `timeout`."""
        start = time.monotonic()
        while not done():
            if time.monotonic() - start > timeout:
                pytest.fail(f"not done within {timeout} s")
            time.sleep(0.02)
        return time.monotonic() - start

    def settled(self) -> bool:
        """Nothing waits and no targeted run is going on."""
        pair = next(iter(self.health()["pairs"].values()))
        return not pair["queue_depth"] and not pair["running"]


def zendesk_event(
    ticket: int, event: str = ZD_DELETED, *, actor: int = 7, at: datetime | None = None
) -> bytes:
    """A Zendesk ticket event as Zendesk sends it (ids in `detail` are strings)."""
    at = at or datetime.now(UTC)
    return json.dumps(
        {
            "account_id": 1,
            "detail": {"actor_id": str(actor), "id": str(ticket), "status": "DELETED"},
            "event": {},
            "id": str(uuid.uuid4()),
            "subject": f"zen:ticket:{ticket}",
            "time": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "type": event,
            "zendesk_event_version": "2022-11-06",
        }
    ).encode()


def superoffice_event(ticket: int, *, actor: int = 19, at: datetime | None = None) -> bytes:
    """A SuperOffice `ticket.changed` webhook (the Timestamp is what is signed for time)."""
    at = at or datetime.now(UTC)
    return json.dumps(
        {
            "EventId": str(uuid.uuid4()),
            "Timestamp": at.strftime("%Y-%m-%dT%H:%M:%S.%f0Z"),
            "Changes": ["status"],
            "Event": SO_EVENT,
            "PrimaryKey": ticket,
            "Entity": "ticket",
            "ContextIdentifier": "Cust1",
            "ChangedByAssociateId": actor,
            "WebhookName": "bridge",
            "FieldValues": {"status": 4},
        }
    ).encode()


def make_served(
    tmp_path: Path,
    *,
    ledger_url: str | None = None,
    serve: str = "coalesce_seconds = 0.2\n",
    **vendor_lines: str,
) -> Iterator[Served]:
    """`Served` on the ledger at `ledger_url` (None: the config's own SQLite file)."""
    with running_sandbox(50.0, start=datetime.now(UTC) - timedelta(days=20)) as sandbox:
        world = Served(
            sandbox,
            tmp_path / "bridge",
            ledger_url=ledger_url,
            lease_seconds="60",
            max_purges_per_run="1000",
        )
        add_webhook_config(world.config_path, serve=serve, **vendor_lines)
        world.start_serving()
        try:
            yield world
        finally:
            world.stop_serving()
            world.close()


@pytest.fixture
def served(tmp_path: Path, world_ledger_url: str | None) -> Iterator[Served]:
    """`bridge serve` for one pair of simulators; hints coalesced for 0.2 s (a ledger on
    SQLite, or each backend with `@both_backends`)."""
    yield from make_served(tmp_path, ledger_url=world_ledger_url)
