"""The ledger's read side for audit reports: streaming, read-only queries.

Every query `bridge report` needs lives here, so that no SQL leaves `bridge.ledger`. Reads run
inside one snapshot (`AuditStore.audit_view`): the summary, the rows and the runs of one
report agree with each other even while a sync run writes; how a snapshot is taken without
holding back a writer is the dialect's business (`Dialect.read_snapshot`).
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from bridge.core.model import READS
from bridge.ledger.dialect import FIELD_SEPARATOR, Dialect, RowSource
from bridge.ledger.tables import Event, Link, Operation, PairState, Run
from bridge.ledger.times import from_micros

__all__ = [
    "AuditStore",
    "AuditView",
    "CopyFacts",
    "EndOfPeriod",
    "LinkFacts",
    "NoteFacts",
    "RunFacts",
    "SideFacts",
    "TransitionFacts",
]

#: events that are one transition on one side (the report's rows)
ROW_KINDS = ("observed", "confirmed", "pending_retention")
#: events in an operation's life, whose latest one says where the operation stands
_OPERATION_KINDS = (
    "planned",
    "sent",
    "confirmed",
    "retry",
    "failed",
    "held",
    "pending_retention",
    "superseded",
)
_BULK_TABLES: Mapping[str, Any] = {
    "run": Run.__table__,  # type: ignore[attr-defined]
    "link": Link.__table__,  # type: ignore[attr-defined]
    "pair_state": PairState.__table__,  # type: ignore[attr-defined]
    "event": Event.__table__,  # type: ignore[attr-defined]
    "operation": Operation.__table__,  # type: ignore[attr-defined]
}


@dataclass(frozen=True, slots=True)
class CopyFacts:
    """One operation that copied an observed change to the other side."""

    operation_id: int
    transition: str
    step: int
    status: str
    finished_at: datetime | None
    pending_until: datetime | None
    error: str | None
    #: the person whose command planned it (`conflicts resolve`), if one did
    operator: str | None = None


@dataclass(frozen=True, slots=True)
class TransitionFacts:
    """What the ledger knows about one row-event: an observed change, a confirmed bridge write,
    or a bridge purge still waiting for the vendor's retention job."""

    event_id: int
    kind: str
    at: datetime
    run_id: int | None
    link_id: int | None
    #: the link's tickets, the first side's and the second's
    first_id: int | None
    second_id: int | None
    side: str | None
    ticket_id: int | None
    transition: str | None
    from_state: str | None
    to_state: str | None
    cause: str | None
    actor_id: int | None
    vendor_time: datetime | None
    #: observed rows: the operations that copied this change (empty when none was planned)
    copies: tuple[CopyFacts, ...]
    #: observed rows without copies: the decision taken instead (skipped/conflict/divergence)
    decision_kind: str | None
    decision_detail: str | None
    #: bridge rows: the operation this write belongs to, and what it copied
    operation_id: int | None
    source_event_id: int | None
    operation_status: str | None
    pending_until: datetime | None
    #: observed rows whose decision was a conflict or divergence: the `resolved` event
    #: after it (when, by whom if a person, why)
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolved_detail: str | None = None
    #: bridge rows: the person whose action made this write, and which action
    #: (`resolve`: planned by `conflicts resolve`; else the kind of the run whose override
    #: let it through: `sync` with `--allow-mass-purge`, or `migrate`)
    operator: str | None = None
    operator_action: str | None = None
    #: which read showed the change, or confirmed the write (`bridge.core.model.READS`);
    #: None for rows recorded before it was kept
    read: str | None = None


@dataclass(frozen=True, slots=True)
class RunFacts:
    id: int
    kind: str
    started_at: datetime
    ended_at: datetime | None
    outcome: str
    dry_run: bool
    counts: dict[str, int]
    message: str | None
    #: who authorised the run's override (`--allow-mass-purge`, a migration); None: none
    operator: str | None = None


@dataclass(frozen=True, slots=True)
class SideFacts:
    """What the ledger holds now about one side of a link (`pair_state`)."""

    ticket_id: int
    state: str | None
    vendor_time: datetime | None
    seen_at: datetime | None
    cause: str | None
    #: a purge copied to this side waits for the vendor's retention job until then
    purge_due: datetime | None


@dataclass(frozen=True, slots=True)
class LinkFacts:
    """One link as the ledger holds it now: its tickets, origin and each side's state."""

    link_id: int
    origin: str
    created_at: datetime
    base: str | None
    first: SideFacts
    second: SideFacts
    attention: str | None
    attention_reason: str | None


@dataclass(frozen=True, slots=True)
class NoteFacts:
    """An event of a link's story that is not a transition: a conflict, a divergence, its
    resolution, a held or failed write, a skipped copy, an operator's override."""

    event_id: int
    at: datetime
    kind: str
    run_id: int | None
    side: str | None
    transition: str | None
    detail: str | None
    operator: str | None
    link_id: int | None = None
    #: the link's tickets, first side's and second's
    first_id: int | None = None
    second_id: int | None = None


@dataclass(frozen=True, slots=True)
class EndOfPeriod:
    """What needed attention when the period ended, rebuilt from the event log (so a report
    on a past period shows that period's end, not today's)."""

    conflicts: int
    divergences: int
    held_purges: int
    failed_operations: int
    pending_retention: int
    in_flight: int


def _time(value: int | None) -> datetime | None:
    """A stored time (integer microseconds, `bridge.ledger.times`) as aware UTC."""
    return None if value is None else from_micros(value)


def _rows_sql(dialect: Dialect, *, one_link: bool = False) -> str:
    """The report's rows. `kind || ''` keeps the planner off the kind index: the period's
    range on `at` (which also gives the order, so rows stream without a sort) and each
    link's own events are far narrower than all events of one kind. `one_link`: only the
    rows of `:link_id` (one ticket's story), read off the link index."""
    link_clause = " AND e.link_id = :link_id" if one_link else ""
    resolution = dialect.join_fields("r.at", "coalesce(r.operator, '')", "coalesce(r.detail, '')")
    return f"""
SELECT e.id, e.kind, e.at, e.run_id, e.link_id, l.first_id, l.second_id, e.side,
       e.ticket_id, e.transition, e.from_state, e.to_state, e.cause, e.actor_id, e.vendor_time,
       c.id, c.transition, c.step, c.status, c.finished_at, c.pending_until, c.error,
       CASE WHEN e.kind = 'observed' AND c.id IS NULL THEN (
           SELECT {dialect.join_fields("d.kind", "coalesce(d.detail, '')")} FROM event d
           WHERE d.link_id = e.link_id AND d.id > e.id
             AND d.kind || '' IN ('skipped', 'conflict', 'divergence', 'planned', 'observed')
           ORDER BY d.id LIMIT 1) END,
       e.operation_id, o.source_event_id, o.status, o.pending_until,
       CASE WHEN e.kind = 'observed' AND c.id IS NULL THEN (
           SELECT {resolution} FROM event r
           WHERE r.link_id = e.link_id AND r.id > e.id AND r.kind || '' = 'resolved'
           ORDER BY r.id LIMIT 1) END,
       CASE WHEN e.kind != 'observed' THEN coalesce(
           (SELECT {dialect.join_fields("'resolve'", "p.operator")} FROM event p
            WHERE p.link_id = e.link_id AND p.operation_id = e.operation_id
              AND p.kind || '' = 'planned' AND p.operator IS NOT NULL
            ORDER BY p.id LIMIT 1),
           (SELECT {dialect.join_fields("u.kind", "u.operator")} FROM event s
            JOIN run u ON u.id = s.run_id
            WHERE s.link_id = e.link_id AND s.operation_id = e.operation_id
              AND s.kind || '' IN ('planned', 'sent') AND u.operator IS NOT NULL
              AND (u.kind = 'migrate' OR e.transition = 'purge')
            ORDER BY s.id LIMIT 1)) END,
       CASE WHEN c.id IS NOT NULL THEN (
           SELECT q.operator FROM event q
           WHERE q.link_id = c.link_id AND q.operation_id = c.id AND q.kind || '' = 'planned'
           ORDER BY q.id LIMIT 1) END,
       e.detail
FROM event e
LEFT JOIN link l ON l.id = e.link_id
LEFT JOIN operation c
       ON e.kind = 'observed' AND c.link_id = e.link_id AND c.source_event_id = e.id
LEFT JOIN operation o ON e.kind != 'observed' AND o.id = e.operation_id
WHERE e.at >= :since AND e.at < :until{link_clause}
  AND e.kind || '' IN {ROW_KINDS!r}
  AND (e.kind != 'observed' OR e.transition IS NOT NULL)
  AND (e.kind != 'pending_retention' OR (
        o.status != 'confirmed' AND NOT EXISTS (
          SELECT 1 FROM event p WHERE p.link_id = e.link_id AND p.operation_id = e.operation_id
            AND p.kind || '' = 'pending_retention' AND p.id > e.id)))
ORDER BY e.at, e.id
"""


class AuditView:
    """The queries of one report, all inside one read snapshot."""

    def __init__(self, runner: RowSource, dialect: Dialect) -> None:
        self._runner = runner
        self._dialect = dialect

    def bounds(self) -> tuple[datetime, datetime] | None:
        """The times of the first and last events in the ledger; None when it has none."""
        for first, last in self._runner.rows("SELECT min(at), max(at) FROM event", {}):
            start, end = _time(first), _time(last)
            if start is None or end is None:
                return None
            return start, end
        return None  # pragma: no cover - an aggregate always returns one row

    def transitions(
        self, since: datetime, until: datetime, *, link_id: int | None = None
    ) -> Generator[TransitionFacts, None, None]:
        """Row-events detected in [since, until), in detection order, with what became of
        them (only link `link_id`'s, when given). Streams: one event's operations are
        gathered, then it is yielded."""
        sql = _rows_sql(self._dialect, one_link=link_id is not None)
        params: dict[str, Any] = {"since": since, "until": until}
        if link_id is not None:
            params["link_id"] = link_id
        rows = self._runner.rows(sql, params)
        try:
            yield from self._gather(rows)
        finally:
            # closed here, inside the snapshot, even when the reader stops early
            # (`report -o - | head`): not later, by the garbage collector, on a closed
            # connection
            close = getattr(rows, "close", None)
            if close is not None:
                close()

    @staticmethod
    def _gather(rows: Iterator[Sequence[Any]]) -> Iterator[TransitionFacts]:
        """One `TransitionFacts` per event: its rows (one per copy) gathered."""
        current: list[Any] | None = None
        copies: list[CopyFacts] = []
        for row in rows:
            if current is not None and row[0] != current[0]:
                yield _facts(current, copies)
                copies = []
            current = list(row)
            if row[15] is not None:
                copies.append(
                    CopyFacts(
                        operation_id=int(row[15]),
                        transition=str(row[16]),
                        step=int(row[17]),
                        status=str(row[18]),
                        finished_at=_time(row[19]),
                        pending_until=_time(row[20]),
                        error=row[21],
                        operator=row[29],
                    )
                )
        if current is not None:
            yield _facts(current, copies)

    def runs(
        self, since: datetime, until: datetime, *, link_id: int | None = None
    ) -> Iterator[RunFacts]:
        """Sync and migration runs started in [since, until), oldest first; with `link_id`,
        only the runs that recorded an event of that link (the runs its story rests on)."""
        sql = f"SELECT {_RUN_COLUMNS} FROM run WHERE started_at >= :since AND started_at < :until"
        params: dict[str, Any] = {"since": since, "until": until}
        if link_id is not None:
            sql += " AND id IN (SELECT run_id FROM event WHERE link_id = :link_id)"
            params["link_id"] = link_id
        for row in self._runner.rows(sql + " ORDER BY started_at, id", params):
            yield _run(row)

    def run_range(self, since: datetime, until: datetime) -> tuple[int, int, int] | None:
        """(first id, last id, count) of the runs started in [since, until); None: none."""
        sql = (
            "SELECT min(id), max(id), count(*) FROM run "
            "WHERE started_at >= :since AND started_at < :until"
        )
        for first, last, count in self._runner.rows(sql, {"since": since, "until": until}):
            if count:
                return int(first), int(last), int(count)
        return None

    def links_of_ticket(self, ticket_id: int) -> list[tuple[int, int, int]]:
        """(link id, first id, second id) of every link with `ticket_id` on either side."""
        sql = (
            "SELECT id, first_id, second_id FROM link "
            "WHERE first_id = :ticket OR second_id = :ticket ORDER BY id"
        )
        return [
            (int(a), int(b), int(c)) for a, b, c in self._runner.rows(sql, {"ticket": ticket_id})
        ]

    def link(self, link_id: int) -> LinkFacts | None:
        """The link and what the ledger holds now about each of its sides."""
        sql = (
            "SELECT l.id, l.origin, l.created_at, l.first_id, l.second_id, p.base, "
            "p.first_state, p.first_vendor_time, p.first_seen_at, p.first_cause, "
            "p.first_purge_due, p.second_state, p.second_vendor_time, p.second_seen_at, "
            "p.second_cause, p.second_purge_due, p.attention, p.attention_reason "
            "FROM link l LEFT JOIN pair_state p ON p.link_id = l.id WHERE l.id = :link_id"
        )
        for row in self._runner.rows(sql, {"link_id": link_id}):
            created = _time(row[2])
            assert created is not None
            return LinkFacts(
                link_id=int(row[0]),
                origin=str(row[1]),
                created_at=created,
                base=row[5],
                first=_side(row, int(row[3]), 6),
                second=_side(row, int(row[4]), 11),
                attention=row[16],
                attention_reason=row[17],
            )
        return None

    def notes(
        self, since: datetime, until: datetime, *, link_id: int | None = None
    ) -> Iterator[NoteFacts]:
        """The story's other events in [since, until): conflicts, divergences, their
        resolution, held, failed and skipped writes, anomalies, for one link; without
        `link_id`, the operator actions only (`resolved` and `override` events a person's
        command wrote)."""
        if link_id is None:
            where = f"e.kind || '' IN {_OPERATOR_KINDS!r} AND e.operator IS NOT NULL"
        else:
            where = f"e.link_id = :link_id AND e.kind || '' IN {_NOTE_KINDS!r}"
        sql = (
            "SELECT e.id, e.at, e.kind, e.run_id, e.side, e.transition, e.detail, e.operator, "
            "e.link_id, l.first_id, l.second_id FROM event e LEFT JOIN link l ON l.id = e.link_id "
            f"WHERE {where} AND e.at >= :since AND e.at < :until ORDER BY e.id"
        )
        params: dict[str, Any] = {"since": since, "until": until, "link_id": link_id}
        for row in self._runner.rows(sql, params):
            at = _time(row[1])
            assert at is not None
            yield NoteFacts(
                event_id=int(row[0]),
                at=at,
                kind=str(row[2]),
                run_id=row[3],
                side=row[4],
                transition=row[5],
                detail=row[6],
                operator=row[7],
                link_id=row[8],
                first_id=row[9],
                second_id=row[10],
            )

    def anomalies(self, since: datetime, until: datetime) -> int:
        """Purged tickets seen alive again in the period (ids reused, or a vendor error)."""
        sql = "SELECT count(*) FROM event WHERE kind = 'anomaly' AND at >= :since AND at < :until"
        return sum(int(row[0]) for row in self._runner.rows(sql, {"since": since, "until": until}))

    def end_of_period(self, until: datetime) -> EndOfPeriod:
        """Open conflicts, divergences, held purges and failed operations as they stood at
        `until`: each link's latest conflict/divergence/resolved event, each operation's
        latest life event."""
        attention: dict[str, int] = {}
        sql = (
            "SELECT e.kind, count(*) FROM event e JOIN (SELECT link_id, max(id) AS id FROM event "
            "WHERE kind IN ('conflict', 'divergence', 'resolved') AND at < :until "
            "GROUP BY link_id) m ON e.id = m.id GROUP BY e.kind"
        )
        for kind, count in self._runner.rows(sql, {"until": until}):
            attention[str(kind)] = int(count)
        operations: dict[str, int] = {}
        sql = (
            "SELECT e.kind, count(*) FROM event e JOIN (SELECT operation_id, max(id) AS id "
            f"FROM event WHERE operation_id IS NOT NULL AND kind IN {_OPERATION_KINDS!r} "
            "AND at < :until GROUP BY operation_id) m ON e.id = m.id GROUP BY e.kind"
        )
        for kind, count in self._runner.rows(sql, {"until": until}):
            operations[str(kind)] = int(count)
        return EndOfPeriod(
            conflicts=attention.get("conflict", 0),
            divergences=attention.get("divergence", 0),
            held_purges=operations.get("held", 0),
            failed_operations=operations.get("failed", 0),
            pending_retention=operations.get("pending_retention", 0),
            in_flight=sum(operations.get(k, 0) for k in ("planned", "sent", "retry")),
        )


_RUN_COLUMNS = "id, kind, started_at, ended_at, outcome, dry_run, counts, message, operator"
#: the events of a link's story besides its transitions
_NOTE_KINDS = ("conflict", "divergence", "resolved", "held", "failed", "skipped", "anomaly")
#: the events an operator's command writes
_OPERATOR_KINDS = ("resolved", "override")


def _side(row: Sequence[Any], ticket: int, at: int) -> SideFacts:
    """One side's `pair_state` columns, from column `at` on."""
    return SideFacts(
        ticket_id=ticket,
        state=row[at],
        vendor_time=_time(row[at + 1]),
        seen_at=_time(row[at + 2]),
        cause=row[at + 3],
        purge_due=_time(row[at + 4]),
    )


def _run(row: Sequence[Any]) -> RunFacts:
    try:
        counts = {str(k): int(v) for k, v in json.loads(row[6] or "{}").items()}
    except (ValueError, TypeError, AttributeError):
        counts = {}
    started = _time(row[2])
    assert started is not None
    return RunFacts(
        id=int(row[0]),
        kind=str(row[1]),
        started_at=started,
        ended_at=_time(row[3]),
        outcome=str(row[4]),
        dry_run=bool(row[5]),
        counts=counts,
        message=row[7],
        operator=row[8],
    )


def _facts(row: Sequence[Any], copies: list[CopyFacts]) -> TransitionFacts:
    decision_kind = decision_detail = None
    if row[22] is not None:
        kind, _, detail = str(row[22]).partition(FIELD_SEPARATOR)
        if kind in ("skipped", "conflict", "divergence"):
            decision_kind, decision_detail = kind, detail or None
    resolved_at = resolved_by = resolved_detail = None
    if row[27] is not None and decision_kind in ("conflict", "divergence"):
        when, by, why = str(row[27]).split(FIELD_SEPARATOR, 2)
        resolved_at, resolved_by, resolved_detail = _time(int(when)), by or None, why or None
    operator = action = None
    if row[28] is not None:
        action, _, operator = str(row[28]).partition(FIELD_SEPARATOR)
    at = _time(row[2])
    assert at is not None
    return TransitionFacts(
        event_id=int(row[0]),
        kind=str(row[1]),
        at=at,
        run_id=row[3],
        link_id=row[4],
        first_id=row[5],
        second_id=row[6],
        side=row[7],
        ticket_id=row[8],
        transition=row[9],
        from_state=row[10],
        to_state=row[11],
        cause=row[12],
        actor_id=row[13],
        vendor_time=_time(row[14]),
        copies=tuple(sorted(copies, key=lambda c: (c.step, c.operation_id))),
        decision_kind=decision_kind,
        decision_detail=decision_detail,
        operation_id=row[23],
        source_event_id=row[24],
        operation_status=row[25],
        pending_until=_time(row[26]),
        resolved_at=resolved_at,
        resolved_by=resolved_by,
        resolved_detail=resolved_detail,
        operator=operator,
        operator_action=action,
        read=row[30] if row[30] in READS else None,
    )


class AuditStore:
    """Mixin for `Ledger`: streaming, read-only queries for `bridge report`."""

    engine: Engine
    dialect: Dialect

    @contextmanager
    def audit_view(self) -> Iterator[AuditView]:
        """One consistent read snapshot for a whole report."""
        with self.dialect.read_snapshot(self.engine) as rows:
            yield AuditView(rows, self.dialect)

    def bulk_append(
        self, table: str, rows: Iterable[Mapping[str, Any]], *, chunk: int = 20_000
    ) -> int:
        """Append synthetic history in bulk (benchmarks and tests; never used by a sync).

        `table` is one of run, link, pair_state, event, operation; each row maps column names
        to values (aware datetimes); a column some rows leave out is NULL in those rows.
        Returns the number of rows written."""
        target = _BULK_TABLES.get(table)
        if target is None:
            raise ValueError(f"bulk_append: unknown table {table!r}")
        written = 0
        batch: list[Mapping[str, Any]] = []

        def flush(connection: Any) -> None:
            keys = {key for row in batch for key in row}
            connection.execute(target.insert(), [{k: row.get(k) for k in keys} for row in batch])

        with self.engine.begin() as connection:
            for row in rows:
                batch.append(row)
                if len(batch) >= chunk:
                    flush(connection)
                    written += len(batch)
                    batch = []
            if batch:
                flush(connection)
                written += len(batch)
            if "id" in target.c:  # ids given: the next generated one must follow them
                self.dialect.continue_ids(connection, table, "id")
        return written
