"""Both adapters' change streams with `read_ahead`: the same pages and cursors as without,
the same calls; a failure on a page read ahead surfaces where, and as, it did; a stream
closed midway leaves no read behind. Against the simulators over real HTTP (frozen)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from bridge.core.contract import Adapter, ChangePage
from bridge.sandbox import SimClock
from bridge.vendors.http import HttpClient
from bridge.vendors.superoffice.adapter import SuperOfficeAdapter
from bridge.vendors.superoffice.auth import SOTicketAuth
from bridge.vendors.superoffice.sim.simulator import SuperOfficeSimulator
from bridge.vendors.zendesk.adapter import ZendeskAdapter
from bridge.vendors.zendesk.sim.simulator import ZendeskSimulator
from tests.adapters.test_superoffice_cursor import make_adapter as superoffice_adapter
from tests.adapters.test_zendesk_export import adapter as zendesk_adapter

START = datetime(2024, 5, 1, 12, tzinfo=UTC)


@pytest.fixture
def zendesk() -> Iterator[ZendeskSimulator]:
    sim = ZendeskSimulator(clock=SimClock(START, frozen=True))
    sim.configure({"rate_limits": False})
    with sim:
        sim.seed_tickets(count=45)
        sim.advance(30)
        sim.seed_tickets(count=12)
        sim.advance(120)
        yield sim


@pytest.fixture
def superoffice() -> Iterator[SuperOfficeSimulator]:
    sim = SuperOfficeSimulator(clock=SimClock(START, frozen=True), requests_per_second=None)
    with sim:
        ids = sim.seed_tickets(40)
        sim.clock.advance(30)
        sim.soft_delete(ids[:7])
        sim.clock.advance(120)
        yield sim


def _zendesk(sim: ZendeskSimulator) -> ZendeskAdapter:
    return zendesk_adapter(sim, per_page=10)


def _superoffice(sim: SuperOfficeSimulator) -> SuperOfficeAdapter:
    return superoffice_adapter(sim, page_size=8)


def _http(adapter: Adapter) -> HttpClient:
    http: HttpClient = getattr(adapter, "http")  # noqa: B009 (not part of the contract)
    return http


def _superoffice_paced(sim: SuperOfficeSimulator) -> SuperOfficeAdapter:
    """As configured for a tenant: ten requests a second, kept by the client itself."""
    return SuperOfficeAdapter(
        sim.base_url,
        tenant=sim.tenant,
        auth=SOTicketAuth(sim.ticket, sim.app_token),
        requests_per_second=10,
        sleep=sim.clock.sleep,
        clock=sim.clock.now,
        monotonic=sim.clock.timestamp,
        page_size=8,
    )


Case = tuple[str, Callable[[Any], Adapter]]
CASES = [
    ("zendesk", _zendesk),
    ("superoffice", _superoffice),
    ("superoffice-paced", _superoffice_paced),
]


@pytest.fixture(params=CASES, ids=[name for name, _make in CASES])
def case(
    request: pytest.FixtureRequest, zendesk: ZendeskSimulator, superoffice: SuperOfficeSimulator
) -> tuple[Callable[[], Adapter], Callable[[], int]]:
    """A fresh adapter of one vendor each call, and its simulator's call count."""
    name, make = request.param
    sim: Any = zendesk if name == "zendesk" else superoffice
    return (lambda: make(sim)), (lambda: int(sim.counts()["total"]))


def _threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name == "bridge-read-ahead"]


def _pages(pages: list[ChangePage]) -> list[tuple[Any, ...]]:
    return [(page.views, page.cursor, page.complete, page.makers_unread) for page in pages]


def test_pages_read_ahead_are_the_pages_read_one_by_one(
    case: tuple[Callable[[], Adapter], Callable[[], int]],
) -> None:
    make, calls = case
    before = calls()
    plain = list(make().changes(None))
    plain_calls = calls() - before
    adapter = make()
    sent: list[bool] = []
    real = _http(adapter).read_ahead
    _http(adapter).read_ahead = lambda *a, **k: sent.append(real(*a, **k)) or sent[-1]  # type: ignore[method-assign]
    ahead = list(adapter.changes(None, read_ahead=True))
    assert len(plain) > 3
    assert _pages(ahead) == _pages(plain)
    assert calls() - before - plain_calls == plain_calls  # no page asked for twice
    assert sent.count(True) >= len(plain) - 2  # every page but the first was sent ahead
    again = list(make().changes(plain[-1].cursor, read_ahead=True))
    assert _pages(again) == _pages(list(make().changes(plain[-1].cursor)))
    assert _threads() == []


def _failing_after(adapter: Adapter, good: int) -> None:
    """Every attempt after the first `good` loses its connection (a network gone)."""
    session = _http(adapter).session
    send = session.send
    count = [0]

    def failing(*args: Any, **kwargs: Any) -> requests.Response:
        count[0] += 1
        if count[0] > good:
            raise requests.ConnectionError("connection reset by peer")
        return send(*args, **kwargs)

    session.send = failing  # type: ignore[method-assign]


def _read_until_it_fails(
    adapter: Adapter, *, read_ahead: bool
) -> tuple[list[ChangePage], Exception]:
    got: list[ChangePage] = []
    try:
        for page in adapter.changes(None, read_ahead=read_ahead):
            got.append(page)
    except Exception as exc:  # compared by the caller, type and message
        return got, exc
    raise AssertionError("the stream did not fail")


@pytest.mark.parametrize("good", [1, 2])
def test_a_failed_page_read_ahead_fails_the_stream_where_it_failed_before(
    case: tuple[Callable[[], Adapter], Callable[[], int]], good: int
) -> None:
    make, _calls = case
    ends = []
    for read_ahead in (False, True):
        adapter = make()
        _failing_after(adapter, good)
        got, failed = _read_until_it_fails(adapter, read_ahead=read_ahead)
        ends.append((_pages(got), type(failed), str(failed)))
        assert _threads() == []
    assert ends[0] == ends[1]
    assert len(ends[0][0]) == good  # the pages before the failure were handed over


def test_a_stream_closed_midway_waits_for_its_page_read_ahead(
    case: tuple[Callable[[], Adapter], Callable[[], int]],
) -> None:
    make, calls = case
    before = calls()
    stream = make().changes(None, read_ahead=True)
    first = next(stream)
    assert not first.complete
    stream.close()
    assert _threads() == []
    assert calls() - before == 2  # the first page, and the one asked for ahead
