"""The Zendesk simulator's archive, deletion schedules and audit log, over real HTTP."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bridge.vendors.zendesk.sim.simulator import ZendeskSimulator
from tests.sandbox.conftest import ZD_START, ZendeskClient
from tests.sandbox.test_zendesk_sim import deleted_ids, export_all

DAY = 86_400.0
ONE_YEAR_OLD = {
    "field": "duration_since_last_update",
    "operator": "greater_than",
    "value": "P1Y",
}


def closed(sim: ZendeskSimulator, n: int, *, days_ago: float = 0, **extra: Any) -> list[int]:
    when = (ZD_START - timedelta(days=days_ago)).isoformat()
    template = {"subject": "Closed {n}", "status": "closed", "updated_at": when, **extra}
    return sim.seed_tickets(count=n, template=template)


def listed(zd: ZendeskClient) -> set[int]:
    return {t["id"] for t in zd.get("tickets.json", params={"per_page": 100}).json()["tickets"]}


def shown_many(zd: ZendeskClient, ids: list[int]) -> set[int]:
    answer = zd.get("tickets/show_many.json", params={"ids": ",".join(map(str, ids))})
    return {t["id"] for t in answer.json()["tickets"]}


def schedule(zd: ZendeskClient, *, active: bool = True, **spec: Any) -> dict[str, Any]:
    body = {"title": "Old tickets", "conditions": {"all": [ONE_YEAR_OLD], "any": []}, **spec}
    answer = zd.post("deletion_schedules", json={"deletion_schedule": {**body, "active": active}})
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()["deletion_schedule"]
    return created


# ---- archiving ----------------------------------------------------------------------------


def test_a_closed_ticket_is_archived_after_120_days(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    [ticket] = closed(zendesk_sim, 1, days_ago=100)
    [open_one] = zendesk_sim.seed_tickets([{"subject": "o", "status": "open"}])
    assert listed(zd) == {ticket, open_one}
    zendesk_sim.advance(19 * DAY)
    assert not zendesk_sim.get_ticket(ticket).archived  # type: ignore[union-attr]
    zendesk_sim.advance(2 * DAY)
    assert zendesk_sim.get_ticket(ticket).archived  # type: ignore[union-attr]
    # left out of lists, still shown by id (read-only) and by show_many, and in the export
    assert listed(zd) == {open_one}
    assert zd.get("tickets", params={"external_id": "x"}).json()["tickets"] == []
    assert zd.get(f"tickets/{ticket}").json()["ticket"]["status"] == "closed"
    assert shown_many(zd, [ticket, open_one]) == {ticket, open_one}
    assert ticket in {t["id"] for t in export_all(zd)}
    # an agent cannot change it
    assert zendesk_sim.agent_act("update", [ticket], fields={"priority": "high"})["skipped"] == [
        ticket
    ]


def test_show_many_can_leave_archived_tickets_out(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    [ticket] = closed(zendesk_sim, 1, archived=True)
    zendesk_sim.configure({"archived_in_show_many": False})
    assert shown_many(zd, [ticket]) == set()
    assert zd.get(f"tickets/{ticket}").status_code == 200


def test_the_archive_period_is_a_setting(zd: ZendeskClient, zendesk_sim: ZendeskSimulator) -> None:
    [ticket] = closed(zendesk_sim, 1, days_ago=4)
    zendesk_sim.configure({"archive_after_days": 3})  # a Zendesk sandbox's period
    zendesk_sim.advance(1)
    assert zendesk_sim.get_ticket(ticket).archived  # type: ignore[union-attr]


def test_closing_starts_the_archive_clock(zd: ZendeskClient, zendesk_sim: ZendeskSimulator) -> None:
    [ticket] = zendesk_sim.seed_tickets([{"subject": "s", "status": "open"}])
    zendesk_sim.advance(200 * DAY)
    zendesk_sim.agent_act("update", [ticket], fields={"status": "closed"})
    zendesk_sim.advance(119 * DAY)
    assert not zendesk_sim.get_ticket(ticket).archived  # type: ignore[union-attr]
    zendesk_sim.advance(2 * DAY)
    assert zendesk_sim.get_ticket(ticket).archived  # type: ignore[union-attr]


def test_imports_can_archive_closed_tickets_at_once(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    one = zd.post(
        "imports/tickets?archive_immediately=true",
        json={"ticket": {"subject": "s", "status": "closed", "comment": {"body": "b"}}},
    )
    assert one.status_code == 201
    still_open = zd.post(
        "imports/tickets?archive_immediately=true", json={"ticket": {"subject": "o"}}
    )
    many = zd.post(
        "imports/tickets/create_many?archive_immediately=true",
        json={"tickets": [{"subject": "a", "status": "closed"}]},
    )
    zendesk_sim.finish_jobs()
    job = zd.get(f"job_statuses/{many.json()['job_status']['id']}").json()["job_status"]
    archived = [one.json()["ticket"]["id"], job["results"][0]["id"]]
    assert [zendesk_sim.get_ticket(i).archived for i in archived] == [True, True]  # type: ignore[union-attr]
    assert not zendesk_sim.get_ticket(still_open.json()["ticket"]["id"]).archived  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="closed"):
        zendesk_sim.seed_tickets([{"subject": "s", "status": "open", "archived": True}])


# ---- deleting archived tickets -------------------------------------------------------------


def test_an_admin_deletion_of_an_archived_ticket_is_for_good(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    ticket, other, third = closed(zendesk_sim, 3, archived=True)
    assert zd.delete(f"tickets/{ticket}").status_code == 204
    job = zd.delete("tickets/destroy_many", params={"ids": f"{other}"}).json()["job_status"]
    zendesk_sim.finish_jobs()
    assert zd.get(f"job_statuses/{job['id']}").json()["job_status"]["status"] == "completed"
    zendesk_sim.agent_act("delete", [third], agent=(7, "Ann"))
    for gone in (ticket, other, third):
        assert zendesk_sim.ticket_state(gone) == "purged"
        assert zd.get(f"tickets/{gone}").status_code == 404
        assert zd.put(f"deleted_tickets/{gone}/restore").status_code == 404
    assert deleted_ids(zd) == []
    assert {ticket, other, third}.isdisjoint(t["id"] for t in export_all(zd))
    # the API requests are irreversible ones: in the purge log
    log = zendesk_sim.purge_log()
    assert [(r["ticket_id"], r["route"], r["outcome"]) for r in log] == [
        (ticket, "DELETE tickets/{id}", "done"),
        (other, "DELETE tickets/destroy_many", "done"),
    ]


def test_deletion_schedules_crud(zd: ZendeskClient, zendesk_sim: ZendeskSimulator) -> None:
    created = schedule(zd, active=False, description="GDPR")
    assert created["active"] is False
    assert created["default"] is False
    assert created["conditions"]["all"] == [ONE_YEAR_OLD]
    path = f"deletion_schedules/{created['id']}"
    assert zd.get(path).json()["deletion_schedule"] == created
    assert zd.get("deletion_schedules").json()["deletion_schedules"] == [created]
    zendesk_sim.advance(60)
    changed = zd.put(path, json={"deletion_schedule": {"title": "New", "active": True}})
    assert changed.status_code == 200
    body = changed.json()["deletion_schedule"]
    assert (body["title"], body["active"], body["description"]) == ("New", True, "GDPR")
    assert body["updated_at"] != body["created_at"]
    # one active schedule without the ADPP add-on
    second = zd.post(
        "deletion_schedules",
        json={
            "deletion_schedule": {"title": "B", "active": True, "conditions": created["conditions"]}
        },
    )
    assert second.status_code == 422
    assert zd.delete(path).status_code == 204
    assert zd.get(path).status_code == 404
    assert zd.get("deletion_schedules").json()["deletion_schedules"] == []


@pytest.mark.parametrize(
    "spec",
    [
        {"conditions": {"all": [ONE_YEAR_OLD]}},  # no title
        {"title": "t", "conditions": {"all": [], "any": []}},
        {
            "title": "t",
            "conditions": {"all": [{"field": "brand_id", "operator": "is", "value": 1}]},
        },
        {"title": "t", "conditions": {"all": [{**ONE_YEAR_OLD, "value": "a year"}]}},
    ],
)
def test_invalid_deletion_schedules_are_422(zd: ZendeskClient, spec: dict[str, Any]) -> None:
    answer = zd.post("deletion_schedules", json={"deletion_schedule": spec})
    assert answer.status_code == 422
    assert answer.json()["error"] == "RecordInvalid"


def test_an_active_schedule_deletes_matching_archived_tickets_for_good(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    old = closed(zendesk_sim, 2, days_ago=400, external_id="so-{n}")
    young = closed(zendesk_sim, 1, days_ago=200)
    [unarchived] = zendesk_sim.seed_tickets(
        [{"subject": "open", "status": "open", "updated_at": old_time(500)}]
    )
    zendesk_sim.advance(1)
    assert all(zendesk_sim.get_ticket(i).archived for i in old + young)  # type: ignore[union-attr]
    created = schedule(zd)
    zendesk_sim.advance(71 * 3600)
    assert [zendesk_sim.ticket_state(i) for i in old] == ["active", "active"]
    zendesk_sim.advance(2 * 3600)  # the first run: 72 h after activation
    for ticket in old:
        assert zendesk_sim.ticket_state(ticket) == "purged"
        assert zd.get(f"tickets/{ticket}").status_code == 404
        assert zd.put(f"deleted_tickets/{ticket}/restore").status_code == 404
    assert shown_many(zd, [*old, *young, unarchived]) == {*young, unarchived}
    assert zd.get("tickets", params={"external_id": "so-0"}).json()["tickets"] == []
    assert deleted_ids(zd) == []
    exported = {t["id"] for t in export_all(zd)}
    assert exported == {*young, unarchived}
    assert zendesk_sim.purge_log() == []  # no request of anyone's: the account's own job
    # the young one matches a year after its last update, at a later daily run
    zendesk_sim.advance(166 * DAY)
    assert zendesk_sim.ticket_state(young[0]) == "purged"
    assert zendesk_sim.ticket_state(unarchived) == "active"  # schedules touch archived only
    assert zd.get(f"deletion_schedules/{created['id']}").status_code == 200


def test_a_schedule_deletion_can_show_in_the_export_as_scrubbed(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    zendesk_sim.configure({"archive_deletion_in_export": True, "deletion_schedule_start_hours": 0})
    [ticket] = closed(zendesk_sim, 1, days_ago=400, archived=True)
    schedule(zd)
    zendesk_sim.advance(1)
    rows = [t for t in export_all(zd) if t["id"] == ticket]
    assert [(r["status"], r["subject"]) for r in rows] == [("deleted", "SCRUBBED")]


def test_the_admin_run_endpoint_runs_active_schedules_now(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    old = closed(zendesk_sim, 2, days_ago=400, archived=True)
    created = schedule(zd)
    answer = zd.admin("POST", "deletion_schedules/run")
    assert answer == {"deleted": old, "by_schedule": {str(created["id"]): old}}


# ---- the audit log ------------------------------------------------------------------------


def test_audit_logs_answer_403_without_the_feature(zd: ZendeskClient) -> None:
    answer = zd.get("audit_logs")
    assert answer.status_code == 403
    assert answer.json()["error"] == "Forbidden"


def test_the_audit_log_records_ticket_deletions(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    zendesk_sim.configure({"audit_logs": True, "deletion_schedule_start_hours": 0})
    live = zendesk_sim.seed_tickets(count=2, template={"subject": "s", "status": "open"})
    [archived] = closed(zendesk_sim, 1, days_ago=400, archived=True)
    zendesk_sim.agent_act("delete", live, agent=(7, "Ann"))
    zendesk_sim.advance(60)
    zd.put(f"deleted_tickets/{live[0]}/restore")
    job = zd.delete("deleted_tickets/destroy_many", params={"ids": str(live[1])})
    assert job.status_code == 200
    zendesk_sim.finish_jobs()
    created = schedule(zd, title="GDPR")
    zendesk_sim.advance(1)
    everything = zd.get("audit_logs", params={"page[size]": 100}).json()
    rows = [
        (e["action"], e["source_id"], e["actor_id"], e["change_description"])
        for e in everything["audit_logs"]
    ]
    assert rows == [  # newest first
        (
            "destroy",
            archived,
            -1,
            'Archived ticket permanently deleted by deletion schedule "GDPR"',
        ),
        ("destroy", live[1], 1, "Ticket permanently deleted"),
        ("update", live[0], 1, "Ticket restored from deleted tickets"),
        ("destroy", live[1], 7, "Ticket deleted (moved to deleted tickets)"),
        ("destroy", live[0], 7, "Ticket deleted (moved to deleted tickets)"),
    ]
    assert created["title"] == "GDPR"
    system = everything["audit_logs"][0]
    assert system["actor_name"] == "Zendesk"
    assert "ip_address" not in system
    # filters: action, source, a created_at window given twice; oldest first on request
    start = (ZD_START + timedelta(seconds=30)).isoformat().replace("+00:00", "Z")
    end = (ZD_START + timedelta(days=1)).isoformat().replace("+00:00", "Z")
    window = zd.get(
        "audit_logs",
        params={
            "filter[source_type]": "ticket",
            "filter[action]": "destroy",
            "filter[created_at][]": [start, end],
            "sort": "created_at",
            "page[size]": 1,
        },
    ).json()
    assert [e["source_id"] for e in window["audit_logs"]] == [live[1]]
    assert window["meta"]["has_more"] is True
    following = zd.get(window["links"]["next"].split("/api/v2/")[1]).json()
    assert [e["source_id"] for e in following["audit_logs"]] == [archived]
    assert following["meta"]["has_more"] is False
    one = zd.get(
        "audit_logs", params={"filter[source_type]": "ticket", "filter[source_id]": live[0]}
    ).json()
    assert one["count"] == 2
    assert one["next_page"] is None
    assert zd.get("audit_logs", params={"filter[source_id]": 1}).status_code == 400
    entry_id = system["id"]
    assert zd.get(f"audit_logs/{entry_id}").json()["audit_log"] == system
    assert zd.get("audit_logs/1").status_code == 404


def old_time(days: float) -> str:
    return (ZD_START - timedelta(days=days)).isoformat()
