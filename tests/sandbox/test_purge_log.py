"""The simulators' purge log (ground truth of accepted irreversible requests), and faults
injected after a write: the vendor acted, whatever the client was told."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from bridge.vendors.superoffice.sim.simulator import SuperOfficeSimulator
from bridge.vendors.zendesk.sim.simulator import ZendeskSimulator
from tests.sandbox.conftest import ZendeskClient
from tests.sandbox.conftest_superoffice import SuperOfficeClient

PURGE_MANY = "DELETE deleted_tickets/destroy_many"
PURGE_ONE = "DELETE deleted_tickets/{id}"
SO_DELETE = "DELETE Ticket/{id}"


def deleted(sim: ZendeskSimulator, n: int) -> list[int]:
    return sim.seed_tickets(count=n, template={"subject": "T {n}", "state": "deleted"})


def active(sim: ZendeskSimulator, n: int) -> list[int]:
    return sim.seed_tickets(count=n, template={"subject": "T {n}"})


def purge_many(zd: ZendeskClient, ids: list[int]) -> requests.Response:
    return zd.delete("deleted_tickets/destroy_many", params={"ids": ",".join(map(str, ids))})


def entries(sim: ZendeskSimulator | SuperOfficeSimulator) -> list[tuple[int, bool, str]]:
    return [(e["ticket_id"], e["duplicate"], e["outcome"]) for e in sim.purge_log()]


# ---- Zendesk: what is recorded ----------------------------------------------------------------


def test_an_accepted_bulk_purge_is_recorded_per_ticket(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    a, b, _c = deleted(zendesk_sim, 3)
    assert purge_many(zd, [a, b]).status_code == 200
    log = zendesk_sim.purge_log()
    assert [(e["ticket_id"], e["route"], e["duplicate"], e["state"]) for e in log] == [
        (a, PURGE_MANY, False, "deleted"),
        (b, PURGE_MANY, False, "deleted"),
    ]
    assert {e["request"] for e in log} == {1}
    assert log[0]["at"] == zendesk_sim.clock.now().isoformat()
    assert entries(zendesk_sim) == [(a, False, "pending"), (b, False, "pending")]
    zendesk_sim.finish_jobs()
    assert entries(zendesk_sim) == [(a, False, "done"), (b, False, "done")]
    assert zendesk_sim.ticket_state(a) == "purged"


def test_a_single_purge_is_recorded(zd: ZendeskClient, zendesk_sim: ZendeskSimulator) -> None:
    (a,) = deleted(zendesk_sim, 1)
    assert zd.delete(f"deleted_tickets/{a}").status_code == 200
    assert [e["route"] for e in zendesk_sim.purge_log()] == [PURGE_ONE]


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "status", "status": 503, "retry_after": 1},
        {"kind": "status", "status": 429, "retry_after": 5},
        {"kind": "status", "status": 500},
        {"kind": "drop"},
        {"kind": "slow", "delay": 0.01},
    ],
)
def test_a_purge_refused_before_the_handler_is_not_recorded(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator, fault: dict[str, Any]
) -> None:
    (a,) = deleted(zendesk_sim, 1)
    rule = zendesk_sim.add_fault(route=PURGE_MANY, when="before", count=1, **fault)
    try:
        answer = purge_many(zd, [a])
    except requests.ConnectionError:
        answer = None
    assert rule.fired == 1
    zendesk_sim.finish_jobs()
    if fault["kind"] == "slow":  # slow, then answered normally: the vendor did act
        assert answer is not None
        assert answer.status_code == 200
        assert entries(zendesk_sim) == [(a, False, "done")]
        return
    assert zendesk_sim.purge_log() == []
    assert zendesk_sim.ticket_state(a) == "deleted"  # the vendor did not act


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "status", "status": 503, "retry_after": 1},
        {"kind": "status", "status": 500},
        {"kind": "drop"},
        {"kind": "malformed"},
    ],
)
def test_a_purge_failed_after_the_handler_is_recorded_and_a_resend_is_a_duplicate(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator, fault: dict[str, Any]
) -> None:
    a, b = deleted(zendesk_sim, 2)
    rule = zendesk_sim.add_fault(route=PURGE_MANY, when="after", count=1, **fault)
    with contextlib.suppress(requests.ConnectionError):
        purge_many(zd, [a])
    assert rule.fired == 1
    assert entries(zendesk_sim) == [(a, False, "pending")]
    # the client could not tell, and sends it again while the first job is queued
    assert purge_many(zd, [a, b]).status_code == 200
    log = zendesk_sim.purge_log()
    assert [(e["ticket_id"], e["duplicate"], e["prior"]) for e in log] == [
        (a, False, None),
        (a, True, "queued"),
        (b, False, None),
    ]
    zendesk_sim.finish_jobs()
    assert entries(zendesk_sim) == [(a, False, "done"), (a, True, "skipped"), (b, False, "done")]
    assert zd.admin("GET", "purges")["duplicates"] == 1


def test_a_purge_of_a_purged_ticket_in_a_bulk_call_is_a_duplicate(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    a, b, c = deleted(zendesk_sim, 3)
    assert purge_many(zd, [a]).status_code == 200
    zendesk_sim.finish_jobs()
    zendesk_sim.agent_act("purge", [b])  # an agent purged it in the UI: not a request
    assert [e["ticket_id"] for e in zendesk_sim.purge_log()] == [a]
    assert purge_many(zd, [a, b, c]).status_code == 200  # accepted: c is soft-deleted
    log = zendesk_sim.purge_log()
    assert [(e["ticket_id"], e["prior"], e["state"]) for e in log[1:]] == [
        (a, "purged", "purged"),
        (b, "purged", "purged"),
        (c, None, "deleted"),
    ]


def test_a_ticket_the_scrub_purged_is_a_duplicate_too(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    (a,) = deleted(zendesk_sim, 1)
    zendesk_sim.advance(31 * 86_400)  # scrubbed
    (b,) = deleted(zendesk_sim, 1)
    assert purge_many(zd, [a, b]).status_code == 200
    assert [(e["ticket_id"], e["duplicate"]) for e in zendesk_sim.purge_log()] == [
        (a, True),
        (b, False),
    ]


def test_requests_the_vendor_refuses_are_not_recorded(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    (a,) = deleted(zendesk_sim, 1)
    (live,) = active(zendesk_sim, 1)
    assert purge_many(zd, [live]).status_code == 404  # nothing soft-deleted in it
    assert zd.delete(f"deleted_tickets/{live}").status_code == 404
    assert zd.delete(f"deleted_tickets/{a}").status_code == 200
    zendesk_sim.finish_jobs()
    assert zd.delete(f"deleted_tickets/{a}").status_code == 404  # purged: not found
    zendesk_sim.configure({"max_jobs": 1})
    (b, c) = deleted(zendesk_sim, 2)
    assert purge_many(zd, [b]).status_code == 200
    assert purge_many(zd, [c]).status_code == 429  # TooManyJobs: not accepted
    assert [e["ticket_id"] for e in zendesk_sim.purge_log()] == [a, b]


def test_a_failed_purge_job_is_recorded_as_failed_and_a_retry_after_it_is_no_duplicate(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    (a,) = deleted(zendesk_sim, 1)
    rule = zendesk_sim.add_fault("job_failed", route=PURGE_MANY, count=1)
    job = purge_many(zd, [a]).json()["job_status"]
    assert rule.fired == 1
    assert purge_many(zd, [a]).status_code == 200  # while the failing job is queued
    zendesk_sim.finish_jobs()
    assert zd.get(f"job_statuses/{job['id']}").json()["job_status"]["status"] == "failed"
    assert entries(zendesk_sim) == [(a, False, "failed"), (a, True, "done")]

    (b,) = deleted(zendesk_sim, 1)
    zendesk_sim.add_fault("job_failed", route=PURGE_MANY, count=1)
    purge_many(zd, [b])
    zendesk_sim.finish_jobs()
    assert zendesk_sim.ticket_state(b) == "deleted"  # a failed job changes nothing
    purge_many(zd, [b])  # the retry after the failure
    zendesk_sim.finish_jobs()
    assert entries(zendesk_sim)[2:] == [(b, False, "failed"), (b, False, "done")]
    assert zendesk_sim.ticket_state(b) == "purged"


def test_a_ticket_restored_before_its_purge_job_ran_is_skipped(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    (a,) = deleted(zendesk_sim, 1)
    purge_many(zd, [a])
    assert zd.put("deleted_tickets/restore_many", params={"ids": str(a)}).status_code == 200
    zendesk_sim.finish_jobs()
    assert entries(zendesk_sim) == [(a, False, "skipped")]
    assert zendesk_sim.ticket_state(a) == "active"


def test_the_admin_endpoint_and_reset(zd: ZendeskClient, zendesk_sim: ZendeskSimulator) -> None:
    a, b = deleted(zendesk_sim, 2)
    purge_many(zd, [a])
    purge_many(zd, [a, b])
    answer = zd.admin("GET", "purges")
    assert answer["purges"] == zendesk_sim.purge_log()
    assert (answer["requests"], answer["duplicates"]) == (2, 1)
    assert set(answer["purges"][0]) >= {"ticket_id", "at", "duplicate", "route"}
    assert zd.admin("DELETE", "purges") == {"purges": [], "requests": 0, "duplicates": 0}
    purge_many(zd, [b])
    assert zendesk_sim.purge_log() != []
    zendesk_sim.reset()
    assert zendesk_sim.purge_log() == []
    assert zd.admin("POST", "reset")["ok"] is True
    assert zd.admin("GET", "purges")["requests"] == 0


# ---- SuperOffice -------------------------------------------------------------------------------


def so_state(sim: SuperOfficeSimulator, ticket_id: int) -> str:
    if sim.is_purged(ticket_id):
        return "purged"
    info = sim.ticket_state(ticket_id)
    assert info is not None
    return "deleted" if info["base_status"] == "Deleted" else "active"


def test_superoffice_default_delete_is_a_soft_delete_and_not_recorded(
    so: SuperOfficeClient, superoffice_sim: SuperOfficeSimulator
) -> None:
    (a,) = superoffice_sim.seed_tickets(1)
    assert so.delete(f"Ticket/{a}").status_code == 204
    assert so_state(superoffice_sim, a) == "deleted"
    superoffice_sim.advance(15 * 86_400)  # the retention job purges it: not a request
    assert so_state(superoffice_sim, a) == "purged"
    assert superoffice_sim.purge_log() == []


def test_superoffice_hard_delete_tenant_records_each_accepted_delete(
    so: SuperOfficeClient, superoffice_sim: SuperOfficeSimulator
) -> None:
    assert so.admin("POST", "config", {"hard_delete": True}).json()["hard_delete"] is True
    a, b = superoffice_sim.seed_tickets(2)
    superoffice_sim.soft_delete([b])
    assert so.delete(f"Ticket/{a}").status_code == 204
    assert so.delete(f"Ticket/{b}").status_code == 204
    assert so_state(superoffice_sim, a) == so_state(superoffice_sim, b) == "purged"
    assert so.delete(f"Ticket/{a}").status_code == 404  # gone: not accepted again
    log = superoffice_sim.purge_log()
    assert [(e["ticket_id"], e["route"], e["state"], e["duplicate"]) for e in log] == [
        (a, SO_DELETE, "active", False),
        (b, SO_DELETE, "deleted", False),
    ]
    answer = so.admin("GET", "purges").json()
    assert (answer["requests"], answer["duplicates"]) == (2, 0)
    superoffice_sim.reset()
    assert superoffice_sim.purge_log() == []


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("kind", ["status", "drop"])
def test_superoffice_hard_delete_counts_after_faults_only(
    so: SuperOfficeClient, superoffice_sim: SuperOfficeSimulator, when: str, kind: str
) -> None:
    superoffice_sim.configure({"hard_delete": True})
    (a,) = superoffice_sim.seed_tickets(1)
    rule = superoffice_sim.add_fault(kind, route=SO_DELETE, when=when, count=1, status=503)
    try:
        assert so.delete(f"Ticket/{a}").status_code == 503
    except requests.ConnectionError:
        assert kind == "drop"
    assert rule.fired == 1
    acted = when == "after"
    assert so_state(superoffice_sim, a) == ("purged" if acted else "active")
    assert entries(superoffice_sim) == ([(a, False, "done")] if acted else [])


# ---- every write endpoint: a fault after the handler leaves the change applied -----------------


@dataclass(frozen=True)
class Write:
    """One write endpoint: how to prepare, send it, and whether its change happened."""

    route: str
    send: Callable[[Any, Any], requests.Response]  # (client, prepared) -> answer
    prepare: Callable[[Any], Any]  # sim -> prepared value (ids...)
    applied: Callable[[Any, Any], bool]  # (sim, prepared) -> the change is there


def _ids(ids: list[int]) -> dict[str, str]:
    return {"ids": ",".join(map(str, ids))}


def _zd_imported(sim: ZendeskSimulator, external_id: str, n: int) -> bool:
    sim.finish_jobs()
    return len(sim.store.live_by_external(external_id)) == n


def _zd_states(sim: ZendeskSimulator, ids: list[int], state: str) -> bool:
    sim.finish_jobs()
    return all(sim.ticket_state(i) == state for i in ids)


ZENDESK_WRITES = [
    Write(
        "DELETE tickets/{id}",
        lambda c, ids: c.delete(f"tickets/{ids[0]}"),
        lambda s: active(s, 1),
        lambda s, ids: _zd_states(s, ids, "deleted"),
    ),
    Write(
        "DELETE tickets/destroy_many",
        lambda c, ids: c.delete("tickets/destroy_many", params=_ids(ids)),
        lambda s: active(s, 2),
        lambda s, ids: _zd_states(s, ids, "deleted"),
    ),
    Write(
        "PUT deleted_tickets/{id}/restore",
        lambda c, ids: c.put(f"deleted_tickets/{ids[0]}/restore"),
        lambda s: deleted(s, 1),
        lambda s, ids: _zd_states(s, ids, "active"),
    ),
    Write(
        "PUT deleted_tickets/restore_many",
        lambda c, ids: c.put("deleted_tickets/restore_many", params=_ids(ids)),
        lambda s: deleted(s, 2),
        lambda s, ids: _zd_states(s, ids, "active"),
    ),
    Write(
        PURGE_ONE,
        lambda c, ids: c.delete(f"deleted_tickets/{ids[0]}"),
        lambda s: deleted(s, 1),
        lambda s, ids: _zd_states(s, ids, "purged"),
    ),
    Write(
        PURGE_MANY,
        lambda c, ids: c.delete("deleted_tickets/destroy_many", params=_ids(ids)),
        lambda s: deleted(s, 2),
        lambda s, ids: _zd_states(s, ids, "purged"),
    ),
    Write(
        "POST imports/tickets",
        lambda c, _: c.post("imports/tickets", json={"ticket": {"external_id": "imp-1"}}),
        lambda s: None,
        lambda s, _: _zd_imported(s, "imp-1", 1),
    ),
    Write(
        "POST imports/tickets/create_many",
        lambda c, _: c.post(
            "imports/tickets/create_many",
            json={"tickets": [{"external_id": "imp-2"}, {"external_id": "imp-2"}]},
        ),
        lambda s: None,
        lambda s, _: _zd_imported(s, "imp-2", 2),
    ),
]


def _so_state_is(sim: SuperOfficeSimulator, ids: list[int], state: str) -> bool:
    return all(so_state(sim, i) == state for i in ids)


def _so_titled(sim: SuperOfficeSimulator, title: str) -> bool:
    return any(t.title == title for t in sim.store.tickets.values())


SUPEROFFICE_WRITES = [
    Write(
        "POST Ticket",
        lambda c, _: c.post("Ticket", json={"Title": "Created through the API"}),
        lambda s: None,
        lambda s, _: _so_titled(s, "Created through the API"),
    ),
    Write(
        "PATCH Ticket/{id}",
        lambda c, ids: c.patch(f"Ticket/{ids[0]}", json={"Title": "Patched"}),
        lambda s: s.seed_tickets(1),
        lambda s, _: _so_titled(s, "Patched"),
    ),
    Write(
        SO_DELETE,
        lambda c, ids: c.delete(f"Ticket/{ids[0]}"),
        lambda s: s.seed_tickets(1),
        lambda s, ids: _so_state_is(s, ids, "deleted"),
    ),
    Write(
        "POST Agents/Ticket/SetDeletedStatusByIds",
        lambda c, ids: c.post("Agents/Ticket/SetDeletedStatusByIds", json={"TicketIds": ids}),
        lambda s: s.seed_tickets(2),
        lambda s, ids: _so_state_is(s, ids, "deleted"),
    ),
    Write(
        "POST Agents/Ticket/UndeleteByIds",
        lambda c, ids: c.post("Agents/Ticket/UndeleteByIds", json={"TicketIds": ids}),
        lambda s: s.soft_delete(s.seed_tickets(2)),
        lambda s, ids: _so_state_is(s, ids, "active"),
    ),
    Write(
        "POST Agents/Ticket/DeleteTicketEntity",
        lambda c, ids: c.post("Agents/Ticket/DeleteTicketEntity", json={"TicketEntityId": ids[0]}),
        lambda s: s.seed_tickets(1),
        lambda s, ids: _so_state_is(s, ids, "deleted"),
    ),
]

AFTER_FAULTS = [
    pytest.param({"kind": "status", "status": 503, "retry_after": 1}, id="503"),
    pytest.param({"kind": "status", "status": 500}, id="500"),
    pytest.param({"kind": "drop"}, id="drop"),
    pytest.param({"kind": "malformed"}, id="malformed"),
]


def _send_faulted(
    sim: ZendeskSimulator | SuperOfficeSimulator,
    client: Any,
    write: Write,
    fault: dict[str, Any],
    when: str,
) -> bool:
    """Send `write` with `fault` injected `when`; check the answer is the fault's; return
    whether the change was applied."""
    prepared = write.prepare(sim)
    rule = sim.add_fault(route=write.route, when=when, count=1, **fault)
    if fault["kind"] == "drop":
        with pytest.raises(requests.ConnectionError):
            write.send(client, prepared)
    else:
        answer = write.send(client, prepared)
        if fault["kind"] == "malformed":
            assert answer.status_code == 200
            with pytest.raises(ValueError):
                answer.json()
        else:
            assert answer.status_code == fault["status"]
            if "retry_after" in fault:
                assert answer.headers["Retry-After"] == str(fault["retry_after"])
    assert rule.fired == 1, write.route
    return write.applied(sim, prepared)


@pytest.mark.parametrize("fault", AFTER_FAULTS)
@pytest.mark.parametrize("write", ZENDESK_WRITES, ids=lambda w: w.route)
def test_zendesk_write_failed_after_the_handler_was_applied(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator, write: Write, fault: dict[str, Any]
) -> None:
    assert write.route in {r.name for r in zendesk_sim.routes}
    assert _send_faulted(zendesk_sim, zd, write, fault, "after")


@pytest.mark.parametrize("write", ZENDESK_WRITES, ids=lambda w: w.route)
def test_zendesk_write_failed_before_the_handler_was_not_applied(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator, write: Write
) -> None:
    assert not _send_faulted(zendesk_sim, zd, write, {"kind": "status", "status": 503}, "before")


@pytest.mark.parametrize("fault", AFTER_FAULTS)
@pytest.mark.parametrize("write", SUPEROFFICE_WRITES, ids=lambda w: w.route)
def test_superoffice_write_failed_after_the_handler_was_applied(
    so: SuperOfficeClient,
    superoffice_sim: SuperOfficeSimulator,
    write: Write,
    fault: dict[str, Any],
) -> None:
    assert write.route in {r.name for r in superoffice_sim.routes}
    assert _send_faulted(superoffice_sim, so, write, fault, "after")


@pytest.mark.parametrize("write", SUPEROFFICE_WRITES, ids=lambda w: w.route)
def test_superoffice_write_failed_before_the_handler_was_not_applied(
    so: SuperOfficeClient, superoffice_sim: SuperOfficeSimulator, write: Write
) -> None:
    assert not _send_faulted(
        superoffice_sim, so, write, {"kind": "status", "status": 503}, "before"
    )


# ---- Zendesk jobs can be made to fail ----------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "make", "send", "unchanged"),
    [
        (
            "DELETE tickets/destroy_many",
            active,
            lambda c, ids: c.delete("tickets/destroy_many", params=_ids(ids)),
            "active",
        ),
        (
            PURGE_MANY,
            deleted,
            lambda c, ids: c.delete("deleted_tickets/destroy_many", params=_ids(ids)),
            "deleted",
        ),
        (
            PURGE_ONE,
            deleted,
            lambda c, ids: c.delete(f"deleted_tickets/{ids[0]}"),
            "deleted",
        ),
    ],
)
def test_a_job_failed_fault_fails_the_job_of_its_route_only(
    zd: ZendeskClient,
    zendesk_sim: ZendeskSimulator,
    route: str,
    make: Callable[[ZendeskSimulator, int], list[int]],
    send: Callable[[ZendeskClient, list[int]], requests.Response],
    unchanged: str,
) -> None:
    rule = zendesk_sim.add_fault("job_failed", route=route, count=1)
    other = zd.post("imports/tickets/create_many", json={"tickets": [{"external_id": "x"}]})
    assert rule.fired == 0  # another route's job is not failed
    ids = make(zendesk_sim, 2)
    job = send(zd, ids).json()["job_status"]
    assert rule.fired == 1
    zendesk_sim.finish_jobs()
    shown = zd.get(f"job_statuses/{job['id']}").json()["job_status"]
    assert (shown["status"], shown["results"]) == ("failed", None)
    assert all(zendesk_sim.ticket_state(i) == unchanged for i in ids)
    done = zd.get(f"job_statuses/{other.json()['job_status']['id']}").json()["job_status"]
    assert done["status"] == "completed"


def test_a_failed_import_job_creates_nothing(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    zendesk_sim.add_fault("job_failed", route="POST imports/tickets/create_many", count=1)
    zd.post("imports/tickets/create_many", json={"tickets": [{"external_id": "y"}]})
    assert not _zd_imported(zendesk_sim, "y", 1)
