"""The simulator's answers in the real shapes recorded from Zendesk (zenpy's Betamax cassettes,
`facetoe/zenpy` `tests/test_api/betamax/`), field for field where a client could depend on it."""

from __future__ import annotations

from typing import Any

from bridge.vendors.zendesk.sim.simulator import ZendeskSimulator
from tests.sandbox.conftest import ZendeskClient

#: the keys of a recorded ticket (show_many in `TestTicketCreateUpdateDelete.*-delete-many`),
#: in order, plus `generated_timestamp` (recorded in the export)
RECORDED_TICKET_KEYS = [
    "url",
    "id",
    "external_id",
    "via",
    "created_at",
    "updated_at",
    "type",
    "subject",
    "raw_subject",
    "description",
    "priority",
    "status",
    "recipient",
    "requester_id",
    "submitter_id",
    "assignee_id",
    "organization_id",
    "group_id",
    "collaborator_ids",
    "follower_ids",
    "email_cc_ids",
    "forum_topic_id",
    "problem_id",
    "has_incidents",
    "is_public",
    "due_at",
    "tags",
    "custom_fields",
    "satisfaction_rating",
    "sharing_agreement_ids",
    "custom_status_id",
    "fields",
    "followup_ids",
    "ticket_form_id",
    "brand_id",
    "allow_channelback",
    "allow_attachments",
    "from_messaging_channel",
    "generated_timestamp",
]
#: null in the recording of a plain API-created ticket
RECORDED_NULLS = {
    "external_id",
    "type",
    "priority",
    "recipient",
    "assignee_id",
    "organization_id",
    "group_id",
    "forum_topic_id",
    "problem_id",
    "due_at",
    "satisfaction_rating",
}


def _plain_ticket(sim: ZendeskSimulator) -> int:
    """A ticket with nothing optional set, like the recorded ones."""
    return sim.seed_tickets([{"subject": "test", "description": "test"}])[0]


def _assert_recorded_ticket(ticket: dict[str, Any]) -> None:
    assert list(ticket) == RECORDED_TICKET_KEYS
    assert {k for k, v in ticket.items() if v is None} == RECORDED_NULLS
    assert ticket["via"] == {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}}


def test_unset_ticket_fields_are_null_not_missing(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    ticket_id = _plain_ticket(zendesk_sim)
    _assert_recorded_ticket(zd.get(f"tickets/{ticket_id}.json").json()["ticket"])
    many = zd.get("tickets/show_many.json", params={"ids": str(ticket_id)}).json()
    _assert_recorded_ticket(many["tickets"][0])
    export = zd.get("incremental/tickets/cursor.json", params={"start_time": 0}).json()
    _assert_recorded_ticket(export["tickets"][0])


def test_set_fields_are_values_and_a_scrubbed_ticket_keeps_every_key(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    ticket_id = zendesk_sim.seed_tickets(
        [{"subject": "s", "external_id": "so-1", "priority": "high", "type": "task"}]
    )[0]
    shown = zd.get(f"tickets/{ticket_id}").json()["ticket"]
    assert (shown["external_id"], shown["priority"], shown["type"]) == ("so-1", "high", "task")
    zendesk_sim.agent_act("purge", [ticket_id])
    row = zd.get("incremental/tickets/cursor", params={"start_time": 0}).json()["tickets"][0]
    assert list(row) == RECORDED_TICKET_KEYS
    # recorded scrubbed ticket 4034 (`TicketsIncrementalTest.test_get_values`)
    assert (row["subject"], row["raw_subject"], row["description"], row["status"]) == (
        "SCRUBBED",
        "SCRUBBED",
        "X",
        "deleted",
    )
    assert row["external_id"] is None


def test_job_status_nulls_are_present(zd: ZendeskClient, zendesk_sim: ZendeskSimulator) -> None:
    ticket_id = _plain_ticket(zendesk_sim)
    zendesk_sim.agent_act("delete", [ticket_id])
    job = zd.delete(f"deleted_tickets/{ticket_id}").json()["job_status"]
    # recorded: `TestDeletedTickets.test_permanently_delete` (queued purge)
    assert {k: job[k] for k in ("total", "progress", "message", "results")} == dict.fromkeys(
        ("total", "progress", "message", "results")
    )
    assert job["status"] == "queued"


def test_show_many_envelope(zd: ZendeskClient, zendesk_sim: ZendeskSimulator) -> None:
    ids = zendesk_sim.seed_tickets(count=3)
    zendesk_sim.agent_act("delete", [ids[1]])
    answer = zd.get("tickets/show_many.json", params={"ids": ",".join(map(str, [*ids, 999]))})
    body = answer.json()
    # recorded: `"next_page":null,"previous_page":null,"count":N` after `tickets`
    assert list(body) == ["tickets", "next_page", "previous_page", "count"]
    assert (body["next_page"], body["previous_page"], body["count"]) == (None, None, 2)
    assert [t["id"] for t in body["tickets"]] == [ids[0], ids[2]]


def test_cursor_pages_link_both_ways(zd: ZendeskClient, zendesk_sim: ZendeskSimulator) -> None:
    ids = zendesk_sim.seed_tickets(count=3)
    zendesk_sim.agent_act("delete", ids)
    first = zd.get("deleted_tickets.json", params={"page[size]": 2}).json()
    assert list(first) == ["deleted_tickets", "meta", "links"]
    assert list(first["meta"]) == ["has_more", "after_cursor", "before_cursor"]
    assert list(first["links"]) == ["prev", "next"]
    assert first["meta"]["has_more"] is True
    # recorded /tickets first page: prev is present, built on before_cursor
    assert first["meta"]["before_cursor"] is not None
    assert "page%5Bbefore%5D=" in first["links"]["prev"]
    last = zd.get(
        "deleted_tickets.json",
        params={"page[size]": 2, "page[after]": first["meta"]["after_cursor"]},
    ).json()
    assert [t["id"] for t in last["deleted_tickets"]] == ids[2:]
    # recorded: has_more false still carries links.next
    assert last["meta"]["has_more"] is False
    assert last["links"]["next"] is not None
    assert last["links"]["prev"] is not None
    back = zd.get(
        "deleted_tickets.json",
        params={"page[size]": 2, "page[before]": last["meta"]["before_cursor"]},
    ).json()
    assert [t["id"] for t in back["deleted_tickets"]] == ids[:2]


def test_tickets_list_in_cursor_pages(zd: ZendeskClient, zendesk_sim: ZendeskSimulator) -> None:
    """`GET /tickets?page[size]=` answers cursor pages in the recorded shape (zenpy
    `TestTicketsPagination.test_pagination`): node-zendesk lists tickets this way."""
    ids = zendesk_sim.seed_tickets(count=5)
    zendesk_sim.agent_act("delete", [ids[1]])
    first = zd.get("tickets.json", params={"page[size]": 2}).json()
    assert list(first) == ["tickets", "meta", "links"]
    assert list(first["meta"]) == ["has_more", "after_cursor", "before_cursor"]
    assert [t["id"] for t in first["tickets"]] == [ids[0], ids[2]]
    _assert_recorded_ticket(first["tickets"][0])
    assert first["meta"]["has_more"] is True
    assert "page%5Bafter%5D=" in first["links"]["next"]
    assert "page%5Bbefore%5D=" in first["links"]["prev"]
    last = zd.get(first["links"]["next"].split("/api/v2/", 1)[1]).json()
    assert [t["id"] for t in last["tickets"]] == [ids[3], ids[4]]
    assert last["meta"]["has_more"] is False
    back = zd.get(last["links"]["prev"].split("/api/v2/", 1)[1]).json()
    assert [t["id"] for t in back["tickets"]] == [ids[0], ids[2]]
    # without page[...] the listing stays offset-paginated
    assert set(zd.get("tickets.json").json()) == {"tickets", "count", "next_page", "previous_page"}


def test_export_before_cursor(zd: ZendeskClient, zendesk_sim: ZendeskSimulator) -> None:
    zendesk_sim.seed_tickets(count=3)
    first = zd.get("incremental/tickets/cursor.json", params={"start_time": 0, "per_page": 2})
    body = first.json()
    assert set(body) == {
        "tickets",
        "after_url",
        "before_url",
        "after_cursor",
        "before_cursor",
        "end_of_stream",
    }
    # recorded (`TicketsIncrementalTest.test_get_values`, start_time=0): both before_* null
    assert (body["before_cursor"], body["before_url"]) == (None, None)
    nxt = zd.get("incremental/tickets/cursor.json", params={"cursor": body["after_cursor"]}).json()
    assert nxt["before_cursor"] is not None
    assert "cursor=" in nxt["before_url"]


# ---- rate limits ----------------------------------------------------------------------------

#: the account headers recorded on every 2024 answer (zenpy `TicketsIncrementalTest`)
ACCOUNT_HEADERS = {
    "x-rate-limit",
    "x-rate-limit-remaining",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
}


def _rate_header_names(answer: Any) -> set[str]:
    """The rate-limit header names exactly as written on the wire (case kept)."""
    names = {str(k) for k in answer.raw.headers}
    return {n for n in names if "rate" in n.lower()}


def test_rate_limit_headers_have_the_real_names_only(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    zendesk_sim.configure({"rate_limits": True})
    ticket_id = _plain_ticket(zendesk_sim)
    assert _rate_header_names(zd.get(f"tickets/{ticket_id}")) == ACCOUNT_HEADERS
    export = zd.get("incremental/tickets/cursor", params={"start_time": 0})
    assert _rate_header_names(export) == ACCOUNT_HEADERS | {"zendesk-ratelimit-incremental-exports"}
    assert export.raw.headers["zendesk-ratelimit-incremental-exports"] == (
        "total=10; remaining=9; resets=60"
    )
    listing = zd.get("deleted_tickets")
    assert _rate_header_names(listing) == ACCOUNT_HEADERS | {
        "zendesk-ratelimit-deleted-tickets-index"
    }
    # the single-delete limit is documented (400/min) but its header name is not: none sent
    assert _rate_header_names(zd.delete(f"tickets/{ticket_id}")) == ACCOUNT_HEADERS


def test_export_429_body_as_recorded(zd: ZendeskClient, zendesk_sim: ZendeskSimulator) -> None:
    zendesk_sim.configure({"rate_limits": True})
    answers = [zd.get("incremental/tickets/cursor", params={"start_time": 0}) for _ in range(11)]
    refused = answers[-1]
    assert refused.status_code == 429
    # 3P airbytehq/airbyte#11899 (fact sheet §5)
    assert refused.json() == {
        "error": "APIRateLimitExceeded",
        "description": "Number of allowed incremental export API requests per minute exceeded",
    }
    assert refused.headers["Retry-After"] == "60"
    assert "remaining=0" in refused.raw.headers["zendesk-ratelimit-incremental-exports"]


# ---- start_time -----------------------------------------------------------------------------


def test_time_based_export_takes_an_integer_start_time(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    ids = zendesk_sim.seed_tickets(count=2)
    zendesk_sim.advance(120)
    now = int(zendesk_sim.clock.timestamp())
    answer = zd.get("incremental/tickets.json", params={"start_time": 0})
    assert answer.status_code == 200
    body = answer.json()
    # recorded envelope (zenpy `TicketsIncrementalTest.test_get_values`, time-based)
    assert list(body) == ["tickets", "count", "end_of_stream", "next_page", "end_time"]
    assert [t["id"] for t in body["tickets"]] == ids
    assert body["count"] == 2
    assert body["end_of_stream"] is True
    assert body["end_time"] == body["tickets"][-1]["generated_timestamp"] <= now
    assert body["next_page"].endswith(f"incremental/tickets.json?start_time={body['end_time']}")
    _assert_recorded_ticket(body["tickets"][0])
    assert zd.get("incremental/tickets", params={"start_time": now}).status_code == 200


def test_a_whole_decimal_start_time_is_read_and_a_fraction_refused(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    """tap-zendesk sends `datetime.timestamp()` (`1704067200.0`) on every tickets sync, and
    works against Zendesk; a real fraction of a second is refused."""
    ids = zendesk_sim.seed_tickets(count=1)
    stamp = int(zendesk_sim.clock.timestamp())
    zendesk_sim.advance(120)
    for path in ("incremental/tickets.json", "incremental/tickets/cursor.json"):
        for value in (f"{stamp}.0", f"{stamp}.", f"{stamp}.000", str(stamp)):
            answer = zd.get(path, params={"start_time": value})
            assert answer.status_code == 200, (path, value)
            assert [t["id"] for t in answer.json()["tickets"]] == ids
        late = zd.get(path, params={"start_time": f"{stamp + 1}.0"})
        assert late.json()["tickets"] == []
        fraction = zd.get(path, params={"start_time": f"{stamp}.75"})
        assert fraction.status_code == 400
        assert fraction.json() == {
            "error": "InvalidValue",
            "description": "start_time must be a whole number of seconds",
        }


def test_a_start_time_that_is_not_a_number_is_refused(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    zendesk_sim.seed_tickets(count=1)
    zendesk_sim.advance(120)
    for path in ("incremental/tickets.json", "incremental/tickets/cursor.json"):
        for value in ("2024-05-01T12:00:00Z", "1e9", "soon", ""):
            answer = zd.get(path, params={"start_time": value})
            assert answer.status_code == 400, (path, value)
            assert answer.json() == {
                "error": "InvalidValue",
                "description": "start_time must be a number of Unix seconds",
            }


def test_an_unreadable_cursor_beside_a_start_time_reads_from_the_start_time(
    zd: ZendeskClient, zendesk_sim: ZendeskSimulator
) -> None:
    """node-zendesk's exportCursor(start) sends `cursor=undefined` for its first page and
    works against Zendesk: the start_time is read; an unreadable cursor alone is a 400."""
    ids = zendesk_sim.seed_tickets(count=2)
    stamp = int(zendesk_sim.clock.timestamp())
    zendesk_sim.advance(120)
    path = "incremental/tickets/cursor.json"
    first = zd.get(path, params={"start_time": stamp, "cursor": "undefined"})
    assert first.status_code == 200
    assert [t["id"] for t in first.json()["tickets"]] == ids
    assert first.json()["before_cursor"] is None  # a start_time page, as recorded
    alone = zd.get(path, params={"cursor": "undefined"})
    assert alone.status_code == 400
    assert alone.json() == {"error": "InvalidValue", "description": "cursor is invalid"}
    # a real cursor wins over the start_time node-zendesk sends with it on every page
    after = first.json()["after_cursor"]
    again = zd.get(path, params={"start_time": stamp, "cursor": after})
    assert again.json()["tickets"] == []
