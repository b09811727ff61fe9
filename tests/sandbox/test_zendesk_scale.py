"""The Zendesk simulator's indexes and page writing: what makes a page cost the page, not
the tenant (issue 16), checked for behaviour: the same answers as a plain sorted list and
a JSON encoder would give."""

from __future__ import annotations

import json
import random
from bisect import bisect_left, bisect_right
from typing import Any

from bridge.vendors.zendesk.sim.render import iso
from bridge.vendors.zendesk.sim.simulator import ZendeskSimulator
from bridge.vendors.zendesk.sim.store import SortedKeys, page_keys
from tests.sandbox.conftest import ZD_START, ZendeskClient

#: the recorded ticket's fields, in the recorded order (zenpy cassettes)
TICKET_FIELDS = [
    "url", "id", "external_id", "via", "created_at", "updated_at", "type", "subject",
    "raw_subject", "description", "priority", "status", "recipient", "requester_id",
    "submitter_id", "assignee_id", "organization_id", "group_id", "collaborator_ids",
    "follower_ids", "email_cc_ids", "forum_topic_id", "problem_id", "has_incidents",
    "is_public", "due_at", "tags", "custom_fields", "satisfaction_rating",
    "sharing_agreement_ids", "custom_status_id", "fields", "followup_ids", "ticket_form_id",
    "brand_id", "allow_channelback", "allow_attachments", "from_messaging_channel",
    "generated_timestamp",
]  # fmt: skip


def test_sorted_keys_match_a_sorted_list() -> None:
    """Adds and removes in any order (chunks split and empty), then every rank, slice and
    lazy range agrees with bisect on a plain sorted list."""
    rng = random.Random(7)
    keys, plain = SortedKeys(), []
    SortedKeys.CHUNK, chunk = 8, SortedKeys.CHUNK
    try:
        for _ in range(3000):
            key = (rng.randrange(50), rng.randrange(10_000))
            if key in plain and rng.random() < 0.9:
                keys.remove(key)
                plain.remove(key)
            elif key not in plain:
                keys.add(key)
                plain.append(key)
                plain.sort()
        keys.remove((999, 0))  # absent: nothing happens
        assert list(keys) == plain
        assert len(keys) == len(plain)
        for probe in [(-1,), (0,), (25, 5000), (49, 10**9), (60,)]:
            assert keys.rank(probe) == bisect_left(plain, probe)
            assert keys.rank(probe, right=True) == bisect_right(plain, probe)
        n = len(plain)
        for start, stop in [(0, 5), (3, 40), (n - 7, n + 3), (n + 1, n + 5), (10, 10)]:
            assert keys.slice(start, stop) == plain[max(0, start) : stop]
            assert (
                list(keys.between(start, stop, descending=True))
                == (plain[max(0, start) : stop][::-1])
            )
    finally:
        SortedKeys.CHUNK = chunk


def test_cursor_pages_walk_every_key_once_both_ways() -> None:
    keys = SortedKeys((i,) for i in range(1, 251))
    seen: list[tuple[Any, ...]] = []
    after = None
    while True:
        page, more = page_keys(keys, size=100, descending=True, after=after)
        seen += page
        if not more:
            break
        after = page[-1]
    assert seen == [(i,) for i in range(250, 0, -1)]
    back, more = page_keys(keys, size=100, descending=True, before=(150,))
    assert back == [(i,) for i in range(250, 150, -1)]
    assert not more


def test_a_ticket_is_written_as_the_recorded_shape(zendesk_sim: ZendeskSimulator) -> None:
    """Every field, in the recorded order, strings escaped as a JSON encoder would."""
    subject = 'Ünïcode "quoted" \\ \u2028 line\nbreak'
    ids = zendesk_sim.seed_tickets(
        [
            {"subject": subject, "external_id": "so-1", "tags": ["a", "é"], "priority": "high"},
            {"subject": "gone", "state": "purged", "external_id": "so-2", "tags": ["x"]},
            {"subject": "bin", "state": "deleted", "status": "pending"},
        ]
    )
    rows = [zendesk_sim._ticket_json(zendesk_sim.store.tickets[i]) for i in ids]
    assert all(list(row) == TICKET_FIELDS for row in rows)
    live, purged, deleted = rows
    assert (live["subject"], live["tags"], live["status"]) == (subject, ["a", "é"], "new")
    assert (live["priority"], live["external_id"], live["assignee_id"]) == ("high", "so-1", None)
    assert live["created_at"] == iso(ZD_START) == ZD_START.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert live["url"] == f"{zendesk_sim.base_url}/api/v2/tickets/{ids[0]}.json"
    assert (purged["subject"], purged["description"], purged["external_id"]) == (
        "SCRUBBED",
        "X",
        None,
    )
    assert (purged["tags"], purged["status"]) == ([], "deleted")
    assert (deleted["subject"], deleted["status"]) == ("bin", "deleted")


def test_ticket_list_cursor_pages_follow_deletes_and_archiving(
    zendesk_sim: ZendeskSimulator, zd: ZendeskClient
) -> None:
    """`GET /tickets` cursor pages read an index of listed tickets: a soft delete leaves
    it, a restore comes back, archived and purged tickets stay out."""
    ids = zendesk_sim.seed_tickets(count=8, template={"subject": "T {n}", "status": "closed"})
    zendesk_sim.agent_act("delete", ids[:3], agent=(7, "Ann"))
    zendesk_sim.agent_act("restore", ids[1:2])
    zendesk_sim.agent_act("purge", ids[5:6])
    zendesk_sim.agent_act("archive", ids[6:7])
    listed: list[int] = []
    params: dict[str, Any] = {"page[size]": 2}
    while True:
        page = zd.get("tickets.json", params=params).json()
        listed += [t["id"] for t in page["tickets"]]
        if not page["meta"]["has_more"]:
            break
        params["page[after]"] = page["meta"]["after_cursor"]
    assert listed == [ids[1], ids[3], ids[4], ids[7]]


def test_audit_log_cursor_pages_within_a_window(
    zendesk_sim: ZendeskSimulator, zd: ZendeskClient
) -> None:
    """Entries outside the `filter[created_at]` window or the filters never show; pages
    go newest first and back again."""
    zendesk_sim.configure({"audit_logs": True})
    ids = zendesk_sim.seed_tickets(count=30)
    for ticket_id in ids:
        zendesk_sim.agent_act("delete", [ticket_id], agent=(7, "Ann"))
        zendesk_sim.advance(60)
    zendesk_sim.agent_act("restore", ids[10:20], agent=(7, "Ann"))  # `update` entries
    start, end = iso(ZD_START.replace(minute=5)), iso(ZD_START.replace(minute=24))
    base = {
        "filter[action]": "destroy",
        "filter[created_at][]": [start, end],
        "page[size]": 7,
    }
    got: list[int] = []
    params: dict[str, Any] = dict(base)
    pages = []
    while True:
        page = zd.get("audit_logs.json", params=params).json()
        pages.append(page)
        got += [e["source_id"] for e in page["audit_logs"]]
        if not page["meta"]["has_more"]:
            break
        params = {**base, "page[after]": page["meta"]["after_cursor"]}
    assert got == ids[24:4:-1]  # minutes 5..24, newest first
    previous = zd.get(
        "audit_logs.json", params={**base, "page[before]": pages[1]["meta"]["before_cursor"]}
    ).json()
    assert [e["source_id"] for e in previous["audit_logs"]] == got[:7]


def test_export_pages_cost_the_page(zendesk_sim: ZendeskSimulator, zd: ZendeskClient) -> None:
    """Many tickets sharing one second, read in small pages by cursor: every ticket once,
    in (generated_timestamp, id) order, whatever changes between pages."""
    ids = zendesk_sim.seed_tickets(count=25)
    zendesk_sim.advance(120)
    rows: list[dict[str, Any]] = []
    page = zd.get("incremental/tickets/cursor.json", params={"start_time": 0, "per_page": 10})
    body = page.json()
    rows += body["tickets"]
    zendesk_sim.agent_act("delete", [ids[0], ids[20]], agent=(7, "Ann"))  # read / not yet
    while not body["end_of_stream"]:
        params = {"cursor": body["after_cursor"], "per_page": 10}
        body = zd.get("incremental/tickets/cursor.json", params=params).json()
        rows += body["tickets"]
    order = [(r["generated_timestamp"], r["id"]) for r in rows]
    assert order == sorted(order)
    assert [r["id"] for r in rows] == [*ids[:20], *ids[21:], ids[0], ids[20]]
    assert json.loads(json.dumps(rows[-1]))["status"] == "deleted"
