"""What Zendesk's answers say beyond their status: its rate-limit headers in every spelling
(`bridge/vendors/zendesk/ratelimit.py`) and its error codes in both shapes
(`bridge/vendors/zendesk/errors.py`), read through the shared client (`scripted.py`)."""

from __future__ import annotations

import pytest

from bridge.vendors.http import VendorHTTPError
from bridge.vendors.zendesk.adapter import ZendeskAdapter
from bridge.vendors.zendesk.errors import error_code
from bridge.vendors.zendesk.ratelimit import endpoint_budget, parse_rate_limit
from tests.adapters.scripted import Reply, ScriptedServer, Sleeps, client_for


def test_rate_limit_headers_read_from_every_response(server: ScriptedServer) -> None:
    server.script["/x"] = [
        Reply(
            200,
            {},
            {
                "ratelimit-limit": "700",
                "ratelimit-remaining": "698",
                "ratelimit-reset": "41",
                "Zendesk-RateLimit-deleted-tickets-index": "total=10; remaining=9; resets=42",
            },
        )
    ]
    client = client_for(server, Sleeps(), rate_limit=parse_rate_limit)
    client.request("GET", "x")
    info = client.last_rate_limit
    assert info is not None
    assert (info.limit, info.remaining, info.reset_seconds) == (700, 698, 41.0)
    assert info.endpoints["deleted-tickets-index"] == (10, 9, 42.0)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-Rate-Limit": "700", "X-Rate-Limit-Remaining": "563"}, (700, 563, None)),
        (
            {"rate-limit": "400", "rate-limit-remaining": "399", "rate-limit-reset": "12"},
            (400, 399, 12.0),
        ),
        (
            {"RateLimit-Limit": "2500", "RateLimit-Remaining": "0", "RateLimit-Reset": "3"},
            (2500, 0, 3.0),
        ),
        ({}, (None, None, None)),
        ({"x-rate-limit": "lots"}, (None, None, None)),
    ],
)
def test_parse_rate_limit_spellings(
    headers: dict[str, str], expected: tuple[int | None, int | None, float | None]
) -> None:
    info = parse_rate_limit(headers)
    assert (info.limit, info.remaining, info.reset_seconds) == expected


def test_parse_rate_limit_endpoint_spellings() -> None:
    info = parse_rate_limit(
        {
            "zendesk-rate-limit-tickets-index": "total=100; remaining=99; resets=12",
            "Zendesk-RateLimit-deleted-tickets-destroy_many": "total=300;remaining=1;resets=5",
        }
    )
    assert info.endpoints == {
        "tickets-index": (100, 99, 12.0),
        "deleted-tickets-destroy_many": (300, 1, 5.0),
    }


def test_error_code_reads_both_error_shapes(server: ScriptedServer) -> None:
    server.script["/a"] = [Reply(422, {"errors": [{"code": "InvalidValue", "title": "t"}]})]
    server.script["/b"] = [Reply(403, {"error": "Forbidden", "description": "no"})]
    client = client_for(server, Sleeps())
    assert error_code(client.request("GET", "a", ok=(422,))) == "InvalidValue"
    assert error_code(client.request("GET", "b", ok=(403,))) == "Forbidden"


def test_the_adapter_reads_zendesk_signals_through_its_client(server: ScriptedServer) -> None:
    host, port = server.server_address[:2]
    server.script["/api/v2/tickets/show_many"] = [
        Reply(400, {"error": "TooManyValues"}, {"x-rate-limit": "700"})
    ]
    adapter = ZendeskAdapter(base_url=f"http://{host!s}:{port}", email="a@b.c", token="t")
    with pytest.raises(VendorHTTPError) as info:
        adapter.live([1])
    assert info.value.error == "TooManyValues"
    assert adapter.http.last_rate_limit is not None
    assert adapter.http.last_rate_limit.limit == 700


def test_only_documented_or_recorded_names_are_read() -> None:
    # `x-rate-limit-reset` is neither documented nor recorded: no reset from it
    info = parse_rate_limit({"x-rate-limit": "700", "x-rate-limit-reset": "9"})
    assert (info.limit, info.reset_seconds) == (700, None)
    assert parse_rate_limit({"x-ratelimit-tickets-index": "total=1"}).endpoints == {}


def test_export_budget_by_either_name() -> None:
    seen = parse_rate_limit(
        {"zendesk-ratelimit-incremental-exports": "total=10; remaining=0; resets=7"}
    )
    assert endpoint_budget(seen, "incremental-exports") == (10, 0, 7.0)
    documented = parse_rate_limit(
        {"Zendesk-RateLimit-incremental-exports-cursor": "total=30; remaining=29; resets=5"}
    )
    assert endpoint_budget(documented, "incremental-exports") == (30, 29, 5.0)
    assert endpoint_budget(parse_rate_limit({}), "incremental-exports") is None
    assert endpoint_budget(None, "incremental-exports") is None
