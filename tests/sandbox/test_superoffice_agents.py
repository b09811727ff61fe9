"""The SuperOffice simulator's agent endpoints over real HTTP: Agents/Ticket GetTicketEntity,
SaveTicketEntity, DeleteTicketEntity (key casing) and Agents/Archive
GetArchiveListByColumns(WithHeader); and the CultureDataFormatter helpers they use."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bridge.vendors.superoffice.sim.agents import (
    decode_value,
    restriction_filter,
    sort_order_text,
)
from bridge.vendors.superoffice.sim.odata import ODataError
from bridge.vendors.superoffice.sim.views import DEFAULT_SELECT
from tests.sandbox.conftest_superoffice import (
    SO_START,
    SuperOfficeClient,
    so,
    superoffice_sim,
)

__all__ = ["so", "superoffice_sim"]  # fixtures imported for pytest

DAY = 86_400

#: every TicketEntity property the Ticket agent documents (GetTicketEntity), in its order
DOCUMENTED_PROPERTIES = [
    "TicketId",
    "Title",
    "CreatedAt",
    "LastChanged",
    "ReadByOwner",
    "ReadByCustomer",
    "FirstReadByOwner",
    "FirstReadByUser",
    "Activate",
    "ClosedAt",
    "RepliedAt",
    "AlertTimeout",
    "Deadline",
    "CreatedBy",
    "Author",
    "OwnedBy",
    "Category",
    "Slevel",
    "Priority",
    "BaseStatus",
    "Status",
    "Origin",
    "Person",
    "SecondaryPersons",
    "AlertLevel",
    "ConnectId",
    "ReadStatus",
    "TimeToReply",
    "RealTimeToReply",
    "TimeToClose",
    "RealTimeToClose",
    "TimeSpentInternally",
    "TimeSpentExternally",
    "TimeSpentQueue",
    "RealTimeSpentInternally",
    "RealTimeSpentExternally",
    "RealTimeSpentQueue",
    "TimeSpent",
    "HasAttachment",
    "NumReplies",
    "NumMessages",
    "FromAddress",
    "Messages",
    "Tags",
    "Language",
    "Sentiment",
    "SentimentConfidence",
    "SuggestedCategoryId",
    "SuggestedCategoryName",
    "OrigHumanCategoryId",
    "IconHint",
    "Sale",
    "Project",
    "FormSubmission",
    "TicketType",
    "ActiveStatusMonitorId",
    "ExtraFields",
    "CustomFields",
    "TableRight",
    "FieldProperties",
]


def agent(so: SuperOfficeClient, name: str, body: Any = None, **params: Any) -> Any:
    response = so.post(f"Agents/{name}", json=body, params=params)
    assert response.status_code in (200, 204), response.text
    return response.json() if response.content else None


def archive_list(so: SuperOfficeClient, **body: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = agent(so, "Archive/GetArchiveListByColumns", body)
    return rows


def keys(rows: list[dict[str, Any]]) -> list[int]:
    return [row["PrimaryKey"] for row in rows]


# --------------------------------------------------------------------------- entity


def test_entities_carry_every_documented_property(so: SuperOfficeClient) -> None:
    ticket_id = so.sim.create_ticket("one")
    by_agent = agent(so, "Ticket/GetTicketEntity", ticketEntityId=ticket_id)
    by_rest = so.get(f"Ticket/{ticket_id}").json()
    assert list(by_agent) == DOCUMENTED_PROPERTIES  # no _Links from an agent
    assert list(by_rest) == [*DOCUMENTED_PROPERTIES, "_Links"]
    assert by_rest["_Links"]["Self"].endswith(f"/api/v1/Ticket/{ticket_id}")
    assert {k: v for k, v in by_rest.items() if k != "_Links"} == by_agent


def test_get_ticket_entity_reads_its_id_from_the_query_in_any_case(
    so: SuperOfficeClient,
) -> None:
    ticket_id = so.sim.create_ticket("one")
    for name in ("ticketEntityId", "TicketEntityId", "ticketentityid"):
        assert agent(so, "Ticket/GetTicketEntity", **{name: ticket_id})["TicketId"] == ticket_id
    assert so.post("Agents/Ticket/GetTicketEntity").status_code == 400
    assert so.post("Agents/Ticket/GetTicketEntity", params={"ticketEntityId": "x"}).status_code == (
        400
    )


def test_get_ticket_entity_answers_null_for_what_is_not_there(so: SuperOfficeClient) -> None:
    gone, deleted = so.sim.create_ticket("gone"), so.sim.create_ticket("deleted")
    so.sim.purge([gone])
    so.sim.soft_delete([deleted])
    for ticket_id in (gone, 999):
        response = so.post("Agents/Ticket/GetTicketEntity", params={"ticketEntityId": ticket_id})
        assert response.status_code == 200
        assert response.text == "null"
        assert response.headers["Content-Type"].startswith("application/json")
    assert agent(so, "Ticket/GetTicketEntity", ticketEntityId=deleted)["BaseStatus"] == "Deleted"
    so.sim.configure({"deleted_readable": False})
    assert agent(so, "Ticket/GetTicketEntity", ticketEntityId=deleted) is None


# --------------------------------------------------------------------------- delete


@pytest.mark.parametrize(
    ("body", "params"),
    [
        ({"TicketEntityId": "{id}"}, {}),  # as documented
        ({"ticketEntityId": "{id}"}, {}),  # as @superoffice/webapi sends it
        (None, {"ticketEntityId": "{id}"}),
        (None, {"TicketEntityID": "{id}"}),
    ],
)
def test_delete_ticket_entity_takes_its_key_in_any_case(
    so: SuperOfficeClient, body: dict[str, str] | None, params: dict[str, str]
) -> None:
    ticket_id = so.sim.create_ticket("one")

    def fill(values: dict[str, str]) -> dict[str, int]:
        return dict.fromkeys(values, ticket_id)

    response = so.post(
        "Agents/Ticket/DeleteTicketEntity",
        json=fill(body) if body is not None else None,
        params=fill(params),
    )
    assert response.status_code == 204
    state = so.sim.ticket_state(ticket_id)
    assert state is not None
    assert state["base_status"] == "Deleted"


def test_delete_ticket_entity_refusals(so: SuperOfficeClient) -> None:
    ticket_id = so.sim.create_ticket("one")
    assert so.post("Agents/Ticket/DeleteTicketEntity", json={}).status_code == 400
    assert so.post(
        "Agents/Ticket/DeleteTicketEntity", json={"ticketEntityId": 999}
    ).status_code == (404)
    so.sim.configure({"can_delete": False})
    answer = so.post("Agents/Ticket/DeleteTicketEntity", json={"ticketEntityId": ticket_id})
    assert answer.status_code == 403


@pytest.mark.parametrize("key", ["TicketIds", "ticketIds", "ticketids"])
def test_id_lists_bind_in_any_case(so: SuperOfficeClient, key: str) -> None:
    ticket_id = so.sim.create_ticket("one")
    assert agent(so, "Ticket/SetDeletedStatusByIds", {key: [ticket_id]}) == [ticket_id]
    assert agent(so, "Ticket/UndeleteByIds", {key: [ticket_id]}) is None
    state = so.sim.ticket_state(ticket_id)
    assert state is not None
    assert state["base_status"] == "Active"


# --------------------------------------------------------------------------- save


def test_save_without_an_id_creates(so: SuperOfficeClient) -> None:
    saved = agent(so, "Ticket/SaveTicketEntity", {"TicketId": 0, "Title": "new", "Status": 304})
    assert saved["TicketId"] == 1
    assert saved["Status"]["TicketStatusId"] == 304
    assert "_Links" not in saved
    answer = so.post("Agents/Ticket/SaveTicketEntity", json={"title": "x", "baseStatus": "Deleted"})
    assert answer.status_code == 400  # a new ticket cannot be deleted
    assert so.post("Agents/Ticket/SaveTicketEntity", json={"Status": 1}).status_code == 400


def test_save_updates_writable_fields_and_bumps_last_changed(so: SuperOfficeClient) -> None:
    ticket_id = so.sim.create_ticket("before")
    entity = agent(so, "Ticket/GetTicketEntity", ticketEntityId=ticket_id)
    so.sim.advance(90)
    changed = {
        **entity,
        "Title": "after",
        "OwnedBy": {"AssociateId": 7},
        "CreatedAt": "2000-01-01T00:00:00",  # read-only: ignored
        "LastChanged": "2000-01-01T00:00:00",
    }
    saved = agent(so, "Ticket/SaveTicketEntity", changed)
    assert saved["Title"] == "after"
    assert saved["OwnedBy"]["AssociateId"] == 7
    assert saved["CreatedAt"] == entity["CreatedAt"]
    assert saved["LastChanged"] == "2024-05-01T12:01:30+00:00"
    same = agent(so, "Ticket/SaveTicketEntity", {"ticketId": ticket_id})  # camelCase
    assert same["Title"] == "after"
    state = so.sim.ticket_state(ticket_id)
    assert state is not None
    assert state["changed_by"] == so.sim.api_associate_id


def test_save_with_a_deleted_status_soft_deletes_and_another_restores(
    so: SuperOfficeClient,
) -> None:
    ticket_id = so.sim.create_ticket("one", status=304)
    so.sim.advance(60)
    deleted = agent(so, "Ticket/SaveTicketEntity", {"TicketId": ticket_id, "BaseStatus": "Deleted"})
    assert deleted["BaseStatus"] == "Deleted"
    assert deleted["Status"]["TicketStatusId"] == 4
    state = so.sim.ticket_state(ticket_id)
    assert state is not None
    assert state["pre_delete_status_id"] == 304
    assert state["purge_due"] == SO_START + timedelta(seconds=60, days=14)
    assert so.archive("RecycleTicket", select="ticketId").json()["value"][0]["ticketId"] == (
        ticket_id
    )
    # editing a deleted ticket keeps it deleted (the grace period allows edits)
    edited = agent(so, "Ticket/SaveTicketEntity", {**deleted, "Title": "edited"})
    assert edited["BaseStatus"] == "Deleted"
    restored = agent(
        so, "Ticket/SaveTicketEntity", {"TicketId": ticket_id, "Status": {"TicketStatusId": 2}}
    )
    assert restored["BaseStatus"] == "Closed"
    assert so.archive("RecycleTicket", select="ticketId").json()["value"] == []


def test_save_refusals(so: SuperOfficeClient) -> None:
    ticket_id, master = so.sim.create_ticket("one"), so.sim.create_ticket("master")
    merged = {"TicketId": ticket_id, "BaseStatus": "Merged", "ConnectId": master}
    assert so.post("Agents/Ticket/SaveTicketEntity", json=merged).status_code == 400
    unknown = {"TicketId": 999, "Title": "x"}
    assert so.post("Agents/Ticket/SaveTicketEntity", json=unknown).status_code == 404
    so.sim.configure({"can_delete": False})
    deleting = {"TicketId": ticket_id, "Status": {"TicketStatusId": 4}}
    assert so.post("Agents/Ticket/SaveTicketEntity", json=deleting).status_code == 403
    state = so.sim.ticket_state(ticket_id)
    assert state is not None
    assert state["base_status"] == "Active"


# --------------------------------------------------------------------------- archive agent


def test_archive_list_item_shape(so: SuperOfficeClient) -> None:
    ticket_id = so.sim.create_ticket("It's down", owned_by=7)
    (row,) = archive_list(
        so,
        ProviderName="Ticket",
        Columns=["ticketId", "title", "createdAt", "status", "ticketStatusName", "ownedBy"],
        Restriction=[{"Name": "ticketId", "Operator": "=", "Values": [f"[I:{ticket_id}]"]}],
    )
    assert row == {
        "EntityName": "ticket",
        "PrimaryKey": ticket_id,
        "ColumnData": {
            "ticketId": {"DisplayValue": f"[I:{ticket_id}]", "TooltipHint": "", "LinkHint": ""},
            "title": {"DisplayValue": "It's down", "TooltipHint": "", "LinkHint": ""},
            "createdAt": {
                "DisplayValue": "[DT:05/01/2024 12:00:00]",
                "TooltipHint": "",
                "LinkHint": "",
            },
            "status": {"DisplayValue": "Active", "TooltipHint": "", "LinkHint": ""},
            "ticketStatusName": {"DisplayValue": "Open", "TooltipHint": "", "LinkHint": ""},
            "ownedBy": {"DisplayValue": "[I:7]", "TooltipHint": "", "LinkHint": ""},
        },
        "LinkHint": "",
        "StyleHint": "",
        "TableRight": None,
        "FieldProperties": {},
    }


def test_archive_list_restrictions(so: SuperOfficeClient) -> None:
    ids = so.sim.seed_tickets(6, title="Ticket {n}")
    so.sim.advance(DAY)
    so.sim.associate_act("update", ids[4:], fields={"title": "Urgent"})

    def query(*restriction: dict[str, Any], provider: str = "Ticket") -> list[int]:
        return keys(
            archive_list(
                so, ProviderName=provider, Columns=["ticketId"], Restriction=list(restriction)
            )
        )

    assert query({"Name": "ticketId", "Operator": "in", "Values": ["2", "[I:3]", 4]}) == [2, 3, 4]
    assert query({"Name": "ticketId", "Operator": "between", "Values": ["2", "3"]}) == [2, 3]
    assert query({"Name": "title", "Operator": "begins", "Values": ["urgent"]}) == [5, 6]
    assert query(
        {"Name": "lastChanged", "Operator": "afterTime", "Values": ["[DT:05/02/2024 11:00:00]"]}
    ) == [5, 6]
    assert query({"Name": "createdAt", "Operator": "after", "Values": ["[D:30.04.2024]"]}) == ids
    # A or (B and C): InterOperator joins to the next, InterParenthesis opens and closes
    assert query(
        {"Name": "ticketId", "Operator": "=", "Values": ["1"], "InterOperator": "Or"},
        {"Name": "ticketId", "Operator": ">", "Values": ["5"], "InterParenthesis": 1},
        {"Name": "title", "Operator": "is", "Values": ["urgent"], "InterParenthesis": -1},
    ) == [1, 6]
    assert query(
        {"Name": "ticketId", "Operator": "=", "Values": ["1"], "IsActive": False},
        {"Name": "ticketId", "Operator": "<", "Values": ["3"], "IsActive": True},
    ) == [1, 2]
    assert query({"Name": "status", "Operator": "=", "Values": ["[I:4]"]}) == []


@pytest.mark.parametrize(
    "restriction",
    [
        {"Name": "ticketStatus", "Operator": "=", "Values": ["1"]},  # not a column
        {"Name": "ticketId eq 1 or ticketId", "Operator": "=", "Values": ["1"]},
        {"Name": "ticketId", "Operator": "non", "Values": ["1"]},
        {"Name": "ticketId", "Operator": "= 1 or ticketId =", "Values": ["1"]},
        {"Name": "ticketId", "Operator": "=", "Values": []},
        {"Name": "ticketId", "Operator": "=", "Values": ["[X:1]"]},
        {"Name": "lastChanged", "Operator": "after", "Values": ["[DT:2024-05-01]"]},
        {"Name": "ticketId", "Operator": "=", "Values": ["1"], "InterParenthesis": 1},
    ],
)
def test_bad_archive_list_requests_are_400(
    so: SuperOfficeClient, restriction: dict[str, Any]
) -> None:
    so.sim.create_ticket("one")
    body = {"ProviderName": "Ticket", "Columns": ["ticketId"], "Restriction": [restriction]}
    response = so.post("Agents/Archive/GetArchiveListByColumns", json=body)
    assert response.status_code == 400
    assert response.json()["ErrorType"] == "ArchiveQueryError"


@pytest.mark.parametrize(
    "body",
    [
        {"Columns": ["ticketId"]},
        {"ProviderName": "Contact", "Columns": ["ticketId"]},
        {"ProviderName": "Ticket", "Columns": "ticketId"},
        {"ProviderName": "Ticket", "Columns": ["CountAll(ticketId)"]},
        {"ProviderName": "Ticket", "Page": "1"},
        {"ProviderName": "Ticket", "SortOrder": [{"Name": "nope", "Direction": "ASC"}]},
    ],
)
def test_bad_archive_list_bodies_are_400(so: SuperOfficeClient, body: dict[str, Any]) -> None:
    assert so.post("Agents/Archive/GetArchiveListByColumns", json=body).status_code == 400


def test_archive_list_sorting_paging_providers_and_header(so: SuperOfficeClient) -> None:
    ids = so.sim.seed_tickets(5, title="T{n}")
    so.sim.soft_delete([ids[0], ids[2]])
    base = {"ProviderName": "Ticket", "Columns": ["ticketId"]}
    desc = [{"Name": "ticketId", "Direction": "DESC"}]
    assert keys(archive_list(so, **base)) == [2, 4, 5]
    assert keys(archive_list(so, **base, SortOrder=desc)) == [5, 4, 2]
    assert keys(archive_list(so, **base, SortOrder=[{"name": "title", "direction": 1}])) == [
        5,
        4,
        2,
    ]
    assert keys(archive_list(so, **base, Page=1, PageSize=2)) == [5]
    assert keys(archive_list(so, **base, Page=-2, PageSize=5)) == [5]
    assert keys(archive_list(so, **base, PageSize=0)) == []
    assert keys(archive_list(so, ProviderName="recycleticket", Columns=["ticketId"])) == [1, 3]
    header = agent(so, "Archive/GetArchiveListByColumnsWithHeader", {**base, "PageSize": 1})
    assert header["RowCount"] == 3
    assert keys(header["Rows"]) == [2]
    assert set(header) == {"RowCount", "Rows", "TableRight", "FieldProperties"}
    # without Columns: the provider's default columns, as the REST archive without $select
    (row, *_) = archive_list(so, ProviderName="Ticket")
    assert list(row["ColumnData"]) == list(DEFAULT_SELECT)


def test_archive_list_display_text_in_the_requests_culture(so: SuperOfficeClient) -> None:
    ticket_id = so.sim.create_ticket("one")
    so.sim.soft_delete([ticket_id])
    body = {"ProviderName": "RecycleTicket", "Columns": ["status"]}
    for culture, text in (("de", "Gelöscht"), ("nb-NO", "Slettet"), ("en", "Deleted")):
        (row,) = so.post(
            "Agents/Archive/GetArchiveListByColumns", json=body, headers={"SO-Culture": culture}
        ).json()
        assert row["ColumnData"]["status"]["DisplayValue"] == text


def test_agent_routes_have_names_for_faults(so: SuperOfficeClient) -> None:
    so.sim.create_ticket("one")
    so.sim.add_fault("status", route="POST Agents/Archive/GetArchiveListByColumns", status=503)
    body = {"ProviderName": "Ticket", "Columns": ["ticketId"]}
    assert so.post("Agents/Archive/GetArchiveListByColumns", json=body).status_code == 503


# --------------------------------------------------------------------------- pure helpers


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("[I:10]", "10"),
        ("[F:1.5]", "1.5"),
        ("[DT:11/09/2017 14:53:18]", "2017-11-09T14:53:18"),  # the docs' example: month first
        ("[D:09.11.2017]", "2017-11-09"),  # day first
        ("plain", "plain"),
        ("[not encoded", "[not encoded"),
        (7, "7"),
        (True, "1"),
    ],
)
def test_decode_value(value: Any, text: str) -> None:
    assert decode_value(value) == text


@pytest.mark.parametrize("value", ["[X:1]", "[DT:2017-11-09]", "[D:11/09/2017]", None, ["1"]])
def test_decode_value_refuses(value: Any) -> None:
    with pytest.raises(ODataError):
        decode_value(value)


def test_restriction_and_sort_text() -> None:
    assert restriction_filter(None) is None
    assert restriction_filter([]) is None
    assert (
        restriction_filter(
            [
                {"name": "title", "operator": "contains", "values": ["it's"], "interOperator": 2},
                {"Name": "ticketId", "Operator": "in", "Values": ["1", "2"]},
            ]
        )
        == "title contains 'it''s' or ticketId in ('1', '2')"
    )
    assert sort_order_text([{"Name": "a", "Direction": "DESC"}, {"Name": "b"}]) == "a desc, b asc"
    with pytest.raises(ODataError):
        restriction_filter({"Name": "a"})
    with pytest.raises(ODataError):
        sort_order_text("a")
