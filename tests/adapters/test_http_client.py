"""Unit tests of the shared HttpClient against a scripted HTTP server on 127.0.0.1
(`scripted.py`): waits are asserted as values, never timed. The client reads no vendor's
dialect; the Zendesk and SuperOffice readers it is handed are tested beside their vendors.
"""

from __future__ import annotations

import socket
import threading
from collections import Counter
from collections.abc import Mapping

import pytest
import requests

from bridge.core.contract import (
    AccountBusyError,
    OutcomeUnknownError,
    PermanentError,
    TransientError,
)
from bridge.core.model import Side
from bridge.once import count_vendor_calls
from bridge.vendors.http import (
    HttpClient,
    RateLimitInfo,
    RetryBudgetExceededError,
    VendorHTTPError,
    answer_object,
    decode_json,
    parse_retry_after,
)
from tests.adapters.scripted import DROP, Reply, ScriptedServer, Sleeps, client_for


def error_field(response: requests.Response) -> str | None:
    """A stand-in vendor reader: the answer's `error` field."""
    body = answer_object(response)
    value = body.get("error") if body is not None else None
    return value if isinstance(value, str) else None


def test_429_waits_retry_after_then_succeeds(server: ScriptedServer) -> None:
    server.script["/x"] = [
        Reply(429, {"error": "APIRateLimitExceeded"}, {"Retry-After": "7"}),
        Reply(200, {"ok": True}),
    ]
    sleeps = Sleeps()
    client = client_for(server, sleeps)
    assert client.get_json("x") == {"ok": True}
    assert sleeps == [7.0]
    assert client.calls == 2
    assert server.log[0][2]["Authorization"] == "Bearer test-token"


def test_503_on_a_non_idempotent_write_is_an_unknown_outcome_never_resent(
    server: ScriptedServer,
) -> None:
    # a proxy can answer 503 after the vendor accepted the call: resending could act twice
    server.script["/p"] = [Reply(503, None, {"Retry-After": "3"}), Reply(201, {"id": 1})]
    sleeps = Sleeps()
    client = client_for(server, sleeps)
    with pytest.raises(OutcomeUnknownError, match="outcome unknown"):
        client.request("POST", "p", json={"a": 1})
    assert sleeps == []
    assert [m for m, _, _ in server.log] == ["POST"]


def test_429_is_retried_even_for_a_non_idempotent_write(server: ScriptedServer) -> None:
    server.script["/p"] = [Reply(429, None, {"Retry-After": "3"}), Reply(201, {"id": 1})]
    sleeps = Sleeps()
    client = client_for(server, sleeps)
    assert client.request("POST", "p", json={"a": 1}).status_code == 201
    assert sleeps == [3.0]
    assert [m for m, _, _ in server.log] == ["POST", "POST"]


def test_an_unreadable_2xx_to_a_write_is_an_unknown_outcome(server: ScriptedServer) -> None:
    server.script["/p"] = [Reply(200, b'{"job_st')]
    client = client_for(server, Sleeps())
    response = client.request("DELETE", "p", idempotent=False)
    with pytest.raises(OutcomeUnknownError):
        decode_json(response, "p")


def test_exhausted_retries_after_a_5xx_say_the_outcome_is_unknown(server: ScriptedServer) -> None:
    server.script["/x"] = [Reply(500), Reply(500)]
    client = client_for(server, Sleeps(), max_attempts=2)
    with pytest.raises(OutcomeUnknownError):
        client.request("PUT", "x")


def test_exhausted_retries_after_429s_say_not_sent(server: ScriptedServer) -> None:
    server.script["/x"] = [Reply(429), Reply(429)]
    client = client_for(server, Sleeps(), max_attempts=2)
    with pytest.raises(RetryBudgetExceededError) as caught:
        client.request("DELETE", "x", idempotent=False)
    assert not isinstance(caught.value, OutcomeUnknownError)


class _Turns:
    """A shared budget's pacer whose turns run out after `calls` calls."""

    def __init__(self, calls: int) -> None:
        self.left = calls

    def __call__(self) -> None:
        if self.left == 0:
            raise AccountBusyError("zendesk:x: this minute's calls are taken", retry_after=42)
        self.left -= 1


@pytest.mark.parametrize(
    ("first", "unknown"),
    [(None, False), (Reply(429), False), (Reply(503), True), (DROP, True)],
    ids=["at-once", "after-429", "after-503", "after-dropped"],
)
def test_a_turn_not_waited_for_is_not_sent_and_says_what_earlier_attempts_may_have_done(
    server: ScriptedServer, first: Reply | str | None, unknown: bool
) -> None:
    """A shared account's turn not waited for stops the request before it is sent. When an
    earlier attempt of an idempotent write may have been acted on (a 503, a dropped
    answer), the outcome is unknown, as when the retries run out; after a 429 it was not."""
    server.script["/x"] = [first] if first is not None else []
    client = client_for(server, Sleeps(), pacer=_Turns(0 if first is None else 1))
    with pytest.raises(TransientError) as caught:
        client.request("DELETE", "x")
    assert len(server.log) == (0 if first is None else 1)
    assert caught.value.retry_after == 42
    assert isinstance(caught.value, OutcomeUnknownError) is unknown
    assert isinstance(caught.value, AccountBusyError) is not unknown


def test_429_without_retry_after_backs_off_within_bounds(server: ScriptedServer) -> None:
    server.script["/x"] = [Reply(429), Reply(429), Reply(200)]
    sleeps = Sleeps()
    client = client_for(server, sleeps, backoff_base=1.0, backoff_cap=30.0)
    client.request("GET", "x")
    assert len(sleeps) == 2
    assert 0.5 <= sleeps[0] <= 1.0
    assert 1.0 <= sleeps[1] <= 2.0


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_5xx_retried_for_idempotent_methods(server: ScriptedServer, method: str) -> None:
    server.script["/x"] = [Reply(500), Reply(502), Reply(200, {"done": 1})]
    sleeps = Sleeps()
    client = client_for(server, sleeps)
    assert client.request(method, "x").json() == {"done": 1}
    assert client.calls == 3
    assert len(sleeps) == 2


def test_5xx_not_retried_for_post(server: ScriptedServer) -> None:
    server.script["/x"] = [Reply(500), Reply(200)]
    client = client_for(server, Sleeps())
    with pytest.raises(TransientError, match="not idempotent"):
        client.request("POST", "x")
    assert client.calls == 1


def test_5xx_not_retried_when_declared_not_idempotent(server: ScriptedServer) -> None:
    server.script["/purge"] = [Reply(502), Reply(200)]
    client = client_for(server, Sleeps())
    with pytest.raises(TransientError):
        client.request("DELETE", "purge", idempotent=False)
    assert len(server.log) == 1


def test_post_declared_idempotent_is_retried(server: ScriptedServer) -> None:
    server.script["/set"] = [Reply(500), Reply(200, [1])]
    client = client_for(server, Sleeps())
    assert client.request("POST", "set", json=[1], idempotent=True).json() == [1]
    assert client.calls == 2


def test_dropped_connection_retried_only_when_idempotent(server: ScriptedServer) -> None:
    server.script["/get"] = [DROP, Reply(200, {"n": 1})]
    server.script["/post"] = [DROP, Reply(200)]
    client = client_for(server, Sleeps())
    assert client.get_json("get") == {"n": 1}
    with pytest.raises(TransientError, match="outcome unknown"):
        client.request("POST", "post")
    assert [p for _, p, _ in server.log].count("/post") == 1


def test_read_timeout_retried_for_get(server: ScriptedServer) -> None:
    server.script["/slow"] = [Reply(200, {"late": 1}, delay=1.0), Reply(200, {"fast": 1})]
    client = client_for(server, Sleeps(), timeout=0.2)
    assert client.get_json("slow") == {"fast": 1}
    assert client.calls == 2


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_refused_connection_retried_for_get_then_budget() -> None:
    sleeps = Sleeps()
    client = HttpClient(
        f"http://127.0.0.1:{_closed_port()}", auth=lambda p: None, sleep=sleeps, max_attempts=3
    )
    with pytest.raises(RetryBudgetExceededError, match="after 3 attempts"):
        client.request("GET", "x")
    assert client.calls == 3
    assert len(sleeps) == 2


def test_refused_connection_retried_even_for_post() -> None:
    client = HttpClient(
        f"http://127.0.0.1:{_closed_port()}", auth=lambda p: None, sleep=Sleeps(), max_attempts=3
    )
    with pytest.raises(RetryBudgetExceededError):
        client.request("POST", "x")  # never reached the vendor: safe to resend
    assert client.calls == 3


def test_persistent_429_stops_at_max_attempts(server: ScriptedServer) -> None:
    server.script["/x"] = [Reply(429, {"error": "TooManyJobs"}, {"Retry-After": "5"})]
    sleeps = Sleeps()
    client = client_for(server, sleeps, max_attempts=4, error_code=error_field)
    with pytest.raises(RetryBudgetExceededError) as info:
        client.request("DELETE", "x")
    assert client.calls == 4
    assert sleeps == [5.0, 5.0, 5.0]
    assert info.value.retry_after == 5.0
    assert "TooManyJobs" in str(info.value)


def test_retry_after_longer_than_budget_gives_up_at_once(server: ScriptedServer) -> None:
    server.script["/x"] = [Reply(429, None, {"Retry-After": "400"}), Reply(200)]
    sleeps = Sleeps()
    client = client_for(server, sleeps, retry_budget=300.0)
    with pytest.raises(RetryBudgetExceededError):
        client.request("GET", "x")
    assert sleeps == []
    assert client.calls == 1


def test_4xx_raises_with_vendor_code_and_is_not_retried(server: ScriptedServer) -> None:
    body = {"error": "TooManyValues", "description": "no more than 100", "max_count": 100}
    server.script["/many"] = [Reply(400, body), Reply(200)]
    client = client_for(server, Sleeps(), error_code=error_field)
    with pytest.raises(VendorHTTPError) as info:
        client.request("DELETE", "many")
    assert info.value.status == 400
    assert info.value.error == "TooManyValues"
    assert isinstance(info.value, PermanentError)
    assert client.calls == 1


def test_ok_statuses_are_returned(server: ScriptedServer) -> None:
    server.script["/gone"] = [Reply(404, {"error": "RecordNotFound", "description": "Not found"})]
    client = client_for(server, Sleeps())
    assert client.request("GET", "gone", ok=(404,)).status_code == 404


def test_401_refreshes_credentials_once(server: ScriptedServer) -> None:
    server.script["/me"] = [Reply(401, {"error": "Couldn't authenticate you"}), Reply(200)]
    refreshed: list[int] = []
    client = client_for(server, Sleeps(), on_unauthorized=lambda: refreshed.append(1))
    assert client.request("GET", "me").status_code == 200
    assert refreshed == [1]
    server.script["/me"] = [Reply(401, {"error": "Couldn't authenticate you"})]
    with pytest.raises(VendorHTTPError) as info:
        client.request("GET", "me")
    assert info.value.status == 401
    assert refreshed == [1, 1]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3", 3.0),
        (" 2.5 ", 2.5),
        ("-4", 0.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_an_answer_over_the_size_limit_is_not_read(server: ScriptedServer) -> None:
    server.script["/big"] = [Reply(200, {"pad": "x" * 5000})]
    client = client_for(server, Sleeps())
    client.max_body = 1000
    with pytest.raises(TransientError, match="larger than 1,000 bytes"):
        client.request("GET", "big")
    server.script["/w"] = [Reply(200, {"pad": "x" * 5000})]
    with pytest.raises(OutcomeUnknownError, match="larger than"):
        client.request("DELETE", "w", idempotent=False)


def test_without_readers_the_client_reads_no_vendor_signal(server: ScriptedServer) -> None:
    server.script["/x"] = [Reply(400, {"error": "TooManyValues"}, {"ratelimit-limit": "700"})]
    client = client_for(server, Sleeps())
    with pytest.raises(VendorHTTPError) as info:
        client.request("GET", "x")
    assert info.value.error is None
    assert client.last_rate_limit is None


def test_the_client_keeps_what_its_readers_say(server: ScriptedServer) -> None:
    seen: list[Mapping[str, str]] = []

    def rate_limit(headers: Mapping[str, str]) -> RateLimitInfo:
        seen.append(headers)
        return RateLimitInfo(int(headers["L"]), None, None, {})

    server.script["/x"] = [Reply(200, {}, {"L": "7"}), Reply(422, {"code": "x" * 300}, {"L": "6"})]
    client = client_for(
        server, Sleeps(), rate_limit=rate_limit, error_code=lambda r: r.json()["code"]
    )
    client.request("GET", "x")
    assert client.last_rate_limit == RateLimitInfo(7, None, None, {})
    with pytest.raises(VendorHTTPError) as info:
        client.request("GET", "x")
    assert client.last_rate_limit == RateLimitInfo(6, None, None, {})  # from error answers too
    assert info.value.error == "x" * 100  # a code, never the body
    assert len(seen) == 2


def test_each_run_counts_only_its_own_calls_when_runs_share_an_account(
    server: ScriptedServer,
) -> None:
    """A worker's threads run pairs side by side, and pairs on one Zendesk account call the
    same origin: each run's counts (the ledger's figures, the metrics) hold its own calls,
    not its neighbours'."""
    server.script["/page"] = [Reply(200, {"ok": True})]
    both_counting = threading.Barrier(2)
    counts = {"a": Counter[str](), "b": Counter[str]()}
    host, port = server.server_address[:2]
    origin = {Side("zendesk"): f"http://{host!s}:{port}"}

    def run(name: str, calls: int) -> None:
        client = client_for(server, Sleeps())
        with count_vendor_calls(origin, counts[name]):
            both_counting.wait(10)
            for _ in range(calls):
                client.get_json("page")
            both_counting.wait(10)

    threads = [threading.Thread(target=run, args=(n, c)) for n, c in (("a", 2), ("b", 3))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert len(server.log) == 5
    assert counts["a"]["zendesk.http_calls"] == 2
    assert counts["b"]["zendesk.http_calls"] == 3
