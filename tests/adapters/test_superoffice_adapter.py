"""The SuperOffice adapter against recorded conversations (cassettes/superoffice/*.yaml).

Replay (the default, CI): no network; the adapter talks to a fake tenant URL and never
sleeps. Recording (`BRIDGE_RECORD_CASSETTES=1`): each test starts the simulator on port 0
with a frozen clock, seeds what it needs through the simulator's Python API (so seeding is
not in the cassette), and records. With `BRIDGE_SUPEROFFICE_RECORD_*` set, recording goes to
a real tenant instead and scenarios that need the simulator (faults, clock, admin purge)
are skipped. See docs/cassettes.md.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests

from bridge.core.contract import ChangePage, PermanentError, TransientError
from bridge.core.model import Cause, State, Transition
from bridge.sandbox import SimClock
from bridge.vendors.http import VendorHTTPError
from bridge.vendors.superoffice.adapter import (
    SuperOfficeAdapter,
    format_filter_time,
    parse_so_datetime,
)
from bridge.vendors.superoffice.auth import BearerAuth, SOTicketAuth, SuperOfficeAuth
from bridge.vendors.superoffice.cursor import ChangeCursor, Position
from bridge.vendors.superoffice.sim.simulator import SuperOfficeSimulator
from tests.cassettes import (
    CASSETTE_ROOT,
    REPLAY_BASE_URLS,
    env_credentials,
    make_vcr,
    no_sleep,
    recording,
    use_cassette,
)

START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
REPLAY_URL = REPLAY_BASE_URLS["superoffice"]
T = TypeVar("T")

REAL_ENV = ("BRIDGE_SUPEROFFICE_RECORD_URL", "BRIDGE_SUPEROFFICE_RECORD_TENANT")
REAL_TICKET_ENV = ("BRIDGE_SUPEROFFICE_RECORD_TICKET", "BRIDGE_SUPEROFFICE_RECORD_APP_TOKEN")
REAL_BEARER_ENV = ("BRIDGE_SUPEROFFICE_RECORD_BEARER",)


def _real_tenant() -> tuple[str, str, SuperOfficeAuth, list[str]] | None:
    """(url, tenant, auth, secrets) of a real tenant to record against, if configured."""
    base = env_credentials(*REAL_ENV)
    if base is None:
        return None
    url, tenant = base["BRIDGE_SUPEROFFICE_RECORD_URL"], base["BRIDGE_SUPEROFFICE_RECORD_TENANT"]
    ticket = env_credentials(*REAL_TICKET_ENV)
    if ticket is not None:
        auth: SuperOfficeAuth = SOTicketAuth(
            ticket["BRIDGE_SUPEROFFICE_RECORD_TICKET"],
            ticket["BRIDGE_SUPEROFFICE_RECORD_APP_TOKEN"],
        )
    else:
        bearer = env_credentials(*REAL_BEARER_ENV)
        if bearer is None:
            pytest.fail("set a ticket + app token or a bearer token to record against a tenant")
        auth = BearerAuth(bearer["BRIDGE_SUPEROFFICE_RECORD_BEARER"])
    return url, tenant, auth, list(auth.secrets())


class RealTenant:
    """Seeds a real tenant through its own API (what the simulator's admin API does here)."""

    def __init__(self, url: str, auth: SuperOfficeAuth) -> None:
        self.api = url.rstrip("/") + "/api/v1/"
        self.session = requests.Session()
        self.session.auth = lambda request: (auth(request), request)[1]
        self.session.headers["Accept"] = "application/json"

    def seed_tickets(self, count: int, status: int | None = None) -> list[int]:
        ids = []
        for n in range(count):
            body: dict[str, Any] = {"Title": f"bridge cassette {n}"}
            if status is not None:
                body["Status"] = {"TicketStatusId": status}
            answer = self.session.post(self.api + "Ticket", json=body, timeout=30)
            answer.raise_for_status()
            ids.append(int(answer.json()["TicketId"]))
        return ids

    def soft_delete(self, ids: list[int]) -> None:
        answer = self.session.post(
            self.api + "Agents/Ticket/SetDeletedStatusByIds", json={"TicketIds": ids}, timeout=30
        )
        answer.raise_for_status()


@dataclass
class Env:
    """One scenario: the adapter, the clock it shares with the simulator, and the cassette."""

    adapter: SuperOfficeAdapter
    clock: SimClock
    cassette: Any
    sim: SuperOfficeSimulator | None = None
    real: RealTenant | None = None
    sleeps: list[float] = field(default_factory=list)

    def seeded(self, key: str, make: Callable[[], T]) -> T:
        """A value made while recording (ids...) and read back from the cassette on replay."""
        if recording():
            return self.cassette.get_metadata(key, make())  # type: ignore[no-any-return]
        value = self.cassette.get_metadata(key, None)
        assert value is not None, f"cassette has no metadata {key!r}: re-record it"
        return value  # type: ignore[no-any-return]

    def need_sim(self) -> SuperOfficeSimulator:
        """The simulator (only called while recording a `sim_only` scenario)."""
        assert self.sim is not None, "a scenario using the simulator must be sim_only"
        return self.sim

    def advance(self, seconds: float) -> None:
        """Move time on: the simulator's clock when recording, the adapter's on replay."""
        if self.sim is not None:
            self.sim.advance(seconds)
        elif self.real is None:
            self.clock.advance(seconds)


@contextmanager
def scenario(
    name: str,
    *,
    sim_only: bool = False,
    sim_options: dict[str, Any] | None = None,
    auth: SuperOfficeAuth | None = None,
    **adapter_options: Any,
) -> Iterator[Env]:
    clock = SimClock(START, frozen=True)
    sleeps: list[float] = []
    sim: SuperOfficeSimulator | None = None
    real: RealTenant | None = None
    secrets: list[str] = []
    hosts: list[str] = []
    tenant = "Cust12345"
    if recording():
        configured = _real_tenant()
        if configured is not None and sim_only:
            # skipped before the cassette is opened, so the simulator recording stays
            pytest.skip("needs the simulator (fault, clock, status ids or admin action)")
        if configured is not None:
            url, tenant, tenant_auth, secrets = configured
            auth, real, hosts = auth or tenant_auth, RealTenant(url, tenant_auth), [url]
            sleep: Callable[[float], None] = time.sleep
        else:
            sim = SuperOfficeSimulator(clock=clock, requests_per_second=None, **(sim_options or {}))
            sim.start()
            url, hosts = sim.base_url, [sim.base_url]
            secrets = [sim.ticket, sim.app_token, sim.bearer]
            auth = auth or SOTicketAuth(sim.ticket, sim.app_token)
            # the simulator's rate limit is off and faults fire by count: waiting changes
            # nothing, and not moving the clock by random backoff keeps recordings stable
            sleep = no_sleep
    else:
        url, sleep = REPLAY_URL, no_sleep
        auth = auth or SOTicketAuth("7T:replay-ticket", "replay-app-token")

    def recorded_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        sleep(seconds)

    recorder = make_vcr("superoffice", secrets=secrets, hosts=hosts)
    try:
        with use_cassette(recorder, name) as cassette:
            # the tenant id names the state service's path (`/api/state/{tenant}`)
            tenant = cassette.get_metadata("tenant", tenant)
            adapter = SuperOfficeAdapter(
                url,
                tenant=tenant,
                auth=auth,
                sleep=recorded_sleep,
                clock=clock.now,
                requests_per_second=None,
                **adapter_options,
            )
            yield Env(adapter, clock, cassette, sim=sim, real=real, sleeps=sleeps)
    finally:
        if sim is not None:
            sim.stop()


def log_reads(env: Env) -> list[str]:
    """From now on, the adapter's `Archive/dynamic` requests (its ticket log reads), as
    they are made: replay-safe, unlike the cassette's list of recorded requests."""
    paths: list[str] = []
    request = env.adapter.http.request

    def spy(method: str, path: str, **kwargs: Any) -> requests.Response:
        if path == "Archive/dynamic":
            paths.append(path)
        return request(method, path, **kwargs)

    env.adapter.http.request = spy  # type: ignore[method-assign]
    return paths


def _seed(env: Env, count: int, **template: Any) -> list[int]:
    if env.real is not None:
        return env.real.seed_tickets(count, template.get("status"))
    assert env.sim is not None
    return env.sim.seed_tickets(count, **template)


def _user_delete(env: Env, ids: list[int]) -> None:
    if env.real is not None:
        env.real.soft_delete(ids)
    else:
        assert env.sim is not None
        env.sim.soft_delete(ids)


# --------------------------------------------------------------------------- pure helpers


def test_parse_so_datetime_variants() -> None:
    assert parse_so_datetime("2016-05-29T14:28:22.5709961+02:00") == datetime(
        2016, 5, 29, 12, 28, 22, 570996, tzinfo=UTC
    )
    assert parse_so_datetime("2024-05-20T14:41:10Z") == datetime(
        2024, 5, 20, 14, 41, 10, tzinfo=UTC
    )
    assert parse_so_datetime("2024-05-20T14:41:10") == datetime(2024, 5, 20, 14, 41, 10, tzinfo=UTC)
    assert parse_so_datetime("0001-01-01T00:00:00") is None
    assert parse_so_datetime("not a date") is None
    assert parse_so_datetime(None) is None


def test_format_filter_time_is_utc_seconds() -> None:
    moment = datetime(2024, 5, 20, 16, 41, 10, 900000, tzinfo=UTC) + timedelta(hours=0)
    assert format_filter_time(moment) == "2024-05-20T16:41:10"


def test_batch_limit_is_enforced_before_any_call() -> None:
    adapter = SuperOfficeAdapter(
        REPLAY_URL, tenant="Cust12345", auth=SOTicketAuth("t", "a"), batch_limit=2
    )
    with pytest.raises(ValueError, match="at most 2"):
        adapter.submit(Transition.SOFT_DELETE, [1, 2, 3])
    assert adapter.http.calls == 0
    assert adapter.submit(Transition.SOFT_DELETE, []).ticket_ids == ()
    assert adapter.poll(["anything"]) == {}
    assert adapter.job_limit is None
    assert adapter.retention_period == timedelta(days=14)


def test_purge_cause_uses_the_retention_period() -> None:
    adapter = SuperOfficeAdapter(REPLAY_URL, tenant="Cust12345", auth=SOTicketAuth("t", "a"))
    deleted = START
    assert adapter.purge_cause(deleted, START + timedelta(days=14)) is Cause.RETENTION
    assert adapter.purge_cause(deleted, START + timedelta(days=3)) is Cause.USER
    assert adapter.purge_cause(None, START) is None


# --------------------------------------------------------------------------- cassettes


def test_lookup_maps_every_state() -> None:
    with scenario("lookup_mixed", sim_only=True) as env:

        def make() -> dict[str, int]:
            sim = env.need_sim()
            active, master, merged, deleted, purged = sim.seed_tickets(5, status=304)
            sim.merge([merged], into=master)
            env.advance(60)
            sim.soft_delete([deleted, purged])
            sim.purge([purged])
            return {
                "active": active,
                "master": master,
                "merged": merged,
                "deleted": deleted,
                "purged": purged,
            }

        ids = env.seeded("ids", make)
        never = 999_999
        order = ("active", "master", "merged", "deleted", "purged")  # YAML sorts keys
        views = env.adapter.lookup([*(ids[k] for k in order), never])
        assert views[ids["active"]].state is State.ACTIVE
        assert views[ids["active"]].status_id == 304
        assert views[ids["active"]].vendor_time == START
        assert views[ids["merged"]].state is State.ACTIVE
        assert views[ids["merged"]].merged_into == ids["master"]
        assert views[ids["merged"]].status_id is None
        assert views[ids["deleted"]].state is State.SOFT_DELETED
        assert views[ids["deleted"]].vendor_time == START + timedelta(seconds=60)
        assert views[ids["purged"]].state is State.PURGED
        assert views[never].state is State.PURGED
        # two archive queries, then one GET by id for each id found in neither
        assert env.adapter.http.calls == 2 + 2


def read_changes(adapter: SuperOfficeAdapter, cursor: str | None) -> list[ChangePage]:
    """`adapter.changes` as a run reads it: a page's makers are asked for (`makers`) before
    the next page is read, as the Recorder does (here for every view: no ledger holds a
    state to compare with)."""
    pages: list[ChangePage] = []
    for page in adapter.changes(cursor):
        if page.makers_unread:
            page = replace(page, views=adapter.makers(page.views))
        pages.append(page)
    return pages


def test_changes_page_by_position_and_move_the_cursor() -> None:
    with scenario("changes_paging", sim_only=True, page_size=3) as env:
        ids = env.seeded("ids", lambda: env.need_sim().seed_tickets(7))
        env.advance(60)  # (the clock moves on replay too: cursors depend on it)
        env.seeded("deleted", lambda: env.need_sim().soft_delete(ids[:3]))
        env.advance(120)  # both seconds are over when the read begins
        pages = read_changes(env.adapter, None)
        assert [p.complete for p in pages] == [False] * (len(pages) - 1) + [True]
        seen = [v.ticket_id for p in pages for v in p.views]
        assert sorted(seen) == sorted(ids)  # pages re-read a cut second, yet each row once
        states = {v.ticket_id: v.state for p in pages for v in p.views}
        assert {i for i, s in states.items() if s is State.SOFT_DELETED} == set(ids[:3])
        cursor = pages[-1].cursor
        closed = Position(START + timedelta(seconds=119))
        over = Position(START + timedelta(seconds=178))
        assert ChangeCursor.parse(cursor, old_overlap=timedelta(0)) == ChangeCursor(closed, over)

        env.advance(300)
        env.seeded("later_delete", lambda: _user_delete(env, [ids[3]]) or True)
        reads = log_reads(env)
        again = read_changes(env.adapter, cursor)
        later = {v.ticket_id: v for p in again for v in p.views}
        assert set(later) == {ids[3]}  # closed seconds are never read twice
        # who deleted it is read from the ticket log, once
        assert (later[ids[3]].actor_id, later[ids[3]].cause) == (7, Cause.USER)
        assert len(reads) == 1
        # read in the second it was made: it is read again (not over, not settled)
        open_cursor = ChangeCursor.parse(again[-1].cursor, old_overlap=timedelta(0))
        assert open_cursor.read == Position(START + timedelta(seconds=480 - 2))
        assert open_cursor.settled == Position(START + timedelta(seconds=480 - 61))


def test_changes_without_changes_costs_two_calls() -> None:
    with scenario("changes_empty") as env:
        env.seeded("ids", lambda: _seed(env, 2))
        env.advance(120)
        first = read_changes(env.adapter, None)
        cursor = first[-1].cursor
        calls = env.adapter.http.calls
        pages = read_changes(env.adapter, cursor)
        assert env.adapter.http.calls - calls == 2
        assert pages[-1].complete
        if env.real is None:  # a real tenant's clock does not wait two minutes
            assert [v for p in pages for v in p.views] == []


def test_soft_delete_is_one_bulk_call() -> None:
    with scenario("soft_delete") as env:
        ids = env.seeded("ids", lambda: _seed(env, 3))
        submitted = env.adapter.submit(Transition.SOFT_DELETE, ids)
        assert submitted.job_id is None
        assert submitted.ticket_ids == tuple(ids)
        assert env.adapter.http.calls == 1
        views = env.adapter.lookup(ids)
        assert {v.state for v in views.values()} == {State.SOFT_DELETED}


def test_restore_puts_the_previous_status_back() -> None:
    with scenario("restore_status", sim_only=True) as env:

        def make() -> list[int]:
            ids = _seed(env, 2, status=304)
            _user_delete(env, ids)
            return ids

        keep, default = env.seeded("ids", make)
        env.adapter.submit(Transition.RESTORE, [keep, default], restore_status={keep: 304})
        views = env.adapter.lookup([keep, default])
        assert views[keep].state is views[default].state is State.ACTIVE
        assert views[keep].status_id == 304
        assert views[default].status_id == 1  # UndeleteByIds: the default open status


def test_purge_is_pending_until_retention_then_verified() -> None:
    with scenario("purge_pending", sim_only=True) as env:

        def make() -> list[int]:
            ids = _seed(env, 2)
            env.advance(60)
            _user_delete(env, ids[:1])
            return ids

        deleted, active = env.seeded("ids", make)
        submitted = env.adapter.submit(Transition.PURGE, [deleted, active])
        deleted_at = START + timedelta(seconds=60)
        assert submitted.pending_until[deleted] == deleted_at + timedelta(days=14)
        # an active ticket is soft-deleted first, and waits from that moment
        assert submitted.pending_until[active] == deleted_at + timedelta(days=14)
        assert {v.state for v in env.adapter.lookup([deleted, active]).values()} == {
            State.SOFT_DELETED
        }
        env.advance(14 * 86400 + 3600)
        views = env.adapter.lookup([deleted, active])
        assert {v.state for v in views.values()} == {State.PURGED}
        seen = env.clock.now()
        assert env.adapter.purge_cause(deleted_at, seen) is Cause.RETENTION


def test_429_waits_for_retry_after() -> None:
    with scenario("rate_limited", sim_only=True) as env:

        def make() -> list[int]:
            sim = env.need_sim()
            ids = sim.seed_tickets(2)
            sim.add_fault(
                "status", route="GET Archive/{provider}", status=429, retry_after=7, count=2
            )
            return ids

        ids = env.seeded("ids", make)
        views = env.adapter.lookup(ids)
        assert {v.state for v in views.values()} == {State.ACTIVE}
        assert env.sleeps == [7.0, 7.0]
        assert env.adapter.http.calls == 2 + 2


def test_5xx_on_a_state_setting_write_is_retried() -> None:
    with scenario("server_errors", sim_only=True) as env:

        def make() -> list[int]:
            sim = env.need_sim()
            ids = sim.seed_tickets(2)
            route = "POST Agents/Ticket/SetDeletedStatusByIds"
            sim.add_fault("status", route=route, status=500, count=1)
            sim.add_fault("status", route=route, status=502, count=1)
            return ids

        ids = env.seeded("ids", make)
        env.adapter.submit(Transition.SOFT_DELETE, ids)
        assert env.adapter.http.calls == 3
        assert len(env.sleeps) == 2  # bounded backoff between attempts
        assert {v.state for v in env.adapter.lookup(ids).values()} == {State.SOFT_DELETED}


def test_persistent_5xx_gives_up_with_a_transient_error() -> None:
    with scenario("server_down", sim_only=True) as env:

        def make() -> bool:
            sim = env.need_sim()
            sim.add_fault("status", route="GET Archive/{provider}", status=500)
            return True

        env.seeded("fault", make)
        with pytest.raises(TransientError, match="gave up after 6 attempts"):
            env.adapter.lookup([1])
        assert env.adapter.http.calls == 6


def test_check_all_green() -> None:
    with scenario("check_ok") as env:
        results = env.adapter.check()
        assert [r.name for r in results] == [
            "superoffice tenant state",
            "superoffice reachable",
            "superoffice authenticated",
            "superoffice right to delete requests",
        ]
        assert all(r.ok for r in results), results


def test_check_reports_missing_delete_right() -> None:
    with scenario("check_no_delete_right", sim_only=True, sim_options={"can_delete": False}) as env:
        results = {r.name: r for r in env.adapter.check()}
        assert results["superoffice authenticated"].ok
        right = results["superoffice right to delete requests"]
        assert not right.ok
        assert right.message == "the API user may not delete requests (403)"
        with pytest.raises(VendorHTTPError) as caught:
            env.adapter.submit(Transition.SOFT_DELETE, [1])
        assert caught.value.status == 403
        assert isinstance(caught.value, PermanentError)


def test_check_reports_bad_credentials() -> None:
    with scenario("check_bad_credentials", auth=SOTicketAuth("7T:wrong-ticket", "wrong")) as env:
        results = {r.name: r for r in env.adapter.check()}
        assert results["superoffice tenant state"].ok  # the state service needs no auth
        assert results["superoffice reachable"].ok
        assert not results["superoffice authenticated"].ok
        assert results["superoffice authenticated"].message == "credentials refused (soticket)"
        assert "superoffice right to delete requests" not in results


# --------------------------------------------------------------------------- hygiene

_LEAKS = [
    re.compile(r"127\.0\.0\.1|localhost"),
    re.compile(r"7T:(?!replay)[A-Za-z0-9]"),
    re.compile(r"sandbox-app|sandbox-bearer|wrong-ticket"),
    re.compile(r"(SOTicket|Bearer|Basic) (?!<FILTERED>)\S"),
    re.compile(r"eyJ[A-Za-z0-9_-]{4,}\."),
    re.compile(base64.b64encode(b"admin:sandbox").decode()),
]


def test_cassettes_hold_no_secrets() -> None:
    files = sorted(Path(CASSETTE_ROOT / "superoffice").glob("*.yaml"))
    assert files, "no SuperOffice cassettes: record them (docs/cassettes.md)"
    for path in files:
        text = path.read_text()
        for pattern in _LEAKS:
            assert not pattern.search(text), f"{path.name}: {pattern.pattern}"
