"""A read sent ahead (`HttpClient.read_ahead`): its answer, or its failure, comes out of the
`request` that asks for it exactly as if that request had sent it, it is counted once, and
no thread outlives it. Against the scripted server (`scripted.py`): waits are values."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from bridge.core.contract import TransientError
from bridge.vendors.http import VendorHTTPError, observing_calls
from tests.adapters.scripted import DROP, Reply, ScriptedServer, Sleeps, client_for


def _threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name == "bridge-read-ahead"]


def _outcome(call: Callable[[], object]) -> tuple[str, str]:
    """What a call ended with: the answer's body, or the exception's type and message."""
    try:
        answer = call()
    except Exception as exc:  # compared, not hidden
        return type(exc).__name__, str(exc)
    return "answer", repr(answer)


def test_the_request_takes_the_read_sent_ahead_one_call_counted_once(
    server: ScriptedServer,
) -> None:
    server.script["/page"] = [Reply(200, {"n": 1}), Reply(200, {"n": 2})]
    client = client_for(server, Sleeps())
    seen: list[tuple[str, int | None]] = []
    with observing_calls(lambda url, status: seen.append((url, status))):
        assert client.read_ahead("GET", "page", params={"cursor": "a"})
        assert client.request("GET", "page", params={"cursor": "a"}).json() == {"n": 1}
    assert [(m, p) for m, p, _h in server.log] == [("GET", "/page?cursor=a")]
    assert client.calls == 1
    assert len(seen) == 1
    assert seen[0][1] == 200
    assert server.log[0][2]["Authorization"] == "Bearer test-token"
    assert _threads() == []


@pytest.mark.parametrize(
    "replies",
    [
        [Reply(404, {"error": "RecordNotFound"})],
        [Reply(403, {"error": "Forbidden"})],
        [Reply(500, {}), Reply(200, {"ok": True})],
        [Reply(429, {}, {"Retry-After": "7"}), Reply(200, {"ok": True})],
        [DROP, Reply(200, {"ok": True})],
        [DROP],
        [Reply(500, {})],
        [Reply(200, b'{"cut": ')],
    ],
    ids=["404", "403", "500-then-ok", "429-then-ok", "drop-then-ok", "drops", "500s", "cut"],
)
def test_a_read_sent_ahead_ends_as_the_same_read_sent_then(
    server: ScriptedServer, replies: list[Reply | str]
) -> None:
    # the same script, read once as before and once sent ahead: the same answer or the
    # same exception (type and message), the same retries and waits, the same requests
    outcomes, sleeps, logs = [], [], []
    for ahead in (False, True):
        server.script["/page"] = list(replies)
        server.log.clear()
        waits = Sleeps()
        client = client_for(server, waits, max_attempts=3)
        if ahead:
            assert client.read_ahead("GET", "page", params={"p": 1})
        outcomes.append(_outcome(lambda c=client: c.get_json("page", params={"p": 1})))
        sleeps.append([round(w) if w > 5 else "backoff" for w in waits])
        logs.append([(m, p) for m, p, _h in server.log])
        assert _threads() == []
    assert outcomes[0] == outcomes[1]
    assert sleeps[0] == sleeps[1]
    assert logs[0] == logs[1]


def test_a_failed_read_sent_ahead_raises_where_it_is_asked_for(server: ScriptedServer) -> None:
    server.script["/page"] = [Reply(404, {"error": "RecordNotFound"})]
    client = client_for(server, Sleeps())
    assert client.read_ahead("GET", "page")  # nothing raised here
    with pytest.raises(VendorHTTPError) as failed:
        client.request("GET", "page")
    assert failed.value.status == 404


def test_other_requests_wait_for_the_read_ahead_and_leave_it_for_its_own(
    server: ScriptedServer,
) -> None:
    server.script["/page"] = [Reply(200, {"page": 2}, delay=0.2)]
    server.script["/log"] = [Reply(200, {"log": True})]
    client = client_for(server, Sleeps())
    assert client.read_ahead("GET", "page", params={"after": "x"})
    assert not client.read_ahead("GET", "page", params={"after": "y"})  # one at a time
    assert client.get_json("log") == {"log": True}
    # the page, asked first, was answered first: the session sends one at a time
    assert [p for _m, p, _h in server.log] == ["/page?after=x", "/log"]
    assert client.get_json("page", params={"after": "x"}) == {"page": 2}
    assert len(server.log) == 2
    assert client.calls == 2


def test_a_read_ahead_no_one_asks_for_is_waited_for_when_dropped(server: ScriptedServer) -> None:
    server.script["/page"] = [Reply(200, {"page": 2}, delay=0.2)]
    client = client_for(server, Sleeps())
    seen: list[int | None] = []
    with observing_calls(lambda _url, status: seen.append(status)):
        assert client.read_ahead("GET", "page")
        client.drop_ahead()
    assert _threads() == []
    assert seen == [200]  # sent, so counted
    server.script["/page"] = [Reply(200, {"page": 3})]
    assert client.get_json("page") == {"page": 3}  # asked anew, not the dropped answer
    assert len(server.log) == 2


def test_only_a_read_that_could_go_now_is_sent_ahead(server: ScriptedServer) -> None:
    server.script["/x"] = [Reply(200, {})]
    paced = client_for(server, Sleeps(), per_second=0.001)
    paced.get_json("x")  # the next call must wait 1,000 s: not sent ahead
    assert not paced.read_ahead("GET", "x")
    budgeted = client_for(server, Sleeps(), pacer=lambda: None)
    assert not budgeted.read_ahead("GET", "x")  # a shared budget's take stays in place
    plain = client_for(server, Sleeps())
    assert not plain.read_ahead("POST", "x")  # never a write
    assert len(server.log) == 1


class _PacedClock(Sleeps):
    """A clock that moves only when slept on; each sleep noted with the thread it was on."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 100.0
        self.threads: list[str] = []

    def __call__(self, seconds: float) -> None:
        super().__call__(round(seconds, 6))
        self.threads.append(threading.current_thread().name)
        self.now += seconds


def test_a_read_paced_by_the_client_waits_its_turn_on_its_own_thread(
    server: ScriptedServer,
) -> None:
    # SuperOffice's ten a second: the next page's turn comes 100 ms after this one's, and
    # a page is recorded in less, so a read ahead that had to go at once never went
    server.script["/page"] = [Reply(200, {"n": n}) for n in (1, 2, 3)]
    clock = _PacedClock()
    client = client_for(server, clock, per_second=10, monotonic=lambda: clock.now)
    assert client.get_json("page") == {"n": 1}
    assert client.read_ahead("GET", "page")
    assert client.request("GET", "page").json() == {"n": 2}
    assert (clock, clock.threads) == ([0.1], ["bridge-read-ahead"])
    # the pace holds after it: the next request waits a turn of its own
    assert client.get_json("page") == {"n": 3}
    assert (clock, clock.threads[1:]) == ([0.1, 0.1], ["MainThread"])
    assert client.calls == len(server.log) == 3
    assert _threads() == []


def test_a_read_ahead_cut_off_by_an_unreadable_answer_is_a_failed_read(
    server: ScriptedServer,
) -> None:
    server.script["/big"] = [Reply(200, {"rows": "x" * 5000})]
    client = client_for(server, Sleeps())
    client.max_body = 1000
    assert client.read_ahead("GET", "big")
    with pytest.raises(TransientError, match="larger than 1,000 bytes"):
        client.request("GET", "big")
