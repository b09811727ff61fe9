"""node-zendesk 6.0.1 (npm, unmodified) drives the Zendesk simulator.

Each test runs one script of `tests/clients/node/zendesk_*.js` with the simulator's address
(node-zendesk's `endpointUri`) and checks both what the client made of the answers and
the simulator's own state afterwards.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bridge.vendors.zendesk.sim.simulator import ZendeskSimulator
from tests.clients.conftest import run_node


def _env(sim: ZendeskSimulator) -> dict[str, str]:
    return {
        "ZD_API": f"{sim.base_url}/api/v2",
        "ZD_ADMIN": sim.admin_url,
        "ZD_EMAIL": sim.email,
        "ZD_TOKEN": "sandbox-token",
    }


def _run(node_clients: Path, sim: ZendeskSimulator, script: str) -> Any:
    return run_node(node_clients, script, _env(sim))


def test_deletion_lifecycle(node_clients: Path, zendesk_sim: ZendeskSimulator) -> None:
    # more than one page of 100: node-zendesk lists /tickets in cursor pages of page[size]=100
    seeded = zendesk_sim.seed_tickets(count=120)

    out = _run(node_clients, zendesk_sim, "zendesk_lifecycle.js")

    imported = [t["id"] for t in out["imported"]]
    a, b, c, d, e, f = imported
    assert [t["external_id"] for t in out["imported"]] == [f"so-{n}" for n in range(1, 7)]
    assert out["listed"] == seeded + imported
    assert out["shown"] == {"id": a, "external_id": "so-1", "status": "new"}
    assert out["many"] == [a, b, c]
    assert out["byExternal"] == [b]
    # bulk soft delete: a queued "Bulk Update Ticket" job, update results per id once done
    assert out["softJob"] == {"status": "queued", "job_type": "Bulk Update Ticket"}
    assert out["softDone"]["status"] == "completed"
    assert [r["id"] for r in out["softDone"]["results"]] == [a, b, c, d, e]
    assert all(r["success"] and r["action"] == "update" for r in out["softDone"]["results"])
    assert out["jobsShown"][0]["status"] == "completed"
    assert out["deleted"] == [a, b, c, d, e, f]
    assert out["restored"] == {}
    assert out["restoredMany"] == {}
    assert out["purgeOne"] == {"status": "queued", "total": None}
    assert out["purgeOneDone"]["status"] == "completed"
    assert out["purgeManyDone"]["status"] == "completed"
    assert out["deletedAfter"] == []
    assert out["missing"]["statusCode"] == 404
    assert out["live"] == [*seeded, a, b, c]

    states = {i: zendesk_sim.ticket_state(i) for i in imported}
    assert states == {a: "active", b: "active", c: "active"} | dict.fromkeys([d, e, f], "purged")
    purges = zendesk_sim.purge_log()
    assert sorted(p["ticket_id"] for p in purges) == [d, e, f]
    assert {(p["duplicate"], p["outcome"]) for p in purges} == {(False, "done")}
    routes = zendesk_sim.counters
    assert routes["DELETE tickets/destroy_many"] == 1
    assert routes["DELETE tickets/{id}"] == 1
    assert routes["PUT deleted_tickets/{id}/restore"] == 1
    assert routes["PUT deleted_tickets/restore_many"] == 1
    assert routes["DELETE deleted_tickets/{id}"] == 1
    assert routes["DELETE deleted_tickets/destroy_many"] == 1


def _export_world(sim: ZendeskSimulator) -> list[int]:
    """Five tickets: two live, one soft-deleted, one purged (scrubbed), one updated later."""
    ids = sim.seed_tickets(count=5, template={"subject": "Printer {n}"})
    sim.advance(60)
    sim.agent_act("delete", [ids[1]], agent=(7, "Ann"))
    sim.agent_act("purge", [ids[2]], agent=(7, "Ann"))
    sim.advance(60)
    sim.agent_act("update", [ids[0]], fields={"priority": "high"})
    sim.advance(120)
    return ids


def test_time_based_export(node_clients: Path, zendesk_sim: ZendeskSimulator) -> None:
    ids = _export_world(zendesk_sim)
    updated = zendesk_sim.get_ticket(ids[0]).generated_timestamp  # type: ignore[union-attr]

    out = _run(node_clients, zendesk_sim, "zendesk_export_time.js")

    # tickets.incremental (getAll): the rows in export order, deleted ones included
    assert out["incremental"] == [
        {"id": ids[3], "status": "new", "subject": "Printer 3"},
        {"id": ids[4], "status": "new", "subject": "Printer 4"},
        {"id": ids[1], "status": "deleted", "subject": "Printer 1"},
        {"id": ids[2], "status": "deleted", "subject": "SCRUBBED"},
        {"id": ids[0], "status": "new", "subject": "Printer 0"},
    ]
    # ticketexport.export: the raw time-based envelope
    assert out["export"]["keys"] == ["tickets", "count", "end_of_stream", "next_page", "end_time"]
    assert out["export"]["count"] == 5
    assert out["export"]["end_of_stream"] is True
    assert out["export"]["end_time"] == updated
    # from end_time on: the last second again (the documented duplicates)
    assert out["again"] == [ids[0]]


def test_cursor_export_first_and_following_pages(
    node_clients: Path, zendesk_sim: ZendeskSimulator
) -> None:
    ids = _export_world(zendesk_sim)
    zendesk_sim.configure({"export_max_per_page": 2})

    out = _run(node_clients, zendesk_sim, "zendesk_export_cursor.js")

    # the first page, exportCursor(start), sends `cursor=undefined` beside the start_time
    pages = out["pages"]
    assert [p["ids"] for p in pages] == [[ids[3], ids[4]], [ids[1], ids[2]], [ids[0]]]
    assert [p["end_of_stream"] for p in pages] == [False, False, True]
    assert pages[0]["before_cursor"] is None  # recorded: none on the start_time page
    assert all(p["before_cursor"] for p in pages[1:])
    assert pages[1]["statuses"] == ["deleted", "deleted"]
    # reading again from the last cursor: nothing new
    assert out["caughtUp"] == []
    assert zendesk_sim.counters["GET incremental/tickets/cursor"] == 4


def test_rate_limited_export_is_seen_with_retry_after(
    node_clients: Path, zendesk_sim: ZendeskSimulator
) -> None:
    zendesk_sim.seed_tickets(count=2)
    zendesk_sim.advance(90)  # 12:01:30: the minute's window resets in 30 s
    zendesk_sim.configure({"rate_limits": True})

    out = _run(node_clients, zendesk_sim, "zendesk_ratelimit.js")

    # ten exports a minute, then node-zendesk hands back (does not throw) its 429 error
    assert out["ok"] == 10
    limited = out["limited"]
    assert limited["status"] == 429
    assert limited["statusCode"] == 429
    assert limited["message"] == "Zendesk rate limits 200 requests per minute"
    assert limited["retryAfter"] == "30"
    assert limited["body"] == {
        "error": "APIRateLimitExceeded",
        "description": "Number of allowed incremental export API requests per minute exceeded",
    }
    assert zendesk_sim.counts()["statuses"]["429"] == 1
