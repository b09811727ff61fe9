"""The ledger's set-based paths (issue 16): recorded exactly as the rules say, one link at a
time or thousands in one batch."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from bridge.core.model import Cause, Decision, Observation, Outcome, State, Transition
from bridge.ledger import Ledger, LinkRow
from bridge.ledger.dialect import SQLiteDialect
from bridge.ledger.sync import PlannedDecision
from bridge.ledger.tables import Event
from bridge.vendors.registry import SIDES, SUPEROFFICE, ZENDESK

T0 = datetime(2026, 3, 2, 9, 0, 0, 123_456, tzinfo=UTC)


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    """On each backend (tests/conftest.py)."""
    with Ledger.open(ledger_url, sides=SIDES) as opened:
        rows = [LinkRow(n, 1000 + n, 5000 + n) for n in range(1, 7)]
        assert opened.import_links(rows, origin="csv").created == 6
        yield opened


def _obs(link: int, side: str, state: State, **more: object) -> Observation:
    ticket = (1000 if side == SUPEROFFICE else 5000) + link
    return Observation(
        link_id=link,
        side=side,  # type: ignore[arg-type]
        ticket_id=ticket,
        state=state,
        seen_at=T0,
        vendor_time=more.pop("vendor_time", T0 - timedelta(minutes=link)),  # type: ignore[arg-type]
        **more,  # type: ignore[arg-type]
    )


def _events(ledger: Ledger) -> list[tuple[object, ...]]:
    with ledger.session() as session:
        rows = session.exec(select(Event).where(col(Event.link_id).is_not(None)).order_by(Event.id))
        return [
            (e.link_id, e.kind, e.side, e.transition, e.from_state, e.to_state, e.cause)
            for e in rows
        ]


def test_a_batch_records_first_sightings_changes_anomalies_and_status_ids(ledger: Ledger) -> None:
    first = [_obs(n, SUPEROFFICE, State.ACTIVE, status_id=7) for n in range(1, 5)]
    first += [_obs(5, SUPEROFFICE, State.PURGED), _obs(6, SUPEROFFICE, State.SOFT_DELETED)]
    pending, confirmed = ledger.record_observations(None, first, cursors={SUPEROFFICE: "c1"})
    assert (pending, confirmed) == ({1, 2, 3, 4, 5, 6}, 0)
    assert ledger.get_cursor(SUPEROFFICE) == "c1"
    pair = ledger.load_pairs([1])[1]
    assert (pair.state(SUPEROFFICE), pair.status_id(SUPEROFFICE)) == (State.ACTIVE, 7)
    assert pair.vendor_time(SUPEROFFICE) == T0 - timedelta(minutes=1)
    assert pair.cause(SUPEROFFICE) is None  # a first sighting is no change
    assert pair.state(ZENDESK) is None
    assert pair.pending_decision
    again = [
        _obs(1, SUPEROFFICE, State.ACTIVE, status_id=7),  # no change
        _obs(2, SUPEROFFICE, State.ACTIVE, status_id=9),  # the status id only
        _obs(3, SUPEROFFICE, State.SOFT_DELETED, cause=Cause.USER, actor_id=4),
        _obs(4, SUPEROFFICE, State.PURGED, cause=Cause.RETENTION),
        _obs(5, SUPEROFFICE, State.ACTIVE, cause=Cause.USER),  # purged seen alive
    ]
    pending, confirmed = ledger.record_observations(None, again)
    assert (pending, confirmed) == ({3, 4, 5}, 0)
    pairs = ledger.load_pairs(range(1, 6))
    assert pairs[2].status_id(SUPEROFFICE) == 9
    assert pairs[3].cause(SUPEROFFICE) is Cause.USER
    assert pairs[5].state(SUPEROFFICE) is State.ACTIVE
    assert _events(ledger)[6:] == [
        (3, "observed", SUPEROFFICE, "soft_delete", "active", "soft_deleted", "user"),
        (4, "observed", SUPEROFFICE, "soft_delete+purge", "active", "purged", "retention"),
        (5, "anomaly", SUPEROFFICE, None, "purged", "active", "user"),
    ]
    kinds = [e[1] for e in _events(ledger)[:6]]
    assert kinds == ["first_seen"] * 6


def test_a_batch_naming_a_link_not_in_the_ledger_is_refused_whole(ledger: Ledger) -> None:
    # SQLite's foreign key refuses its event; PostgreSQL's one statement finds no pair
    batch = [_obs(1, ZENDESK, State.ACTIVE), _obs(99, ZENDESK, State.ACTIVE)]
    with pytest.raises(IntegrityError):
        ledger.record_observations(None, batch, cursors={ZENDESK: "c9"})
    assert ledger.get_cursor(ZENDESK) is None
    assert ledger.load_pairs([1])[1].state(ZENDESK) is None
    assert _events(ledger) == []


def test_a_link_seen_twice_in_one_batch_sees_its_own_first_observation(ledger: Ledger) -> None:
    batch = [
        _obs(1, ZENDESK, State.ACTIVE),
        _obs(2, ZENDESK, State.ACTIVE),
        _obs(1, ZENDESK, State.SOFT_DELETED, cause=Cause.USER),
    ]
    pending, _ = ledger.record_observations(None, batch)
    assert pending == {1, 2}
    assert ledger.load_pairs([1])[1].state(ZENDESK) is State.SOFT_DELETED
    assert [(e[0], e[1], e[3]) for e in _events(ledger)] == [
        (2, "first_seen", None),
        (1, "first_seen", None),
        (1, "observed", "soft_delete"),
    ]


def test_agreements_in_bulk_move_the_base_only_when_it_changes(ledger: Ledger) -> None:
    both = [_obs(n, side, State.ACTIVE) for n in (1, 2, 3) for side in SIDES]
    ledger.record_observations(None, both)
    pairs = ledger.load_pairs([1, 2, 3])

    def agree(link: int) -> PlannedDecision:
        return PlannedDecision(pairs[link], Decision(Outcome.AGREE, None, (), State.ACTIVE, "a"))

    assert ledger.record_decisions(None, [agree(1), agree(2)]) == 0
    after = ledger.load_pairs([1, 2, 3])
    assert [(p.base, p.base_version, p.pending_decision) for p in after.values()] == [
        (State.ACTIVE, 1, False),
        (State.ACTIVE, 1, False),
        (None, 0, True),
    ]
    ledger.record_decisions(None, [agree(1)])  # the same base again: no new version
    assert ledger.load_pairs([1])[1].base_version == 1


def test_an_agreement_on_a_pair_in_conflict_resolves_it(ledger: Ledger) -> None:
    ledger.record_observations(None, [_obs(1, side, State.ACTIVE) for side in SIDES])
    pair = ledger.load_pairs([1])[1]
    conflict = Decision(Outcome.CONFLICT, None, (), None, "both changed")
    ledger.record_decisions(None, [PlannedDecision(pair, conflict)])
    assert ledger.load_pairs([1])[1].attention == "conflict"
    agree = Decision(Outcome.AGREE, None, (), State.ACTIVE, "in agreement")
    ledger.record_decisions(None, [PlannedDecision(ledger.load_pairs([1])[1], agree)])
    pair = ledger.load_pairs([1])[1]
    assert (pair.attention, pair.base, pair.base_version) == (None, State.ACTIVE, 1)
    assert [e[1] for e in _events(ledger)][-2:] == ["conflict", "resolved"]


def test_decision_candidates_stream_in_pages_without_busy_links(ledger: Ledger) -> None:
    ledger.record_observations(
        None, [_obs(n, side, State.ACTIVE) for n in range(1, 7) for side in SIDES]
    )
    pairs = ledger.load_pairs([3])
    apply = Decision(Outcome.APPLY, ZENDESK, (Transition.SOFT_DELETE,), State.SOFT_DELETED, "c")
    assert ledger.record_decisions(None, [PlannedDecision(pairs[3], apply, Cause.USER)]) == 1
    [op] = ledger.ready_operations()
    assert (op.link_id, op.target, op.ticket_id, op.transition) == (
        3,
        ZENDESK,
        5003,
        Transition.SOFT_DELETE,
    )
    assert _events(ledger)[-1] == (3, "planned", ZENDESK, "soft_delete", None, None, "user")
    pages = [[p.ids.link_id for p in page] for page in ledger.decision_candidates(batch=2)]
    assert pages == [[1, 2], [4, 5], [6]]


def test_a_pages_links_and_held_states_are_read_together_as_apart(ledger: Ledger) -> None:
    # what recording a change page needs, in one query: the link ids of its ticket ids and
    # each one's held state on the page's side (its vendor time only when soft-deleted),
    # exactly what the two reads apart return; unknown tickets and unread sides left out
    ledger.record_observations(
        None,
        [
            _obs(1, SUPEROFFICE, State.ACTIVE),
            _obs(2, SUPEROFFICE, State.SOFT_DELETED),
            _obs(3, SUPEROFFICE, State.PURGED),
            _obs(2, ZENDESK, State.SOFT_DELETED),
            _obs(4, ZENDESK, State.ACTIVE),
        ],
    )
    for side, base in ((SUPEROFFICE, 1000), (ZENDESK, 5000)):
        tickets = [base + n for n in (6, 1, 2, 3, 4, 5, 99)] + [base + 2]
        links, held = ledger.links_and_states(side, tickets)
        apart = ledger.links_for_tickets(side, tickets)
        assert links == {ticket: link.link_id for ticket, link in apart.items()}
        assert sorted(links) == [base + n for n in range(1, 7)]
        assert held == ledger.side_states(side, links.values())
    _links, held = ledger.links_and_states(SUPEROFFICE, [1001, 1002, 1003, 1005])
    assert held == {
        1: (State.ACTIVE, None),
        2: (State.SOFT_DELETED, T0 - timedelta(minutes=2)),
        3: (State.PURGED, None),
    }
    assert ledger.links_and_states(ZENDESK, []) == ({}, {})


def _pairs_and_events(url: str) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Batches of every kind of change, recorded into a new ledger at `url`: its pairs
    (but when each was written) and events."""
    with Ledger.open(url, sides=SIDES) as ledger:
        rows = [LinkRow(n, 1000 + n, 5000 + n) for n in range(1, 7)]
        assert ledger.import_links(rows, origin="csv").created == 6
        batches = [
            [_obs(n, SUPEROFFICE, State.ACTIVE, status_id=7) for n in range(1, 5)]
            + [_obs(5, SUPEROFFICE, State.PURGED), _obs(6, SUPEROFFICE, State.SOFT_DELETED)],
            [_obs(n, ZENDESK, State.ACTIVE) for n in range(1, 4)],
            [
                _obs(1, SUPEROFFICE, State.ACTIVE, status_id=7),
                _obs(2, SUPEROFFICE, State.ACTIVE, status_id=9),
                _obs(3, SUPEROFFICE, State.SOFT_DELETED, cause=Cause.USER, actor_id=4),
                _obs(4, SUPEROFFICE, State.PURGED, cause=Cause.RETENTION),
                _obs(5, SUPEROFFICE, State.ACTIVE, cause=Cause.USER, status_id=3),
                _obs(2, ZENDESK, State.SOFT_DELETED, cause=Cause.USER),
                _obs(6, ZENDESK, State.ACTIVE, status_id=0),
            ],
        ]
        pending = [ledger.record_observations(None, batch) for batch in batches]
        with ledger.engine.connect() as connection:
            pairs = connection.exec_driver_sql("SELECT * FROM pair_state ORDER BY link_id")
            names = list(pairs.keys())
            kept = [i for i, name in enumerate(names) if name != "updated_at"]
            pair_rows = [(*pending, *(row[i] for i in kept)) for row in pairs]
        return pair_rows, _events(ledger)


def test_sqlites_pairs_are_updated_alike_by_one_join_or_a_subquery_a_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite 3.33 and later update a batch's pairs by one UPDATE … FROM; older ones as
    # before: the same pairs and events either way
    found = []
    for update_from in (True, False):
        monkeypatch.setattr(SQLiteDialect, "update_from", update_from)
        found.append(_pairs_and_events(f"sqlite:///{tmp_path / f'{update_from}.db'}"))
    assert found[0] == found[1]
    pairs, events = found[0]
    assert len(pairs) == 6
    assert len(events) == 9 + 1 + 4  # first sightings; the status-only change logs none


def test_a_batch_beside_an_open_operation_confirms_it_and_records_the_rest_in_bulk(
    ledger: Ledger,
) -> None:
    """Links with an open operation go through the per-link rules; the ledger looks for them
    only when some operation is open at all (a first sync has none)."""
    ledger.record_observations(
        None, [_obs(n, side, State.ACTIVE) for n in range(1, 7) for side in SIDES]
    )
    apply = Decision(Outcome.APPLY, ZENDESK, (Transition.SOFT_DELETE,), State.SOFT_DELETED, "c")
    pair = ledger.load_pairs([3])[3]
    assert ledger.record_decisions(None, [PlannedDecision(pair, apply, Cause.USER)]) == 1
    assert ledger.links_with_open_operations() == {3}
    assert ledger.links_with_open_operations([1, 2]) == set()
    sent = [op.id for op in ledger.operations(["planned"])]
    ledger.mark_sent(sent, run_id=None, batch="b1")
    batch = [_obs(n, ZENDESK, State.SOFT_DELETED) for n in (2, 3, 4)]
    pending, confirmed = ledger.record_observations(None, batch)
    assert (pending, confirmed) == ({2, 3, 4}, 1)
    assert ledger.links_with_open_operations() == set()
    changes = [e[:2] for e in _events(ledger)[-3:]]
    assert changes == [(2, "observed"), (4, "observed"), (3, "confirmed")]


def test_an_unknown_link_beside_an_open_operation_is_refused_whole(ledger: Ledger) -> None:
    """Nothing of the batch is kept, the observation of a link with an open operation
    neither, and its cursor stays where it was (SQLite's foreign key refuses it;
    PostgreSQL's batch, whose event log enforces none, names the link)."""
    ledger.record_observations(None, [_obs(n, ZENDESK, State.ACTIVE) for n in (1, 2, 3)])
    apply = Decision(Outcome.APPLY, ZENDESK, (Transition.SOFT_DELETE,), State.SOFT_DELETED, "c")
    pair = ledger.load_pairs([3])[3]
    assert ledger.record_decisions(None, [PlannedDecision(pair, apply, Cause.USER)]) == 1
    before = _events(ledger)
    batch = [_obs(n, ZENDESK, State.SOFT_DELETED) for n in (2, 3, 99)]
    with pytest.raises(IntegrityError) as refused:
        ledger.record_observations(None, batch, cursors={ZENDESK: "after"})
    if ledger.dialect.one_statement_batch:
        assert "links not in the ledger: [99]" in str(refused.value)
    assert _events(ledger) == before
    assert ledger.get_cursor(ZENDESK) is None
    assert ledger.load_pairs([2])[2].state(ZENDESK) is State.ACTIVE


def test_sqlites_bulk_insert_stores_each_row_as_bound_one_by_one() -> None:
    """A column with one value in every row is written into the statement once (binding is
    most of an executemany's cost); what is stored, value and type, is what binding each
    row stores. Quotes, a NUL, `1` beside `True`, and rows all alike included."""
    engine = create_engine("sqlite://")
    columns = ("n", "same_int", "empty", "quoted", "nul", "mixed", "big", "varying")
    rows = [(n, 7, None, "it's", "a\x00b", 1 if n % 2 else True, 2**62, f"v{n}") for n in range(5)]
    alike = [(1, 7, None, "x", "y", 1, 2, "z")] * 3
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    with engine.begin() as connection:
        for table in ("bulk", "bound"):
            connection.exec_driver_sql(f"CREATE TABLE {table} ({', '.join(columns)})")
        for batch in (rows, alike):
            SQLiteDialect().bulk_insert(connection, "bulk", columns, batch)
            marks = ", ".join("?" for _ in columns)
            connection.exec_driver_sql(f"INSERT INTO bound VALUES ({marks})", batch)
        typed = ", ".join(f"{c}, typeof({c})" for c in columns)
        stored = [
            connection.exec_driver_sql(f"SELECT {typed} FROM {table} ORDER BY rowid").all()
            for table in ("bulk", "bound")
        ]
    assert stored[0] == stored[1]
    assert len(stored[0]) == 8
    shared = statements[2]  # the first bulk insert: the shared values are in its text
    assert "7, NULL, 'it''s'" in shared
    assert "4611686018427387904" in shared
    assert shared.count("?") == 4  # n, nul, mixed, varying stay bound


def test_history_appended_with_its_ids_leaves_the_next_ids_free(ledger_url: str) -> None:
    """`bulk_append` (tests' and benchmarks' synthetic history) writes ids of its own: on
    PostgreSQL a sequence knows nothing of them, and the next link, run or event the
    ledger made took id 1 again (a unique-key violation) until the sequence was moved."""
    with Ledger.open(ledger_url, sides=SIDES) as ledger:
        at = T0
        links = [
            {"id": n, "first_id": 10 + n, "second_id": 20 + n, "origin": "csv", "created_at": at}
            for n in (1, 2, 3)
        ]
        assert ledger.bulk_append("link", links) == 3
        runs = [{"id": 7, "kind": "sync", "holder": "h", "started_at": at, "outcome": "converged"}]
        assert ledger.bulk_append("run", runs) == 1
        events = [{"id": 40, "at": at, "run_id": 7, "link_id": 1, "kind": "first_seen"}]
        assert ledger.bulk_append("event", events) == 1
        made = ledger.add_link(101, 201, origin="discovery")
        assert made.id == 4
        run = ledger.start_run("sync", holder="test")
        assert run.id == 8
        ledger.finish_run(run.id, outcome="converged", counts={})
        with ledger.session() as session:
            assert max(e.id or 0 for e in session.exec(select(Event))) > 40
