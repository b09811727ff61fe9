"""SuperOffice's own client, `@superoffice/webapi` 12.4.1514 (unmodified), driving a live
SuperOffice simulator over the deletion lifecycle.

Each test runs `node/superoffice_client.js` with a list of client calls and asserts both
what the client made of the answers (its own converters: camelCase carriers, Date objects,
string enums) and the simulator's state. The client authenticates as a server app on
CRM Online does: `SOTicket` plus `SO-AppToken`, `SO-TimeZone: UTC,includeTZOffset`.
The client has no REST Ticket or Archive API; REST calls go through its Ticket agent's own
axios instance (the client's headers) and entities are parsed by its own converter.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bridge.vendors.superoffice.sim.simulator import SuperOfficeSimulator
from tests.clients.conftest import run_node
from tests.sandbox.conftest_superoffice import SO_START, superoffice_sim

__all__ = ["superoffice_sim"]  # fixture imported for pytest

DAY = 86_400


def client(
    sim: SuperOfficeSimulator,
    node_dir: Path,
    *calls: dict[str, Any],
    culture: str | None = None,
    ticket: str | None = None,
) -> list[Any]:
    """Run `calls` through the client; the results in order. The Node process runs in a
    zone that is not UTC, so a date without an offset would show as a shifted instant."""
    env = {
        "SO_BASE_URL": sim.base_url,
        "SO_TICKET": ticket or sim.ticket,
        "SO_APP_TOKEN": sim.app_token,
        "SO_CALLS": json.dumps(list(calls)),
        "TZ": "Europe/Oslo",
    }
    if culture:
        env["SO_CULTURE"] = culture
    results: list[Any] = run_node(node_dir, "superoffice_client.js", env)["results"]
    return results


def ticket_agent(method: str, *args: Any) -> dict[str, Any]:
    return {"agent": "Ticket", "method": method, "args": list(args)}


def archive_agent(method: str, *args: Any) -> dict[str, Any]:
    return {"agent": "Archive", "method": method, "args": list(args)}


def rest(method: str, path: str, **extra: Any) -> dict[str, Any]:
    return {"rest": method, "path": path, **extra}


def date(moment: datetime) -> dict[str, str]:
    """How the script shows a Date the client built."""
    return {"$date": moment.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"}


def by_columns(
    provider: str,
    columns: list[str],
    restriction: list[dict[str, Any]] | None = None,
    *,
    sort: list[dict[str, str]] | None = None,
    page: int = 0,
    page_size: int = 100,
) -> dict[str, Any]:
    """`getArchiveListByColumnsAsync` with its positional arguments (as the client's docs
    show them); restrictions in the client's own camelCase carrier shape."""
    return archive_agent(
        "getArchiveListByColumnsAsync",
        provider,
        columns,
        sort if sort is not None else [{"name": "ticketId", "direction": "ASC"}],
        restriction or [],
        ["ticket"],
        page,
        page_size,
    )


def state_of(sim: SuperOfficeSimulator, ticket_id: int) -> dict[str, Any]:
    """What the simulator knows of a ticket that still exists."""
    state = sim.ticket_state(ticket_id)
    assert state is not None, f"ticket {ticket_id} is gone"
    return state


def cells(items: list[dict[str, Any]], column: str) -> list[str]:
    return [item["columnData"][column]["displayValue"] for item in items]


# --------------------------------------------------------------------------- read


def test_save_creates_and_both_reads_give_the_clients_ticket_entity(
    superoffice_sim: SuperOfficeSimulator, node_clients: Path
) -> None:
    sim = superoffice_sim
    created, by_agent, by_rest = client(
        sim,
        node_clients,
        ticket_agent("saveTicketEntityAsync", {"title": "Printer offline"}),
        ticket_agent("getTicketEntityAsync", 1),
        rest("GET", "Ticket/1", **{"as": "TicketEntity"}),
    )
    # the client turns PascalCase JSON into its camelCase carrier, dates into Dates and
    # enum names into its string enums
    assert created["ticketId"] == 1
    for entity in (created, by_agent, by_rest["data"]):
        assert entity["ticketId"] == 1
        assert entity["title"] == "Printer offline"
        assert entity["baseStatus"] == "Active"
        assert entity["status"]["ticketStatusId"] == 1
        assert entity["status"]["status"] == "Active"
        assert entity["createdAt"] == date(SO_START)
        assert entity["lastChanged"] == date(SO_START)
        assert entity["connectId"] == -1
        assert entity["slevel"] == "External"
        assert entity["origin"] == "Unknown"
        assert entity["readStatus"] == "Green"
        assert entity["createdBy"]["associateId"] == sim.api_associate_id
        # "empty" dates are year 1 for the client too, never null (reference §2.2)
        assert entity["closedAt"]["$date"].startswith("000")
    assert by_rest["status"] == 200
    state = state_of(sim, 1)
    assert state["title"] == "Printer offline"
    assert state["base_status"] == "Active"
    assert state["changed_by"] == sim.api_associate_id


def test_a_missing_ticket_is_null_for_the_agent_and_404_for_rest(
    superoffice_sim: SuperOfficeSimulator, node_clients: Path
) -> None:
    by_agent, by_rest = client(
        superoffice_sim,
        node_clients,
        ticket_agent("getTicketEntityAsync", 404),
        rest("GET", "Ticket/404", **{"as": "TicketEntity"}),
    )
    assert by_agent is None
    assert by_rest["error"]["status"] == 404


def test_wrong_credentials_reach_the_client_as_401(
    superoffice_sim: SuperOfficeSimulator, node_clients: Path
) -> None:
    ticket_id = superoffice_sim.create_ticket("one")
    (answer,) = client(
        superoffice_sim,
        node_clients,
        ticket_agent("getTicketEntityAsync", ticket_id),
        ticket="7T:wrong",
    )
    assert answer["error"]["status"] == 401


# --------------------------------------------------------------------------- lifecycle


def test_soft_delete_read_deleted_restore_and_retention_purge(
    superoffice_sim: SuperOfficeSimulator, node_clients: Path
) -> None:
    sim = superoffice_sim
    keep, gone = sim.create_ticket("keep", status=304), sim.create_ticket("gone")
    sim.advance(60)
    deleted_at = SO_START + timedelta(seconds=60)

    changed, entity, recycle_rest, recycle_agent, live_agent = client(
        sim,
        node_clients,
        ticket_agent("setDeletedStatusByIdsAsync", [keep, gone, 999]),
        ticket_agent("getTicketEntityAsync", keep),
        rest("GET", "Archive/RecycleTicket", params={"$select": "ticketId,status,lastChanged"}),
        by_columns("RecycleTicket", ["ticketId", "lastChanged", "status"]),
        by_columns("Ticket", ["ticketId"]),
    )
    assert changed == [keep, gone]  # the ids it set Deleted; the unknown one is ignored
    assert entity["baseStatus"] == "Deleted"
    assert entity["status"]["ticketStatusId"] == 4
    assert entity["lastChanged"] == date(deleted_at)
    assert [row["ticketId"] for row in recycle_rest["data"]["value"]] == [keep, gone]
    assert {row["status"] for row in recycle_rest["data"]["value"]} == {"Deleted"}
    assert [item["primaryKey"] for item in recycle_agent] == [keep, gone]
    assert cells(recycle_agent, "status") == ["Deleted", "Deleted"]
    assert cells(recycle_agent, "lastChanged") == ["[DT:05/01/2024 12:01:00]"] * 2
    assert live_agent == []
    state = state_of(sim, keep)
    assert state["base_status"] == "Deleted"
    assert state["deleted_at"] == deleted_at
    assert state["pre_delete_status_id"] == 304

    sim.advance(60)
    restored, entity = client(
        sim,
        node_clients,
        ticket_agent("undeleteByIdsAsync", [keep]),
        ticket_agent("getTicketEntityAsync", keep),
    )
    assert restored == ""  # 204: the client resolves with the (empty) body
    # restore goes to the default open status, not the status before the delete
    assert entity["baseStatus"] == "Active"
    assert entity["status"]["ticketStatusId"] == 1
    assert entity["lastChanged"] == date(deleted_at + timedelta(seconds=60))
    assert not sim.is_purged(keep)

    sim.advance(14 * DAY)  # the tenant's retention job purges what stayed deleted
    by_agent, by_rest, recycle = client(
        sim,
        node_clients,
        ticket_agent("getTicketEntityAsync", gone),
        rest("GET", f"Ticket/{gone}"),
        by_columns("RecycleTicket", ["ticketId"]),
    )
    assert by_agent is None
    assert by_rest["error"]["status"] == 404
    assert recycle == []
    assert sim.is_purged(gone)
    assert not sim.is_purged(keep)


def test_delete_ticket_entity_and_rest_delete_are_soft_deletes(
    superoffice_sim: SuperOfficeSimulator, node_clients: Path
) -> None:
    sim = superoffice_sim
    by_agent, by_rest = sim.create_ticket("agent"), sim.create_ticket("rest")
    # the client sends {"ticketEntityId": N}: camelCase, where the docs show TicketEntityId
    agent_answer, rest_answer, unknown, recycle = client(
        sim,
        node_clients,
        ticket_agent("deleteTicketEntityAsync", by_agent),
        rest("DELETE", f"Ticket/{by_rest}"),
        ticket_agent("deleteTicketEntityAsync", 999),
        by_columns("RecycleTicket", ["ticketId"]),
    )
    assert agent_answer == ""
    assert rest_answer["status"] == 204
    assert unknown["error"]["status"] == 404
    assert [item["primaryKey"] for item in recycle] == [by_agent, by_rest]
    for ticket_id in (by_agent, by_rest):
        assert state_of(sim, ticket_id)["base_status"] == "Deleted"
        assert not sim.is_purged(ticket_id)
    assert sim.purge_log() == []  # nothing irreversible was asked


def test_save_ticket_entity_updates_and_its_deleted_status_soft_deletes(
    superoffice_sim: SuperOfficeSimulator, node_clients: Path
) -> None:
    sim = superoffice_sim
    ticket_id = sim.create_ticket("before")
    (entity,) = client(sim, node_clients, ticket_agent("getTicketEntityAsync", ticket_id))

    sim.advance(30)
    renamed = {**entity, "title": "after"}
    deleting = {**entity, "title": "after", "baseStatus": "Deleted"}
    (saved,) = client(sim, node_clients, ticket_agent("saveTicketEntityAsync", renamed))
    assert saved["title"] == "after"
    assert saved["baseStatus"] == "Active"
    assert saved["lastChanged"] == date(SO_START + timedelta(seconds=30))
    assert saved["createdAt"] == entity["createdAt"]  # read-only fields are ignored

    sim.advance(30)
    (deleted,) = client(sim, node_clients, ticket_agent("saveTicketEntityAsync", deleting))
    assert deleted["baseStatus"] == "Deleted"
    assert deleted["status"]["ticketStatusId"] == 4
    state = state_of(sim, ticket_id)
    assert state["base_status"] == "Deleted"
    assert state["title"] == "after"
    assert state["purge_due"] == SO_START + timedelta(seconds=60, days=14)

    reopened = {**deleted, "status": {"ticketStatusId": 304}}
    merged = {**deleted, "status": {"ticketStatusId": 5}}
    (refused, restored) = client(
        sim,
        node_clients,
        ticket_agent("saveTicketEntityAsync", merged),
        ticket_agent("saveTicketEntityAsync", reopened),
    )
    assert refused["error"]["status"] == 400
    assert restored["baseStatus"] == "Active"
    assert restored["status"]["ticketStatusId"] == 304  # the status the save gave
    assert state_of(sim, ticket_id)["deleted_at"] is None


def test_save_ticket_entity_to_deleted_needs_the_right(
    superoffice_sim: SuperOfficeSimulator, node_clients: Path
) -> None:
    sim = superoffice_sim
    ticket_id = sim.create_ticket("one")
    sim.configure({"can_delete": False})
    (answer,) = client(
        sim,
        node_clients,
        ticket_agent("saveTicketEntityAsync", {"ticketId": ticket_id, "baseStatus": "Deleted"}),
    )
    assert answer["error"]["status"] == 403
    assert state_of(sim, ticket_id)["base_status"] == "Active"


# --------------------------------------------------------------------------- archive


def test_archive_agent_restrictions_sorting_paging_and_header(
    superoffice_sim: SuperOfficeSimulator, node_clients: Path
) -> None:
    sim = superoffice_sim
    ids = sim.seed_tickets(5, title="Ticket {n}")
    sim.advance(3600)
    sim.soft_delete(ids[3:])
    later = "[DT:05/01/2024 12:30:00]"  # CultureDataFormatter-encoded, month first
    status_is_deleted = {"name": "status", "operator": "=", "values": ["[I:4]"]}
    first_or_last = [
        {"name": "ticketId", "operator": "=", "values": ["[I:1]"], "interOperator": "Or"},
        {"name": "ticketId", "operator": "=", "values": ["5"], "isActive": True},
    ]
    inactive = [{"name": "ticketId", "operator": "=", "values": ["1"], "isActive": False}]
    header_request = {
        "providerName": "Ticket",
        "columns": ["ticketId"],
        "sortOrder": [{"name": "ticketId", "direction": "DESC"}],
        "restriction": [],
        "entities": ["ticket"],
        "page": 1,
        "pageSize": 2,
    }
    (
        in_deleted,
        changed_after,
        either,
        all_active,
        second_page,
        skip_one,
        header,
        bad_column,
    ) = client(
        sim,
        node_clients,
        by_columns("RecycleTicket", ["ticketId", "title"], [status_is_deleted]),
        by_columns(
            "RecycleTicket",
            ["ticketId"],
            [{"name": "lastChanged", "operator": "afterTime", "values": [later]}],
        ),
        by_columns("RecycleTicket", ["ticketId"], first_or_last),
        by_columns("Ticket", ["ticketId"], inactive, sort=[{"name": "title", "direction": "DESC"}]),
        by_columns("Ticket", ["ticketId"], page=1, page_size=2),
        by_columns("Ticket", ["ticketId"], page=-1, page_size=10),
        archive_agent("getArchiveListByColumnsWithHeaderAsync", header_request),
        by_columns("Ticket", ["CountAll(ticketId)"]),
    )
    assert [item["primaryKey"] for item in in_deleted] == ids[3:]
    assert cells(in_deleted, "ticketId") == [f"[I:{i}]" for i in ids[3:]]
    assert cells(in_deleted, "title") == ["Ticket 4", "Ticket 5"]  # strings not encoded
    assert in_deleted[0]["entityName"] == "ticket"
    assert [item["primaryKey"] for item in changed_after] == ids[3:]
    assert [item["primaryKey"] for item in either] == [5]  # 1 is not deleted
    assert [item["primaryKey"] for item in all_active] == [3, 2, 1]  # by title, descending
    assert [item["primaryKey"] for item in second_page] == [3]
    assert [item["primaryKey"] for item in skip_one] == [2, 3]
    assert header["rowCount"] == 3
    assert [row["primaryKey"] for row in header["rows"]] == [1]
    assert bad_column["error"]["status"] == 400


def test_archive_display_text_follows_the_clients_culture(
    superoffice_sim: SuperOfficeSimulator, node_clients: Path
) -> None:
    sim = superoffice_sim
    ticket_id = sim.create_ticket("one")
    sim.soft_delete([ticket_id])
    by_agent, by_rest = client(
        sim,
        node_clients,
        by_columns("RecycleTicket", ["status", "ticketStatusName"]),
        rest("GET", "Archive/RecycleTicket", params={"$select": "status"}),
        culture="de",
    )
    assert cells(by_agent, "status") == ["Gelöscht"]
    assert cells(by_agent, "ticketStatusName") == ["Gelöscht"]
    assert by_rest["data"]["value"][0]["status"] == "Gelöscht"


@pytest.mark.parametrize("provider", ["Ticket", "RecycleTicket"])
def test_rest_and_agent_archives_list_the_same_rows(
    superoffice_sim: SuperOfficeSimulator, node_clients: Path, provider: str
) -> None:
    sim = superoffice_sim
    ids = sim.seed_tickets(6, title="T{n}")
    sim.soft_delete(ids[::2])
    by_rest, by_agent = client(
        sim,
        node_clients,
        rest("GET", f"Archive/{provider}", params={"$select": "ticketId", "$top": "100"}),
        by_columns(provider, ["ticketId"]),
    )
    rest_ids = [row["ticketId"] for row in by_rest["data"]["value"]]
    assert rest_ids == [item["primaryKey"] for item in by_agent]
    assert rest_ids == (ids[::2] if provider == "RecycleTicket" else ids[1::2])
