"""The SuperOffice simulator over real HTTP (port 0, frozen clock)."""

from __future__ import annotations

import base64
import socket
from datetime import timedelta
from email.utils import format_datetime
from typing import Any

import jwt
import pytest
import requests

from bridge.vendors.superoffice.sim.auth import (
    CLAIM_TICKET,
    generate_rsa_keypair,
    partner_keypair,
    sign_system_user_token,
)
from bridge.vendors.superoffice.sim.simulator import SuperOfficeSimulator
from tests.sandbox.conftest_superoffice import (
    SO_START,
    SuperOfficeClient,
    so,
    superoffice_sim,
)

__all__ = ["so", "superoffice_sim"]  # fixtures imported for pytest

DAY = 86_400


def entity(so: SuperOfficeClient, ticket_id: int) -> dict[str, Any]:
    response = so.get(f"Ticket/{ticket_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def archive_ids(so: SuperOfficeClient, provider: str, **params: Any) -> list[int]:
    params.setdefault("select", "ticketId")
    params.setdefault("top", 10_000)
    response = so.archive(provider, **params)
    assert response.status_code == 200, response.text
    return [row["ticketId"] for row in response.json()["value"]]


# --------------------------------------------------------------------------- auth


def test_soticket_with_app_token_is_accepted(so: SuperOfficeClient) -> None:
    ticket_id = so.sim.create_ticket("one")
    assert so.get(f"Ticket/{ticket_id}").status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "SOTicket 7T:sandbox"},  # Online needs SO-AppToken too
        {"Authorization": "SOTicket 7T:wrong", "SO-AppToken": "sandbox-app"},
        {"Authorization": "SOTicket 7T:sandbox", "SO-AppToken": "wrong"},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic " + base64.b64encode(b"admin:wrong").decode()},
        {"Authorization": "Basic !!!"},
        {"Authorization": "Digest abc"},
    ],
)
def test_bad_or_missing_credentials_get_401(
    superoffice_sim: SuperOfficeSimulator, headers: dict[str, str]
) -> None:
    ticket_id = superoffice_sim.create_ticket("one")
    response = requests.get(
        f"{superoffice_sim.base_url}/api/v1/Ticket/{ticket_id}", headers=headers, timeout=10
    )
    assert response.status_code == 401
    assert response.json()["ErrorType"] == "Unauthorized"
    assert "WWW-Authenticate" in response.headers


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer sandbox-bearer",
        "Basic " + base64.b64encode(b"admin:sandbox").decode(),
        "soticket 7T:sandbox",  # scheme case does not matter
    ],
)
def test_bearer_and_basic_are_accepted(
    superoffice_sim: SuperOfficeSimulator, authorization: str
) -> None:
    ticket_id = superoffice_sim.create_ticket("one")
    headers = {"Authorization": authorization, "SO-AppToken": "sandbox-app"}
    response = requests.get(
        f"{superoffice_sim.base_url}/api/v1/Ticket/{ticket_id}", headers=headers, timeout=10
    )
    assert response.status_code == 200


def test_app_token_can_be_optional_like_on_site(superoffice_sim: SuperOfficeSimulator) -> None:
    superoffice_sim.configure({"require_app_token": False})
    ticket_id = superoffice_sim.create_ticket("one")
    response = requests.get(
        f"{superoffice_sim.base_url}/api/v1/Ticket/{ticket_id}",
        headers={"Authorization": "SOTicket 7T:sandbox"},
        timeout=10,
    )
    assert response.status_code == 200


def test_rotated_ticket_makes_the_old_one_fail(so: SuperOfficeClient) -> None:
    ticket_id = so.sim.create_ticket("one")
    assert so.admin("POST", "config", {"ticket": "7T:rotated"}).status_code == 200
    assert so.get(f"Ticket/{ticket_id}").status_code == 401
    so.session.headers["Authorization"] = "SOTicket 7T:rotated"
    assert so.get(f"Ticket/{ticket_id}").status_code == 200
    assert "7T:rotated" not in so.admin("GET", "config").text


# --------------------------------------------------------------------------- system user


def _login(sim: SuperOfficeSimulator, signed: str, **overrides: Any) -> requests.Response:
    body = {
        "SignedSystemToken": signed,
        "ApplicationToken": sim.app_token,
        "ContextIdentifier": sim.tenant,
        "ReturnTokenType": "JWT",
        **overrides,
    }
    return requests.post(
        f"{sim.login_url}/api/PartnerSystemUser/Authenticate", json=body, timeout=10
    )


def test_system_user_exchange_returns_a_jwt_with_the_ticket(
    superoffice_sim: SuperOfficeSimulator,
) -> None:
    private_pem, _ = partner_keypair()
    signed = sign_system_user_token("SandboxApp-abc123", private_pem, SO_START)
    response = _login(superoffice_sim, signed)
    assert response.status_code == 200
    body = response.json()
    assert body["IsSuccessful"] is True
    assert body["ErrorMessage"] == ""
    claims = jwt.decode(
        body["Token"],
        superoffice_sim.issuer.public_key_pem,
        algorithms=["RS256"],
        options={"verify_exp": False},
    )
    assert claims[CLAIM_TICKET] == superoffice_sim.ticket
    # the JWKS endpoint publishes the same key
    jwks = requests.get(f"{superoffice_sim.origin}/login/.well-known/jwks", timeout=10).json()
    key = jwt.PyJWK(jwks["keys"][0])
    assert jwt.decode(body["Token"], key.key, algorithms=["RS256"], options={"verify_exp": False})
    # and the ticket works as SOTicket credential
    ticket_id = superoffice_sim.create_ticket("one")
    headers = {"Authorization": f"SOTicket {claims[CLAIM_TICKET]}", "SO-AppToken": "sandbox-app"}
    got = requests.get(
        f"{superoffice_sim.base_url}/api/v1/Ticket/{ticket_id}", headers=headers, timeout=10
    )
    assert got.status_code == 200


def test_system_user_exchange_failures(superoffice_sim: SuperOfficeSimulator) -> None:
    private_pem, _ = partner_keypair()
    other_private, _ = generate_rsa_keypair()
    good = sign_system_user_token("SandboxApp-abc123", private_pem, SO_START)
    cases = [
        _login(
            superoffice_sim, sign_system_user_token("SandboxApp-abc123", other_private, SO_START)
        ),
        _login(
            superoffice_sim,
            sign_system_user_token("SandboxApp-abc123", private_pem, SO_START - timedelta(hours=1)),
        ),
        _login(superoffice_sim, good, ApplicationToken="wrong"),
        _login(superoffice_sim, good, ContextIdentifier="Cust99999"),
        _login(superoffice_sim, "SandboxApp-abc123.202405011200.notbase64!!"),
        _login(superoffice_sim, good.replace("abc123", "abc124")),  # tampered token
    ]
    for response in cases:
        assert response.status_code == 200
        assert response.json()["IsSuccessful"] is False
        assert response.json()["Token"] is None
        assert response.json()["ErrorMessage"]
    assert _login(superoffice_sim, "").status_code == 400


def test_system_user_token_must_match_when_configured() -> None:
    private_pem, public_pem = partner_keypair()
    with SuperOfficeSimulator(public_key_pem=public_pem, system_user_token="App-1") as sim:
        now = sim.clock.now()
        assert _login(sim, sign_system_user_token("App-1", private_pem, now)).json()["IsSuccessful"]
        assert not _login(sim, sign_system_user_token("App-2", private_pem, now)).json()[
            "IsSuccessful"
        ]


def test_system_user_login_unconfigured_and_failure_status_option() -> None:
    private_pem, _ = partner_keypair()
    with SuperOfficeSimulator(login_failure_status=401) as sim:
        response = _login(sim, sign_system_user_token("App-1", private_pem, sim.clock.now()))
        assert response.status_code == 401
        assert response.json()["IsSuccessful"] is False


# --------------------------------------------------------------------------- tenant state


def test_tenant_state_needs_no_auth_and_points_at_the_simulator(
    superoffice_sim: SuperOfficeSimulator,
) -> None:
    response = requests.get(superoffice_sim.state_url, timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert body["ContextIdentifier"] == "Cust12345"
    assert body["State"] == "Running"
    assert body["IsRunning"] is True
    assert body["Endpoint"] == superoffice_sim.base_url
    assert body["Api"] == f"{superoffice_sim.base_url}/api"
    assert body["ValidUntil"].endswith("Z")
    other = requests.get(f"{superoffice_sim.origin}/api/state/Cust99999", timeout=10)
    assert other.status_code == 404


def test_wrong_tenant_path_is_misdirected(so: SuperOfficeClient) -> None:
    response = so.session.get(f"{so.sim.origin}/Cust99999/api/v1/Ticket/1", timeout=10)
    assert response.status_code == 421


def test_paths_are_case_insensitive(so: SuperOfficeClient) -> None:
    ticket_id = so.sim.create_ticket("one")
    url = f"{so.sim.origin}/cust12345/API/v1/ticket/{ticket_id}"
    assert so.session.get(url, timeout=10).status_code == 200
    assert so.get("archive/recycleticket").status_code == 200


# --------------------------------------------------------------------------- tickets


def test_create_and_read_ticket_entity(so: SuperOfficeClient) -> None:
    response = so.post("Ticket", json={"Title": "Printer", "Status": {"TicketStatusId": 304}})
    assert response.status_code == 200
    created = response.json()
    body = entity(so, created["TicketId"])
    assert body["Title"] == "Printer"
    assert body["BaseStatus"] == "Active"
    assert body["Status"]["TicketStatusId"] == 304
    assert body["Status"]["Status"] == "Active"
    assert body["ConnectId"] == -1
    assert body["CreatedBy"] == {"AssociateId": so.sim.api_associate_id}
    assert body["CreatedAt"] == "2024-05-01T12:00:00+00:00"
    assert body["LastChanged"] == "2024-05-01T12:00:00+00:00"
    assert body["_Links"]["Self"].endswith(f"/Cust12345/api/v1/Ticket/{created['TicketId']}")
    second = so.post("Ticket", json={"Title": "Mail"}).json()
    assert second["TicketId"] == created["TicketId"] + 1
    assert second["Status"]["TicketStatusId"] == 1


def test_create_rejects_bad_bodies(so: SuperOfficeClient) -> None:
    assert so.post("Ticket", json={"Status": 1}).status_code == 400
    assert so.post("Ticket", json={"Title": "x", "Status": 999}).status_code == 400
    assert so.post("Ticket", json={"Title": "x", "BaseStatus": "Deleted"}).status_code == 400
    assert (
        so.post(
            "Ticket", data=b"{not json", headers={"Content-Type": "application/json"}
        ).status_code
        == 400
    )


def test_unknown_ticket_is_404(so: SuperOfficeClient) -> None:
    assert so.get("Ticket/424242").status_code == 404
    assert so.get("Ticket/abc").status_code == 404
    assert so.get("Ticket/424242").json()["ErrorType"] == "NotFound"


def test_time_zone_header_without_offset_gives_naive_times(so: SuperOfficeClient) -> None:
    so.sim.clock.advance(0.5)
    ticket_id = so.sim.create_ticket("one")
    response = so.get(f"Ticket/{ticket_id}", headers={"SO-TimeZone": "UTC"})
    assert response.json()["LastChanged"] == "2024-05-01T12:00:00.5"
    assert entity(so, ticket_id)["LastChanged"] == "2024-05-01T12:00:00.5+00:00"


# --------------------------------------------------------------------------- soft delete


def test_set_deleted_status_soft_deletes_and_bumps_last_changed(so: SuperOfficeClient) -> None:
    a, b, c = so.sim.seed_tickets(3)
    so.sim.clock.advance(60)
    response = so.post("Agents/Ticket/SetDeletedStatusByIds", json={"TicketIds": [a, b, 999]})
    assert response.status_code == 200
    assert response.json() == [a, b]
    body = entity(so, a)
    assert body["BaseStatus"] == "Deleted"
    assert body["Status"]["TicketStatusId"] == 4
    assert body["LastChanged"] == "2024-05-01T12:01:00+00:00"
    assert entity(so, c)["BaseStatus"] == "Active"
    # a repeat changes nothing and answers no ids
    again = so.post("Agents/Ticket/SetDeletedStatusByIds", json={"TicketIds": [a]})
    assert again.json() == []
    state = so.sim.ticket_state(a)
    assert state is not None
    assert state["changed_by"] == so.sim.api_associate_id
    assert state["pre_delete_status_id"] == 1


@pytest.mark.parametrize(("mode", "expected"), [("existing", [1, 2]), ("requested", [1, 2, 999])])
def test_set_deleted_result_option(so: SuperOfficeClient, mode: str, expected: list[int]) -> None:
    so.sim.seed_tickets(2)
    so.sim.soft_delete([1])
    so.sim.configure({"set_deleted_result": mode})
    response = so.post("Agents/Ticket/SetDeletedStatusByIds", json={"TicketIds": [1, 2, 999]})
    assert response.json() == expected


def test_set_deleted_rejects_bad_ids(so: SuperOfficeClient) -> None:
    assert (
        so.post("Agents/Ticket/SetDeletedStatusByIds", json={"TicketIds": ["x"]}).status_code == 400
    )
    assert so.post("Agents/Ticket/SetDeletedStatusByIds", json={}).status_code == 400
    assert so.post("Agents/Ticket/SetDeletedStatusByIds", json=[1]).status_code == 400


def test_rest_delete_and_delete_ticket_entity_are_soft_deletes(so: SuperOfficeClient) -> None:
    a, b = so.sim.seed_tickets(2)
    response = so.delete(f"Ticket/{a}")
    assert response.status_code == 204
    assert response.content == b""
    assert (
        so.post("Agents/Ticket/DeleteTicketEntity", json={"TicketEntityId": b}).status_code == 204
    )
    assert entity(so, a)["BaseStatus"] == "Deleted"
    assert entity(so, b)["BaseStatus"] == "Deleted"
    assert sorted(archive_ids(so, "RecycleTicket")) == [a, b]
    assert so.delete(f"Ticket/{a}").status_code == 204  # idempotent
    assert so.delete("Ticket/999").status_code == 404
    assert (
        so.post("Agents/Ticket/DeleteTicketEntity", json={"TicketEntityId": 999}).status_code == 404
    )


def test_undelete_goes_to_default_open_status_not_the_previous_one(so: SuperOfficeClient) -> None:
    ticket_id = so.sim.create_ticket("one", status=304)
    so.sim.clock.advance(10)
    so.post("Agents/Ticket/SetDeletedStatusByIds", json={"TicketIds": [ticket_id]})
    so.sim.clock.advance(10)
    response = so.post("Agents/Ticket/UndeleteByIds", json={"TicketIds": [ticket_id]})
    assert response.status_code == 204
    body = entity(so, ticket_id)
    assert body["BaseStatus"] == "Active"
    assert body["Status"]["TicketStatusId"] == 1  # default open, not 304
    assert body["Status"]["IsDefault"] is True
    assert body["LastChanged"] == "2024-05-01T12:00:20+00:00"
    assert archive_ids(so, "RecycleTicket") == []
    assert archive_ids(so, "Ticket") == [ticket_id]


def test_deleted_ticket_can_be_hidden_by_option(so: SuperOfficeClient) -> None:
    ticket_id = so.sim.create_ticket("one")
    so.sim.soft_delete([ticket_id])
    so.sim.configure({"deleted_readable": False})
    assert so.get(f"Ticket/{ticket_id}").status_code == 404
    assert archive_ids(so, "RecycleTicket") == [ticket_id]


def test_missing_delete_right_gives_403(so: SuperOfficeClient) -> None:
    ticket_id = so.sim.create_ticket("one")
    so.sim.soft_delete([ticket_id])
    other = so.sim.create_ticket("two")
    right = {"FunctionRight": "ticket-admin"}
    assert so.post("Agents/Sentry/HasFunctionRight", json=right).json() is True
    so.sim.configure({"can_delete": False})
    assert so.post("Agents/Sentry/HasFunctionRight", json=right).json() is False
    assert so.post("Agents/Sentry/HasFunctionRight", json={"FunctionRight": "x"}).json() is True
    assert so.post("Agents/Sentry/HasFunctionRight", json={}).status_code == 400
    calls = [
        so.post("Agents/Ticket/SetDeletedStatusByIds", json={"TicketIds": [other]}),
        so.post("Agents/Ticket/UndeleteByIds", json={"TicketIds": [ticket_id]}),
        so.post("Agents/Ticket/DeleteTicketEntity", json={"TicketEntityId": other}),
        so.delete(f"Ticket/{other}"),
        so.patch(f"Ticket/{other}", json={"Status": {"TicketStatusId": 4}}),
    ]
    assert [c.status_code for c in calls] == [403] * 5
    assert entity(so, other)["BaseStatus"] == "Active"
    assert entity(so, ticket_id)["BaseStatus"] == "Deleted"


# --------------------------------------------------------------------------- retention


def test_retention_job_purges_after_fourteen_days(so: SuperOfficeClient) -> None:
    keep, gone, restored = so.sim.seed_tickets(3)
    so.post("Agents/Ticket/SetDeletedStatusByIds", json={"TicketIds": [gone, restored]})
    so.sim.clock.advance(DAY)
    so.post("Agents/Ticket/UndeleteByIds", json={"TicketIds": [restored]})
    state = so.sim.ticket_state(gone)
    assert state is not None
    assert state["purge_due"] == SO_START + timedelta(days=14)
    so.sim.clock.advance(13 * DAY - 1)
    assert entity(so, gone)["BaseStatus"] == "Deleted"
    assert archive_ids(so, "RecycleTicket") == [gone]
    so.sim.clock.advance(1)
    assert so.get(f"Ticket/{gone}").status_code == 404
    assert archive_ids(so, "RecycleTicket") == []
    assert sorted(archive_ids(so, "Ticket")) == [keep, restored]
    assert so.sim.is_purged(gone)


def test_retention_is_configurable_and_measured_from_deletion(so: SuperOfficeClient) -> None:
    so.admin("POST", "config", {"retention_days": 2})
    old = so.sim.create_ticket("old")
    so.sim.clock.advance(10 * DAY)  # age before deletion does not count
    so.sim.soft_delete([old])
    response = so.admin("POST", "clock", {"advance": 2 * DAY - 1})
    assert response.status_code == 200
    assert so.get(f"Ticket/{old}").status_code == 200
    so.admin("POST", "clock", {"advance": 1})
    assert so.get(f"Ticket/{old}").status_code == 404


def test_redeleted_ticket_uses_its_latest_deletion_time(so: SuperOfficeClient) -> None:
    ticket_id = so.sim.create_ticket("one")
    so.sim.soft_delete([ticket_id])
    so.sim.clock.advance(5 * DAY)
    so.sim.restore([ticket_id])
    so.sim.soft_delete([ticket_id])
    so.sim.clock.advance(10 * DAY)
    assert so.get(f"Ticket/{ticket_id}").status_code == 200  # 15 days after the first delete
    so.sim.clock.advance(4 * DAY)
    assert so.get(f"Ticket/{ticket_id}").status_code == 404


# --------------------------------------------------------------------------- merge


def test_merged_tickets_are_not_deletions(so: SuperOfficeClient) -> None:
    master, a, b = so.sim.seed_tickets(3)
    so.sim.clock.advance(30)
    response = so.admin(
        "POST",
        "act",
        {"agent": {"id": 7, "name": "Ann"}, "action": "merge", "ids": [a, b], "into": master},
    )
    assert response.status_code == 200
    assert response.json() == {"done": [a, b], "skipped": []}
    body = entity(so, a)
    assert body["BaseStatus"] == "Merged"
    assert body["ConnectId"] == master
    assert body["Status"]["TicketStatusId"] == 5
    rows = so.archive(
        "Ticket", select="ticketId,status,connectId", filter="status eq 'Merged'"
    ).json()["value"]
    assert [(r["ticketId"], r["status"], r["connectId"]) for r in rows] == [
        (a, "Merged", master),
        (b, "Merged", master),
    ]
    assert archive_ids(so, "RecycleTicket") == []
    state = so.sim.ticket_state(a)
    assert state is not None
    assert state["changed_by"] == 7
    bad = so.admin("POST", "act", {"action": "merge", "ids": [a], "into": 999})
    assert bad.status_code == 400


# --------------------------------------------------------------------------- archive


def test_ticket_and_recycle_ticket_providers_split_on_deletion(so: SuperOfficeClient) -> None:
    ids = so.sim.seed_tickets(6)
    so.sim.soft_delete(ids[:2])
    assert archive_ids(so, "Ticket") == ids[2:]
    assert archive_ids(so, "RecycleTicket") == ids[:2]
    listed = so.get("Ticket", params={"$select": "ticketId", "$top": 100}).json()
    assert [r["ticketId"] for r in listed["value"]] == ids[2:]
    assert listed["odata.nextLink"] is None


def test_archive_row_shape_and_default_columns(so: SuperOfficeClient) -> None:
    ticket_id = so.sim.create_ticket("Printer", status=304, owned_by=8)
    so.sim.soft_delete([ticket_id])
    body = so.archive("RecycleTicket").json()
    assert body["odata.metadata"].endswith("/Cust12345/api/v1/Archive//$metadata")
    assert body["odata.nextLink"] is None
    assert body["value"] == [
        {
            "PrimaryKey": str(ticket_id),
            "EntityName": "ticket",
            "ticketId": ticket_id,
            "title": "Printer",
            "createdAt": "2024-05-01T12:00:00Z",
            "lastChanged": "2024-05-01T12:00:00Z",
            "status": "Deleted",
            "ticketStatusName": "Deleted",
            "connectId": -1,
            "ownedBy": 8,
        }
    ]


@pytest.mark.parametrize(
    "status_filter", ["status eq 4", "status eq 'Deleted'", "status oneOf (4)", "status = 4"]
)
def test_status_filter_spellings(so: SuperOfficeClient, status_filter: str) -> None:
    ids = so.sim.seed_tickets(4)
    so.sim.soft_delete([ids[1], ids[3]])
    assert archive_ids(so, "RecycleTicket", filter=status_filter) == [ids[1], ids[3]]
    assert archive_ids(so, "Ticket", filter=status_filter) == []


def test_last_changed_after_time_finds_recent_changes(so: SuperOfficeClient) -> None:
    ids = so.sim.seed_tickets(5)
    so.sim.clock.advance(3600)
    so.sim.soft_delete([ids[0]])
    so.post("Agents/Ticket/SetDeletedStatusByIds", json={"TicketIds": [ids[1]]})
    so.patch(f"Ticket/{ids[4]}", json={"Title": "renamed"})
    since = "lastChanged afterTime '2024-05-01T12:30:00'"
    assert archive_ids(so, "RecycleTicket", filter=since) == [ids[0], ids[1]]
    assert archive_ids(so, "Ticket", filter=since) == [ids[4]]
    assert archive_ids(so, "Ticket", filter="lastChanged afterTime '2024-05-01T13:00:00'") == []
    assert archive_ids(so, "Ticket", filter="lastChanged afterTime '2024-05-01T12:59:59Z'") == [
        ids[4]
    ]


def test_ticket_id_in_and_other_operators(so: SuperOfficeClient) -> None:
    ids = so.sim.seed_tickets(10)
    so.sim.soft_delete([ids[2]])
    assert archive_ids(so, "Ticket", filter=f"ticketId in ({ids[1]}, {ids[2]}, {ids[3]}, 999)") == [
        ids[1],
        ids[3],
    ]
    assert archive_ids(so, "RecycleTicket", filter=f"ticketId in ({ids[1]}, {ids[2]})") == [ids[2]]
    assert archive_ids(so, "Ticket", filter=f"ticketId between ({ids[5]}, {ids[7]})") == ids[5:8]
    assert archive_ids(
        so, "Ticket", filter=f"(ticketId lt {ids[1]} or ticketId gt {ids[8]}) and status ne 4"
    ) == [ids[0], ids[9]]
    assert archive_ids(so, "Ticket", filter="ticketStatusName eq 1 and ticketId lt 3") == [1, 2]


def test_order_by_desc_and_multiple_keys(so: SuperOfficeClient) -> None:
    ids = so.sim.seed_tickets(4)
    so.sim.clock.advance(5)
    so.patch(f"Ticket/{ids[0]}", json={"Title": "touched"})
    assert archive_ids(so, "Ticket", orderBy="ticketId desc") == list(reversed(ids))
    assert archive_ids(so, "Ticket", orderBy="lastChanged desc, ticketId asc") == [
        ids[0],
        ids[1],
        ids[2],
        ids[3],
    ]
    assert archive_ids(so, "Ticket", orderBy="lastChanged,ticketId desc") == [
        ids[3],
        ids[2],
        ids[1],
        ids[0],
    ]


def test_paging_over_more_than_a_thousand_tickets(so: SuperOfficeClient) -> None:
    ids = so.sim.seed_tickets(1_250, title="Ticket {n}")
    so.sim.clock.advance(60)
    deleted = ids[::7]
    so.sim.soft_delete(deleted)
    seen: list[int] = []
    skip = 0
    while True:
        page = archive_ids(
            so,
            "Ticket",
            filter="lastChanged afterTime '2024-05-01T00:00:00'",
            orderBy="lastChanged,ticketId",
            top=200,
            skip=skip,
        )
        seen.extend(page)
        if len(page) < 200:
            break
        skip += 200
    assert seen == [i for i in ids if i not in set(deleted)]
    recycled = archive_ids(
        so, "RecycleTicket", filter="lastChanged afterTime '2024-05-01T12:00:30'", top=100
    )
    assert recycled == deleted[:100]
    # default $top and its cap
    assert len(so.archive("Ticket", select="ticketId").json()["value"]) == 50
    so.sim.configure({"top_max": 300})
    assert len(archive_ids(so, "Ticket", top=1000)) == 300


def test_next_link_option(so: SuperOfficeClient) -> None:
    so.sim.seed_tickets(5)
    so.sim.configure({"next_link": True})
    body = so.archive("Ticket", select="ticketId", top=2).json()
    assert body["odata.nextLink"] is not None
    follow = so.session.get(body["odata.nextLink"], timeout=10).json()
    assert [r["ticketId"] for r in follow["value"]] == [3, 4]
    last = so.archive("Ticket", select="ticketId", top=2, skip=4).json()
    assert last["odata.nextLink"] is None


def test_post_archive_with_form_body(so: SuperOfficeClient) -> None:
    ids = so.sim.seed_tickets(3)
    response = so.post(
        "Archive/Ticket",
        data={"$select": "ticketId", "$filter": f"ticketId in ({ids[0]},{ids[2]})"},
    )
    assert response.status_code == 200
    assert [r["ticketId"] for r in response.json()["value"]] == [ids[0], ids[2]]


@pytest.mark.parametrize(
    "params",
    [
        {"filter": "nosuch eq 1"},
        {"filter": "ticketId eq"},
        {"filter": "lastChanged afterTime 'not a date'"},
        {"select": "ticketId,nosuch"},
        {"orderBy": "nosuch"},
        # not a column of the real Ticket/RecycleTicket providers (reference §3.3)
        {"select": "ticketId,ticketStatus"},
        {"filter": "ticketStatus eq 1"},
        {"orderBy": "ticketStatus"},
        {"output": "Raw"},
        {"top": "-5"},
        {"skip": "many"},
    ],
)
def test_bad_archive_queries_get_400(so: SuperOfficeClient, params: dict[str, str]) -> None:
    response = so.archive("Ticket", **params)
    assert response.status_code == 400
    assert response.json()["ErrorType"] == "ArchiveQueryError"
    assert response.json()["Error"]


@pytest.mark.parametrize(
    ("timezone", "expected"),
    [
        (None, "2024-05-01T12:00:05Z"),
        ("UTC, includeTZOffset", "2024-05-01T12:00:05Z"),
        ("UTC", "2024-05-01T12:00:05"),
    ],
)
def test_archive_dates_are_whole_seconds(
    so: SuperOfficeClient, timezone: str | None, expected: str
) -> None:
    so.sim.clock.advance(5.75)
    ticket_id = so.sim.create_ticket("late in the second")
    headers = {"SO-TimeZone": timezone} if timezone else {}
    response = so.get("Archive/Ticket", params={"$select": "ticketId,lastChanged"}, headers=headers)
    assert response.json()["value"] == [
        {
            "PrimaryKey": str(ticket_id),
            "EntityName": "ticket",
            "ticketId": ticket_id,
            "lastChanged": expected,
        }
    ]
    # the entity keeps .NET's fraction (reference §2.2)
    assert entity(so, ticket_id)["LastChanged"].startswith("2024-05-01T12:00:05.75")


def test_logical_output_gives_list_ids(so: SuperOfficeClient) -> None:
    active = so.sim.create_ticket("a", status=304)
    deleted = so.sim.create_ticket("d", status=305)
    so.sim.soft_delete([deleted])
    select = "ticketId,status,ticketStatusName"
    rows = so.archive("Ticket", select=select, output="Logical").json()["value"]
    assert [(r["ticketId"], r["status"], r["ticketStatusName"]) for r in rows] == [(active, 1, 304)]
    rows = so.archive("RecycleTicket", select=select, output="logical").json()["value"]
    assert [(r["status"], r["ticketStatusName"]) for r in rows] == [(4, 4)]


@pytest.mark.parametrize(
    ("headers", "config", "expected"),
    [
        ({}, "en", ("Active", "In progress")),
        ({"SO-Culture": "de-DE"}, "en", ("Aktiv", "In Bearbeitung")),
        ({"Accept-Language": "nb-NO,nb;q=0.9"}, "en", ("Aktiv", "Under arbeid")),
        ({}, "de", ("Aktiv", "In Bearbeitung")),
        ({"SO-Culture": "en-US"}, "de", ("Active", "In progress")),
    ],
)
def test_display_text_follows_the_culture(
    so: SuperOfficeClient, headers: dict[str, str], config: str, expected: tuple[str, str]
) -> None:
    so.sim.configure({"culture": config})
    so.sim.create_ticket("a", status=304)
    response = so.get(
        "Archive/Ticket", params={"$select": "status,ticketStatusName"}, headers=headers
    )
    row = response.json()["value"][0]
    assert (row["status"], row["ticketStatusName"]) == expected


def test_deleted_display_text_in_german(so: SuperOfficeClient) -> None:
    so.sim.configure({"culture": "de"})
    so.sim.soft_delete([so.sim.create_ticket("d")])
    row = so.archive("RecycleTicket", select="status").json()["value"][0]
    assert row["status"] == "Gelöscht"


def test_unknown_culture_is_refused_by_config(so: SuperOfficeClient) -> None:
    with pytest.raises(ValueError):
        so.sim.configure({"culture": "xx"})


def test_unknown_provider_is_400(so: SuperOfficeClient) -> None:
    assert so.archive("NoSuchProvider").status_code == 400


# --------------------------------------------------------------------------- PATCH


def test_merge_patch_sets_title_and_status(so: SuperOfficeClient) -> None:
    ticket_id = so.sim.create_ticket("one")
    so.sim.clock.advance(5)
    response = so.patch(
        f"Ticket/{ticket_id}",
        json={"Title": "two", "Status": {"TicketStatusId": 305}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["Title"] == "two"
    assert body["Status"]["TicketStatusId"] == 305
    assert body["BaseStatus"] == "Postponed"
    assert body["LastChanged"] == "2024-05-01T12:00:05+00:00"


def test_json_patch_ops_and_test_conflict(so: SuperOfficeClient) -> None:
    ticket_id = so.sim.create_ticket("one")
    ops = [
        {"op": "test", "path": "/Title", "value": "one"},
        {"op": "replace", "path": "/Title", "value": "two"},
        {"op": "replace", "path": "/Status/TicketStatusId", "value": 2},
    ]
    response = so.patch(
        f"Ticket/{ticket_id}", json=ops, headers={"Content-Type": "application/json-patch+json"}
    )
    assert response.status_code == 200
    assert response.json()["Title"] == "two"
    assert response.json()["BaseStatus"] == "Closed"
    conflict = so.patch(
        f"Ticket/{ticket_id}",
        json=[
            {"op": "test", "path": "/Title", "value": "one"},
            {"op": "replace", "path": "/Title", "value": "three"},
        ],
    )
    assert conflict.status_code == 409
    assert entity(so, ticket_id)["Title"] == "two"
    bad = so.patch(f"Ticket/{ticket_id}", json=[{"op": "remove", "path": "/NoSuchField"}])
    assert bad.status_code == 400
    added = so.patch(f"Ticket/{ticket_id}", json=[{"op": "add", "path": "/Title", "value": "four"}])
    assert added.json()["Title"] == "four"


def test_if_unmodified_since(so: SuperOfficeClient) -> None:
    ticket_id = so.sim.create_ticket("one")
    read_at = SO_START
    so.sim.clock.advance(30)
    ok = so.patch(
        f"Ticket/{ticket_id}",
        json={"Title": "two"},
        headers={"If-Unmodified-Since": format_datetime(read_at, usegmt=True)},
    )
    assert ok.status_code == 200
    stale = so.patch(
        f"Ticket/{ticket_id}",
        json={"Title": "three"},
        headers={"If-Unmodified-Since": format_datetime(read_at, usegmt=True)},
    )
    assert stale.status_code == 412
    assert entity(so, ticket_id)["Title"] == "two"
    fresh = so.patch(
        f"Ticket/{ticket_id}",
        json={"Title": "three"},
        headers={"If-Unmodified-Since": "2024-05-01T12:00:30Z"},
    )
    assert fresh.status_code == 200


def test_patch_status_after_undelete_puts_back_the_old_status(so: SuperOfficeClient) -> None:
    ticket_id = so.sim.create_ticket("one", status=304)
    so.post("Agents/Ticket/SetDeletedStatusByIds", json={"TicketIds": [ticket_id]})
    so.post("Agents/Ticket/UndeleteByIds", json={"TicketIds": [ticket_id]})
    so.patch(f"Ticket/{ticket_id}", json={"Status": {"TicketStatusId": 304}})
    assert entity(so, ticket_id)["Status"]["TicketStatusId"] == 304


def test_patch_to_deleted_status_soft_deletes(so: SuperOfficeClient) -> None:
    ticket_id = so.sim.create_ticket("one")
    response = so.patch(f"Ticket/{ticket_id}", json={"BaseStatus": "Deleted"})
    assert response.status_code == 200
    assert response.json()["Status"]["TicketStatusId"] == 4
    assert archive_ids(so, "RecycleTicket") == [ticket_id]
    assert (
        so.patch(f"Ticket/{ticket_id}", json={"Status": {"TicketStatusId": 5}}).status_code == 400
    )
    assert so.patch("Ticket/999", json={"Title": "x"}).status_code == 404


# --------------------------------------------------------------------------- limits & faults


def test_rate_limit_answers_429_with_retry_after(so: SuperOfficeClient) -> None:
    ticket_id = so.sim.create_ticket("one")
    so.admin("POST", "config", {"rate_limits": True, "requests_per_second": 10})
    codes = [so.get(f"Ticket/{ticket_id}").status_code for _ in range(10)]
    assert codes == [200] * 10
    limited = so.get(f"Ticket/{ticket_id}")
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "1"
    assert limited.json()["ErrorType"] == "TooManyRequests"
    # state and login are not counted against the tenant limit
    assert requests.get(so.sim.state_url, timeout=10).status_code == 200
    so.sim.clock.advance(1)
    assert so.get(f"Ticket/{ticket_id}").status_code == 200
    so.admin("POST", "config", {"rate_limits": False})
    assert [so.get(f"Ticket/{ticket_id}").status_code for _ in range(15)] == [200] * 15


def test_status_fault_by_route_and_count(so: SuperOfficeClient) -> None:
    ticket_id = so.sim.create_ticket("one")
    rule = {
        "kind": "status",
        "route": "POST Agents/Ticket/SetDeletedStatusByIds",
        "status": 503,
        "retry_after": 7,
        "count": 1,
    }
    assert so.admin("POST", "faults", {"rules": [rule]}).status_code == 200
    first = so.post("Agents/Ticket/SetDeletedStatusByIds", json={"TicketIds": [ticket_id]})
    assert first.status_code == 503
    assert first.headers["Retry-After"] == "7"
    assert "Error" in first.json()
    assert entity(so, ticket_id)["BaseStatus"] == "Active"  # the vendor did not act
    second = so.post("Agents/Ticket/SetDeletedStatusByIds", json={"TicketIds": [ticket_id]})
    assert second.status_code == 200
    counters = so.admin("GET", "counters").json()
    assert counters["routes"]["POST Agents/Ticket/SetDeletedStatusByIds"] == 2


def test_malformed_and_drop_and_slow_faults(so: SuperOfficeClient) -> None:
    ticket_id = so.sim.create_ticket("one")
    so.sim.add_fault("malformed", route="GET Archive/{provider}", count=1)
    malformed = so.archive("Ticket")
    assert malformed.status_code == 200
    with pytest.raises(ValueError):
        malformed.json()
    so.sim.add_fault("drop", path=r"/Ticket/\d+$", method="GET", count=1)
    with pytest.raises(requests.ConnectionError):
        requests.get(so.url(f"Ticket/{ticket_id}"), headers=dict(so.session.headers), timeout=10)
    so.sim.add_fault("slow", route="GET Ticket/{id}", delay=0.01, count=1)
    assert so.get(f"Ticket/{ticket_id}").status_code == 200
    rules = so.admin("GET", "faults").json()["rules"]
    assert [r["fired"] for r in rules] == [1, 1, 1]


# --------------------------------------------------------------------------- admin API


def test_admin_seed_act_counters_and_reset(so: SuperOfficeClient) -> None:
    seeded = so.admin(
        "POST",
        "seed",
        {
            "tickets": [
                {
                    "title": "Old deleted",
                    "status": "Deleted",
                    "last_changed": "2024-04-20T00:00:00Z",
                },
                {"title": "Waiting", "status": 305, "owned_by": 8},
            ],
            "count": 3,
            "title": "Bulk {n}",
        },
    )
    assert seeded.status_code == 200
    ids = seeded.json()["ids"]
    assert len(ids) == 5
    # the seeded soft-deleted ticket has been deleted 11.5 days: 2.5 days left
    assert archive_ids(so, "RecycleTicket") == [ids[0]]
    so.admin("POST", "clock", {"advance": 3 * DAY})
    assert archive_ids(so, "RecycleTicket") == []
    acted = so.admin("POST", "act", {"agent": {"id": 12}, "action": "delete", "ids": ids[1:3]})
    assert acted.json() == {"done": ids[1:3], "skipped": []}
    assert so.admin("POST", "act", {"action": "restore", "ids": [ids[1]]}).json() == {
        "done": [ids[1]],
        "skipped": [],
    }
    assert so.admin("POST", "act", {"action": "purge", "ids": [ids[2], 999]}).json() == {
        "done": [ids[2]],
        "skipped": [999],
    }
    assert so.get(f"Ticket/{ids[2]}").status_code == 404
    assert so.admin("POST", "act", {"action": "explode", "ids": [1]}).status_code == 400
    assert so.admin("POST", "seed", {"tickets": [{"bogus": 1}]}).status_code == 400
    counts = so.admin("GET", "counters").json()
    assert counts["total"] == 3  # two archive reads and one GET; admin calls are not counted
    config = so.admin("GET", "config").json()
    assert config["retention_days"] == 14
    assert config["can_delete"] is True
    assert so.admin("POST", "config", {"nonsense": 1}).status_code == 400
    assert so.admin("POST", "reset").status_code == 200
    assert archive_ids(so, "Ticket") == []
    assert so.post("Ticket", json={"Title": "fresh"}).json()["TicketId"] == 1


def test_last_changed_index_survives_out_of_order_seeding(so: SuperOfficeClient) -> None:
    late = so.sim.create_ticket("late", last_changed="2024-05-01T11:00:00Z")
    early = so.sim.create_ticket("early", last_changed="2024-04-01T00:00:00Z")
    recent = so.sim.create_ticket("recent", last_changed="2024-04-30T00:00:00Z")
    assert archive_ids(so, "Ticket", filter="lastChanged afterTime '2024-04-15T00:00:00'") == [
        late,
        recent,
    ]
    assert early not in archive_ids(so, "Ticket", filter="lastChanged gt '2024-04-02'")


def test_simulator_binds_a_free_port_and_stops() -> None:
    sim = SuperOfficeSimulator()
    base = sim.start()
    assert base == f"http://127.0.0.1:{sim.port}/Cust12345"
    sim.stop()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", sim.port)) != 0


def test_admin_update_action_and_signed_token_helper(so: SuperOfficeClient) -> None:
    a, b = so.sim.seed_tickets(2)
    so.sim.clock.advance(5)
    body = {"agent": {"id": 3}, "action": "update", "ids": [a, 999], "fields": {"status": "Closed"}}
    assert so.admin("POST", "act", body).json() == {"done": [a], "skipped": [999]}
    assert entity(so, a)["BaseStatus"] == "Closed"
    assert entity(so, a)["LastChanged"] == "2024-05-01T12:00:05+00:00"
    assert entity(so, b)["BaseStatus"] == "Active"
    bad = {"action": "update", "ids": [a], "fields": {"colour": "red"}}
    assert so.admin("POST", "act", bad).status_code == 400
    response = _login(so.sim, so.sim.signed_system_token())
    assert response.json()["IsSuccessful"] is True
