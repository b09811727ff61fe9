"""The vendor-neutral sandbox core: clock, schedule, limiter, faults, counters, server, admin."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from bridge.sandbox import (
    FaultInjector,
    FaultRule,
    HttpError,
    RateLimiter,
    Request,
    Response,
    Route,
    Schedule,
    SimClock,
    SimulatorBase,
    iso_z,
    parse_iso,
)

T0 = datetime(2024, 1, 1, 0, 0, 30, tzinfo=UTC)


# ---- clock --------------------------------------------------------------------------------


def test_frozen_clock_moves_only_when_told() -> None:
    clock = SimClock(T0, frozen=True)
    assert clock.now() == T0
    assert clock.now().tzinfo is not None
    clock.advance(90)
    assert clock.now() == T0 + timedelta(seconds=90)
    clock.sleep(30)  # a frozen clock advances instead of sleeping
    assert clock.now() == T0 + timedelta(seconds=120)
    clock.set(datetime(2030, 1, 1))  # naive: taken as UTC
    assert clock.now() == datetime(2030, 1, 1, tzinfo=UTC)
    assert clock.state() == {"now": "2030-01-01T00:00:00+00:00", "frozen": True, "speed": 1.0}


def test_running_clock_follows_real_time_at_speed() -> None:
    clock = SimClock(T0, speed=1000.0)
    clock.sleep(50)  # 50 simulated seconds = 0.05 s of real time
    assert clock.now() >= T0 + timedelta(seconds=50)
    clock.freeze()
    frozen_at = clock.now()
    assert clock.now() == frozen_at
    clock.unfreeze()
    clock.set_speed(1.0)
    assert clock.speed == 1.0
    assert clock.now() >= frozen_at


def test_clock_rejects_nonsense() -> None:
    clock = SimClock(T0, frozen=True)
    with pytest.raises(ValueError, match="advances"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="positive"):
        clock.set_speed(0)


def test_iso_helpers_round_trip() -> None:
    assert iso_z(T0) == "2024-01-01T00:00:30Z"
    assert parse_iso("2024-01-01T00:00:30Z") == T0
    assert parse_iso("2024-01-01T01:00:30+01:00") == T0
    assert parse_iso("2024-01-01T00:00:30") == T0


# ---- schedule -----------------------------------------------------------------------------


def test_schedule_pops_due_keys_in_order_and_honours_moves() -> None:
    due: Schedule[str] = Schedule()
    due.push("b", T0 + timedelta(seconds=20))
    due.push("a", T0 + timedelta(seconds=10))
    due.push("c", T0 + timedelta(seconds=30))
    due.push("c", T0 + timedelta(seconds=5))  # moved earlier: the old entry goes stale
    due.discard("b")
    assert due.next_due() == T0 + timedelta(seconds=5)
    assert due.pop_due(T0) == []
    items = due.pop_due_items(T0 + timedelta(seconds=25))
    assert items == [(T0 + timedelta(seconds=5), "c"), (T0 + timedelta(seconds=10), "a")]
    assert len(due) == 0
    assert due.pop_due(T0 + timedelta(days=1)) == []


# ---- rate limiter -------------------------------------------------------------------------


def test_fixed_window_limits_and_resets_on_the_window() -> None:
    clock = SimClock(T0, frozen=True)  # 30 s into a minute
    limiter = RateLimiter(clock)
    decisions = [limiter.hit("k", 3, 60) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert decisions[3].retry_after == pytest.approx(30)
    assert decisions[3].retry_after_header == "30"
    assert decisions[0].reset == pytest.approx(30)
    assert limiter.hit("other", 3, 60).allowed  # keys are independent
    clock.advance(30)
    assert limiter.hit("k", 3, 60).remaining == 2


def test_sliding_window_frees_capacity_hit_by_hit() -> None:
    clock = SimClock(T0, frozen=True)
    limiter = RateLimiter(clock)
    assert limiter.hit("k", 2, 10, sliding=True).allowed
    clock.advance(4)
    assert limiter.hit("k", 2, 10, sliding=True).allowed
    denied = limiter.hit("k", 2, 10, sliding=True)
    assert not denied.allowed
    assert denied.retry_after == pytest.approx(6)
    clock.advance(6)
    assert limiter.hit("k", 2, 10, sliding=True).allowed


def test_peek_does_not_consume_and_disabled_limiter_allows() -> None:
    clock = SimClock(T0, frozen=True)
    limiter = RateLimiter(clock)
    for _ in range(5):
        assert limiter.peek("k", 1, 60).allowed
    assert limiter.hit("k", 1, 60).allowed
    assert not limiter.hit("k", 1, 60).allowed
    limiter.enabled = False
    assert limiter.hit("k", 1, 60).allowed
    limiter.reset()
    limiter.enabled = True
    assert limiter.hit("k", 1, 60).remaining == 0


# ---- faults -------------------------------------------------------------------------------


def test_fault_rule_count_and_matching() -> None:
    faults = FaultInjector()
    faults.add({"kind": "status", "status": 500, "route": "GET x", "method": "get", "count": 2})
    assert faults.take("POST", "/x", "GET x") is None  # wrong method
    assert faults.take("GET", "/y", "GET y") is None  # wrong route
    assert faults.take("GET", "/x", "GET x") is not None
    assert faults.take("GET", "/x", "GET x") is not None
    assert faults.take("GET", "/x", "GET x") is None  # count used up
    assert faults.rules[0].fired == 2


def test_fault_rule_path_regex_and_validation() -> None:
    faults = FaultInjector()
    faults.add(FaultRule("drop", path=r"/deleted_tickets"))
    assert faults.take("GET", "/api/v2/deleted_tickets", None) is not None
    assert faults.take("GET", "/api/v2/tickets", None) is None
    with pytest.raises(ValueError, match="unknown keys"):
        FaultRule.from_dict({"kind": "status", "statuss": 500})
    with pytest.raises(ValueError, match="probability"):
        FaultRule.from_dict({"kind": "status", "probability": 2})
    assert FaultRule("malformed", when="before").when == "after"


def test_probability_faults_are_reproducible_with_the_seed() -> None:
    def firings(seed: int) -> list[bool]:
        faults = FaultInjector(seed)
        faults.add({"kind": "status", "probability": 0.5})
        return [faults.take("GET", "/", None) is not None for _ in range(40)]

    first = firings(7)
    assert first == firings(7)
    assert 5 < sum(first) < 35  # random, not all or nothing


# ---- a tiny simulator over HTTP -----------------------------------------------------------


class TinySim(SimulatorBase):
    """Enough of a vendor to exercise the core: one authenticated counter endpoint."""

    def __init__(self) -> None:
        super().__init__(clock=SimClock(T0, frozen=True), seed=1)
        self.hits = 0
        self.ticks: list[datetime] = []
        self.seeded: list[Any] = []
        self.route("GET", "/items/{id}", self._item, name="GET item")
        self.route("GET", "/items/special", lambda r: (200, {"special": True}), name="GET special")
        self.route("POST", "/items", self._create, name="POST items")
        self.route("DELETE", "/items/{id}", lambda r: Response(204), name="DELETE item")
        self.route("GET", "/boom", self._boom, name="GET boom")
        self.route("GET", "/open", lambda r: (200, {"open": True}), name="GET open", auth=False)

    def _item(self, request: Request) -> tuple[int, Any, dict[str, str]]:
        if request.params["id"] == "404":
            raise HttpError(404, {"error": "nope"})
        return 200, {"id": request.params["id"], "q": request.args("q")}, {"X-Item": "1"}

    def _create(self, request: Request) -> Response:
        self.hits += 1
        return Response(201, {"body": request.json(), "hits": self.hits})

    def _boom(self, request: Request) -> Response:
        raise RuntimeError("handler bug")

    def authenticate(self, request: Request) -> Response | None:
        if request.header("authorization") != "Bearer ok":
            return Response(401, {"error": "auth"})
        request.principal = "user"
        return None

    def rate_limit(self, request: Request, route: Route) -> Response | None:
        decision = self.limiter.hit("all", 5, 60)
        request.response_headers["X-Remaining"] = str(decision.remaining)
        if not decision.allowed:
            return Response(429, {"error": "slow down"}, {"Retry-After": "30"})
        return None

    def tick(self, now: datetime) -> None:
        self.ticks.append(now)

    def reset_state(self) -> None:
        self.hits = 0

    def admin_seed(self, body: Any) -> Any:
        self.seeded.append(body)
        return {"seeded": len(self.seeded)}


@pytest.fixture
def tiny() -> Iterator[TinySim]:
    with TinySim() as sim:
        yield sim


@pytest.fixture
def http() -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = "Bearer ok"
    return session


def test_routing_params_json_suffix_and_priority(tiny: TinySim, http: requests.Session) -> None:
    assert tiny.base_url.startswith("http://127.0.0.1:")
    assert tiny.port != 0
    answer = http.get(f"{tiny.base_url}/items/42.json?q=a&q=b")
    assert answer.status_code == 200
    assert answer.json() == {"id": "42", "q": ["a", "b"]}
    assert answer.headers["X-Item"] == "1"
    assert answer.headers["X-Remaining"] == "4"
    assert http.get(f"{tiny.base_url}/items/special").json() == {"special": True}
    created = http.post(f"{tiny.base_url}/items", json={"a": 1})
    assert (created.status_code, created.json()) == (201, {"body": {"a": 1}, "hits": 1})
    deleted = http.delete(f"{tiny.base_url}/items/1")
    assert (deleted.status_code, deleted.content) == (204, b"")


def test_errors_auth_and_unknown_routes(tiny: TinySim, http: requests.Session) -> None:
    assert http.get(f"{tiny.base_url}/items/404").json() == {"error": "nope"}
    assert http.get(f"{tiny.base_url}/nowhere").status_code == 404
    assert http.get(f"{tiny.base_url}/boom").status_code == 500
    bad_json = http.post(f"{tiny.base_url}/items", data=b"{not json")
    assert bad_json.status_code == 400
    anonymous = requests.get(f"{tiny.base_url}/items/1")
    assert (anonymous.status_code, anonymous.json()) == (401, {"error": "auth"})
    assert requests.get(f"{tiny.base_url}/open").status_code == 200  # auth=False route


def test_rate_limit_hook_answers_429(tiny: TinySim, http: requests.Session) -> None:
    codes = [http.get(f"{tiny.base_url}/items/1").status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]
    tiny.advance(60)
    assert http.get(f"{tiny.base_url}/items/1").status_code == 200


def test_tick_runs_before_each_request_with_the_sim_time(
    tiny: TinySim, http: requests.Session
) -> None:
    http.get(f"{tiny.base_url}/items/1")
    tiny.clock.advance(10)
    http.get(f"{tiny.base_url}/items/1")
    assert tiny.ticks[-2:] == [T0, T0 + timedelta(seconds=10)]


def test_keep_alive_reuses_one_connection(tiny: TinySim, http: requests.Session) -> None:
    for _ in range(3):
        http.get(f"{tiny.base_url}/items/1")
    server = tiny._server
    assert server is not None
    with server.sockets_lock:
        assert len(server.open_sockets) == 1


def test_counters_by_route_and_status_without_admin_calls(
    tiny: TinySim, http: requests.Session
) -> None:
    http.get(f"{tiny.base_url}/items/1")
    http.get(f"{tiny.base_url}/items/2.json")
    http.get(f"{tiny.base_url}/nowhere")
    requests.get(f"{tiny.admin_url}/clock")
    snapshot = requests.get(f"{tiny.admin_url}/counters").json()
    assert snapshot["total"] == 3
    assert snapshot["routes"] == {"GET item": 2, "GET ?": 1}
    assert snapshot["statuses"] == {"200": 2, "404": 1}
    assert tiny.counters["GET item"] == 2
    before = requests.delete(f"{tiny.admin_url}/counters").json()
    assert before["total"] == 3
    assert tiny.counts()["total"] == 0


def test_admin_clock(tiny: TinySim) -> None:
    url = f"{tiny.admin_url}/clock"
    assert requests.get(url).json()["now"] == T0.isoformat()
    moved = requests.post(url, json={"advance": 3600}).json()
    assert moved == {"now": (T0 + timedelta(hours=1)).isoformat(), "frozen": True, "speed": 1.0}
    assert tiny.ticks[-1] == T0 + timedelta(hours=1)  # the change is applied at once
    state = requests.post(url, json={"set": "2025-01-01T00:00:00Z", "speed": 10}).json()
    assert state["now"] == "2025-01-01T00:00:00+00:00"
    assert state["speed"] == 10.0
    assert requests.post(url, json={"freeze": False}).json()["frozen"] is False
    assert requests.post(url, json={"warp": 1}).status_code == 400


def test_admin_faults_status_and_retry_after(tiny: TinySim, http: requests.Session) -> None:
    url = f"{tiny.admin_url}/faults"
    rule = {"kind": "status", "status": 429, "retry_after": 7, "route": "GET item", "count": 1}
    listed = requests.post(url, json={"rules": [rule]}).json()["rules"]
    assert listed[0]["count"] == 1
    faulted = http.get(f"{tiny.base_url}/items/1")
    assert faulted.status_code == 429
    assert faulted.headers["Retry-After"] == "7"
    assert http.get(f"{tiny.base_url}/items/1").status_code == 200
    assert requests.get(url).json()["rules"][0]["fired"] == 1
    assert requests.delete(url).json() == {"rules": []}
    assert requests.post(url, json={"rules": [{"kind": "nope", "x": 1}]}).status_code == 400


def test_fault_before_does_not_run_the_handler_after_does(
    tiny: TinySim, http: requests.Session
) -> None:
    tiny.add_fault("status", status=502, route="POST items", count=1)
    assert http.post(f"{tiny.base_url}/items", json={}).status_code == 502
    assert tiny.hits == 0
    tiny.add_fault("status", status=502, route="POST items", count=1, when="after")
    assert http.post(f"{tiny.base_url}/items", json={}).status_code == 502
    assert tiny.hits == 1


def test_fault_drop_closes_without_answer(tiny: TinySim, http: requests.Session) -> None:
    tiny.add_fault("drop", route="POST items", count=1, when="after")
    with pytest.raises(requests.ConnectionError):
        http.post(f"{tiny.base_url}/items", json={})
    assert tiny.hits == 1  # acted, then lost the answer
    assert http.post(f"{tiny.base_url}/items", json={}).status_code == 201


def test_fault_malformed_body(tiny: TinySim, http: requests.Session) -> None:
    tiny.add_fault("malformed", route="GET item", count=1)
    answer = http.get(f"{tiny.base_url}/items/1")
    assert answer.status_code == 200
    with pytest.raises(ValueError):
        answer.json()
    assert http.get(f"{tiny.base_url}/items/1").json()["id"] == "1"


def test_fault_slow_delays_then_answers(tiny: TinySim, http: requests.Session) -> None:
    tiny.add_fault("slow", route="GET item", delay=2.0, count=1)
    with pytest.raises(requests.Timeout):
        http.get(f"{tiny.base_url}/items/1", timeout=0.2)
    assert tiny.counters["GET item"] == 1


def test_admin_reset_seed_and_unknown(tiny: TinySim, http: requests.Session) -> None:
    http.post(f"{tiny.base_url}/items", json={})
    tiny.add_fault("drop")
    assert requests.post(f"{tiny.admin_url}/seed", json={"n": 1}).json() == {"seeded": 1}
    assert requests.post(f"{tiny.admin_url}/reset").json()["ok"] is True
    assert tiny.hits == 0
    assert tiny.faults.rules == []
    assert tiny.counts()["total"] == 0
    assert requests.post(f"{tiny.admin_url}/act", json={}).status_code == 404  # not provided
    assert requests.get(f"{tiny.admin_url}/nothing").status_code == 404
    assert requests.put(f"{tiny.admin_url}/clock").status_code == 405
    config = requests.post(f"{tiny.admin_url}/config", json={"rate_limits": False}).json()
    assert config == {"rate_limits": False}


def test_stop_is_idempotent_and_frees_the_port() -> None:
    sim = TinySim()
    url = sim.start()
    assert sim.start() == url  # already running
    assert requests.get(f"{url}/open").status_code == 200
    sim.stop()
    sim.stop()
    assert not sim.running
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/open", timeout=2)
