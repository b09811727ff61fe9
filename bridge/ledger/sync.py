"""The ledger's side of a sync run: observations, decisions, the outbox.

Kept apart from link management so that each file reads as one concern; `Ledger` mixes
it in. Every public method is one transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Connection,
    CursorResult,
    Engine,
    Integer,
    Row,
    Select,
    String,
    Text,
    TextClause,
    bindparam,
    case,
    func,
    literal,
    or_,
    text,
    true,
    type_coerce,
    union_all,
)
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import BindParameter
from sqlmodel import Session, col, select

from bridge.core.batches import chunked
from bridge.core.model import (
    Cause,
    Decision,
    InvalidTransitionError,
    Observation,
    Outcome,
    Side,
    Sides,
    State,
    Transition,
    path,
)
from bridge.ledger.dialect import LAZY_COMMIT, READS_ONLY, Dialect
from bridge.ledger.migrations import meta_value, set_meta
from bridge.ledger.tables import (
    Cursor,
    Event,
    Link,
    Meta,
    Operation,
    OperationStatus,
    PairState,
    Run,
    UTCDateTime,
    utcnow,
)
from bridge.ledger.times import from_micros, to_micros
from bridge.logging import redact_text

__all__ = [
    "LinkIds",
    "OperationView",
    "PairView",
    "PlannedDecision",
    "RecentWrite",
    "SyncStore",
]

_SATISFIES: Mapping[str, frozenset[State]] = {
    # a purge also satisfies a pending soft delete: the ticket went further
    Transition.SOFT_DELETE: frozenset({State.SOFT_DELETED, State.PURGED}),
    Transition.RESTORE: frozenset({State.ACTIVE}),
    Transition.PURGE: frozenset({State.PURGED}),
}
_CHUNK = 500
#: ids per statement where they are bound as one value (`Dialect.in_ids`)
_IDS = 5000
#: rows per page of a streamed read
_PAGE = 5000
#: pairs decided by one bulk agreement from which the planner's statistics of pair_state
#: are refreshed (`Dialect.analyze`): a first sync's or a migration's, not a day's changes
_RESHAPED = 10_000
#: operations whose write went out (or may have): an observation reaching their state is
#: bridge's own write coming back
_SENT_STATUSES = frozenset({OperationStatus.SENT, OperationStatus.PENDING_RETENTION})
#: the prefixes of the per-side columns, in side order (`pair_state.first_state`, …)
_POSITIONS = ("first", "second")


def _position(sides: Sides, side: Side) -> str:
    """The column prefix of `side` (raises ValueError for a side not in the pair)."""
    return _POSITIONS[sides.index(side)]


@dataclass(frozen=True, slots=True)
class LinkIds:
    """A link's id and its two tickets, the first side's then the second's."""

    link_id: int
    first_id: int
    second_id: int
    sides: Sides

    def ticket(self, side: Side) -> int:
        return self.second_id if self.sides.index(side) else self.first_id


@dataclass(frozen=True, slots=True)
class PairView:
    """A read-only copy of a pair's state, with the link's ticket ids. Per-side fields come
    first side then second; `state(side)` and kin pick by side."""

    ids: LinkIds
    base: State | None
    base_version: int
    first_state: State | None
    first_vendor_time: datetime | None
    first_status_id: int | None
    first_cause: Cause | None
    second_state: State | None
    second_vendor_time: datetime | None
    second_status_id: int | None
    second_cause: Cause | None
    attention: str | None
    attention_reason: str | None
    pending_decision: bool

    def _second(self, side: Side) -> bool:
        return bool(self.ids.sides.index(side))

    def state(self, side: Side) -> State | None:
        return self.second_state if self._second(side) else self.first_state

    def vendor_time(self, side: Side) -> datetime | None:
        return self.second_vendor_time if self._second(side) else self.first_vendor_time

    def status_id(self, side: Side) -> int | None:
        return self.second_status_id if self._second(side) else self.first_status_id

    def cause(self, side: Side) -> Cause | None:
        return self.second_cause if self._second(side) else self.first_cause


@dataclass(frozen=True, slots=True)
class PlannedDecision:
    pair: PairView
    decision: Decision
    #: the cause of the change being copied (for the audit), when there is one
    cause: Cause | None = None


@dataclass(frozen=True, slots=True)
class RecentWrite:
    """Bridge's latest write to a ticket: its operation's status, and when it was sent
    (or, once settled, confirmed or failed)."""

    status: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Outstanding:
    """What is left when a run ends (`SyncStore.outstanding`)."""

    #: a pair is flagged for attention
    flagged: bool
    #: an operation is still planned or sent
    open_operations: bool
    #: operations failing or unconfirmed for too long (`SyncStore.stuck_operations`)
    stuck: int


@dataclass(frozen=True, slots=True)
class RunFacts:
    """What a run asks of the ledger's small tables, read at its start in one statement
    (`SyncStore.run_facts`): on a server each read is a round trip, and an idle run's
    were most of its time (issue 18)."""

    #: each side's change cursor
    cursors: Mapping[Side, str]
    #: each side's sweep floor (`SyncStore.sweep_due`), in microseconds
    sweep_floors: Mapping[Side, int]
    #: the sides where some link was never read (`SyncStore.unobserved`)
    unread: frozenset[Side]
    #: whether a run of the kind asked about was ever recorded (a sync counts the changes
    #: no webhook announced once `bridge serve` has run)
    ran: bool
    #: whether an operation is `sent` (only a run holding the lease sends one: what a
    #: run finds at its start holds until it sends)
    sent: bool


@dataclass(frozen=True, slots=True)
class OperationView:
    id: int
    link_id: int
    target: Side
    ticket_id: int
    transition: Transition
    step: int
    status: str
    attempts: int
    job_id: str | None
    restore_status_id: int | None
    sent_at: datetime | None
    pending_until: datetime | None


#: stored values to their enum members: a dict lookup per column, where calling the enum per
#: row costs more than reading the row
_STATES: Mapping[str | None, State] = {state.value: state for state in State}
_CAUSES: Mapping[str | None, Cause] = {cause.value: cause for cause in Cause}


def _stuck(older_than: datetime) -> ColumnElement[bool]:
    """Operations failing or unconfirmed since before `older_than`: sent and never
    confirmed, planned again after failing, or waiting for a retention purge overdue."""
    status = col(Operation.status)
    retrying = (status == OperationStatus.PLANNED) & (col(Operation.attempts) > 0)
    overdue = (status == OperationStatus.PENDING_RETENTION) & (
        col(Operation.pending_until) <= older_than
    )
    return or_(retrying, status == OperationStatus.SENT, overdue) & (
        col(Operation.created_at) <= older_than
    )


def _plain_rows(result: CursorResult[Any]) -> list[Any]:
    """The rows of `result` as the driver made them (tuples): no SQLAlchemy `Row` per row,
    for the reads of every page of a first sync whose columns need no type processing
    (ids, states as stored, times as integers)."""
    with result:
        return list(result.cursor.fetchall())


def _state(value: str | None) -> State | None:
    return _STATES[value] if value is not None else None


def _cause(value: str | None) -> Cause | None:
    return _CAUSES[value] if value else None


#: the `pair_state` columns a `PairView` is made of (link_id first: the key)
_PAIR_VIEW_FIELDS = (
    "link_id",
    "base",
    "base_version",
    *(
        f"{position}_{field}"
        for position in _POSITIONS
        for field in ("state", "vendor_time", "status_id", "cause")
    ),
    "attention",
    "attention_reason",
    "pending_decision",
)


def _pair_view(pair: PairState | Row[Any], ids: LinkIds) -> PairView:
    """A pair's view from its ORM object or from a plain row with the same columns."""
    return PairView(
        ids=ids,
        base=_state(pair.base),
        base_version=pair.base_version,
        first_state=_state(pair.first_state),
        first_vendor_time=pair.first_vendor_time,
        first_status_id=pair.first_status_id,
        first_cause=_cause(pair.first_cause),
        second_state=_state(pair.second_state),
        second_vendor_time=pair.second_vendor_time,
        second_status_id=pair.second_status_id,
        second_cause=_cause(pair.second_cause),
        attention=pair.attention,
        attention_reason=pair.attention_reason,
        pending_decision=pair.pending_decision,
    )


#: the columns an `OperationView` is made of: selected as plain rows, a large run's open
#: operations cost a fraction of the memory ORM objects would
_OPERATION_COLUMNS = tuple(
    col(getattr(Operation, name))
    for name in (
        "id",
        "link_id",
        "target",
        "ticket_id",
        "transition",
        "step",
        "status",
        "attempts",
        "job_id",
        "restore_status_id",
        "sent_at",
        "pending_until",
    )
)


def _operation_view(op: Row[Any]) -> OperationView:
    """A view from a row of `_OPERATION_COLUMNS`."""
    assert op.id is not None
    return OperationView(
        id=op.id,
        link_id=op.link_id,
        target=Side(op.target),
        ticket_id=op.ticket_id,
        transition=Transition(op.transition),
        step=op.step,
        status=op.status,
        attempts=op.attempts,
        job_id=op.job_id,
        restore_status_id=op.restore_status_id,
        sent_at=op.sent_at,
        pending_until=op.pending_until,
    )


def _set_attention(pair: PairState, kind: str | None, reason: str | None, now: datetime) -> bool:
    """Set or clear a pair's attention flag; True when it changed."""
    if pair.attention == kind and pair.attention_reason == reason:
        return False
    if pair.attention != kind:
        pair.attention_since = now if kind else None
    pair.attention = kind
    pair.attention_reason = reason
    return True


#: the pair columns an observation reads and writes (link_id first: the key)
_PAIR_FIELDS = (
    "link_id",
    *(
        f"{position}_{field}"
        for position in _POSITIONS
        for field in ("state", "vendor_time", "seen_at", "cause", "status_id", "purge_due")
    ),
    "pending_decision",
    "updated_at",
)


def _op_event(run_id: int | None, op: Operation, kind: str, detail: str | None) -> Event:
    """An event in the life of an operation (its side is the operation's target)."""
    return Event(
        run_id=run_id,
        link_id=op.link_id,
        kind=kind,
        side=op.target,
        ticket_id=op.ticket_id,
        transition=op.transition,
        operation_id=op.id,
        detail=detail,
    )


def _event(
    run_id: int | None,
    obs: Observation,
    *,
    kind: str,
    transition: str | None,
    previous: State | None,
    cause: Cause | None,
    operation_id: int | None = None,
) -> dict[str, Any]:
    """An event row about one observation, for a bulk insert."""
    return {
        "at": utcnow(),
        "run_id": run_id,
        "link_id": obs.link_id,
        "kind": kind,
        "side": obs.side,
        "ticket_id": obs.ticket_id,
        "transition": transition,
        "from_state": previous.value if previous else None,
        "to_state": obs.state.value,
        "cause": cause.value if cause else None,
        "actor_id": obs.actor_id,
        "vendor_time": obs.vendor_time,
        "operation_id": operation_id,
        #: which read showed it (`Observation.read`): the evidence the report names
        "detail": obs.read,
    }


def _close(
    op: Operation,
    obs: Observation,
    previous: State | None,
    run_id: int | None,
    now: datetime,
    *,
    superseded: bool,
) -> dict[str, Any]:
    """End an operation the observation shows reached: `confirmed` when bridge sent it (its
    own write back, cause `bridge`), `superseded` when someone else got there first (the
    vendor's cause). Returns the event row."""
    op.status = OperationStatus.SUPERSEDED if superseded else OperationStatus.CONFIRMED
    op.finished_at = now
    op.updated_at = now
    return _event(
        run_id,
        obs,
        kind="superseded" if superseded else "confirmed",
        transition=op.transition,
        previous=previous,
        cause=obs.cause if superseded else Cause.BRIDGE,
        operation_id=op.id,
    )


#: the event columns `SyncStore._update_ops` fills from each operation
_OP_EVENT_COLUMNS = (
    "at",
    "run_id",
    "link_id",
    "kind",
    "side",
    "ticket_id",
    "transition",
    "operation_id",
    "detail",
)
#: the times and flags the recording statements bind, typed as the ledger stores them
_TYPED: dict[str, BindParameter[Any]] = {
    "now": bindparam("now", type_=UTCDateTime),
    "pending": bindparam("pending", type_=Boolean),
}


def _statement(sql: str) -> TextClause:
    """`sql` as a statement, the times and flags it names typed (`_TYPED`)."""
    return text(sql).bindparams(*(param for key, param in _TYPED.items() if f":{key}" in sql))


#: a side's change cursor set in one statement (SQLite 3.24 and PostgreSQL spell it alike)
_CURSOR_UPSERT = _statement(
    "INSERT INTO cursor (side, value, updated_at) VALUES (:side, :value, :now) "
    "ON CONFLICT (side) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
)
#: meta key: a time no pair's ticket on `{side}` was last found before (`sweep_due`): times
#: only move forward (a run records its own clock's), so it stays true as pairs are found
#: again; a clock set back delays the sweep of what it stamps by as much, never skips it
_SWEEP_FLOOR = "sweep_floor.{side}"
#: the links with an open operation, and whether there is one at all (built once: a batch
#: asks before it is recorded)
_OPEN_OPERATION_LINKS = sa_select(Operation.__table__.c.link_id).where(  # type: ignore[attr-defined]
    Operation.__table__.c.status.in_(OperationStatus.OPEN)  # type: ignore[attr-defined]
)
_ANY_OPEN_OPERATION = _OPEN_OPERATION_LINKS.limit(1)
#: a pair a sync decides: changed since its last decision, or standing in conflict or
#: divergence (re-checked each run)
_CANDIDATE = or_(
    PairState.__table__.c.pending_decision,  # type: ignore[attr-defined]
    PairState.__table__.c.attention.in_(("conflict", "divergence")),  # type: ignore[attr-defined]
)
_ANY_CANDIDATE = (
    sa_select(PairState.__table__.c.link_id)  # type: ignore[attr-defined]
    .where(_CANDIDATE)
    .limit(1)
)
#: whether any pair waits for a decision (`agree_where_equal`)
_ANY_PENDING = (
    sa_select(PairState.__table__.c.link_id)  # type: ignore[attr-defined]
    .where(PairState.__table__.c.pending_decision)  # type: ignore[attr-defined]
    .limit(1)
)
#: the staging table of `SyncStore._record_bulk` where each step is a statement of its own:
#: one batch of one side's observations
_OBSERVED = "observed_stage"
_OBSERVED_COLUMNS = (
    "seq INTEGER NOT NULL, link_id INTEGER NOT NULL PRIMARY KEY, ticket_id BIGINT NOT NULL, "
    "state VARCHAR NOT NULL, vendor_time BIGINT, seen_at BIGINT NOT NULL, actor_id BIGINT, "
    "cause VARCHAR, status_id BIGINT, read VARCHAR, previous VARCHAR"
)
_OBSERVED_INSERT = (
    "seq",
    "link_id",
    "ticket_id",
    "state",
    "vendor_time",
    "seen_at",
    "actor_id",
    "cause",
    "status_id",
    "read",
)
#: the SQL type of each of `_OBSERVED_INSERT`'s columns
_OBSERVED_TYPES = (
    *("integer", "integer", "bigint", "text", "bigint"),
    *("bigint", "bigint", "text", "bigint", "text"),
)
#: each of `_OBSERVED_INSERT`'s columns as `_batch_sql` reads it, an array bound as one value
_OBSERVED_ARRAYS = ", ".join(
    f"CAST(:o_{name} AS {kind}[])"
    for name, kind in zip(_OBSERVED_INSERT, _OBSERVED_TYPES, strict=True)
)


#: a staged observation (`s`) whose state differs from the one its pair held (`s.previous`)
_CHANGED = "(s.previous IS NULL OR s.previous <> s.state)"
#: the observation's columns a change of state copies onto its side of the pair
_COPIED = ("state", "cause", "vendor_time", "seen_at")


def _status_new(prefix: str, pair: str) -> str:
    """A staged observation (`s`) of an active ticket bringing a status id its side of
    the pair (`pair`: the table's name or alias) does not hold: a side that reports one
    keeps it while active, for a restore."""
    held = f"{pair}.{prefix}_status_id"
    return (
        f"s.state = '{State.ACTIVE.value}' AND s.status_id IS NOT NULL AND s.status_id <> 0 "
        f"AND ({held} IS NULL OR {held} <> s.status_id)"
    )


def _previous_sql(prefix: str) -> str:
    """Note on each staged observation the state its pair held on its side (NULL: never
    read): one index lookup per staged row, whatever the planner thinks of pair_state."""
    return (
        f"UPDATE {_OBSERVED} SET previous = (SELECT p.{prefix}_state FROM pair_state p "
        f"WHERE p.link_id = {_OBSERVED}.link_id)"
    )


def _pair_update_sql(prefix: str) -> list[str]:
    """The statements that copy the staged observations onto their pairs' side `prefix`
    where each step is a statement of its own (`_record_bulk`): a changed state (with its
    cause, times, and the pair marked pending at `:now`), and a new status id; each reads
    the staging table through a correlated subquery per column (SQLite before 3.33 has no
    UPDATE … FROM, and its subqueries are index lookups)."""

    def staged(column: str) -> str:
        return f"(SELECT s.{column} FROM {_OBSERVED} s WHERE s.link_id = pair_state.link_id)"

    copied = ", ".join(f"{prefix}_{name} = {staged(name)}" for name in _COPIED)
    return [
        f"UPDATE pair_state SET {copied}, pending_decision = :pending, updated_at = :now "
        f"WHERE link_id IN (SELECT s.link_id FROM {_OBSERVED} s WHERE {_CHANGED})",
        f"UPDATE pair_state SET {prefix}_status_id = {staged('status_id')} "
        f"WHERE link_id IN (SELECT s.link_id FROM {_OBSERVED} s JOIN pair_state p "
        f"ON p.link_id = s.link_id WHERE {_status_new(prefix, 'p')})",
    ]


def _batch_sql(prefix: str, *, cursor: bool) -> str:
    """A batch of side `prefix` recorded by one statement (`Dialect.one_statement_batch`),
    data-modifying CTEs that all see the pairs as they were before it: `busy` finds the
    observed links with an open operation (left out, for the caller to record one at a
    time, `_record_each`), `staged` notes each other observation's previous state beside
    it, `logged` logs the changes (as `_record_bulk`'s steps do), `updated` writes each
    pair once with an UPDATE … FROM (its changed state, cause, times and pending mark,
    and a new status id), and with `cursor` the side's cursor moves to `:cursor` with
    them. It returns one row: how many observations were staged, the links whose state
    changed, the busy links. An observed link with no pair (none in the ledger) is
    neither staged nor busy, for the caller to refuse the batch. Each of these was a
    round trip of its own, and the rows one per observation (issue 18).

    The observations come bound to the statement, an array per column (`_OBSERVED_ARRAYS`,
    `Dialect.array_value`) read by `unnest`, not staged in a table first: a COPY into a
    TEMP table cost the server a heap row and an index entry per observation, and three
    more round trips per batch (issue 18).

    `staged` looks each observation's pair up by key (a LATERAL subquery with a LIMIT,
    which the planner cannot fold into a join), whatever its statistics of pair_state
    say: a plain join scanned the whole table once per batch when they were stale after
    a link import, and so did `link_id = ANY(...)` of the bound ids, which replaced it,
    on 100,000 pairs (a third of the batch's server time, issue 18). (The same `ANY` in
    `updated` was tried: planned inside the lookup of each staged row, it compared every
    row with every id, 40 ms for a batch of 1,000.)"""
    changed = _CHANGED
    status_new = _status_new(prefix, "pair_state")
    assignments = _pair_assignments(prefix)
    columns = ", ".join(f"o.{name}" for name in _OBSERVED_INSERT)
    open_statuses = ", ".join(f"'{status}'" for status in OperationStatus.OPEN)
    moved = (
        ", moved AS (INSERT INTO cursor (side, value, updated_at) VALUES (:side, :cursor, :now) "
        "ON CONFLICT (side) DO UPDATE SET value = excluded.value, "
        "updated_at = excluded.updated_at)"
        if cursor
        else ""
    )
    return (
        "WITH busy AS MATERIALIZED (SELECT DISTINCT link_id FROM operation "
        f"WHERE status IN ({open_statuses}) "
        "AND link_id IN (SELECT unnest(CAST(:o_link_id AS integer[])))), "
        f"staged AS MATERIALIZED (SELECT {columns}, p.previous "
        f"FROM unnest({_OBSERVED_ARRAYS}) AS o({', '.join(_OBSERVED_INSERT)}) "
        f"CROSS JOIN LATERAL (SELECT {prefix}_state AS previous FROM pair_state "
        "WHERE pair_state.link_id = o.link_id LIMIT 1) p "
        "WHERE o.link_id NOT IN (SELECT link_id FROM busy)), "
        "logged AS (INSERT INTO event (at, run_id, link_id, kind, side, ticket_id, "
        "transition, from_state, to_state, cause, actor_id, vendor_time, detail) "
        f"SELECT :now, :run_id, s.link_id, {_KIND_SQL}, :side, s.ticket_id, "
        f"{_TRANSITION_SQL}, s.previous, s.state, s.cause, s.actor_id, s.vendor_time, "
        f"s.read FROM staged s WHERE {changed} ORDER BY s.seq), "
        f"updated AS (UPDATE pair_state SET {assignments} FROM staged s "
        f"WHERE pair_state.link_id = s.link_id AND ({changed} OR {status_new}))"
        f"{moved} "
        "SELECT (SELECT count(*) FROM staged), "
        f"ARRAY(SELECT s.link_id FROM staged s WHERE {changed}), "
        "ARRAY(SELECT link_id FROM busy)"
    )


def _pair_assignments(prefix: str) -> str:
    """The SET list that copies a staged observation (`s`, its previous state noted) onto
    its pair's side `prefix`, each pair written once: a changed state (with its cause,
    times, and the pair marked pending at `:now`), and a new status id."""
    changed = _CHANGED
    status_new = _status_new(prefix, "pair_state")

    def when(condition: str, column: str, value: str) -> str:
        return f"{column} = CASE WHEN {condition} THEN {value} ELSE pair_state.{column} END"

    return ", ".join(
        [
            *(when(changed, f"{prefix}_{name}", f"s.{name}") for name in _COPIED),
            when(changed, "pending_decision", ":pending"),
            when(changed, "updated_at", ":now"),
            when(status_new, f"{prefix}_status_id", "s.status_id"),
        ]
    )


def _pair_update_from_sql(prefix: str) -> str:
    """`_pair_update_sql` in one `UPDATE … FROM` the staging table (`Dialect.update_from`):
    each pair written once, by one join, instead of twice through a subquery per column
    (a third less of the statement's CPU). The pairs are named by key as well (`IN` the
    staged ids): SQLite's planner knows no size of a TEMP table, and without it walked
    every pair, looking each up in the stage."""
    status_new = _status_new(prefix, "pair_state")
    return (
        f"UPDATE pair_state SET {_pair_assignments(prefix)} FROM {_OBSERVED} s "
        f"WHERE pair_state.link_id IN (SELECT link_id FROM {_OBSERVED}) "
        f"AND pair_state.link_id = s.link_id AND ({_CHANGED} OR {status_new})"
    )


def _transition_sql() -> str:
    """The event's transition for a staged change (`s.previous` → `s.state`) in SQL, as
    `_change_event` names it: the state model's path, its steps joined by '+'; NULL for a
    first sighting, or a change out of `purged` (an anomaly)."""
    whens = []
    for start in State:
        for end in State:
            try:
                steps = path(start, end)
            except InvalidTransitionError:
                continue
            if steps:
                name = "+".join(step.value for step in steps)
                whens.append(
                    f"WHEN s.previous = '{start.value}' AND s.state = '{end.value}' THEN '{name}'"
                )
    return f"CASE {' '.join(whens)} END"


_TRANSITION_SQL = _transition_sql()
#: the event's kind for a staged change, as `_change_event` names it
_KIND_SQL = (
    "CASE WHEN s.previous IS NULL THEN 'first_seen' "
    f"WHEN s.previous = '{State.PURGED.value}' THEN 'anomaly' ELSE 'observed' END"
)


@cache
def _batch_statement(prefix: str, *, cursor: bool) -> TextClause:
    """`_batch_sql` as a statement, built once a side (SQLAlchemy derives a statement's
    cache key from its text on every run of one built anew)."""
    return _statement(_batch_sql(prefix, cursor=cursor))


@cache
def _bulk_statements(prefix: str, *, update_from: bool) -> tuple[TextClause, ...]:
    """`SyncStore._record_bulk`'s steps after staging, where each is a statement of its
    own, built once a side: note the previous states, log the changes, update the pairs."""
    log = (
        "INSERT INTO event (at, run_id, link_id, kind, side, ticket_id, transition, "
        "from_state, to_state, cause, actor_id, vendor_time, detail) "
        f"SELECT :now, :run_id, s.link_id, {_KIND_SQL}, :side, s.ticket_id, "
        f"{_TRANSITION_SQL}, s.previous, s.state, s.cause, s.actor_id, s.vendor_time, s.read "
        f"FROM {_OBSERVED} s WHERE {_CHANGED} ORDER BY s.seq"
    )
    updates = [_pair_update_from_sql(prefix)] if update_from else _pair_update_sql(prefix)
    return tuple(_statement(sql) for sql in [_previous_sql(prefix), log, *updates])


class _Micros(dict[datetime, int]):
    """Times as the ledger stores them (`to_micros`), each converted once."""

    def __missing__(self, moment: datetime) -> int:
        self[moment] = value = to_micros(moment)
        return value


def _observed_rows(observations: Sequence[Observation]) -> list[tuple[Any, ...]]:
    """A batch's observations as rows of `_OBSERVED_INSERT`, times as stored. A batch's
    times are few (one read time; a bulk change gives a page one vendor time): each
    distinct one is converted once."""
    micros = _Micros()
    return [
        (
            n,
            o.link_id,
            o.ticket_id,
            o.state.value,
            None if o.vendor_time is None else micros[o.vendor_time],
            micros[o.seen_at],
            o.actor_id,
            o.cause.value if o.cause else None,
            o.status_id,
            o.read,
        )
        for n, o in enumerate(observations)
    ]


def _change_event(run_id: int | None, obs: Observation, previous: State | None) -> dict[str, Any]:
    """The event for a change bridge did not make: a transition, a first sighting, or an
    anomaly (a purged ticket seen alive: ids reused, or a vendor error)."""
    try:
        steps = path(previous, obs.state) if previous else ()
    except InvalidTransitionError:
        steps = ()
    kind = "observed" if previous else "first_seen"
    if previous is State.PURGED:
        kind = "anomaly"
    transition = "+".join(steps) or None
    return _event(run_id, obs, kind=kind, transition=transition, previous=previous, cause=obs.cause)


class SyncStore:
    """Mixin for `Ledger`: everything a sync or migration run records."""

    engine: Engine
    dialect: Dialect
    sides: Sides

    if TYPE_CHECKING:

        def session(self) -> AbstractContextManager[Session]: ...

    def _pair_column(self, side: Side, field: str) -> Column[Any]:
        """The `pair_state` column of `field` for `side` (`first_state`, …)."""
        table = PairState.__table__  # type: ignore[attr-defined]
        column: Column[Any] = table.c[f"{_position(self.sides, side)}_{field}"]
        return column

    def _link_column(self, side: Side) -> Column[Any]:
        """The `link` column of `side`'s ticket id."""
        table = Link.__table__  # type: ignore[attr-defined]
        column: Column[Any] = table.c[f"{_position(self.sides, side)}_id"]
        return column

    def _reading(self) -> Connection:
        """A connection for reads only, a page at a time (`READS_ONLY`: no write lock
        where the backend's readers need none), outside a transaction where that saves
        round trips (`Dialect.reads_autocommit`)."""
        connection = self.engine.connect().execution_options(**{READS_ONLY: True})
        if self.dialect.reads_autocommit:
            return connection.execution_options(isolation_level="AUTOCOMMIT")
        return connection

    @contextmanager
    def _read_session(self) -> Iterator[Session]:
        """A session for reads only, on a `_reading` connection: what it returns is as
        stale the moment it returns whether or not it waited for the writer, so it does
        not (on PostgreSQL the lock, BEGIN and COMMIT were three round trips a read)."""
        with self._reading() as connection, Session(connection, expire_on_commit=False) as session:
            yield session

    def _ids(self, link_id: int | None, first_id: int, second_id: int) -> LinkIds:
        assert link_id is not None
        return LinkIds(link_id, first_id, second_id, self.sides)

    # --- reading -----------------------------------------------------------------

    def links_for_tickets(self, side: Side, ticket_ids: Iterable[int]) -> dict[int, LinkIds]:
        """The links of these ticket ids on `side`, keyed by ticket id (unlinked ids left out)."""
        ids = sorted(set(ticket_ids))
        link = Link.__table__  # type: ignore[attr-defined]
        column = self._link_column(side)
        query = select(link.c.id, link.c.first_id, link.c.second_id)
        # the ticket id on `side` is its column of the row: no per-row side lookup
        position = 1 + self.sides.index(side)
        sides = self.sides
        found: dict[int, LinkIds] = {}
        with self._reading() as connection:
            for chunk in chunked(ids, _IDS):
                rows = connection.execute(query.where(self.dialect.in_ids(column, chunk))).all()
                for row in rows:
                    found[row[position]] = LinkIds(row[0], row[1], row[2], sides)
        return found

    def links_and_states(
        self, side: Side, ticket_ids: Iterable[int]
    ) -> tuple[dict[int, int], dict[int, tuple[State | None, datetime | None]]]:
        """What recording a page of `side`'s changes needs of the ledger, in one query per
        chunk of ids: the link id of each of these ticket ids (unlinked ids left out) and
        each link's held state on `side` (as `side_states`, by link id: links never read
        there are left out). A link is found by its ticket's index and its pair by key
        (`tests/postgres/test_dialect_costs.py` holds PostgreSQL's plan to that)."""
        ids = sorted(set(ticket_ids))
        query = self._page_query(side)
        links: dict[int, int] = {}
        held: dict[int, tuple[State | None, datetime | None]] = {}
        with self._reading() as connection:
            for chunk in chunked(ids, _IDS):
                found = connection.execute(query, {"ids": self.dialect.ids_value(chunk)})
                for ticket_id, link_id, value, at in _plain_rows(found):
                    links[ticket_id] = link_id
                    if value is not None:
                        held[link_id] = (_STATES[value], None if at is None else from_micros(at))
        return links, held

    def _page_query(self, side: Side) -> Select[Any]:
        """`links_and_states`'s query, its ids a parameter (`ids`): built once a ledger and
        side, not once a page (SQLAlchemy derives a statement's cache key from its whole
        tree, on every run of a statement built anew)."""
        made: dict[Side, Select[Any]] = self.__dict__.setdefault("_page_queries", {})
        if side not in made:
            made[side] = self._make_page_query(side)
        return made[side]

    def _make_page_query(self, side: Side) -> Select[Any]:
        link = Link.__table__  # type: ignore[attr-defined]
        pair = PairState.__table__  # type: ignore[attr-defined]
        state, deleted_at = self._held_columns(side)
        # each pair by key, a subquery per row (joined, PostgreSQL's planner hashed all of
        # pair_state on the statistics of a fresh import); the time as stored (`times`),
        # made a datetime only where there is one: no type processing per row
        by_key = pair.c.link_id == link.c.id
        at = type_coerce(deleted_at, BigInteger)
        listed = self.dialect.in_ids(self._link_column(side), bindparam("ids", type_=Text()))
        if self.dialect.lateral:
            # both columns by one look-up of the pair's key: a subquery each looked it up
            # twice, a third of the query's buffers in a first sync on PostgreSQL
            held = sa_select(state.label("state"), at.label("at")).where(by_key).limit(1)
            row = held.lateral("held")
            return (
                sa_select(self._link_column(side), link.c.id, row.c.state, row.c.at)
                .select_from(link.outerjoin(row, true()))
                .where(listed)
            )
        query: Select[Any] = sa_select(
            self._link_column(side),
            link.c.id,
            sa_select(state).where(by_key).scalar_subquery(),
            sa_select(at).where(by_key).scalar_subquery(),
        ).where(listed)
        return query

    def _held_columns(self, side: Side) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
        """A link's state on `side` and, when soft-deleted, its vendor time (the one state a
        retention purge follows): what attributing a change's cause needs of the pair."""
        state = self._pair_column(side, "state")
        vendor_time = self._pair_column(side, "vendor_time")
        return state, case((state == State.SOFT_DELETED.value, vendor_time), else_=None)

    def _pair_query(self) -> Select[Any]:
        """The three-way inputs of each link, joined in SQL: its base, each side's latest
        state (with the vendor time, status id and cause), attention, and its tickets;
        only the columns a `PairView` holds, as plain rows."""
        pair = PairState.__table__  # type: ignore[attr-defined]
        link = Link.__table__  # type: ignore[attr-defined]
        columns = [*(pair.c[name] for name in _PAIR_VIEW_FIELDS), link.c.first_id, link.c.second_id]
        query: Select[Any] = select(*columns).join(link, link.c.id == pair.c.link_id)
        return query

    def _pair_views(self, rows: Iterable[Row[Any]]) -> Iterator[PairView]:
        for row in rows:
            yield _pair_view(row, self._ids(row.link_id, row.first_id, row.second_id))

    def load_pairs(self, link_ids: Iterable[int]) -> dict[int, PairView]:
        """Pairs by link id, in link order on any backend (one query per chunk of ids)."""
        ids = sorted(set(link_ids))
        pairs: dict[int, PairView] = {}
        key = PairState.__table__.c.link_id  # type: ignore[attr-defined]
        with self._reading() as connection:
            for chunk in chunked(ids, _IDS):
                query = self._pair_query().where(self.dialect.in_ids(key, chunk)).order_by(key)
                rows = connection.execute(query)
                pairs.update((view.ids.link_id, view) for view in self._pair_views(rows))
        return pairs

    def decision_candidates(self, *, batch: int) -> Iterator[list[PairView]]:
        """Pairs to decide on, a page of at most `batch` at a time in link order: changed
        since their last decision, or still in conflict or divergence, and with no
        operation still open (those wait for it). Streamed: each page is read when the
        last one has been handled (and written), so memory stays flat and a page never
        holds a decision already recorded."""
        return self._pair_pages(_CANDIDATE, batch)

    def any_decision_candidates(self) -> bool:
        """Whether any pair is pending a decision or standing in conflict or divergence
        (what `decision_candidates` looks for, an open operation aside): one read by the
        two partial indexes, instead of the candidates' query and the agreement's look."""
        with self._reading() as connection:
            return connection.execute(_ANY_CANDIDATE).first() is not None

    def unsettled_pairs(self, *, batch: int) -> Iterator[list[PairView]]:
        """Pairs whose sides do not both equal a recorded base (a migration decides these),
        with no operation still open; paged as `decision_candidates`."""
        pair = PairState.__table__  # type: ignore[attr-defined]
        base, first, second = pair.c.base, pair.c.first_state, pair.c.second_state
        wanted = or_(
            base.is_(None),
            first.is_(None),
            second.is_(None),
            first != base,
            second != base,
        )
        return self._pair_pages(wanted, batch)

    def _pair_pages(self, wanted: ColumnElement[bool], batch: int) -> Iterator[list[PairView]]:
        """Pages of the pairs matching `wanted` and free of open operations, by link id
        (keyset: each page starts after the last link of the one before)."""
        pair = PairState.__table__  # type: ignore[attr-defined]
        operation = Operation.__table__  # type: ignore[attr-defined]
        busy = (
            select(operation.c.id)
            .where(operation.c.link_id == pair.c.link_id)
            .where(operation.c.status.in_(OperationStatus.OPEN))
            .exists()
        )
        query = self._pair_query().where(wanted).where(~busy).order_by(pair.c.link_id)
        after = 0
        while True:
            with self._reading() as connection:
                rows = connection.execute(query.where(pair.c.link_id > after).limit(batch))
                page = list(self._pair_views(rows))
            if not page:
                return
            yield page
            after = page[-1].ids.link_id

    def run_facts(self, *, ran: str) -> RunFacts:
        """The cursors, the sweep floors, the sides with a link never read, whether a run
        of kind `ran` was ever recorded and whether an operation is `sent`: one statement
        (each part by key or by an index), where a run asked five to seven reads."""
        cursor = Cursor.__table__  # type: ignore[attr-defined]
        meta = Meta.__table__  # type: ignore[attr-defined]
        run = Run.__table__  # type: ignore[attr-defined]
        pair = PairState.__table__  # type: ignore[attr-defined]
        operation = Operation.__table__  # type: ignore[attr-defined]
        floors = {_SWEEP_FLOOR.format(side=side): side for side in self.sides}
        nothing = literal(None, String)
        parts = [
            sa_select(literal("cursor"), cursor.c.side, cursor.c.value),
            sa_select(literal("floor"), meta.c.key, meta.c.value).where(
                meta.c.key.in_(sorted(floors))
            ),
            sa_select(literal("ran"), nothing, nothing).where(
                sa_select(run.c.id).where(run.c.kind == ran).exists()
            ),
            sa_select(literal("sent"), nothing, nothing).where(
                sa_select(operation.c.id).where(operation.c.status == OperationStatus.SENT).exists()
            ),
        ]
        for side in self.sides:
            unread = sa_select(pair.c.link_id).where(self._pair_column(side, "state").is_(None))
            parts.append(
                sa_select(literal("unread"), literal(side, String), nothing).where(unread.exists())
            )
        cursors: dict[Side, str] = {}
        sweep_floors: dict[Side, int] = {}
        unread_sides: set[Side] = set()
        found: set[str] = set()
        with self._reading() as connection:
            for fact, key, value in connection.execute(union_all(*parts)):
                if fact == "cursor":
                    cursors[key] = value
                elif fact == "floor":
                    sweep_floors[floors[key]] = int(value)
                elif fact == "unread":
                    unread_sides.add(key)
                else:
                    found.add(fact)
        return RunFacts(
            cursors, sweep_floors, frozenset(unread_sides), "ran" in found, "sent" in found
        )

    def unobserved(self, side: Side, *, batch: int = _PAGE) -> Iterator[list[LinkIds]]:
        """Links whose state on `side` has never been read, a page of at most `batch` at a
        time in link order (keyset: each page is read when the one before is handled, so a
        tenant's worth of them is never held at once)."""
        pair = PairState.__table__  # type: ignore[attr-defined]
        link = Link.__table__  # type: ignore[attr-defined]
        # in the pair's key order (the link's id): walked by the side's unread-state
        # index, not by every link
        query = (
            sa_select(link.c.id, link.c.first_id, link.c.second_id)
            .join(pair, pair.c.link_id == link.c.id)
            .where(self._pair_column(side, "state").is_(None))
            .order_by(pair.c.link_id)
            .limit(batch)
        )
        for rows in self._keyset_pages(query, pair.c.link_id):
            yield [self._ids(link_id, first_id, second_id) for link_id, first_id, second_id in rows]

    def retention_candidates(
        self, side: Side, due_before: datetime, now: datetime, *, batch: int = _PAGE
    ) -> Iterator[list[tuple[LinkIds, bool]]]:
        """Soft-deleted tickets on `side` that its vendor's retention job may have removed:
        deleted before `due_before`, or with a copied purge due by `now` (the flag: such a
        ticket is expected gone); pages of at most `batch` in link order, as `unobserved`."""
        pair = PairState.__table__  # type: ignore[attr-defined]
        link = Link.__table__  # type: ignore[attr-defined]
        purge_due = self._pair_column(side, "purge_due")
        vendor_time = self._pair_column(side, "vendor_time")
        due = purge_due <= bindparam("now", now, type_=purge_due.type)
        query = (
            sa_select(link.c.id, link.c.first_id, link.c.second_id, due)
            .join(pair, pair.c.link_id == link.c.id)
            .where(self._pair_column(side, "state") == State.SOFT_DELETED.value)
            .where(
                or_(vendor_time <= bindparam("due_before", due_before, type_=vendor_time.type), due)
            )
            .order_by(link.c.id)
            .limit(batch)
        )
        for rows in self._keyset_pages(query, link.c.id):
            yield [(self._ids(row[0], row[1], row[2]), bool(row[3])) for row in rows]

    def _keyset_pages(self, query: Select[Any], key: Column[Any]) -> Iterator[list[Any]]:
        """The rows of `query` (ordered by `key`, with a limit), page after page: each page
        starts after the last key of the one before, in a connection of its own."""
        after: Any = None
        while True:
            with self._reading() as connection:
                page = query if after is None else query.where(key > after)
                rows = list(connection.execute(page))
            if not rows:
                return
            yield rows
            after = rows[-1][0]

    def side_states(
        self, side: Side, link_ids: Iterable[int]
    ) -> dict[int, tuple[State | None, datetime | None]]:
        """Each link's state on `side`, with its vendor time when soft-deleted (the one state
        a retention purge follows): what attributing a change's cause needs, read as plain
        rows (no pair view, no join), one query per chunk of ids, found by primary key.
        Links never read on `side` are left out (their state is None), here rather than by
        `state IS NOT NULL` in SQL: with statistics taken after a link import (every state
        NULL, as autovacuum finds them), PostgreSQL read that as an index range on
        `first_state` that grew batch after batch through a first sync (issue 18)."""
        pair = PairState.__table__  # type: ignore[attr-defined]
        state, deleted_at = self._held_columns(side)
        vendor_time = self._pair_column(side, "vendor_time")
        query = sa_select(pair.c.link_id, state, type_coerce(deleted_at, vendor_time.type))
        found: dict[int, tuple[State | None, datetime | None]] = {}
        with self._reading() as connection:
            for chunk in chunked(sorted(set(link_ids)), _IDS):
                for link_id, value, at in connection.execute(
                    query.where(self.dialect.in_ids(pair.c.link_id, chunk))
                ).all():
                    if value is not None:
                        found[link_id] = (_STATES[value], at)
        return found

    def links_with_open_operations(self, link_ids: Iterable[int] | None = None) -> set[int]:
        with self._read_session() as session:
            return self._open_operation_links(session.connection(), link_ids)

    def _open_operation_links(
        self, connection: Connection, link_ids: Iterable[int] | None = None
    ) -> set[int]:
        """The links (of `link_ids`, else all) with an open operation. One index probe
        first: a first sync has none open, and a lookup of its every link cost more than
        recording it."""
        query = _OPEN_OPERATION_LINKS
        if link_ids is None:
            return set(connection.execute(query).scalars())
        if connection.execute(_ANY_OPEN_OPERATION).first() is None:
            return set()
        ids = bindparam("ids", type_=Text())
        among = query.where(self.dialect.in_ids(query.selected_columns.link_id, ids))
        found: set[int] = set()
        for chunk in chunked(sorted(set(link_ids)), _IDS):
            bound = {"ids": self.dialect.ids_value(chunk)}
            found.update(connection.execute(among, bound).scalars())
        return found

    def operations(
        self, statuses: Sequence[str], *, target: Side | None = None
    ) -> list[OperationView]:
        with self._read_session() as session:
            query = select(*_OPERATION_COLUMNS).where(col(Operation.status).in_(statuses))
            if target is not None:
                query = query.where(col(Operation.target) == target)
            query = query.order_by(col(Operation.link_id), col(Operation.step))
            return [_operation_view(row) for row in session.exec(query)]

    def recent_writes(
        self, side: Side, link_ids: Iterable[int], since: datetime
    ) -> dict[int, RecentWrite]:
        """Bridge's latest write to `side` of each of these links sent since `since` (its
        status, and when it was sent or settled), keyed by link id: how `bridge serve`
        tells a webhook about bridge's own write (an echo) from someone else's change."""
        found: dict[int, RecentWrite] = {}
        column = Operation.__table__.c.link_id  # type: ignore[attr-defined]
        with self._read_session() as session:
            for chunk in chunked(sorted(set(link_ids)), _IDS):
                query = (
                    select(
                        Operation.link_id,
                        Operation.status,
                        Operation.sent_at,
                        Operation.finished_at,
                    )
                    .where(self.dialect.in_ids(column, chunk))
                    .where(col(Operation.target) == side)
                    .where(col(Operation.sent_at) >= since)
                    .order_by(col(Operation.id))
                )
                for link_id, status, sent_at, finished_at in session.exec(query):
                    at = finished_at or sent_at
                    if at is not None:  # sent_at is, by the query
                        found[link_id] = RecentWrite(status, at)
        return found

    def ready_operations(self) -> list[OperationView]:
        """Planned (or held) operations that are their link's lowest open step (a purge
        waits until its soft delete is confirmed), links with more steps to come first,
        then in planning order. In SQL: the open operations of a large run are many."""
        later = aliased(Operation)
        open_ = OperationStatus.OPEN
        earlier_open = (
            select(later.id)
            .where(later.link_id == Operation.link_id)
            .where(col(later.status).in_(open_))
            .where(later.step < Operation.step)
            .exists()
        )
        more_to_come = (
            select(later.id)
            .where(later.link_id == Operation.link_id)
            .where(col(later.status).in_(open_))
            .where(later.step > Operation.step)
            .exists()
        )
        query = (
            select(*_OPERATION_COLUMNS)
            .where(col(Operation.status).in_((OperationStatus.PLANNED, OperationStatus.HELD)))
            .where(~earlier_open)
            .order_by(more_to_come.desc(), col(Operation.id))
        )
        with self._read_session() as session:
            return [_operation_view(row) for row in session.exec(query)]

    def outstanding(self, stuck_before: datetime) -> Outstanding:
        """What a run's outcome asks at its end, in one read: whether any pair is flagged
        for attention, whether any operation is still planned or sent, and how many are
        stuck since before `stuck_before` (`stuck_operations`, counted)."""
        pair = PairState.__table__  # type: ignore[attr-defined]
        operation = Operation.__table__  # type: ignore[attr-defined]
        flagged = sa_select(pair.c.link_id).where(pair.c.attention.is_not(None)).exists()
        open_ = (
            sa_select(operation.c.id)
            .where(operation.c.status.in_((OperationStatus.PLANNED, OperationStatus.SENT)))
            .exists()
        )
        stuck = (
            sa_select(func.count()).select_from(operation).where(_stuck(stuck_before))
        ).scalar_subquery()
        with self._reading() as connection:
            row = connection.execute(sa_select(flagged, open_, stuck)).one()
        return Outstanding(bool(row[0]), bool(row[1]), int(row[2]))

    def attention(self, kinds: Sequence[str] | None = None) -> list[PairView]:
        with self._read_session() as session:
            # the few flagged pairs found by their index and put in link order here: in SQL,
            # SQLite walked every pair in key order to avoid sorting them (issue 16)
            query = (
                select(PairState, Link)
                .join(Link, col(Link.id) == col(PairState.link_id))
                .where(col(PairState.attention).is_not(None))
            )
            if kinds:
                query = query.where(col(PairState.attention).in_(kinds))
            found = [
                _pair_view(pair, self._ids(link.id, link.first_id, link.second_id))
                for pair, link in session.exec(query)
            ]
            return sorted(found, key=lambda view: view.ids.link_id)

    # --- writing -----------------------------------------------------------------

    def record_observations(
        self,
        run_id: int | None,
        observations: Sequence[Observation],
        *,
        cursors: Mapping[Side, str] | None = None,
    ) -> tuple[set[int], int]:
        """Record what the adapters saw, and advance cursors, in one transaction.

        An observation that reaches the state an open operation was waiting for confirms
        that operation (bridge's own write coming back: no new decision needed). Any
        other change of state is logged and marks the pair for a decision. Returns the
        links newly pending a decision and the number of operations confirmed.

        A batch that touches no operation (a first sync's every batch) commits without
        waiting for the disk where the backend allows (`LAZY_COMMIT`): losing it
        in a server crash loses it with its cursor, and the next run reads it again.

        Set-based: a first run reads every link, so the observations of links with no
        open operation (nearly all of them) are staged in bulk and recorded with a few
        statements per batch (`_record_bulk`); the links with an open operation, or seen
        twice in one batch, go through the rules one observation at a time
        (`_record_each`).
        """
        now = utcnow()
        cursors = dict(cursors or {})
        seen: set[tuple[int, Side]] = set()
        repeated: set[int] = set()
        for obs in observations:
            if (obs.link_id, obs.side) in seen:
                repeated.add(obs.link_id)
            seen.add((obs.link_id, obs.side))
        one_statement = self.dialect.one_statement_batch
        with self.session() as session:
            connection = session.connection(execution_options={LAZY_COMMIT: True})
            # a batch of one statement finds its busy links itself (`_batch_sql`)
            busy = (
                set()
                if one_statement or not observations
                else self._open_operation_links(connection, (o.link_id for o in observations))
            )
            pending: set[int] = set()
            staged = False
            for side in self.sides:
                each = busy | repeated
                bulk = [o for o in observations if o.side == side and o.link_id not in each]
                if not bulk:
                    continue
                if one_statement:
                    changed, found = self._record_batch(
                        connection, run_id, side, bulk, now, cursor=cursors.pop(side, None)
                    )
                    pending |= changed
                    busy |= found
                else:
                    pending |= self._record_bulk(connection, run_id, side, bulk, now, reused=staged)
                    staged = True
            rest = [o for o in observations if o.link_id in busy | repeated]
            confirmed = 0
            if rest:
                # an operation may be touched: not all of this is the vendors' to show again
                self.dialect.commit_durably(connection)
                more, confirmed = self._record_each(session, run_id, rest, now)
                pending |= more
            self._move_cursors(connection, cursors, now)
        return pending, confirmed

    @staticmethod
    def _move_cursors(connection: Connection, cursors: Mapping[Side, str], now: datetime) -> None:
        for side, value in cursors.items():
            connection.execute(_CURSOR_UPSERT, {"side": side, "value": value, "now": now})

    def _record_batch(
        self,
        connection: Connection,
        run_id: int | None,
        side: Side,
        observations: Sequence[Observation],
        now: datetime,
        *,
        cursor: str | None,
    ) -> tuple[set[int], set[int]]:
        """`_record_bulk` in one statement (`Dialect.one_statement_batch`, `_batch_sql`),
        the side's cursor moved in it when given. Returns the links whose state changed
        and the links left out for having an open operation."""
        prefix = _position(self.sides, side)
        columns = zip(*_observed_rows(observations), strict=True)
        arrays = {
            f"o_{name}": self.dialect.array_value(values)
            for name, values in zip(_OBSERVED_INSERT, columns, strict=True)
        }
        params = arrays | {"now": now, "pending": True, "run_id": run_id, "side": side}
        statement = _batch_statement(prefix, cursor=cursor is not None)
        result = connection.execute(statement, params | {"cursor": cursor})
        staged, changed, found = result.one()
        busy = set(found)  # among these observations' links (the statement's `busy`)
        if staged + sum(1 for o in observations if o.link_id in busy) != len(observations):
            # what the event log's foreign key refuses on SQLite: an observation of a
            # link not in the ledger (the caller's transaction is rolled back)
            link = Link.__table__  # type: ignore[attr-defined]
            ids = sorted({o.link_id for o in observations})
            known = connection.execute(sa_select(link.c.id).where(link.c.id.in_(ids)))
            unknown = sorted(set(ids) - set(known.scalars()))
            raise IntegrityError(
                "record observations", None, LookupError(f"links not in the ledger: {unknown}")
            )
        return set(changed), busy

    def _record_bulk(
        self,
        connection: Connection,
        run_id: int | None,
        side: Side,
        observations: Sequence[Observation],
        now: datetime,
        *,
        reused: bool = False,
    ) -> set[int]:
        """Record observations of `side`, at most one per link and none of a link with an
        open operation, with one statement per step whatever their number: stage them
        (the driver's bulk insert of plain tuples), note each link's previous state, log
        the changes (`event`), then update the changed pairs and the status ids (on a
        backend with data-modifying CTEs, `_record_batch` makes it one statement). Returns
        the links whose state changed (now pending a decision)."""
        prefix = _position(self.sides, side)
        dialect = self.dialect
        rows = _observed_rows(observations)
        times = {"now": now, "pending": True}
        dialect.create_staging(connection, _OBSERVED, _OBSERVED_COLUMNS)
        if reused:
            # the other side's batch, earlier in this transaction; a transaction starts
            # with the stage empty (each use releases it, a rollback takes its rows back)
            dialect.clear_staging(connection, _OBSERVED)
        dialect.bulk_insert(connection, _OBSERVED, _OBSERVED_INSERT, rows)
        previous, log, *updates = _bulk_statements(prefix, update_from=dialect.update_from)
        connection.execute(previous)
        connection.execute(log, {"now": now, "run_id": run_id, "side": side})
        for update in updates:
            connection.execute(update, times)
        changes = f"SELECT s.link_id FROM {_OBSERVED} s WHERE {_CHANGED}"
        pending = {link_id for (link_id,) in _plain_rows(connection.exec_driver_sql(changes))}
        dialect.release_staging(connection, _OBSERVED)
        return pending

    def _record_each(
        self,
        session: Session,
        run_id: int | None,
        observations: Sequence[Observation],
        now: datetime,
    ) -> tuple[set[int], int]:
        """Record observations one at a time, with every rule (confirmations, superseded
        plans, a purge void by a restore): for the few links with an open operation, or
        seen more than once in a batch (each sees the one before)."""
        pending: set[int] = set()
        confirmed = 0
        pair_table = PairState.__table__  # type: ignore[attr-defined]
        link_ids = sorted({o.link_id for o in observations})
        pairs: dict[int, dict[str, Any]] = {}
        open_ops: dict[tuple[int, str], list[Operation]] = {}
        for chunk in chunked(link_ids, _CHUNK):
            rows = session.execute(
                select(*[pair_table.c[name] for name in _PAIR_FIELDS]).where(
                    pair_table.c.link_id.in_(chunk)
                )
            )
            for row in rows.mappings():
                pairs[row["link_id"]] = dict(row)
            for op in session.exec(
                select(Operation)
                .where(col(Operation.link_id).in_(chunk))
                .where(col(Operation.status).in_(OperationStatus.OPEN))
                .order_by(col(Operation.step))
            ):
                open_ops.setdefault((op.link_id, op.target), []).append(op)
        events: list[dict[str, Any]] = []
        changed: set[int] = set()
        for obs in observations:
            pair = pairs[obs.link_id]
            prefix = _position(self.sides, obs.side)
            previous = _state(pair[f"{prefix}_state"])
            reached = [
                op
                for op in open_ops.get((obs.link_id, obs.side), [])
                if op.status != OperationStatus.CONFIRMED and obs.state in _SATISFIES[op.transition]
            ]
            # only a write bridge sent can come back as its own: one still planned (or
            # held) that the target reached was done by someone else, whose change
            # this is; the plan is superseded
            ours = [op for op in reached if op.status in _SENT_STATUSES]
            if obs.state is State.ACTIVE:
                # restored while its purge waited for retention: the purge is void, and
                # the restore is a change for the decision (a conflict, usually)
                reached += [
                    op
                    for op in open_ops.get((obs.link_id, obs.side), [])
                    if op.status == OperationStatus.PENDING_RETENTION
                ]
            for op in reached:
                if op not in ours:
                    session.add(op)
                    events.append(_close(op, obs, previous, run_id, now, superseded=True))
            for op in ours:
                op.error = None
                session.add(op)
                events.append(_close(op, obs, previous, run_id, now, superseded=False))
                confirmed += 1
            if ours:
                # the next decision sees both sides agree and records the new base
                pair["pending_decision"] = True
                pending.add(obs.link_id)
                if obs.state is State.PURGED:
                    pair[f"{prefix}_purge_due"] = None
            if previous != obs.state and not ours:
                events.append(_change_event(run_id, obs, previous))
                pair["pending_decision"] = True
                pending.add(obs.link_id)
            if previous != obs.state or ours:
                cause = Cause.BRIDGE if ours else obs.cause
                pair[f"{prefix}_cause"] = cause.value if cause else None
                pair[f"{prefix}_state"] = obs.state.value
                pair[f"{prefix}_vendor_time"] = obs.vendor_time
                pair[f"{prefix}_seen_at"] = obs.seen_at
                pair["updated_at"] = now
                changed.add(obs.link_id)
            active = obs.state is State.ACTIVE
            # a side that reports a status id keeps it while active, for a restore
            status_changed = obs.status_id and pair[f"{prefix}_status_id"] != obs.status_id
            if active and status_changed:
                pair[f"{prefix}_status_id"] = obs.status_id
                changed.add(obs.link_id)
        if events:
            session.execute(Event.__table__.insert(), events)  # type: ignore[attr-defined]
        if changed:
            session.execute(
                pair_table.update()
                .where(pair_table.c.link_id == bindparam("key_link_id"))
                .values(
                    {
                        name: bindparam(f"new_{name}", type_=pair_table.c[name].type)
                        for name in _PAIR_FIELDS[1:]
                    }
                ),
                [
                    {"key_link_id": link_id}
                    | {f"new_{k}": v for k, v in pairs[link_id].items() if k != "link_id"}
                    for link_id in sorted(changed)
                ],
            )
        return pending, confirmed

    def record_decisions(
        self,
        run_id: int | None,
        planned: Sequence[PlannedDecision],
        *,
        skips_stay_pending: bool = False,
        operator: str | None = None,
    ) -> int:
        """Bases, attention flags and outbox rows for a set of decisions, in one transaction.

        Returns the number of operations planned. Planning is idempotent: an operation's
        key is (link, target, transition, base version), so the same decision recorded
        twice plans nothing new. `operator`: the person whose command decided (`conflicts
        resolve`), written on the `resolved` and `planned` events, for the audit.

        Agreements on pairs that need no attention (a first sync's every link) are set-based:
        one UPDATE per batch and base (`_record_agreements`); the rest are recorded one by
        one.
        """
        now = utcnow()
        created = 0
        pair_table = PairState.__table__  # type: ignore[attr-defined]
        with self.session() as session:
            link_ids = sorted({item.pair.ids.link_id for item in planned})
            flagged: set[int] = set()
            for chunk in chunked(link_ids, _IDS):
                flagged.update(
                    session.execute(
                        select(pair_table.c.link_id)
                        .where(self.dialect.in_ids(pair_table.c.link_id, chunk))
                        .where(pair_table.c.attention.is_not(None))
                    ).scalars()
                )
            agreed: dict[State | None, list[int]] = {}
            rest: list[PlannedDecision] = []
            for item in planned:
                decision, link_id = item.decision, item.pair.ids.link_id
                if decision.outcome is Outcome.AGREE and link_id not in flagged:
                    waits = decision.base_waits_for_confirmation
                    base = None if waits else decision.new_base
                    agreed.setdefault(base, []).append(link_id)
                else:
                    rest.append(item)
            for base, ids in agreed.items():
                self._record_agreements(session.connection(), self.dialect, base, ids, now)
            # load the pairs in chunks first: a `get` per decision would query (and
            # autoflush) once per link
            pairs: dict[int, PairState] = {}
            for chunk in chunked(sorted({item.pair.ids.link_id for item in rest}), _CHUNK):
                for row in session.exec(select(PairState).where(col(PairState.link_id).in_(chunk))):
                    pairs[row.link_id] = row
            to_plan: list[tuple[PlannedDecision, PairState]] = []
            for item in rest:
                pair = pairs.get(item.pair.ids.link_id)
                assert pair is not None
                decision = item.decision
                # unknown: decided again next time; with `skips_stay_pending`, so is a skip
                # that leaves the base (a restore not asked for), while one that records a
                # base (a purge held back) is settled
                pair.pending_decision = decision.outcome is Outcome.UNKNOWN or (
                    skips_stay_pending
                    and decision.outcome is Outcome.SKIP
                    and decision.new_base is None
                )
                pair.updated_at = now
                if decision.outcome in (Outcome.CONFLICT, Outcome.DIVERGENCE):
                    kind = decision.outcome.value
                    if _set_attention(pair, kind, decision.reason, now):
                        session.add(
                            Event(
                                run_id=run_id,
                                link_id=pair.link_id,
                                kind=kind,
                                detail=decision.reason,
                            )
                        )
                    session.add(pair)
                    continue
                if decision.outcome is Outcome.SKIP:
                    session.add(
                        Event(
                            run_id=run_id,
                            link_id=pair.link_id,
                            kind="skipped",
                            detail=decision.reason,
                        )
                    )
                if decision.outcome in (Outcome.AGREE, Outcome.APPLY, Outcome.SKIP):
                    # agreement settles a conflict, a divergence, or a write that had failed
                    if pair.attention in ("conflict", "divergence", "failed") and _set_attention(
                        pair, None, None, now
                    ):
                        session.add(
                            Event(
                                run_id=run_id,
                                link_id=pair.link_id,
                                kind="resolved",
                                detail=decision.reason,
                                operator=operator,
                            )
                        )
                    if (
                        decision.new_base is not None
                        and not decision.base_waits_for_confirmation
                        and pair.base != decision.new_base.value
                    ):
                        pair.base = decision.new_base.value
                        pair.base_version += 1
                        pair.base_at = now
                if decision.outcome is Outcome.APPLY and decision.target is not None:
                    to_plan.append((item, pair))
                session.add(pair)
            created += self._plan(session, run_id, to_plan, now, operator)
        return created

    def agree_where_equal(self, *, unsettled: bool, exclude: Collection[int] = ()) -> int:
        """Decide at once every candidate whose two sides hold the same state: rule 2 of
        the three-way decision (`bridge.core.decide`: both sides equal ⇒ agree, base :=
        that state), which a migration's decision shares. A first sync agrees on nearly
        every link; a decision built per link in Python costs more than the reads.

        Candidates are a sync's (pending a decision) or, with `unsettled`, a migration's
        (base missing or not that state). Left to the decision per link: pairs flagged
        for attention (their agreement is an event), with an open operation (they wait
        for it), and the `exclude`d links (a lookup has yet to read them). One UPDATE;
        returns the pairs decided. `tests/reconcile/test_bulk_agreement.py` holds it to
        `decide` over every combination of states.
        """
        if not unsettled:
            # an idle run's pairs are none of them pending: one read (by the pending
            # index), not a write transaction (on PostgreSQL four round trips)
            with self._reading() as connection:
                if connection.execute(_ANY_PENDING).first() is None:
                    return 0
        pair = PairState.__table__  # type: ignore[attr-defined]
        operation = Operation.__table__  # type: ignore[attr-defined]
        first, second, base = pair.c.first_state, pair.c.second_state, pair.c.base
        now = utcnow()
        busy = (
            select(operation.c.id)
            .where(operation.c.link_id == pair.c.link_id)
            .where(operation.c.status.in_(OperationStatus.OPEN))
            .exists()
        )
        new_base = or_(base.is_(None), base != first)
        wanted = new_base if unsettled else pair.c.pending_decision
        query = (
            pair.update()
            .where(first.is_not(None), first == second, pair.c.attention.is_(None), wanted, ~busy)
            .values(
                pending_decision=False,
                updated_at=now,
                base=first,
                base_version=case((new_base, pair.c.base_version + 1), else_=pair.c.base_version),
                base_at=case((new_base, literal(now, UTCDateTime)), else_=pair.c.base_at),
            )
        )
        if exclude:
            query = query.where(~self.dialect.in_ids(pair.c.link_id, sorted(exclude)))
        with self.session() as session:
            decided = int(session.connection().execute(query).rowcount or 0)
        if decided >= _RESHAPED:
            # a first sync or a migration: the table the next run plans on is new
            self.dialect.reshaped(self.engine, "pair_state")
        return decided

    @staticmethod
    def _record_agreements(
        connection: Connection,
        dialect: Dialect,
        base: State | None,
        link_ids: Sequence[int],
        now: datetime,
    ) -> None:
        """Both sides agree (and no attention is set): the pairs are decided, and where
        `base` differs from the recorded one it becomes the base at a new version; one
        UPDATE per chunk of links."""
        pair = PairState.__table__  # type: ignore[attr-defined]
        values: dict[str, Any] = {"pending_decision": False, "updated_at": now}
        if base is not None:
            new = or_(pair.c.base.is_(None), pair.c.base != base.value)
            values |= {
                "base": base.value,
                "base_version": case((new, pair.c.base_version + 1), else_=pair.c.base_version),
                "base_at": case((new, literal(now, UTCDateTime)), else_=pair.c.base_at),
            }
        for chunk in chunked(sorted(link_ids), _IDS):
            connection.execute(
                pair.update().where(dialect.in_ids(pair.c.link_id, chunk)).values(values)
            )

    def _plan(
        self,
        session: Session,
        run_id: int | None,
        items: Sequence[tuple[PlannedDecision, PairState]],
        now: datetime,
        operator: str | None = None,
    ) -> int:
        """The outbox rows (and their `planned` events) of a batch of APPLY decisions, with
        a few statements per chunk: the source events and the keys already used are read
        for the whole chunk, the operations and events inserted in bulk."""
        event = Event.__table__  # type: ignore[attr-defined]
        operation = Operation.__table__  # type: ignore[attr-defined]
        session.flush()  # the decisions' own events come before their plans
        connection = session.connection()
        created = 0
        for chunk in chunked(items, _CHUNK):
            link_ids = sorted({pair.link_id for _, pair in chunk})
            sources: dict[tuple[int, str], int] = {
                (link_id, side): event_id
                for link_id, side, event_id in connection.execute(
                    select(event.c.link_id, event.c.side, func.max(event.c.id))
                    .where(event.c.link_id.in_(link_ids))
                    .where(event.c.kind.in_(("observed", "first_seen")))
                    .group_by(event.c.link_id, event.c.side)
                )
            }

            def keys(item: PlannedDecision, pair: PairState) -> list[str]:
                target = item.decision.target
                return [
                    f"{pair.link_id}:{target}:{t.value}:{pair.base_version}"
                    for t in item.decision.transitions
                ]

            wanted = [key for item, pair in chunk for key in keys(item, pair)]
            used = set(
                connection.execute(
                    select(operation.c.key).where(operation.c.key.in_(wanted))
                ).scalars()
            )
            rows: list[dict[str, Any]] = []
            for item, pair in chunk:
                decision = item.decision
                target = decision.target
                assert target is not None
                # A finished operation with the same key (confirmed, failed or superseded)
                # means the same copy is needed again at the same base: a new base version
                # keeps keys unique.
                if used.intersection(keys(item, pair)):
                    pair.base_version += 1
                #: what the target's vendor showed as its status while active (put back
                #: on restore)
                restore: int | None = getattr(pair, f"{_position(self.sides, target)}_status_id")
                for step, (transition, key) in enumerate(
                    zip(decision.transitions, keys(item, pair), strict=True)
                ):
                    rows.append(
                        {
                            "key": key,
                            "link_id": pair.link_id,
                            "target": target,
                            "ticket_id": item.pair.ids.ticket(target),
                            "transition": transition.value,
                            "step": step,
                            "base_version": pair.base_version,
                            "cause": (item.cause or Cause.USER).value,
                            "source_event_id": sources.get(
                                (pair.link_id, self.sides.other(target))
                            ),
                            "status": OperationStatus.PLANNED,
                            "run_id": run_id,
                            "attempts": 0,
                            "restore_status_id": restore
                            if transition is Transition.RESTORE
                            else None,
                            "created_at": now,
                            "updated_at": now,
                        }
                    )
            if not rows:
                continue
            connection.execute(operation.insert(), rows)
            ids = dict(
                connection.execute(
                    select(operation.c.key, operation.c.id).where(
                        operation.c.key.in_([row["key"] for row in rows])
                    )
                ).all()
            )
            reasons = {pair.link_id: redact_text(item.decision.reason) for item, pair in chunk}
            connection.execute(
                event.insert(),
                [
                    {
                        "at": now,
                        "run_id": run_id,
                        "link_id": row["link_id"],
                        "kind": "planned",
                        "side": row["target"],
                        "ticket_id": row["ticket_id"],
                        "transition": row["transition"],
                        "cause": row["cause"],
                        "operation_id": ids[row["key"]],
                        "detail": reasons[row["link_id"]],
                        "operator": operator,
                    }
                    for row in rows
                ],
            )
            created += len(rows)
        return created

    def mark_sent(self, op_ids: Sequence[int], *, run_id: int | None, batch: str) -> None:
        """Before the vendor call: after a crash these are confirmed by re-reading, not resent."""
        self._update_ops(
            op_ids,
            run_id,
            kind="sent",
            status=OperationStatus.SENT,
            batch=batch,
            count_attempt=True,
        )

    def set_job(self, op_ids: Sequence[int], job_id: str) -> None:
        with self.session() as session:
            for op in self._ops(session, op_ids):
                op.job_id = job_id
                op.updated_at = utcnow()
                session.add(op)

    def hold(self, op_ids: Sequence[int], *, run_id: int | None, reason: str) -> None:
        """Purges over the per-run cap: kept, reported, released by a later run."""
        now = utcnow()
        with self.session() as session:
            for op in self._ops(session, op_ids):
                if op.status != OperationStatus.HELD:
                    session.add(_op_event(run_id, op, "held", reason))
                op.status = OperationStatus.HELD
                op.updated_at = now
                session.add(op)
                pair = session.get(PairState, op.link_id)
                assert pair is not None
                _set_attention(pair, "held_purge", reason, now)
                session.add(pair)

    def release_held(self, op_ids: Sequence[int]) -> None:
        now = utcnow()
        with self.session() as session:
            for op in self._ops(session, op_ids):
                op.status = OperationStatus.PLANNED
                op.updated_at = now
                session.add(op)
                pair = session.get(PairState, op.link_id)
                assert pair is not None
                if pair.attention == "held_purge":
                    _set_attention(pair, None, None, now)
                    session.add(pair)

    def mark_pending_retention(self, until: Mapping[int, datetime], *, run_id: int | None) -> None:
        """Purges on a side whose vendor purges by retention: soft-deleted, waiting for its
        retention job (the pair keeps when each is due)."""
        now = utcnow()
        with self.session() as session:
            for op in self._ops(session, list(until)):
                op.status = OperationStatus.PENDING_RETENTION
                op.pending_until = until[op.id]  # type: ignore[index]
                op.updated_at = now
                session.add(op)
                pair = session.get(PairState, op.link_id)
                assert pair is not None
                setattr(
                    pair, f"{_position(self.sides, Side(op.target))}_purge_due", op.pending_until
                )
                session.add(pair)
                session.add(
                    _op_event(
                        run_id,
                        op,
                        "pending_retention",
                        f"until {op.pending_until.isoformat() if op.pending_until else '?'}",
                    )
                )

    def fail(
        self,
        errors: Mapping[int, str],
        *,
        run_id: int | None,
        retry: bool,
        max_attempts: int = 5,
        charged: bool = True,
    ) -> int:
        """Record failed operations. Retryable ones go back to `planned` until they have
        used `max_attempts`; then, like permanent failures, they need attention. An
        attempt not `charged` (the vendor refused our credentials: nothing was tried) is
        given back, and the operation is planned again however often that happens.
        Returns how many became permanent failures."""
        now = utcnow()
        permanent = 0
        with self.session() as session:
            for op in self._ops(session, list(errors)):
                assert op.id is not None
                if not charged:
                    op.attempts = max(0, op.attempts - 1)
                final = not retry or (charged and op.attempts >= max_attempts)
                op.status = OperationStatus.FAILED if final else OperationStatus.PLANNED
                op.error = errors[op.id][:500]
                op.updated_at = now
                if final:
                    op.finished_at = now
                    permanent += 1
                    pair = session.get(PairState, op.link_id)
                    assert pair is not None
                    _set_attention(pair, "failed", f"{op.transition} failed: {op.error}", now)
                    session.add(pair)
                session.add(op)
                session.add(_op_event(run_id, op, "failed" if final else "retry", op.error))
        return permanent

    def _update_ops(
        self,
        op_ids: Sequence[int],
        run_id: int | None,
        *,
        kind: str,
        status: str,
        batch: str | None = None,
        count_attempt: bool = False,
    ) -> None:
        """Move operations to `status`, each with an event of `kind`: one UPDATE and one
        INSERT … SELECT per chunk of operations."""
        now = utcnow()
        operation = Operation.__table__  # type: ignore[attr-defined]
        event = Event.__table__  # type: ignore[attr-defined]
        values: dict[str, Any] = {"status": status, "updated_at": now}
        if batch is not None:
            values |= {"batch": batch, "sent_at": now}
        if count_attempt:
            values["attempts"] = operation.c.attempts + 1
        detail = redact_text(batch) if batch is not None else None
        with self.session() as session:
            connection = session.connection()
            for chunk in chunked(sorted(set(op_ids)), _CHUNK):
                connection.execute(
                    operation.update().where(operation.c.id.in_(chunk)).values(values)
                )
                connection.execute(
                    event.insert().from_select(
                        _OP_EVENT_COLUMNS,
                        sa_select(
                            literal(now, UTCDateTime),
                            literal(run_id, Integer),
                            operation.c.link_id,
                            literal(kind),
                            operation.c.target,
                            operation.c.ticket_id,
                            operation.c.transition,
                            operation.c.id,
                            literal(detail, String),
                        )
                        .where(operation.c.id.in_(chunk))
                        .order_by(operation.c.id),
                    )
                )

    @staticmethod
    def _ops(session: Session, op_ids: Sequence[int]) -> list[Operation]:
        found: list[Operation] = []
        for chunk in chunked(sorted(set(op_ids)), _CHUNK):
            found.extend(session.exec(select(Operation).where(col(Operation.id).in_(chunk))))
        return found

    def note_unknown(self, op_ids: Sequence[int], *, run_id: int | None, reason: str) -> None:
        """A write that may have been acted on: it stays `sent` (never planned again)
        until a re-read of the target shows whether it happened."""
        now = utcnow()
        with self.session() as session:
            for op in self._ops(session, op_ids):
                op.error = reason[:500]
                op.updated_at = now
                session.add(op)
                session.add(_op_event(run_id, op, "outcome_unknown", op.error))

    def note_waiting(self, reasons: Mapping[int, str]) -> None:
        """Why sent operations are still unconfirmed (shown by `bridge status`)."""
        now = utcnow()
        with self.session() as session:
            for op in self._ops(session, list(reasons)):
                assert op.id is not None
                if op.error != reasons[op.id][:500]:
                    op.error = reasons[op.id][:500]
                    op.updated_at = now
                    session.add(op)

    def sweep_due(
        self,
        side: Side,
        before: datetime,
        limit: int,
        *,
        remember: bool = True,
        floors: Mapping[Side, int] | None = None,
    ) -> list[tuple[LinkIds, State]]:
        """Up to `limit` links whose ticket on `side` was last found before `before` (the
        oldest first), with the state the ledger holds for it; purged tickets are final.

        Finding none reads every pair, so a run that finds none notes (`remember`) when
        the oldest of them was last found (`sweep_floor`), and the runs after it ask
        nothing until that time is due: an idle run reads no pair for the sweep. `floors`:
        the floors as the run read them (`RunFacts`; only `sweep_due` moves one, and a run
        sweeps a side once), else read here."""
        key = _SWEEP_FLOOR.format(side=side)
        if floors is None:
            with self._reading() as connection:
                held = meta_value(connection, key)
            floor = None if held is None else int(held)
        else:
            floor = floors.get(side)
        if floor is not None and to_micros(before) < floor:
            return []
        state, seen = self._pair_column(side, "state"), self._pair_column(side, "seen_at")
        # when the sweep, or else a change of state, last found the ticket
        last = type_coerce(func.coalesce(self._pair_column(side, "checked_at"), seen), seen.type)
        pair = PairState.__table__  # type: ignore[attr-defined]
        link = Link.__table__  # type: ignore[attr-defined]
        eligible = (state.is_not(None), state != State.PURGED.value)
        query = (
            select(link.c.id, link.c.first_id, link.c.second_id, state)
            .join(pair, pair.c.link_id == link.c.id)
            .where(*eligible, last <= bindparam("before", type_=last.type))
            .order_by(last, link.c.id)
            .limit(limit)
        )
        with self.session() as session:
            rows = session.execute(query, {"before": before}).all()
            if not rows and remember:
                oldest = session.execute(sa_select(func.min(last)).where(*eligible)).scalar()
                if oldest is not None:
                    set_meta(session.connection(), key, str(to_micros(oldest)))
            return [(self._ids(row[0], row[1], row[2]), State(row[3])) for row in rows]

    def mark_checked(self, side: Side, link_ids: Sequence[int], at: datetime) -> None:
        """The sweep found these links' tickets on `side` (or settled what became of them)."""
        pair = PairState.__table__  # type: ignore[attr-defined]
        column = self._pair_column(side, "checked_at")
        with self.session() as session:
            for chunk in chunked(sorted(set(link_ids)), _CHUNK):
                session.execute(
                    pair.update()
                    .where(pair.c.link_id.in_(chunk))
                    .values({column: bindparam("at", type_=column.type)}),
                    {"at": at},
                )

    def stuck_operations(self, older_than: datetime, now: datetime) -> list[dict[str, Any]]:
        """Operations failing or unconfirmed since before `older_than`: sent and never
        confirmed, planned again after failing, or waiting for a retention purge that
        is overdue. Each with its link's tickets by side, its reason and age, for `bridge
        status` and the exit code."""
        query = (
            select(Operation, Link)
            .join(Link, col(Link.id) == col(Operation.link_id))
            .where(_stuck(older_than))
            .order_by(col(Operation.created_at), col(Operation.id))
        )
        stuck: list[dict[str, Any]] = []
        with self._read_session() as session:
            for op, link in session.exec(query):
                ids = self._ids(link.id, link.first_id, link.second_id)
                stuck.append(
                    {
                        "operation": op.id,
                        "tickets": {side: ids.ticket(side) for side in self.sides},
                        "target": op.target,
                        "transition": op.transition,
                        "status": op.status,
                        "attempts": op.attempts,
                        "age_minutes": int((now - op.created_at).total_seconds() // 60),
                        "reason": op.error or "not confirmed yet",
                    }
                )
        return stuck
