"""The Zendesk adapter against recorded Zendesk answers (cassettes/zendesk/*.yaml).

Replay (CI): no network, a fake base URL, a no-op sleep. Record:
`BRIDGE_RECORD_CASSETTES=1 .venv/bin/pytest tests/adapters` (from the simulator, see
docs/cassettes.md; a real account with the BRIDGE_ZENDESK_RECORD_* variables). Each test
prepares the vendor side before its cassette opens (through the simulator's Python API,
never recorded) and keeps the ids it needs in the cassette's metadata.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from vcr.cassette import Cassette

from bridge.core.contract import Adapter, JobState, JobStatus, PermanentError
from bridge.core.model import Cause, State, Transition
from bridge.sandbox import SimClock
from bridge.vendors.http import VendorHTTPError
from bridge.vendors.registry import ZENDESK
from bridge.vendors.zendesk.adapter import (
    ZendeskAdapter,
    job_state,
    map_job_status,
    parse_time,
    ticket_state,
)
from bridge.vendors.zendesk.sim.simulator import ZendeskSimulator
from tests.cassettes import (
    CASSETTE_ROOT,
    REPLAY_BASE_URLS,
    Scrubber,
    env_credentials,
    make_vcr,
    no_sleep,
    recording,
    use_cassette,
)

EMAIL = "admin@example.com"
TOKEN = "sandbox-token"
SIM_API_USER = 1
AGENT = (7, "Ann Agent")
#: check() asks the export from "now - 2 min": a fixed clock keeps the recorded query stable
FIXED_NOW = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
SIM_START = datetime(2024, 1, 3, tzinfo=UTC)
LIVE_VARS = (
    "BRIDGE_ZENDESK_RECORD_URL",
    "BRIDGE_ZENDESK_RECORD_EMAIL",
    "BRIDGE_ZENDESK_RECORD_TOKEN",
)


class SleepLog(list[float]):
    """Records every wait the adapter asks for, then delegates (sim clock, real or no-op)."""

    def __init__(self, inner: Callable[[float], None]) -> None:
        super().__init__()
        self._inner = inner

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        self._inner(seconds)


@dataclass
class Case:
    """One cassette scenario: where requests go and how the vendor side is prepared."""

    name: str
    base_url: str
    email: str
    token: str
    sleep: SleepLog
    sim: ZendeskSimulator | None = None
    live: bool = False
    secrets: list[str] = field(default_factory=list)

    @property
    def replay(self) -> bool:
        return self.sim is None and not self.live

    def adapter(self, **kwargs: Any) -> ZendeskAdapter:
        options: dict[str, Any] = {
            "base_url": self.base_url,
            "email": self.email,
            "token": self.token,
            "sleep": self.sleep,
            "bridge_user_id": SIM_API_USER if not self.live else None,
            "job_poll_interval": 1.0,
        }
        if self.sim is not None:
            options["clock"] = self.sim.clock.now
        options.update(kwargs)
        return ZendeskAdapter(**options)

    def sim_only(self) -> ZendeskSimulator | None:
        """The simulator when recording from it; skips when recording a real account."""
        if self.live:
            pytest.skip("needs the simulator (faults or named agents); keeps its recording")
        return self.sim

    def seed(self, count: int) -> list[int]:
        if self.sim is not None:
            return self.sim.seed_tickets(
                count=count, template={"subject": "Cassette {n}", "external_id": "so-{id}"}
            )
        if self.live:
            return [self._live_create(n) for n in range(count)]
        return []

    def _live_create(self, n: int) -> int:
        response = requests.post(
            f"{self.base_url}/api/v2/tickets",
            json={"ticket": {"subject": f"bridge cassette {n}", "comment": {"body": "bridge"}}},
            auth=(f"{self.email}/token", self.token),
            timeout=30,
        )
        response.raise_for_status()
        return int(response.json()["ticket"]["id"])

    def act(self, action: str, ids: list[int]) -> None:
        sim = self.sim_only()
        if sim is not None:
            sim.agent_act(action, ids, agent=AGENT)

    @contextmanager
    def cassette(self) -> Iterator[Cassette]:
        recorder = make_vcr("zendesk", secrets=self.secrets, hosts=[self.base_url])
        with use_cassette(recorder, self.name) as tape:
            yield tape


@pytest.fixture
def case(request: pytest.FixtureRequest) -> Iterator[Case]:
    name = request.node.name.removeprefix("test_")
    live = env_credentials(*LIVE_VARS) if recording() else None
    if live is not None:
        url, email, token = (live[v] for v in LIVE_VARS)
        yield Case(
            name,
            url.rstrip("/"),
            email,
            token,
            SleepLog(time.sleep),
            live=True,
            secrets=[email, token, url],
        )
        return
    if not recording():
        yield Case(name, REPLAY_BASE_URLS["zendesk"], EMAIL, TOKEN, SleepLog(no_sleep))
        return
    clock = SimClock(SIM_START, frozen=True)  # a fixed start: re-recording is byte-stable
    sim = ZendeskSimulator(email=EMAIL, token=TOKEN, clock=clock)
    with sim:
        sim.configure({"rate_limits": False})
        yield Case(
            name, sim.base_url, EMAIL, TOKEN, SleepLog(clock.sleep), sim=sim, secrets=[EMAIL, TOKEN]
        )


def wait_for(adapter: ZendeskAdapter, job_id: str, sleep: Callable[[float], None]) -> JobState:
    for _ in range(200):
        state = adapter.poll([job_id])[job_id]
        if state.status.terminal:
            return state
        sleep(1.0)
    raise AssertionError(f"job {job_id} never finished")


# -- recorded scenarios -------------------------------------------------------------------


def test_check_ok(case: Case) -> None:
    adapter = case.adapter(clock=lambda: FIXED_NOW)
    with case.cassette():
        results = adapter.check()
    assert [r.name for r in results] == [
        "zendesk.reachable",
        "zendesk.authenticated",
        "zendesk.deleted_tickets",
        "zendesk.incremental_export",
    ]
    assert all(r.ok for r in results), results


def test_check_bad_token(case: Case) -> None:
    adapter = case.adapter(token="not-the-token", clock=lambda: FIXED_NOW)
    with case.cassette():
        results = {r.name: r for r in adapter.check()}
    assert results["zendesk.reachable"].ok
    assert not results["zendesk.authenticated"].ok
    assert results["zendesk.authenticated"].message.startswith("401")
    assert "not-the-token" not in str(results)


def test_lookup_live_soft_deleted_and_purged(case: Case) -> None:
    live, soft, purged = case.seed(2), case.seed(2), case.seed(1)
    case.act("delete", soft)
    case.act("purge", purged)
    adapter = case.adapter()
    with case.cassette() as tape:
        ids: dict[str, list[int]] = tape.get_metadata(
            "ids", {"live": live, "soft": soft, "purged": purged}
        )
        views = adapter.lookup(ids["live"] + ids["soft"] + ids["purged"])
    assert {i: views[i].state for i in ids["live"]} == dict.fromkeys(ids["live"], State.ACTIVE)
    assert all(views[i].external_id == f"so-{i}" for i in ids["live"])
    for i in ids["soft"]:
        assert views[i].state is State.SOFT_DELETED
        assert views[i].actor_id == AGENT[0]
        assert views[i].cause is Cause.USER
        assert views[i].vendor_time is not None
    assert views[ids["purged"][0]].state is State.PURGED


def test_soft_delete_job_polled_to_completion(case: Case) -> None:
    seeded = case.seed(3)
    adapter = case.adapter()
    with case.cassette() as tape:
        ids: list[int] = tape.get_metadata("ids", seeded)
        # a real account's API user is not the bridge user the replay is configured with
        expected_cause: str = tape.get_metadata("cause", "user" if case.live else "bridge")
        submitted = adapter.submit(Transition.SOFT_DELETE, ids)
        assert submitted.job_id is not None
        assert submitted.job_id.startswith("V3-")
        in_flight_after_submit = adapter.in_flight
        seen: list[JobStatus] = []
        while True:
            state = adapter.poll([submitted.job_id])[submitted.job_id]
            seen.append(state.status)
            if state.status.terminal:
                break
            case.sleep(1.0)
        views = adapter.lookup(ids)
    assert in_flight_after_submit == (submitted.job_id,)
    assert seen[-1] is JobStatus.COMPLETED
    assert len(seen) > 1  # it was queued or working first
    assert state.failed_ids == {}
    assert adapter.in_flight == ()
    assert {views[i].state for i in ids} == {State.SOFT_DELETED}
    assert {views[i].cause for i in ids} == {Cause(expected_cause)}


def test_restore_many_is_synchronous(case: Case) -> None:
    seeded = case.seed(2)
    sim = case.sim
    if sim is not None:
        sim.agent_act("delete", seeded)
    elif case.live:
        pytest.skip("needs deleted tickets prepared without recording")
    adapter = case.adapter()
    with case.cassette() as tape:
        ids: list[int] = tape.get_metadata("ids", seeded)
        submitted = adapter.submit(Transition.RESTORE, ids)
        views = adapter.lookup(ids)
    assert submitted.job_id is None
    assert submitted.ticket_ids == tuple(ids)
    assert {views[i].state for i in ids} == {State.ACTIVE}


def test_restore_many_empty_204_answer(case: Case) -> None:
    """The OAS calls the answer "Empty response": a 204 with no body must do as well."""
    seeded = case.seed(1)
    sim = case.sim_only()
    if sim is not None:
        sim.agent_act("delete", seeded)
        sim.add_fault(
            "status", route="PUT deleted_tickets/restore_many", status=204, body=b"", when="after"
        )
    adapter = case.adapter()
    with case.cassette() as tape:
        ids: list[int] = tape.get_metadata("ids", seeded)
        submitted = adapter.submit(Transition.RESTORE, ids)
        views = adapter.lookup(ids)
    assert submitted.job_id is None
    assert views[ids[0]].state is State.ACTIVE


def test_restore_of_unknown_ids_is_404(case: Case) -> None:
    adapter = case.adapter()
    with case.cassette(), pytest.raises(VendorHTTPError) as info:
        adapter.submit(Transition.RESTORE, [987654321])
    assert info.value.status == 404
    assert info.value.error == "RecordNotFound"


def test_purge_job_then_verified_gone(case: Case) -> None:
    seeded = case.seed(2)
    if case.sim is not None:
        case.sim.agent_act("delete", seeded)
    elif case.live:
        pytest.skip("needs deleted tickets prepared without recording")
    adapter = case.adapter()
    with case.cassette() as tape:
        ids: list[int] = tape.get_metadata("ids", seeded)
        submitted = adapter.submit(Transition.PURGE, ids)
        assert submitted.job_id is not None
        state = wait_for(adapter, submitted.job_id, case.sleep)
        views = adapter.lookup(ids)
    assert state.status is JobStatus.COMPLETED
    assert state.failed_ids == {}  # a purge result names no ids: lookup decides
    assert {views[i].state for i in ids} == {State.PURGED}


def test_purge_with_a_live_id_reports_partial_failure(case: Case) -> None:
    deleted, live = case.seed(1), case.seed(1)
    sim = case.sim_only()
    if sim is not None:
        sim.agent_act("delete", deleted)
    adapter = case.adapter()
    with case.cassette() as tape:
        ids: dict[str, list[int]] = tape.get_metadata("ids", {"deleted": deleted, "live": live})
        submitted = adapter.submit(Transition.PURGE, ids["deleted"] + ids["live"])
        assert submitted.job_id is not None
        state = wait_for(adapter, submitted.job_id, case.sleep)
        views = adapter.lookup(ids["deleted"] + ids["live"])
    assert state.status is JobStatus.COMPLETED
    assert state.message is not None
    assert "not every ticket" in state.message
    assert views[ids["deleted"][0]].state is State.PURGED
    assert views[ids["live"][0]].state is State.ACTIVE


def test_too_many_values_is_400(case: Case) -> None:
    adapter = case.adapter()
    with pytest.raises(ValueError, match="at most 100"):
        adapter.submit(Transition.SOFT_DELETE, list(range(1, 102)))
    with case.cassette(), pytest.raises(VendorHTTPError) as info:
        # what the vendor says when a caller ignores the limit
        adapter.http.request(
            "DELETE",
            "api/v2/tickets/destroy_many",
            params={"ids": ",".join(str(i) for i in range(1, 102))},
        )
    assert info.value.status == 400
    assert info.value.error == "TooManyValues"
    assert adapter.http.calls == 1


def test_429_retry_after_is_honoured(case: Case) -> None:
    seeded = case.seed(2)
    sim = case.sim_only()
    if sim is not None:
        sim.add_fault("status", route="GET tickets/show_many", status=429, retry_after=5, count=2)
    adapter = case.adapter()
    with case.cassette() as tape:
        ids: list[int] = tape.get_metadata("ids", seeded)
        views = adapter.lookup(ids)
    assert {views[i].state for i in ids} == {State.ACTIVE}
    assert list(case.sleep) == [5.0, 5.0]
    assert adapter.http.calls == 3


def test_failed_job(case: Case) -> None:
    seeded = case.seed(2)
    sim = case.sim_only()
    if sim is not None:
        sim.add_fault("job_failed", route="DELETE tickets/destroy_many", count=1)
    adapter = case.adapter()
    with case.cassette() as tape:
        ids: list[int] = tape.get_metadata("ids", seeded)
        submitted = adapter.submit(Transition.SOFT_DELETE, ids)
        assert submitted.job_id is not None
        state = wait_for(adapter, submitted.job_id, case.sleep)
        views = adapter.lookup(ids)
    assert state.status is JobStatus.FAILED
    assert state.status.terminal
    assert adapter.in_flight == ()
    assert {views[i].state for i in ids} == {State.ACTIVE}


def test_fresh_job_404_is_asked_again(case: Case) -> None:
    seeded = case.seed(1)
    sim = case.sim_only()
    if sim is not None:
        sim.configure({"job_404_seconds": 1.0})
    adapter = case.adapter()
    with case.cassette() as tape:
        ids: list[int] = tape.get_metadata("ids", seeded)
        submitted = adapter.submit(Transition.SOFT_DELETE, ids)
        assert submitted.job_id is not None
        state = adapter.poll([submitted.job_id])[submitted.job_id]
    assert state.status in {JobStatus.QUEUED, JobStatus.WORKING}
    assert list(case.sleep) == [0.5, 0.5]  # two more asks, 0.5 s apart, as node-zendesk does
    assert adapter.http.calls == 4  # the submit and three show_many


def test_unknown_job_is_unknown_at_once(case: Case) -> None:
    adapter = case.adapter()
    with case.cassette():
        states = adapter.poll(["V3-00000000000000000000000000000000"])
    assert states["V3-00000000000000000000000000000000"].status is JobStatus.UNKNOWN
    assert list(case.sleep) == []  # not ours, not fresh: no retries
    assert adapter.http.calls == 1


def test_changes_from_the_export(case: Case) -> None:
    active, by_agent, purged, by_bridge = case.seed(1), case.seed(1), case.seed(1), case.seed(1)
    sim = case.sim_only()
    if sim is not None:
        sim.advance(120)  # the export wants start times at least a minute old
    adapter = case.adapter()
    with case.cassette() as tape:
        ids: dict[str, list[int]] = tape.get_metadata(
            "ids",
            {"active": active, "agent": by_agent, "purged": purged, "bridge": by_bridge},
        )
        first = list(adapter.changes(None))
        if sim is not None:
            sim.agent_act("delete", ids["agent"], agent=AGENT)
            sim.agent_act("purge", ids["purged"], agent=AGENT)
            sim.agent_act("delete", ids["bridge"])  # as the API user, i.e. the bridge
            sim.advance(1)
        pages = list(adapter.changes(first[-1].cursor))
        if sim is not None:
            sim.agent_act("restore", ids["agent"])
            sim.advance(1)
        later = list(adapter.changes(pages[-1].cursor))
    (a,), (b,), (p,), (z,) = ids["active"], ids["agent"], ids["purged"], ids["bridge"]
    assert first[-1].complete
    assert {v.ticket_id: v.state for page in first for v in page.views} == {
        a: State.ACTIVE,
        b: State.ACTIVE,
        p: State.ACTIVE,
        z: State.ACTIVE,
    }
    views = {v.ticket_id: v for page in pages for v in page.views}
    assert set(views) == {b, p, z}  # only what changed since the cursor
    assert (views[b].state, views[b].actor_id, views[b].cause) == (
        State.SOFT_DELETED,
        AGENT[0],
        Cause.USER,
    )
    assert views[p].state is State.PURGED
    assert views[p].cause is None  # the reconciler decides user vs retention
    assert (views[z].state, views[z].cause) == (State.SOFT_DELETED, Cause.BRIDGE)
    assert [(v.ticket_id, v.state) for page in later for v in page.views] == [(b, State.ACTIVE)]
    assert later[-1].cursor != pages[-1].cursor


def test_cassettes_hold_no_secrets() -> None:
    files = sorted((CASSETTE_ROOT / "zendesk").glob("*.yaml"))
    assert files, "no Zendesk cassettes recorded"
    for path in files:
        text = path.read_text()
        for needle in (TOKEN, EMAIL, "127.0.0.1", "Basic ", "not-the-token"):
            assert needle not in text, f"{needle!r} left in {path.name}"


def test_every_scenario_has_its_cassette() -> None:
    names = {p.stem for p in Path(CASSETTE_ROOT / "zendesk").glob("*.yaml")}
    scenarios = {
        name.removeprefix("test_")
        for name, value in globals().items()
        if name.startswith("test_") and callable(value) and "case" in value.__code__.co_varnames
    }
    assert scenarios <= names, sorted(scenarios - names)


# -- pure pieces ----------------------------------------------------------------------------


def test_adapter_satisfies_the_contract() -> None:
    adapter = ZendeskAdapter(base_url="https://x.zendesk.com", oauth_token="t")
    assert isinstance(adapter, Adapter)
    assert adapter.side == ZENDESK
    assert (adapter.batch_limit, adapter.job_limit) == (100, 30)
    assert adapter.retention_period.days == 30


def test_auth_header_spellings() -> None:
    seen: list[str] = []

    class Prepared:
        headers: dict[str, str] = {}

    for adapter in (
        ZendeskAdapter(base_url="https://x", email="a@b.c", token="tok"),
        ZendeskAdapter(base_url="https://x", oauth_token="oauth"),
    ):
        prepared: Any = Prepared()
        prepared.headers = {}
        adapter._auth(prepared)
        seen.append(prepared.headers["Authorization"])
    assert seen == ["Basic YUBiLmMvdG9rZW46dG9r", "Bearer oauth"]
    with pytest.raises(ValueError, match="OAuth token"):
        ZendeskAdapter(base_url="https://x", email="a@b.c")


def test_submit_validates_before_any_call() -> None:
    adapter = ZendeskAdapter(base_url="http://127.0.0.1:9", oauth_token="t")
    with pytest.raises(ValueError, match="at least one"):
        adapter.submit(Transition.PURGE, [])
    with pytest.raises(ValueError, match="positive"):
        adapter.submit(Transition.PURGE, [0])
    with pytest.raises(ValueError, match="at most 100"):
        adapter.submit(Transition.PURGE, range(1, 102))
    assert adapter.http.calls == 0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-02-01T10:20:30Z", datetime(2024, 2, 1, 10, 20, 30, tzinfo=UTC)),
        ("20140704T15:37:04Z", datetime(2014, 7, 4, 15, 37, 4, tzinfo=UTC)),
        (1700000000, datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
        ("2024-02-01T12:20:30+02:00", datetime(2024, 2, 1, 10, 20, 30, tzinfo=UTC)),
        ("yesterday", None),
        (None, None),
        (True, None),
    ],
)
def test_parse_time(value: object, expected: datetime | None) -> None:
    assert parse_time(value) == expected


@pytest.mark.parametrize(
    ("row", "state"),
    [
        ({"status": "open", "subject": "a"}, State.ACTIVE),
        ({"status": "closed", "subject": "merged"}, State.ACTIVE),
        ({"status": "deleted", "subject": "a"}, State.SOFT_DELETED),
        ({"status": "deleted", "subject": "SCRUBBED"}, State.PURGED),
    ],
)
def test_ticket_state(row: dict[str, str], state: State) -> None:
    assert ticket_state(row) is state


def test_job_state_shapes() -> None:
    update = job_state(
        {
            "id": "V3-a",
            "status": "completed",
            "results": [
                {"id": 5, "action": "update", "success": True, "status": "Updated"},
                {"id": "6", "action": "update", "success": False, "error": "RecordNotFound"},
            ],
        }
    )
    assert (update.status, dict(update.failed_ids)) == (JobStatus.COMPLETED, {6: "RecordNotFound"})
    purge = job_state({"id": "V3-b", "status": "completed", "results": {"success": False}})
    assert purge.failed_ids == {}
    assert purge.message is not None
    assert "not every ticket" in purge.message
    assert job_state({"id": "V3-c", "status": "killed"}).status is JobStatus.KILLED
    assert map_job_status("working") is JobStatus.WORKING
    assert map_job_status("exploded") is JobStatus.UNKNOWN


def test_scrubber_removes_credentials_and_content() -> None:
    scrub = Scrubber(
        "https://bridge-sandbox.zendesk.com",
        secrets=["s3cret-token", "ann@example.org"],
        hosts=["http://127.0.0.1:4321"],
        content_keys={"subject", "raw_subject", "description"},
    )
    text = scrub.text(
        '{"url":"http://127.0.0.1:4321/api/v2/job_statuses/V3-1.json","ticket":{"subject":'
        '"Printer on fire","raw_subject":"SCRUBBED","description":"X"},"access_token":"abc",'
        '"Ticket":"7T:abcdefghijk","user":{"email":"ann@example.org"},"note":"s3cret-token"}'
    )
    assert "127.0.0.1" not in text
    assert "https://bridge-sandbox.zendesk.com/api/v2/job_statuses/V3-1.json" in text
    assert "Printer" not in text
    assert '"raw_subject":"SCRUBBED"' in text
    assert '"description":"X"' in text
    for secret in ("abc", "7T:", "ann@example.org", "s3cret-token"):
        assert secret not in text
    assert scrub.text("Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln") == "Bearer <JWT>"
    assert scrub.text("grant_type=password&password=hunter22") == (
        "grant_type=password&password=<FILTERED>"
    )


def test_scrubber_keeps_content_length_true() -> None:
    scrub = Scrubber("https://bridge-sandbox.zendesk.com", secrets=["a-long-secret-value"])
    body = b'{"token":"a-long-secret-value"}'
    response = {
        "status": {"code": 200, "message": "OK"},
        "headers": {"Content-Length": [str(len(body))], "Set-Cookie": ["x=1"]},
        "body": {"string": body},
    }
    out = scrub.response(response)
    assert "Set-Cookie" not in out["headers"]
    assert out["headers"]["Content-Length"] == [str(len(out["body"]["string"]))]
    assert b"a-long-secret-value" not in out["body"]["string"]


def test_permanent_errors_are_adapter_errors() -> None:
    assert issubclass(VendorHTTPError, PermanentError)
