"""The Zendesk simulator over real HTTP: endpoints, errors, jobs, limits, faults, scrub, admin."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import pytest
import requests

from bridge.sandbox import SimClock
from bridge.vendors.zendesk.sim.simulator import ZendeskSimulator, plan_limit
from tests.sandbox.conftest import ZD_START, ZendeskClient

NOT_FOUND = {"error": "RecordNotFound", "description": "Not found"}


def seed(sim: ZendeskSimulator, n: int = 5, **template: Any) -> list[int]:
    base = {"subject": "Ticket {n}", "external_id": "so-{n}", "status": "open", **template}
    return sim.seed_tickets(count=n, template=base)


def job_of(answer: requests.Response) -> dict[str, Any]:
    assert answer.status_code == 200, answer.text
    job: dict[str, Any] = answer.json()["job_status"]
    return job


def poll(zd: ZendeskClient, job_id: str) -> dict[str, Any]:
    answer = zd.get(f"job_statuses/{job_id}.json")
    assert answer.status_code == 200, answer.text
    job: dict[str, Any] = answer.json()["job_status"]
    return job


def deleted_ids(zd: ZendeskClient, **params: Any) -> list[int]:
    answer = zd.get("deleted_tickets.json", params=params)
    assert answer.status_code == 200, answer.text
    return [item["id"] for item in answer.json()["deleted_tickets"]]


def export_all(zd: ZendeskClient, start_time: int = 0) -> list[dict[str, Any]]:
    tickets: list[dict[str, Any]] = []
    page = zd.get("incremental/tickets/cursor.json", params={"start_time": start_time}).json()
    tickets.extend(page["tickets"])
    while not page["end_of_stream"]:
        page = zd.get("incremental/tickets/cursor.json", params={"cursor": page["after_cursor"]})
        page = page.json()
        tickets.extend(page["tickets"])
    return tickets


# ---- auth ---------------------------------------------------------------------------------


def test_basic_token_and_bearer_are_accepted(zendesk_sim: ZendeskSimulator) -> None:
    seed(zendesk_sim, 1)
    url = f"{zendesk_sim.base_url}/api/v2/tickets/1.json"
    basic = requests.get(url, auth=("admin@example.com/token", "sandbox-token"), timeout=5)
    bearer = requests.get(url, headers={"Authorization": "Bearer sandbox-token"}, timeout=5)
    assert basic.status_code == 200
    assert bearer.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic " + base64.b64encode(b"admin@example.com:sandbox-token").decode()},
        {"Authorization": "Basic " + base64.b64encode(b"other@x.com/token:sandbox-token").decode()},
        {"Authorization": "Basic %%%not-base64"},
        {"Authorization": "Token sandbox-token"},
    ],
)
def test_anything_else_is_401(zendesk_sim: ZendeskSimulator, headers: dict[str, str]) -> None:
    seed(zendesk_sim, 1)
    answer = requests.get(f"{zendesk_sim.base_url}/api/v2/tickets/1", headers=headers, timeout=5)
    assert answer.status_code == 401
    assert answer.json() == {"error": "Couldn't authenticate you"}


# ---- import and reads ---------------------------------------------------------------------


def test_import_one_keeps_fields(zd: ZendeskClient) -> None:
    body = {
        "ticket": {
            "subject": "Printer",
            "comment": {"body": "It is on fire"},
            "status": "pending",
            "external_id": "so-77",
            "created_at": "2020-01-02T03:04:05Z",
            "updated_at": "2020-02-02T03:04:05Z",
            "requester_id": 42,
        }
    }
    answer = zd.post("imports/tickets.json", json=body)
    assert answer.status_code == 201
    ticket = answer.json()["ticket"]
    assert ticket["subject"] == "Printer"
    assert ticket["description"] == "It is on fire"
    assert ticket["status"] == "pending"
    assert ticket["external_id"] == "so-77"
    assert ticket["created_at"] == "2020-01-02T03:04:05Z"
    assert ticket["updated_at"] == "2020-02-02T03:04:05Z"
    assert ticket["requester_id"] == 42
    assert zd.get(f"tickets/{ticket['id']}").json()["ticket"] == ticket


def test_import_rejects_invalid_status_with_422(zd: ZendeskClient) -> None:
    answer = zd.post("imports/tickets", json={"ticket": {"subject": "x", "status": "deleted"}})
    assert answer.status_code == 422
    assert answer.json()["error"] == "RecordInvalid"
    assert "status" in answer.json()["details"]


def test_import_many_is_a_job_whose_results_carry_ids(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    tickets = [{"subject": f"S{i}", "external_id": f"so-{i}"} for i in range(3)]
    job = job_of(zd.post("imports/tickets/create_many.json", json={"tickets": tickets}))
    assert job["status"] == "queued"
    assert zd.get("tickets", params={"external_id": "so-0"}).json()["tickets"] == []
    zendesk_sim.finish_jobs()
    done = poll(zd, job["id"])
    assert done["status"] == "completed"
    assert [r["index"] for r in done["results"]] == [0, 1, 2]
    for result in done["results"]:
        shown = zd.get(f"tickets/{result['id']}").json()["ticket"]
        assert shown["external_id"] == f"so-{result['index']}"


def test_import_many_over_100_is_too_many_values(zd: ZendeskClient) -> None:
    answer = zd.post("imports/tickets/create_many", json={"tickets": [{}] * 101})
    assert answer.status_code == 400
    assert answer.json()["error"] == "TooManyValues"
    assert answer.json()["max_count"] == 100


def test_show_show_many_and_external_id(zd: ZendeskClient, zendesk_sim: ZendeskSimulator) -> None:
    ids = seed(zendesk_sim, 3)
    assert zd.get(f"tickets/{ids[0]}").json()["ticket"]["subject"] == "Ticket 0"
    assert zd.get("tickets/999").json() == NOT_FOUND
    assert zd.get("tickets/999").status_code == 404
    many = zd.get("tickets/show_many.json", params={"ids": f"{ids[0]},{ids[2]},999"}).json()
    assert [t["id"] for t in many["tickets"]] == [ids[0], ids[2]]
    by_ext = zd.get("tickets.json", params={"external_id": "so-1"}).json()
    assert [t["id"] for t in by_ext["tickets"]] == [ids[1]]
    too_many = zd.get("tickets/show_many", params={"ids": ",".join(map(str, range(1, 102)))})
    assert too_many.status_code == 400
    assert too_many.json()["error"] == "TooManyValues"


def test_deleted_tickets_are_hidden_from_reads(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    ids = seed(zendesk_sim, 2)
    assert zd.delete(f"tickets/{ids[0]}").status_code == 204
    assert zd.get(f"tickets/{ids[0]}").status_code == 404
    many = zd.get("tickets/show_many", params={"ids": f"{ids[0]},{ids[1]}"}).json()
    assert [t["id"] for t in many["tickets"]] == [ids[1]]
    assert zd.get("tickets", params={"external_id": "so-0"}).json()["tickets"] == []


# ---- soft delete ----------------------------------------------------------------------------


def test_delete_one_is_204_and_listed_with_actor(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    ids = seed(zendesk_sim, 1, status="pending")
    answer = zd.delete(f"tickets/{ids[0]}.json")
    assert (answer.status_code, answer.content) == (204, b"")
    listed = zd.get("deleted_tickets").json()["deleted_tickets"]
    assert listed == [
        {
            "id": ids[0],
            "subject": "Ticket 0",
            "actor": {"id": 1, "name": "Sandbox Admin"},
            "deleted_at": "2024-05-01T12:00:00Z",
            "previous_state": "pending",
        }
    ]
    again = zd.delete(f"tickets/{ids[0]}")
    assert (again.status_code, again.json()) == (404, NOT_FOUND)


def test_destroy_many_job_lifecycle_on_a_frozen_clock(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    ids = seed(zendesk_sim, 5)
    job = job_of(zd.delete("tickets/destroy_many.json", params={"ids": ",".join(map(str, ids))}))
    assert job["id"].startswith("V3-")
    assert len(job["id"]) == 35
    assert job["job_type"] == "Bulk Update Ticket"
    assert job["url"] == f"{zendesk_sim.base_url}/api/v2/job_statuses/{job['id']}.json"
    assert (job["status"], job["total"], job["results"]) == ("queued", 5, None)
    assert zd.get(f"tickets/{ids[0]}").status_code == 200  # nothing happens before completion
    zendesk_sim.advance(1.5)
    assert poll(zd, job["id"])["status"] == "working"
    zendesk_sim.advance(5)  # a 5-ticket job takes about 3 s in all
    done = poll(zd, job["id"])
    assert done["status"] == "completed"
    assert done["progress"] == 5
    assert done["message"].startswith("Completed at 2024-05-01 12:00:0")
    assert done["results"] == [
        {"id": i, "action": "update", "status": "Updated", "success": True} for i in ids
    ]
    assert deleted_ids(zd) == ids
    assert all(zd.get(f"tickets/{i}").status_code == 404 for i in ids)


def test_destroy_many_default_duration_is_realistic(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    ids = seed(zendesk_sim, 100)
    job = job_of(zd.delete("tickets/destroy_many", params={"ids": ",".join(map(str, ids))}))
    zendesk_sim.advance(9)
    assert poll(zd, job["id"])["status"] == "working"
    zendesk_sim.advance(6)
    assert poll(zd, job["id"])["status"] == "completed"


def test_destroy_many_with_some_unknown_ids(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    ids = seed(zendesk_sim, 2)
    job = job_of(zd.delete("tickets/destroy_many", params={"ids": f"{ids[0]},999"}))
    zendesk_sim.finish_jobs()
    results = poll(zd, job["id"])["results"]
    assert results[0]["success"] is True
    assert results[1] == {
        "id": 999,
        "action": "update",
        "success": False,
        "error": "RecordNotFound",
        "details": "Not found",
    }
    none_valid = zd.delete("tickets/destroy_many", params={"ids": "998,999"})
    assert (none_valid.status_code, none_valid.json()) == (404, NOT_FOUND)


def test_destroy_many_over_100_ids(zd: ZendeskClient, zendesk_sim: ZendeskSimulator) -> None:
    seed(zendesk_sim, 101)
    answer = zd.delete("tickets/destroy_many", params={"ids": ",".join(map(str, range(1, 102)))})
    assert answer.status_code == 400
    assert answer.json() == {
        "error": "TooManyValues",
        "description": "Parameter ids cannot specify more than 100 values",
        "max_count": 100,
    }
    assert zd.delete("tickets/destroy_many").status_code == 400  # ids missing


# ---- restore and purge ----------------------------------------------------------------------


def test_restore_brings_back_previous_status_and_bumps_timestamps(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    ids = seed(zendesk_sim, 1, status="hold")
    before = zd.get(f"tickets/{ids[0]}").json()["ticket"]
    zd.delete(f"tickets/{ids[0]}")
    zendesk_sim.advance(120)
    answer = zd.put(f"deleted_tickets/{ids[0]}/restore.json")
    assert (answer.status_code, answer.json()) == (200, {})
    after = zd.get(f"tickets/{ids[0]}").json()["ticket"]
    assert after["status"] == "hold"
    assert after["updated_at"] > before["updated_at"]
    assert after["generated_timestamp"] > before["generated_timestamp"]
    assert deleted_ids(zd) == []
    live = zd.put(f"deleted_tickets/{ids[0]}/restore")  # live: never soft-deleted now
    assert (live.status_code, live.json()) == (404, NOT_FOUND)


def test_restore_many(zd: ZendeskClient, zendesk_sim: ZendeskSimulator) -> None:
    ids = seed(zendesk_sim, 3)
    zendesk_sim.agent_act("delete", ids[:2])
    answer = zd.put("deleted_tickets/restore_many", params={"ids": f"{ids[0]},{ids[1]},{ids[2]}"})
    assert (answer.status_code, answer.json()) == (200, {})
    assert deleted_ids(zd) == []
    assert zd.put("deleted_tickets/restore_many", params={"ids": str(ids[0])}).status_code == 404
    over = zd.put("deleted_tickets/restore_many", params={"ids": ",".join(["1"] * 101)})
    assert over.json()["error"] == "TooManyValues"


def test_purge_one_is_a_job_with_success_object(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    ids = seed(zendesk_sim, 2)
    assert zd.delete(f"deleted_tickets/{ids[0]}").status_code == 404  # live: not deleted yet
    zd.delete(f"tickets/{ids[0]}")
    job = job_of(zd.delete(f"deleted_tickets/{ids[0]}.json"))
    assert (job["status"], job["total"], job["progress"]) == ("queued", None, None)
    assert zendesk_sim.ticket_state(ids[0]) == "deleted"
    zendesk_sim.finish_jobs()
    done = poll(zd, job["id"])
    assert (done["status"], done["results"]) == ("completed", {"success": True})
    assert zendesk_sim.ticket_state(ids[0]) == "purged"
    assert zd.put(f"deleted_tickets/{ids[0]}/restore").json() == NOT_FOUND
    assert zd.get(f"tickets/{ids[0]}").status_code == 404
    assert deleted_ids(zd) == []


def test_purge_many_reports_failure_but_purges_the_others(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    ids = seed(zendesk_sim, 3)
    zendesk_sim.agent_act("delete", ids[:2])
    job = job_of(zd.delete("deleted_tickets/destroy_many", params={"ids": f"{ids[0]},{ids[2]}"}))
    zendesk_sim.finish_jobs()
    assert poll(zd, job["id"])["results"] == {"success": False}
    assert zendesk_sim.ticket_state(ids[0]) == "purged"
    assert zendesk_sim.ticket_state(ids[2]) == "active"
    assert zd.delete("deleted_tickets/destroy_many", params={"ids": str(ids[2])}).status_code == 404


# ---- jobs -----------------------------------------------------------------------------------


def test_job_statuses_show_many_unknown_and_expiry(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    ids = seed(zendesk_sim, 2)
    first = job_of(zd.delete("tickets/destroy_many", params={"ids": str(ids[0])}))
    second = job_of(zd.delete("tickets/destroy_many", params={"ids": str(ids[1])}))
    many = zd.get("job_statuses/show_many.json", params={"ids": f"{first['id']},V3-nope"})
    assert [j["id"] for j in many.json()["job_statuses"]] == [first["id"]]
    assert zd.get("job_statuses/V3-0000").json() == NOT_FOUND
    zendesk_sim.advance(86_400)
    assert zd.get(f"job_statuses/{second['id']}").status_code == 404  # kept for one day


def test_fresh_job_can_answer_404_for_a_moment(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    zendesk_sim.configure({"job_404_seconds": 0.5})
    ids = seed(zendesk_sim, 1)
    job = job_of(zd.delete("tickets/destroy_many", params={"ids": str(ids[0])}))
    assert zd.get(f"job_statuses/{job['id']}").status_code == 404
    zendesk_sim.advance(0.5)
    assert zd.get(f"job_statuses/{job['id']}").status_code == 200


def test_job_failed_fault(zd: ZendeskClient, zendesk_sim: ZendeskSimulator) -> None:
    ids = seed(zendesk_sim, 2)
    zd.admin("POST", "faults", {"rules": [{"kind": "job_failed", "count": 1}]})
    job = job_of(zd.delete("tickets/destroy_many", params={"ids": str(ids[0])}))
    zendesk_sim.finish_jobs()
    failed = poll(zd, job["id"])
    assert failed["status"] == "failed"
    assert zendesk_sim.ticket_state(ids[0]) == "active"  # a failed job changes nothing
    job = job_of(zd.delete("tickets/destroy_many", params={"ids": str(ids[0])}))
    zendesk_sim.finish_jobs()
    assert poll(zd, job["id"])["status"] == "completed"


def test_too_many_jobs(zd: ZendeskClient, zendesk_sim: ZendeskSimulator) -> None:
    ids = seed(zendesk_sim, 31)
    for ticket_id in ids[:30]:
        job_of(zd.delete("tickets/destroy_many", params={"ids": str(ticket_id)}))
    refused = zd.delete("tickets/destroy_many", params={"ids": str(ids[30])})
    assert refused.status_code == 429
    assert refused.json()["error"] == "TooManyJobs"
    assert int(refused.headers["Retry-After"]) >= 1
    zendesk_sim.finish_jobs()
    assert zd.delete("tickets/destroy_many", params={"ids": str(ids[30])}).status_code == 200


# ---- deleted tickets listing ----------------------------------------------------------------


def test_deleted_tickets_cursor_pagination_walks_everything(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    ids = seed(zendesk_sim, 7)
    zendesk_sim.agent_act("delete", ids)
    seen: list[int] = []
    url: str | None = zd.url("deleted_tickets.json?page[size]=3")
    pages = 0
    while url:
        page = zd.session.get(url, timeout=5).json()
        seen += [t["id"] for t in page["deleted_tickets"]]
        # like the recorded /tickets pages: both links on every page, has_more says go on
        assert page["links"]["next"] is not None
        assert page["links"]["prev"] is not None
        url = page["links"]["next"] if page["meta"]["has_more"] else None
        pages += 1
    assert seen == ids
    assert pages == 3
    # page[after] and page[before] by hand
    first = zd.get("deleted_tickets", params={"page[size]": 3}).json()
    second = zd.get(
        "deleted_tickets", params={"page[size]": 3, "page[after]": first["meta"]["after_cursor"]}
    ).json()
    back = zd.get(
        "deleted_tickets", params={"page[size]": 3, "page[before]": second["meta"]["before_cursor"]}
    ).json()
    assert [t["id"] for t in back["deleted_tickets"]] == ids[:3]
    bad = zd.get("deleted_tickets", params={"page[after]": "!!"})
    assert bad.status_code == 400


def test_deleted_tickets_offset_pagination(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    ids = seed(zendesk_sim, 5)
    zendesk_sim.agent_act("delete", ids)
    first = zd.get("deleted_tickets.json", params={"per_page": 2}).json()
    assert first["count"] == 5
    assert [t["id"] for t in first["deleted_tickets"]] == ids[:2]
    assert first["previous_page"] is None
    last = zd.session.get(
        zd.session.get(first["next_page"], timeout=5).json()["next_page"], timeout=5
    ).json()
    assert [t["id"] for t in last["deleted_tickets"]] == ids[4:]
    assert last["next_page"] is None
    assert "page=2" in last["previous_page"]
    deep = zd.get("deleted_tickets", params={"page": 101, "per_page": 100})
    assert deep.status_code == 400


def test_deleted_tickets_sorting(zd: ZendeskClient, zendesk_sim: ZendeskSimulator) -> None:
    ids = zendesk_sim.seed_tickets([{"subject": s} for s in ("banana", "Apple", "cherry")])
    for ticket_id in (ids[1], ids[2], ids[0]):  # deletion order differs from id order
        zendesk_sim.agent_act("delete", [ticket_id])
        zendesk_sim.advance(10)
    assert deleted_ids(zd) == ids
    assert deleted_ids(zd, sort_by="id", sort_order="desc") == ids[::-1]
    assert deleted_ids(zd, sort_by="deleted_at") == [ids[1], ids[2], ids[0]]
    assert deleted_ids(zd, sort_by="deleted_at", sort_order="desc") == [ids[0], ids[2], ids[1]]
    assert deleted_ids(zd, sort_by="subject") == [ids[1], ids[0], ids[2]]
    cursor_desc = deleted_ids(zd, sort_by="deleted_at", sort_order="desc", **{"page[size]": 2})
    assert cursor_desc == [ids[0], ids[2]]
    assert zd.get("deleted_tickets", params={"sort_by": "status"}).status_code == 400


# ---- incremental export ---------------------------------------------------------------------


def test_incremental_export_shows_live_deleted_and_scrubbed(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    ids = seed(zendesk_sim, 3)
    zendesk_sim.advance(60)
    zendesk_sim.agent_act("delete", [ids[1]])
    zendesk_sim.agent_act("purge", [ids[2]])
    rows = {t["id"]: t for t in export_all(zd)}
    assert rows[ids[0]]["status"] == "open"
    assert (rows[ids[1]]["status"], rows[ids[1]]["subject"]) == ("deleted", "Ticket 1")
    scrubbed = rows[ids[2]]
    assert (scrubbed["status"], scrubbed["subject"], scrubbed["description"]) == (
        "deleted",
        "SCRUBBED",
        "X",
    )
    assert scrubbed["raw_subject"] == "SCRUBBED"
    live_only = zd.get(
        "incremental/tickets/cursor", params={"start_time": 0, "exclude_deleted": "true"}
    )
    assert [t["id"] for t in live_only.json()["tickets"]] == [ids[0]]


def test_incremental_export_cursor_sees_every_later_change(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    ids = seed(zendesk_sim, 5)
    page = zd.get("incremental/tickets/cursor", params={"start_time": 0, "per_page": 2}).json()
    assert [t["id"] for t in page["tickets"]] == ids[:2]
    assert page["end_of_stream"] is False
    assert "cursor=" in page["after_url"]
    page = zd.session.get(page["after_url"], timeout=5).json()
    assert [t["id"] for t in page["tickets"]] == ids[2:4]
    page = zd.session.get(page["after_url"], timeout=5).json()
    assert ([t["id"] for t in page["tickets"]], page["end_of_stream"]) == ([ids[4]], True)
    cursor = page["after_cursor"]
    empty = zd.get("incremental/tickets/cursor", params={"cursor": cursor}).json()
    assert (empty["tickets"], empty["end_of_stream"], empty["after_cursor"]) == ([], True, cursor)
    zendesk_sim.advance(5)
    zendesk_sim.agent_act("delete", [ids[0]])
    zendesk_sim.advance(5)
    zendesk_sim.agent_act("restore", [ids[0]])
    zendesk_sim.agent_act("update", [ids[3]], fields={"status": "solved"})
    changed = zd.get("incremental/tickets/cursor", params={"cursor": cursor}).json()["tickets"]
    assert [(t["id"], t["status"]) for t in changed] == [(ids[0], "open"), (ids[3], "solved")]
    ordered = [(t["generated_timestamp"], t["id"]) for t in export_all(zd)]
    assert ordered == sorted(ordered)


def test_incremental_export_start_time_filters_and_validation(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    seed(zendesk_sim, 2)
    zendesk_sim.advance(600)
    later = seed(zendesk_sim, 1)
    start = int((ZD_START + timedelta(seconds=300)).timestamp())
    rows = zd.get("incremental/tickets/cursor", params={"start_time": start}).json()
    assert [t["id"] for t in rows["tickets"]] == later
    future = int((ZD_START + timedelta(days=1)).timestamp())
    assert zd.get("incremental/tickets/cursor", params={"start_time": future}).status_code == 400
    assert zd.get("incremental/tickets/cursor").status_code == 400
    assert zd.get("incremental/tickets/cursor", params={"cursor": "???"}).status_code == 400


# ---- scrub ----------------------------------------------------------------------------------


def test_soft_deleted_tickets_are_scrubbed_after_30_days(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    ids = seed(zendesk_sim, 2)
    zd.delete(f"tickets/{ids[0]}")
    zd.delete(f"tickets/{ids[1]}")
    zendesk_sim.advance(86_400)
    zd.put(f"deleted_tickets/{ids[1]}/restore")  # a restore cancels the scrub
    zd.delete(f"tickets/{ids[1]}")  # ...and a new deletion restarts the 30 days
    zendesk_sim.advance(29 * 86_400 - 1)
    assert deleted_ids(zd) == ids
    zendesk_sim.advance(1)
    assert deleted_ids(zd) == [ids[1]]
    assert zd.put(f"deleted_tickets/{ids[0]}/restore").json() == NOT_FOUND
    row = next(t for t in export_all(zd) if t["id"] == ids[0])
    assert (row["subject"], row["status"]) == ("SCRUBBED", "deleted")
    assert zendesk_sim.get_ticket(ids[0]) is not None
    assert zendesk_sim.get_ticket(ids[0]).purge_cause == "retention"  # type: ignore[union-attr]
    zendesk_sim.advance(86_400)
    assert deleted_ids(zd) == []


# ---- rate limits ----------------------------------------------------------------------------


def test_every_response_carries_rate_limit_headers(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    zendesk_sim.configure({"rate_limits": True})
    seed(zendesk_sim, 1)
    headers = zd.get("tickets/1").headers
    assert headers["x-rate-limit"] == "700"
    assert headers["x-rate-limit-remaining"] == "699"
    assert headers["ratelimit-limit"] == "700"
    assert headers["ratelimit-remaining"] == "699"
    assert headers["ratelimit-reset"] == "60"  # the frozen clock sits on a whole minute
    assert zd.get("tickets/999").headers["x-rate-limit-remaining"] == "698"


def test_account_limit_by_plan_answers_429(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    zendesk_sim.configure({"rate_limits": True, "plan": 3})
    seed(zendesk_sim, 1)
    codes = [zd.get("tickets/1").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    refused = zd.get("tickets/1")
    assert refused.json()["error"] == "APIRateLimitExceeded"
    assert refused.headers["Retry-After"] == "60"
    assert refused.headers["x-rate-limit-remaining"] == "0"
    zendesk_sim.advance(int(refused.headers["Retry-After"]))
    assert zd.get("tickets/1").status_code == 200


def test_plans() -> None:
    assert [plan_limit(p) for p in ("team", "professional", "enterprise", "enterprise_plus")] == [
        200,
        400,
        700,
        2500,
    ]
    assert plan_limit(123) == 123
    with pytest.raises(ValueError, match="unknown plan"):
        plan_limit("gold")
    sim = ZendeskSimulator(plan="team", clock=SimClock(ZD_START, frozen=True))
    assert sim.config.account_limit == 200


def test_endpoint_limit_on_deleted_tickets_list(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    zendesk_sim.configure({"rate_limits": True})
    answers = [zd.get("deleted_tickets") for _ in range(11)]
    assert [a.status_code for a in answers] == [200] * 10 + [429]
    assert answers[0].headers["zendesk-ratelimit-deleted-tickets-index"] == (
        "total=10; remaining=9; resets=60"
    )
    refused = answers[10]
    assert refused.json()["error"] == "APIRateLimitExceeded"
    assert refused.headers["Retry-After"] == "60"
    assert "remaining=0" in refused.headers["zendesk-ratelimit-deleted-tickets-index"]
    assert zd.get("tickets/show_many", params={"ids": "1"}).status_code == 200  # others fine
    zendesk_sim.advance(60)
    assert zd.get("deleted_tickets").status_code == 200


def test_endpoint_limit_on_incremental_export(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    zendesk_sim.configure({"rate_limits": True})
    params = {"start_time": 0}
    codes = [zd.get("incremental/tickets/cursor", params=params).status_code for _ in range(11)]
    assert codes == [200] * 10 + [429]
    refused = zd.get("incremental/tickets/cursor", params=params)
    assert "incremental export" in refused.json()["description"]


# ---- faults ---------------------------------------------------------------------------------


def test_fault_status_503_with_retry_after(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    seed(zendesk_sim, 1)
    zd.admin(
        "POST",
        "faults",
        {
            "rules": [
                {"kind": "status", "status": 503, "retry_after": 5, "route": "GET tickets/{id}"}
            ]
        },
    )
    refused = zd.get("tickets/1")
    assert (refused.status_code, refused.headers["Retry-After"]) == (503, "5")
    assert zd.get("tickets/show_many", params={"ids": "1"}).status_code == 200
    zd.admin("DELETE", "faults")
    assert zd.get("tickets/1").status_code == 200


def test_fault_429_by_count_looks_like_zendesk(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    zendesk_sim.add_fault("status", status=429, retry_after=2, path="deleted_tickets", count=1)
    refused = zd.get("deleted_tickets")
    assert refused.status_code == 429
    assert refused.json()["error"] == "TooManyRequests"
    assert zd.get("deleted_tickets").status_code == 200


def test_fault_malformed_after_the_action(zd: ZendeskClient, zendesk_sim: ZendeskSimulator) -> None:
    ids = seed(zendesk_sim, 1)
    zendesk_sim.add_fault("malformed", route="DELETE tickets/destroy_many", count=1)
    answer = zd.delete("tickets/destroy_many", params={"ids": str(ids[0])})
    assert answer.status_code == 200
    with pytest.raises(ValueError):
        answer.json()
    zendesk_sim.finish_jobs()
    assert zendesk_sim.ticket_state(ids[0]) == "deleted"  # the job ran all the same


def test_fault_drop_and_slow(zd: ZendeskClient, zendesk_sim: ZendeskSimulator) -> None:
    seed(zendesk_sim, 1)
    zendesk_sim.add_fault("drop", route="GET tickets/{id}", count=1)
    with pytest.raises(requests.ConnectionError):
        zd.get("tickets/1")
    assert zd.get("tickets/1").status_code == 200
    zendesk_sim.add_fault("slow", route="GET tickets/{id}", delay=1.0, count=1)
    with pytest.raises(requests.Timeout):
        zd.get("tickets/1", timeout=0.1)


def test_fault_probability_is_seeded(zendesk_sim: ZendeskSimulator) -> None:
    def outcome() -> list[int]:
        sim = ZendeskSimulator(clock=SimClock(ZD_START, frozen=True), seed=3)
        sim.configure({"rate_limits": False})
        sim.seed_tickets(count=1)
        sim.add_fault("status", status=500, probability=0.3)
        with sim:
            client = ZendeskClient(sim)
            return [client.get("tickets/1").status_code for _ in range(30)]

    first = outcome()
    assert first == outcome()
    assert 500 in first
    assert 200 in first


# ---- admin surface --------------------------------------------------------------------------


def test_admin_seed_over_http(zd: ZendeskClient) -> None:
    answer = zd.admin(
        "POST",
        "seed",
        {
            "tickets": [
                {"subject": "a", "state": "deleted", "actor": {"id": 9, "name": "Bo"}},
                {"subject": "b", "state": "purged"},
            ],
            "count": 3,
            "template": {"subject": "bulk {n}", "external_id": "so-{id}"},
        },
    )
    assert answer["count"] == 5
    ids = answer["ids"]
    listed = zd.get("deleted_tickets").json()["deleted_tickets"]
    assert [(t["id"], t["actor"]["name"]) for t in listed] == [(ids[0], "Bo")]
    assert zd.get(f"tickets/{ids[2]}").json()["ticket"]["external_id"] == f"so-{ids[2]}"
    assert zd.get(f"tickets/{ids[4]}").json()["ticket"]["subject"] == "bulk 2"


def test_admin_act_as_a_named_agent(zd: ZendeskClient, zendesk_sim: ZendeskSimulator) -> None:
    ids = seed(zendesk_sim, 4)
    ann = {"id": 7, "name": "Ann"}
    done = zd.admin("POST", "act", {"agent": ann, "action": "delete", "ids": [ids[0], 999]})
    assert done == {"done": [ids[0]], "skipped": [999]}
    assert zd.get("deleted_tickets").json()["deleted_tickets"][0]["actor"] == ann
    zd.admin("POST", "act", {"agent": ann, "action": "restore", "ids": [ids[0]]})
    assert zd.get(f"tickets/{ids[0]}").status_code == 200
    zd.admin("POST", "act", {"agent": ann, "action": "purge", "ids": [ids[1]]})  # hard delete
    assert zendesk_sim.ticket_state(ids[1]) == "purged"
    merged = zd.admin("POST", "act", {"action": "merge", "ids": [ids[2]], "into": ids[3]})
    assert merged["done"] == [ids[2]]
    assert zd.get(f"tickets/{ids[2]}").json()["ticket"]["status"] == "closed"  # not deleted
    bad = requests.post(f"{zendesk_sim.admin_url}/act", json={"action": "fly", "ids": [1]})
    assert bad.status_code == 400


def test_admin_counters_config_and_reset(zd: ZendeskClient, zendesk_sim: ZendeskSimulator) -> None:
    ids = seed(zendesk_sim, 2)
    zd.get(f"tickets/{ids[0]}")
    zd.delete("tickets/destroy_many", params={"ids": str(ids[0])})
    zd.delete("tickets/destroy_many", params={"ids": str(ids[1])})
    counters = zd.admin("GET", "counters")
    assert counters["routes"] == {"DELETE tickets/destroy_many": 2, "GET tickets/{id}": 1}
    assert counters["total"] == 3
    config = zd.admin("POST", "config", {"scrub_days": 10, "plan": "team"})
    assert (config["scrub_days"], config["account_limit"]) == (10.0, 200)
    assert requests.post(f"{zendesk_sim.admin_url}/config", json={"nope": 1}).status_code == 400
    zd.admin("POST", "reset")
    assert zd.get(f"tickets/{ids[0]}").status_code == 404
    assert zd.admin("GET", "counters")["total"] == 1
    assert zd.admin("GET", "config")["rate_limits"] is False  # configuration survives a reset


def test_one_hundred_thousand_tickets(zd: ZendeskClient, zendesk_sim: ZendeskSimulator) -> None:
    ids = seed(zendesk_sim, 100_000)
    assert len(ids) == 100_000
    zendesk_sim.advance(10)
    zendesk_sim.agent_act("delete", ids[-300:])
    listed = zd.get("deleted_tickets", params={"sort_by": "deleted_at", "sort_order": "desc"})
    assert listed.json()["count"] == 300
    assert zd.get(f"tickets/{ids[50_000]}").status_code == 200
    tail = zd.get(
        "incremental/tickets/cursor",
        params={"start_time": int(ZD_START.timestamp()) + 5, "per_page": 1000},
    ).json()
    assert [t["id"] for t in tail["tickets"]] == ids[-300:]  # only what changed since
    assert tail["end_of_stream"] is True
