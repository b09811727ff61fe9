"""The Zendesk simulator driven by zenpy, a widely used Zendesk client: whatever zenpy
understands from the real API it must understand from the simulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bridge.sandbox import SimClock
from bridge.vendors.zendesk.sim.simulator import ZendeskSimulator

zenpy = pytest.importorskip("zenpy")
from zenpy.lib.api_objects import JobStatus, Ticket  # noqa: E402
from zenpy.lib.exception import APIException, RecordNotFoundException  # noqa: E402

EMAIL, TOKEN = "admin@example.com", "sandbox-token"


@pytest.fixture
def sim() -> Iterator[ZendeskSimulator]:
    with ZendeskSimulator(email=EMAIL, token=TOKEN, clock=SimClock(frozen=True)) as server:
        server.configure({"rate_limits": False})
        yield server


@pytest.fixture
def client(sim: ZendeskSimulator, monkeypatch: pytest.MonkeyPatch) -> zenpy.Zenpy:
    # zenpy builds https://{subdomain}.{domain}; it offers these two switches for tests
    monkeypatch.setenv("ZENPY_FORCE_SCHEME", "http")
    monkeypatch.setenv("ZENPY_FORCE_NETLOC", f"127.0.0.1:{sim.port}")
    return zenpy.Zenpy(subdomain="sandbox", email=EMAIL, token=TOKEN, disable_cache=True)


def test_import_show_and_show_many(sim: ZendeskSimulator, client: zenpy.Zenpy) -> None:
    created = client.ticket_import.create(
        Ticket(subject="Printer", description="offline", external_id="superoffice-7")
    )
    assert created.subject == "Printer"
    assert created.external_id == "superoffice-7"
    ids = sim.seed_tickets(count=3)
    assert client.tickets(id=ids[0]).id == ids[0]
    assert sorted(t.id for t in client.tickets(ids=ids)) == ids


def test_soft_delete_restore_and_purge_as_zenpy_sees_them(
    sim: ZendeskSimulator, client: zenpy.Zenpy
) -> None:
    ids = sim.seed_tickets(count=4)
    job = client.tickets.delete([client.tickets(id=i) for i in ids[:3]])
    assert isinstance(job, JobStatus)
    assert job.status == "queued"
    sim.finish_jobs()
    assert client.job_status(id=job.id).status == "completed"
    deleted = list(client.tickets.deleted())
    assert sorted(d.id for d in deleted) == ids[:3]
    with pytest.raises(RecordNotFoundException):
        client.tickets(id=ids[0])
    restored = client.tickets.restore(next(d for d in deleted if d.id == ids[0]))
    assert restored.status_code == 200
    assert client.tickets(id=ids[0]).id == ids[0]
    purge = client.tickets.permanently_delete(next(d for d in deleted if d.id == ids[1]))
    assert isinstance(purge, JobStatus)
    sim.finish_jobs()
    assert client.job_status(id=purge.id).status == "completed"
    assert sim.ticket_state(ids[1]) == "purged"
    with pytest.raises(RecordNotFoundException):
        client.tickets.restore(next(d for d in deleted if d.id == ids[1]))


def test_incremental_export_shows_deleted_and_scrubbed(
    sim: ZendeskSimulator, client: zenpy.Zenpy
) -> None:
    ids = sim.seed_tickets(count=3)
    sim.agent_act("delete", [ids[0]])
    sim.agent_act("purge", [ids[1]])
    sim.advance(120)
    rows = {t.id: t for t in client.tickets.incremental(start_time=1)}
    assert rows[ids[0]].status == "deleted"
    assert rows[ids[1]].subject == "SCRUBBED"
    assert rows[ids[2]].status != "deleted"


def test_time_based_export_pages_by_time(sim: ZendeskSimulator, client: zenpy.Zenpy) -> None:
    ids = sim.seed_tickets(count=3)
    sim.agent_act("delete", [ids[0]])
    sim.advance(120)
    rows = {t.id: t for t in client.tickets.incremental(start_time=1, paginate_by_time=True)}
    assert set(rows) == set(ids)
    assert rows[ids[0]].status == "deleted"


def test_too_many_ids_is_an_api_error(sim: ZendeskSimulator, client: zenpy.Zenpy) -> None:
    tickets = [Ticket(id=i) for i in range(1, 102)]
    with pytest.raises(APIException, match="TooManyValues"):
        client.tickets.delete(tickets)


def test_the_api_user_is_known(client: zenpy.Zenpy) -> None:
    me = client.users.me()
    assert me.email == EMAIL
    assert me.role == "admin"
