"""What `bridge serve` answers a webhook call, over real HTTP: 202 fast for what it
believes, 401 for a forged or replayed call, 413 for a body over the limit (by its
Content-Length, or as it streams), 202 and ignored for an event not about deletion,
duplicates noticed; and that none of the refused calls starts a run."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from tests.conftest import both_backends
from tests.serve.conftest import Served, make_served, superoffice_event, zendesk_event

pytestmark = both_backends


@pytest.fixture
def idle(tmp_path: Path, world_ledger_url: str | None) -> Iterator[Served]:
    """`bridge serve` with a body limit of 2 KiB and hints held back ten minutes: the answers
    are judged with no run in the way."""
    yield from make_served(
        tmp_path,
        ledger_url=world_ledger_url,
        serve="coalesce_seconds = 600\nmax_body_bytes = 2048\nreplay_window_seconds = 60\n",
    )


def metric(text: str, name: str, **labels: str) -> float:
    """A sample's value from the exposition (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and ",".join(sorted(match.group(1).split(","))) == wanted:
            return float(match.group(2))
    return 0.0


def refused(text: str, side: str, reason: str) -> float:
    return metric(text, "bridge_webhooks_refused_total", pair="default", side=side, reason=reason)


def ignored(text: str, side: str, reason: str) -> float:
    return metric(text, "bridge_webhooks_ignored_total", pair="default", side=side, reason=reason)


def depth(world: Served) -> int:
    return int(world.health()["pairs"]["default"]["queue_depth"])


def test_a_signed_hint_is_queued_with_202_and_nothing_is_read_in_the_request(idle: Served) -> None:
    idle.reset_counters()
    answer = idle.post("zendesk", zendesk_event(42))
    assert answer.status_code == 202
    assert answer.json() == {"status": "queued", "tickets": 1}
    assert depth(idle) == 1
    assert idle.routes("zendesk") == {}
    assert idle.routes("superoffice") == {}
    text = idle.metrics()
    assert metric(text, "bridge_webhooks_received_total", pair="default", side="zendesk") == 1
    assert metric(text, "bridge_hints_queued_total", pair="default", side="zendesk") == 1
    assert metric(text, "bridge_hints_queue_depth", pair="default") == 1


def test_bad_or_missing_signature_is_401_and_queues_nothing(idle: Served) -> None:
    forged = idle.post("zendesk", zendesk_event(42), secret=b"not-the-secret")
    assert forged.status_code == 401
    assert "signature" in forged.json()["error"]
    # another body under a good call's signature
    good = superoffice_event(8)
    signature = idle.post("superoffice", good).request.headers["X-SuperOffice-Signature"]
    swapped = idle.post(
        "superoffice", superoffice_event(9), headers={"X-SuperOffice-Signature": signature}
    )
    assert swapped.status_code == 401
    unsigned = requests.post(
        f"{idle.server.url}/webhooks/zendesk", data=zendesk_event(42), timeout=10
    )
    assert unsigned.status_code == 401
    assert depth(idle) == 1  # the good SuperOffice call only
    text = idle.metrics()
    assert refused(text, "zendesk", "signature") == 2
    assert refused(text, "superoffice", "signature") == 1


def test_a_call_signed_outside_the_replay_window_is_401(idle: Served) -> None:
    old = datetime.now(UTC) - timedelta(minutes=5)
    answer = idle.post("zendesk", zendesk_event(42), signed_at=old)
    assert answer.status_code == 401
    assert "replay window" in answer.json()["error"]
    stale = idle.post("superoffice", superoffice_event(7, at=old))
    assert stale.status_code == 401
    ahead = idle.post(
        "zendesk", zendesk_event(42), signed_at=datetime.now(UTC) + timedelta(minutes=5)
    )
    assert ahead.status_code == 401
    assert depth(idle) == 0
    text = idle.metrics()
    assert refused(text, "zendesk", "replay") == 2
    assert refused(text, "superoffice", "replay") == 1


def test_an_oversized_body_is_413_by_its_length_or_as_it_streams(idle: Served) -> None:
    padded = json.loads(zendesk_event(42))
    padded["event"] = {"padding": "x" * 4000}
    body = json.dumps(padded).encode()
    declared = idle.post("zendesk", body)
    assert declared.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer
        for start in range(0, len(body), 500):
            yield body[start : start + 500]

    streamed = requests.post(f"{idle.server.url}/webhooks/zendesk", data=chunks(), timeout=10)
    assert streamed.status_code == 413
    assert depth(idle) == 0
    within = idle.post("zendesk", zendesk_event(43))
    assert within.status_code == 202  # the limit is on size, not on the endpoint
    text = idle.metrics()
    assert refused(text, "zendesk", "too_large") == 2


def test_an_event_not_about_deletion_is_202_and_ignored(idle: Served) -> None:
    answer = idle.post("zendesk", zendesk_event(42, "zen:event-type:ticket.comment_added"))
    assert answer.status_code == 202
    assert answer.json()["status"] == "ignored"
    unreadable = idle.post(
        "superoffice",
        b'{"Event": "ticket.changed", "Timestamp": "'
        + datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ").encode()
        + b'"}',
    )
    assert unreadable.status_code == 202
    assert unreadable.json() == {"status": "ignored", "reason": "unreadable body"}
    assert depth(idle) == 0
    text = idle.metrics()
    assert ignored(text, "zendesk", "event") == 1
    assert ignored(text, "superoffice", "unreadable") == 1


def test_a_duplicate_delivery_is_202_and_queued_once(idle: Served) -> None:
    body = zendesk_event(42)
    first = idle.post("zendesk", body, delivery="inv-1")
    again = idle.post("zendesk", body, delivery="inv-1")
    # a replay with a new invocation id: the same signed body
    renamed = idle.post("zendesk", body, delivery="inv-2")
    assert [r.json()["status"] for r in (first, again, renamed)] == [
        "queued",
        "duplicate",
        "duplicate",
    ]
    other = idle.post("zendesk", zendesk_event(42), delivery="inv-3")  # a new event
    assert other.json()["status"] == "queued"
    assert depth(idle) == 1  # one ticket, named twice, waits once
    text = idle.metrics()
    assert metric(text, "bridge_webhooks_duplicates_total", pair="default", side="zendesk") == 2


def test_an_unknown_endpoint_is_404_and_health_and_metrics_answer(idle: Served) -> None:
    assert requests.post(f"{idle.server.url}/webhooks/freshdesk", timeout=10).status_code == 404
    assert requests.post(f"{idle.server.url}/webhooks/zendesk/other", timeout=10).status_code == 404
    named = idle.post("zendesk", zendesk_event(5), path="/webhooks/zendesk/default")
    assert named.json() == {"status": "queued", "tickets": 1}  # the pair's name may be given
    health = idle.health()
    assert health["ok"] is True
    assert health["pairs"]["default"]["last_run"] is None
    text = idle.metrics()
    assert "bridge_links" in text  # the ledger's metrics, as `sync --metrics-file` has them


def test_a_vendor_without_a_webhook_secret_is_refused_404(
    tmp_path: Path, world_ledger_url: str | None
) -> None:
    for world in make_served(tmp_path, ledger_url=world_ledger_url):
        world.stop_serving()
        text = world.config_path.read_text(encoding="utf-8")
        text = text.replace('webhook_secret_file = "secrets/superoffice.webhook"\n', "")
        world.config_path.write_text(text, encoding="utf-8")
        world.start_serving()
        answer = world.post("superoffice", superoffice_event(7))
        assert answer.status_code == 404
        assert "webhook secret" in answer.json()["error"]
        assert world.post("zendesk", zendesk_event(42)).status_code == 202


def test_answers_are_fast(idle: Served) -> None:
    """202 without waiting for anything: a few hundred calls in a row, each well under
    the vendors' timeouts (the benchmark measures p99 under load)."""
    slowest = 0.0
    for n in range(200):
        answer = idle.post("zendesk", zendesk_event(1000 + n))
        assert answer.status_code == 202
        slowest = max(slowest, answer.elapsed.total_seconds())
    assert slowest < 1.0
    assert depth(idle) == 200
