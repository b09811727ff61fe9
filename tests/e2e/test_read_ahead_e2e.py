"""Change pages read ahead (`Adapter.changes(read_ahead=True)`, the observe step) change
nothing a run records: the same cursors, pair states, events, operations and calls as
when each page is asked for only once the one before is recorded; and no read outlives
the run. In-process, both simulators over real HTTP on a frozen clock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from bridge.ledger.tables import Event, Operation
from bridge.vendors.http import HttpClient
from bridge.vendors.registry import SIDES
from tests.e2e.conftest import World
from tests.sandbox_world import frozen_sandbox

#: more than a page on each side (SuperOffice 500 rows a page, Zendesk 1,000)
LINKS = 1_200


class Unpaced(World):
    """SuperOffice's own pacing at its maximum, on the real clock (a page waits for none
    once the one before is recorded): each stream's next page can go at once."""

    client_rps = 10_000

    def monotonic(self) -> float:
        return time.monotonic()


def _read_ahead_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "bridge-read-ahead"]


def _story(folder: Path, ledger_url: str) -> dict[str, Any]:
    """A first sync, then changes on both sides (some on the last pages) and the sync
    that copies them: everything the ledger (at `ledger_url`) holds after each, and the
    calls made."""
    seen: dict[str, Any] = {}
    with frozen_sandbox() as sandbox:
        world = Unpaced(sandbox, folder, ledger_url=ledger_url)
        try:
            pairs = world.link(LINKS)
            world.reset_counters()
            seen["first"] = world.sync().outcome
            assert _read_ahead_threads() == []
            seen["first calls"] = (world.routes("superoffice"), world.routes("zendesk"))
            seen["first cursors"] = [world.ledger.get_cursor(side) for side in SIDES]
            world.clock.advance(120)
            world.so.soft_delete([pairs[3][0], pairs[1_150][0]])
            world.zd.agent_act("delete", [pairs[7][1], pairs[1_190][1]], agent=(7, "Ann"))
            world.clock.advance(120)
            world.reset_counters()
            seen["second"] = world.sync().outcome
            assert _read_ahead_threads() == []
            seen["second calls"] = (world.routes("superoffice"), world.routes("zendesk"))
            seen["second cursors"] = [world.ledger.get_cursor(side) for side in SIDES]
            pairs_now = world.ledger.load_pairs(range(1, LINKS + 1))
            seen["pairs"] = {
                link_id: (view.base, *(view.state(side) for side in SIDES))
                for link_id, view in pairs_now.items()
            }
            with world.ledger.session() as session:
                seen["events"] = [
                    (
                        e.link_id,
                        e.kind,
                        e.side,
                        e.ticket_id,
                        e.transition,
                        e.from_state,
                        e.to_state,
                        e.cause,
                        None if e.kind == "sent" else e.detail,  # a sent batch's random id
                    )
                    for e in session.exec(select(Event).order_by(col(Event.id)))
                ]
                seen["operations"] = [
                    (op.link_id, op.target, op.transition, op.status)
                    for op in session.exec(select(Operation).order_by(col(Operation.id)))
                ]
        finally:
            world.close()
    return seen


def test_pages_read_ahead_record_what_pages_read_one_by_one_record(
    tmp_path: Path,
    ledger_url: str,
    more_ledger_urls: Callable[[], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent_ahead: list[str] = []
    real = HttpClient.read_ahead

    def counted(self: HttpClient, method: str, path: str, **kwargs: Any) -> bool:
        sent = real(self, method, path, **kwargs)
        if sent:
            sent_ahead.append(path)
        return sent

    monkeypatch.setattr(HttpClient, "read_ahead", counted)
    ahead = _story(tmp_path / "ahead", ledger_url)
    # both streams had pages to read ahead, on the first sync and the second
    assert any(p.startswith("Archive/") for p in sent_ahead), sent_ahead
    assert any("incremental" in p for p in sent_ahead), sent_ahead
    monkeypatch.setattr(HttpClient, "read_ahead", lambda *_a, **_k: False)
    one_by_one = _story(tmp_path / "one-by-one", more_ledger_urls())
    assert ahead["first"] == ahead["second"] == "converged"
    assert len(ahead["events"]) > 2 * LINKS  # first sightings, and the changes copied
    assert ahead["operations"], "the changes were copied"
    for key in one_by_one:
        assert ahead[key] == one_by_one[key], key
