"""The Singer `tap-zendesk` connector (PyPI, unmodified) reads the Zendesk simulator.

The tap builds every URL as `https://{subdomain}.zendesk.com/...` and has no setting for
another host; its `requests` calls (and zenpy's) honour `HTTPS_PROXY` and
`REQUESTS_CA_BUNDLE`, so a local proxy (`vendor_proxy.py`) answers for
`sandbox.zendesk.com` from the simulator. Its tickets stream reads the cursor-based
incremental export with `Bearer` auth (config `access_token`), which the simulator serves.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bridge.vendors.zendesk.sim.simulator import ZendeskSimulator
from tests.clients.singer import messages, run_tap
from tests.clients.vendor_proxy import VendorProxy, make_certificates

SUBDOMAIN = "sandbox"
HOST = f"{SUBDOMAIN}.zendesk.com"
START_DATE = "2024-01-01T00:00:00Z"  # before the simulator's clock (2024-05-01 12:00 UTC)

#: The simulator serves the ticket endpoints bridge needs, not the tap's other streams
#: (groups, users, organizations, macros, tags, ...). Discovery probes every stream and
#: stops at a 404, so the test gives the tap a token without the `read` scope for those:
#: a 403 whose description is the one the tap looks for (tap-zendesk `discover.py`), after
#: which the tap leaves optional streams out of the catalog and warns about the others.
#: `tickets/...` stays open: the audits probe (`tickets/1/audits`) takes its 404 in stride.
NO_READ_SCOPE = {
    "kind": "status",
    "status": 403,
    "path": r"^/api/v2/(?!tickets/|incremental/tickets/cursor)",
    "body": {"error": "Forbidden", "description": "Missing the following required scopes: read"},
}


@pytest.fixture
def proxy(zendesk_sim: ZendeskSimulator, tmp_path: Path) -> Iterator[VendorProxy]:
    certificates = make_certificates(HOST, tmp_path)
    with VendorProxy(HOST, ("127.0.0.1", zendesk_sim.port), certificates).running() as server:
        yield server
    assert server.refused == [], "the tap tried to reach another host"


@pytest.fixture
def tap(tap_zendesk: Path, proxy: VendorProxy, tmp_path: Path) -> Tap:
    return Tap(tap_zendesk, proxy, tmp_path)


class Tap:
    """The tap's command with its config (OAuth access token), run through the proxy."""

    def __init__(self, command: Path, proxy: VendorProxy, directory: Path) -> None:
        self.command = command
        self.directory = directory
        self.env = {**proxy.client_env(), "TZ": "UTC"}
        self.config = self._write(
            "config.json",
            {"start_date": START_DATE, "subdomain": SUBDOMAIN, "access_token": "sandbox-token"},
        )

    def _write(self, name: str, value: Any) -> str:
        path = self.directory / name
        path.write_text(json.dumps(value))
        return str(path)

    def discover(self) -> dict[str, Any]:
        catalog: dict[str, Any] = json.loads(
            run_tap(self.command, ["--config", self.config, "--discover"], self.env)
        )
        return catalog

    def sync(self, catalog: dict[str, Any], state: dict[str, Any]) -> list[dict[str, Any]]:
        args = ["--config", self.config, "--catalog", self._write("catalog.json", catalog)]
        args += ["--state", self._write("state.json", state)]
        return messages(run_tap(self.command, args, self.env))


def _select(catalog: dict[str, Any], stream: str) -> dict[str, Any]:
    """The catalog with `stream` selected (stream-level `selected` metadata)."""
    for entry in catalog["streams"]:
        if entry["tap_stream_id"] == stream:
            for item in entry["metadata"]:
                if item["breadcrumb"] == []:
                    item["metadata"]["selected"] = True
    return catalog


def _records(sent: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {m["record"]["id"]: m["record"] for m in sent if m["type"] == "RECORD"}


def _last_state(sent: list[dict[str, Any]]) -> dict[str, Any]:
    states = [m["value"] for m in sent if m["type"] == "STATE"]
    assert states, "the tap wrote no STATE"
    state: dict[str, Any] = states[-1]
    return state


def _bookmark(stamp: int) -> str:
    """The tap's bookmark text for a `generated_timestamp` (singer `strftime`)."""
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_discovery_lists_the_tickets_stream(
    zendesk_sim: ZendeskSimulator, tap: Tap, proxy: VendorProxy
) -> None:
    zendesk_sim.add_fault(**NO_READ_SCOPE)
    catalog = tap.discover()
    streams = {s["tap_stream_id"]: s for s in catalog["streams"]}
    assert "tickets" in streams
    properties = streams["tickets"]["schema"]["properties"]
    assert {"id", "status", "subject", "generated_timestamp"} <= set(properties)
    # the tickets probe read the export with the tap's decimal start_time and its token
    start = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp())
    probe = f"/api/v2/incremental/tickets/cursor.json?start_time={start}.0&per_page=1"
    assert ("GET", probe) in proxy.seen
    assert zendesk_sim.counters["GET incremental/tickets/cursor"] == 1


def test_sync_reads_live_deleted_and_scrubbed_tickets_then_only_changes(
    zendesk_sim: ZendeskSimulator, tap: Tap, proxy: VendorProxy
) -> None:
    zendesk_sim.add_fault(**NO_READ_SCOPE)
    catalog = _select(tap.discover(), "tickets")
    zendesk_sim.configure({"export_max_per_page": 2})  # so the tap follows cursor pages
    ids = zendesk_sim.seed_tickets(count=5, template={"subject": "Printer {n}"})
    zendesk_sim.advance(60)
    zendesk_sim.agent_act("delete", [ids[1]], agent=(7, "Ann"))
    zendesk_sim.agent_act("purge", [ids[2]], agent=(7, "Ann"))
    zendesk_sim.advance(60)
    proxy.seen.clear()

    first = tap.sync(catalog, {})

    assert [m["stream"] for m in first if m["type"] == "SCHEMA"] == ["tickets"]
    rows = _records(first)
    assert sorted(rows) == ids
    assert rows[ids[0]]["status"] == "new"
    assert rows[ids[0]]["subject"] == "Printer 0"
    assert "fields" not in rows[ids[0]]  # the tap drops it as a copy of custom_fields
    assert rows[ids[1]]["status"] == "deleted"  # soft-deleted: the export keeps the subject
    assert rows[ids[1]]["subject"] == "Printer 1"
    assert rows[ids[2]]["status"] == "deleted"  # purged: scrubbed
    assert rows[ids[2]]["subject"] == "SCRUBBED"
    changed_at = zendesk_sim.get_ticket(ids[1]).generated_timestamp  # type: ignore[union-attr]
    state = _last_state(first)
    assert state == {"bookmarks": {"tickets": {"generated_timestamp": _bookmark(changed_at)}}}
    # one start_time request, then the after_cursor pages until end_of_stream
    paths = [path for _, path in proxy.seen]
    assert paths[0].startswith("/api/v2/incremental/tickets/cursor.json?start_time=1704067200.0")
    assert len(paths) == 3
    assert all("cursor=" in p for p in paths[1:])

    zendesk_sim.advance(60)
    zendesk_sim.agent_act("restore", [ids[1]], agent=(7, "Ann"))
    zendesk_sim.agent_act("update", [ids[3]], agent=(7, "Ann"), fields={"priority": "high"})
    proxy.seen.clear()

    second = tap.sync(catalog, state)

    again = _records(second)
    # the changes, and what shares the bookmark's second (start_time is inclusive)
    assert sorted(again) == [ids[1], ids[2], ids[3]]
    assert again[ids[1]]["status"] == "new"  # restored to its previous status
    assert again[ids[3]]["priority"] == "high"
    assert proxy.seen[0][1].startswith(
        f"/api/v2/incremental/tickets/cursor.json?start_time={changed_at}.0"
    )
    restored_at = zendesk_sim.get_ticket(ids[1]).generated_timestamp  # type: ignore[union-attr]
    assert _last_state(second)["bookmarks"]["tickets"]["generated_timestamp"] == _bookmark(
        restored_at
    )
