"""The SuperOffice simulator's ticket log (`ticket_log_action`) and its `dynamic` provider."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.vendors.superoffice.sim.store import EJUSER_OFFSET
from tests.sandbox.conftest_superoffice import SuperOfficeClient

LOG = "ticket_log_action"
ACTOR = f"{LOG}.user_id.(associate->ejuserId).associate_id"
COLUMNS = f"{LOG}.id,{LOG}.ticket_id,{LOG}.user_id,{LOG}.log_when,{LOG}.log_action,{ACTOR}"


def _log(so: SuperOfficeClient, ticket_ids: list[int], **params: str) -> list[dict[str, Any]]:
    ids = ",".join(str(i) for i in ticket_ids)
    query = {"select": COLUMNS, "filter": f"{LOG}.ticket_id oneOf ({ids})", "output": "Logical"}
    answer = so.archive("dynamic", **{**query, **params})
    assert answer.status_code == 200, answer.text
    rows: list[dict[str, Any]] = answer.json()["value"]
    return rows


def test_delete_undelete_and_edits_are_logged_with_the_acting_user(so: SuperOfficeClient) -> None:
    sim = so.sim
    [ticket] = sim.seed_tickets(1)
    sim.soft_delete([ticket], associate=7)
    sim.advance(60)
    sim.restore([ticket], associate=8)
    sim.advance(60)
    assert so.patch(f"Ticket/{ticket}", json={"Title": "renamed"}).status_code == 200
    sim.advance(60)
    assert so.post("Agents/Ticket/SetDeletedStatusByIds", json={"TicketIds": [ticket]}).ok
    rows = _log(so, [ticket])
    assert [(r[f"{LOG}.log_action"], r[ACTOR]) for r in rows] == [
        (34, 7),  # Ticket_DeleteTicket, in the UI by associate 7
        (21, 8),  # Ticket_ChangeStatus: the undelete
        (33, sim.api_associate_id),  # Ticket_EditTicket through the API
        (34, sim.api_associate_id),
    ]
    # the log names the Service user; the associate is the join on `associate.ejuserId`
    assert [r[f"{LOG}.user_id"] for r in rows] == [r[ACTOR] + EJUSER_OFFSET for r in rows]
    assert [r[f"{LOG}.log_when"] for r in rows] == [
        "2024-05-01T12:00:00Z",
        "2024-05-01T12:01:00Z",
        "2024-05-01T12:02:00Z",
        "2024-05-01T12:03:00Z",
    ]
    assert rows[0]["PrimaryKey"] == str(rows[0][f"{LOG}.id"])
    assert rows[0]["EntityName"] == LOG


def test_every_api_delete_and_a_status_change_are_logged(so: SuperOfficeClient) -> None:
    sim = so.sim
    a, b, c, d = sim.seed_tickets(4)
    assert so.delete(f"Ticket/{a}").status_code == 204
    assert so.post("Agents/Ticket/DeleteTicketEntity", json={"TicketEntityId": b}).ok
    assert so.patch(f"Ticket/{c}", json={"Status": {"TicketStatusId": 4}}).ok
    assert so.patch(f"Ticket/{d}", json={"Status": {"TicketStatusId": 304}}).ok
    rows = {r[f"{LOG}.ticket_id"]: r for r in _log(so, [a, b, c, d])}
    assert {t: r[f"{LOG}.log_action"] for t, r in rows.items()} == {a: 34, b: 34, c: 21, d: 21}
    assert {r[ACTOR] for r in rows.values()} == {sim.api_associate_id}


def test_display_output_names_the_action(so: SuperOfficeClient) -> None:
    [ticket] = so.sim.seed_tickets(1)
    so.sim.soft_delete([ticket])
    answer = so.archive("dynamic", select=f"{LOG}.log_action,{ACTOR}")
    [row] = answer.json()["value"]
    assert row[f"{LOG}.log_action"] == "Ticket_DeleteTicket"
    assert row[ACTOR] == 7  # ids stay ints (the documented dynamic samples)


def test_filters_on_action_and_time_and_order(so: SuperOfficeClient) -> None:
    sim = so.sim
    ids = sim.seed_tickets(3)
    sim.soft_delete(ids, associate=7)
    sim.advance(120)
    sim.restore(ids[:2], associate=8)
    rows = _log(
        so,
        ids,
        filter=(
            f"{LOG}.ticket_id oneOf ({','.join(map(str, ids))}) and {LOG}.log_action oneOf "
            f"(21, 'Ticket_DeleteTicket') and {LOG}.log_when afterTime '2024-05-01T12:01:00'"
        ),
        orderBy=f"{LOG}.id desc",
    )
    assert [(r[f"{LOG}.ticket_id"], r[f"{LOG}.log_action"]) for r in rows] == [
        (ids[1], 21),
        (ids[0], 21),
    ]
    page = _log(so, ids, top="2", skip="2")
    assert [r[f"{LOG}.log_action"] for r in page] == [34, 21]


@pytest.mark.parametrize(
    "params",
    [
        {"$select": "ticketId"},  # a Ticket provider column, not a table column
        {"$select": f"{LOG}.description"},  # content: not served
        {"$select": f"{LOG}.ticket_id", "$filter": "ticket.id eq 1"},
        {"$select": f"{LOG}.ticket_id", "$orderBy": f"{LOG}.nope"},
        {"$select": f"{LOG}.ticket_id", "$output": "Raw"},
        {},  # the dynamic provider has no default columns
    ],
)
def test_unknown_columns_are_refused(so: SuperOfficeClient, params: dict[str, str]) -> None:
    answer = so.get("Archive/dynamic", params=params)
    assert answer.status_code == 400
    assert answer.json()["ErrorType"] == "ArchiveQueryError"


def test_an_unreadable_log_answers_403(so: SuperOfficeClient) -> None:
    so.sim.configure({"ticket_log_readable": False})
    assert so.sim.config_state()["ticket_log_readable"] is False
    answer = so.archive("dynamic", select=f"{LOG}.ticket_id")
    assert answer.status_code == 403
    assert so.archive("Ticket", select="ticketId").status_code == 200


def test_a_purge_takes_the_tickets_log_with_it(so: SuperOfficeClient) -> None:
    sim = so.sim
    kept, purged, expired = sim.seed_tickets(3)
    sim.soft_delete([kept, purged], associate=7)
    sim.purge([purged])
    assert [r[f"{LOG}.ticket_id"] for r in _log(so, [kept, purged])] == [kept]
    sim.soft_delete([expired], associate=7)
    sim.advance(sim.retention_days * 86400 + 1)  # retention purges both deleted tickets
    assert _log(so, [kept, purged, expired]) == []


def test_a_merge_is_logged_as_a_join(so: SuperOfficeClient) -> None:
    master, secondary = so.sim.seed_tickets(2)
    so.sim.merge([secondary], into=master, associate=7)
    assert [r[f"{LOG}.log_action"] for r in _log(so, [secondary])] == [35]
