"""`bridge webhooks register|status|unregister` against both simulators, over real HTTP,
and `bridge sandbox serve --webhooks`'s config: the webhooks land where `bridge serve`
listens, signed with the secrets the config names."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner, Result

from bridge.cli import main
from bridge.config import load_config
from bridge.sandbox_pair import Sandbox, write_pairs_config
from bridge.vendors.superoffice.webhooks import FORMAT as SO_FORMAT
from bridge.vendors.zendesk.webhooks import FORMAT as ZD_FORMAT
from bridge.webhook_registration import target_url
from tests.sandbox_world import frozen_sandbox
from tests.webhooks.receiver import Receiver

WINDOW = timedelta(minutes=5)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with frozen_sandbox() as both:
        both.zendesk.configure({"webhook_timeout_seconds": 1.0})
        both.superoffice.configure({"webhook_timeout_seconds": 1.0})
        yield both


@pytest.fixture
def rx() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


def config_for(tmp_path: Path, sandbox: Sandbox, rx: Receiver) -> Path:
    """The sandbox's config with `[serve]` on the receiver's port (the receiver stands in
    for `bridge serve`)."""
    port = int(rx.url.rsplit(":", 1)[1])
    return sandbox.write_config(tmp_path, serve_port=port)


def bridge(path: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(path), *args], catch_exceptions=False)


def rows(result: Result) -> list[dict[str, object]]:
    return list(json.loads(result.output)["webhooks"])


def test_register_is_idempotent_and_the_calls_verify(
    tmp_path: Path, sandbox: Sandbox, rx: Receiver
) -> None:
    path = config_for(tmp_path, sandbox, rx)
    first = bridge(path, "webhooks", "register", "--json")
    assert first.exit_code == 0, first.output
    assert [r["action"] for r in rows(first)] == ["created", "created"]
    again = bridge(path, "webhooks", "register")
    assert again.exit_code == 0, again.output
    assert again.output.count("updated") == 2
    assert len(sandbox.zendesk.hooks.hooks) == 1
    assert len(sandbox.superoffice.hooks.hooks) == 1
    zd_file = tmp_path / "secrets" / "zendesk.webhook_secret"
    so_file = tmp_path / "secrets" / "superoffice.webhook_secret"
    for secret_file in (zd_file, so_file):
        assert stat.S_IMODE(os.stat(secret_file).st_mode) == 0o600
        value = secret_file.read_text().strip()
        assert len(value) >= 32
        assert value not in first.output + again.output
    [zd_hook] = sandbox.zendesk.hooks.hooks.values()
    [so_hook] = sandbox.superoffice.hooks.hooks.values()
    assert zd_file.read_text().strip() == zd_hook.secret
    assert so_file.read_text().strip() == so_hook.secret
    config = load_config(path)
    assert zd_hook.endpoint == target_url("zendesk", config) == rx.url + "/webhooks/zendesk"
    assert so_hook.target_url == rx.url + "/webhooks/superoffice"

    [zd_ticket] = sandbox.zendesk.seed_tickets([{"subject": "x"}])
    so_ticket = sandbox.superoffice.create_ticket("x")
    sandbox.zendesk.agent_act("delete", [zd_ticket])
    sandbox.superoffice.soft_delete([so_ticket])
    calls = rx.wait_for(3)  # ticket.created, ticket.changed, soft_deleted
    now = sandbox.clock.now()
    for call in calls:
        if call.path == "/webhooks/zendesk":
            ZD_FORMAT.verify(
                zd_file.read_bytes().strip(), call.headers, call.body, now=now, window=WINDOW
            )
        else:
            assert call.path == "/webhooks/superoffice"
            SO_FORMAT.verify(
                so_file.read_bytes().strip(), call.headers, call.body, now=now, window=WINDOW
            )


def test_status_reports_a_webhook_the_vendor_disabled_and_register_revives_it(
    tmp_path: Path, sandbox: Sandbox, rx: Receiver
) -> None:
    path = config_for(tmp_path, sandbox, rx)
    assert bridge(path, "webhooks", "register").exit_code == 0
    assert bridge(path, "webhooks", "status").exit_code == 0
    rx.status = 500
    sim = sandbox.superoffice
    tickets = [sim.create_ticket(f"t{n}") for n in range(3)]
    assert sim.webhooks is not None
    for ticket in tickets:  # 3 events x 3 attempts: TooManyErrors
        sim.soft_delete([ticket])
        for wait in (0, 1, 4):
            sandbox.clock.advance(wait)
            assert sim.webhooks.wait_idle()
    [zd_hook] = sandbox.zendesk.hooks.hooks.values()
    requests.patch(
        f"{sandbox.zendesk.base_url}/api/v2/webhooks/{zd_hook.id}",
        json={"webhook": {"status": "inactive"}},
        auth=("admin@example.com/token", "sandbox-token"),
        timeout=5,
    ).raise_for_status()
    status = bridge(path, "webhooks", "status", "--json")
    assert status.exit_code == 4, status.output
    states = {r["side"]: r["subscriptions"][0]["state"] for r in rows(status)}  # type: ignore[index]
    assert states == {"superoffice": "TooManyErrors", "zendesk": "inactive"}
    assert all(r["attention"] for r in rows(status))
    text = bridge(path, "webhooks", "status").output
    assert "TooManyErrors: the vendor does not call it" in text
    assert bridge(path, "webhooks", "register").exit_code == 0
    assert bridge(path, "webhooks", "status").exit_code == 0


def test_status_flags_a_missing_webhook_and_unregister_removes(
    tmp_path: Path, sandbox: Sandbox, rx: Receiver
) -> None:
    path = config_for(tmp_path, sandbox, rx)
    missing = bridge(path, "webhooks", "status")
    assert missing.exit_code == 4
    assert missing.output.count("missing") == 2
    assert bridge(path, "webhooks", "register").exit_code == 0
    removed = bridge(path, "webhooks", "unregister", "--json")
    assert removed.exit_code == 0
    assert [r["action"] for r in rows(removed)] == ["removed", "removed"]
    assert not sandbox.zendesk.hooks.hooks
    assert not sandbox.superoffice.hooks.hooks
    assert bridge(path, "webhooks", "unregister").output.count("missing") == 2


def test_a_zendesk_secret_file_holding_another_value_is_left_alone(
    tmp_path: Path, sandbox: Sandbox, rx: Receiver
) -> None:
    path = config_for(tmp_path, sandbox, rx)
    held = tmp_path / "secrets" / "zendesk.webhook_secret"
    held.write_text("someone-elses-secret\n")
    result = bridge(path, "webhooks", "register")
    assert result.exit_code == 4, result.output
    assert "holds another secret" in result.output
    assert held.read_text() == "someone-elses-secret\n"


def test_no_webhook_secret_configured_registers_nothing(
    tmp_path: Path, sandbox: Sandbox, rx: Receiver
) -> None:
    path = sandbox.write_config(tmp_path)  # no [serve], no webhook_secret_file
    result = CliRunner().invoke(main, ["--config", str(path), "webhooks", "register"])
    assert result.exit_code == 2
    assert "names no webhook_secret" in result.output
    assert not sandbox.zendesk.hooks.hooks
    assert not sandbox.superoffice.hooks.hooks


def test_several_pairs_each_get_their_own_path(tmp_path: Path, rx: Receiver) -> None:
    with frozen_sandbox() as one, frozen_sandbox() as two:
        port = int(rx.url.rsplit(":", 1)[1])
        path = write_pairs_config(tmp_path, {"emea": one, "apac": two}, serve_port=port)
        result = bridge(path, "webhooks", "register", "--json")
        assert result.exit_code == 0, result.output
        urls = {(r["pair"], r["side"]): r["subscriptions"][0]["target_url"] for r in rows(result)}  # type: ignore[index]
        assert urls[("apac", "zendesk")] == rx.url + "/webhooks/zendesk/apac"
        assert urls[("emea", "superoffice")] == rx.url + "/webhooks/superoffice/emea"
        [hook] = two.zendesk.hooks.hooks.values()
        assert hook.name == "bridge-apac"
        only = bridge(path, "--pair", "emea", "webhooks", "status")
        assert only.exit_code == 0, only.output
