"""The ledger's read side for audit reports: streaming, read-only queries.

Every query `bridge report` needs lives here, so that no SQL leaves `bridge.ledger`. Reads run
inside one snapshot (`AuditStore.audit_view`): the summary, the rows and the runs of one
report agree with each other even while a sync run writes; how a snapshot is taken without
holding back a writer is the dialect's business (`Dialect.read_snapshot`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from bridge.ledger.dialect import FIELD_SEPARATOR, Dialect, RowSource
from bridge.ledger.tables import Event, Link, Operation, PairState, Run
from bridge.ledger.times import from_micros

__all__ = [
    "AuditStore",
    "AuditView",
    "CopyFacts",
    "EndOfPeriod",
    "RunFacts",
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


def _rows_sql(dialect: Dialect) -> str:
    """The report's rows. `kind || ''` keeps the planner off the kind index: the period's
    range on `at` (which also gives the order, so rows stream without a sort) and each
    link's own events are far narrower than all events of one kind."""
    return f"""
SELECT e.id, e.kind, e.at, e.run_id, e.link_id, l.first_id, l.second_id, e.side,
       e.ticket_id, e.transition, e.from_state, e.to_state, e.cause, e.actor_id, e.vendor_time,
       c.id, c.transition, c.step, c.status, c.finished_at, c.pending_until, c.error,
       CASE WHEN e.kind = 'observed' AND c.id IS NULL THEN (
           SELECT {dialect.join_fields("d.kind", "coalesce(d.detail, '')")} FROM event d
           WHERE d.link_id = e.link_id AND d.id > e.id
             AND d.kind || '' IN ('skipped', 'conflict', 'divergence', 'planned', 'observed')
           ORDER BY d.id LIMIT 1) END,
       e.operation_id, o.source_event_id, o.status, o.pending_until
FROM event e
LEFT JOIN link l ON l.id = e.link_id
LEFT JOIN operation c
       ON e.kind = 'observed' AND c.link_id = e.link_id AND c.source_event_id = e.id
LEFT JOIN operation o ON e.kind != 'observed' AND o.id = e.operation_id
WHERE e.at >= :since AND e.at < :until
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

    def transitions(self, since: datetime, until: datetime) -> Iterator[TransitionFacts]:
        """Row-events detected in [since, until), in detection order, with what became of
        them. Streams: one event's operations are gathered, then it is yielded."""
        current: list[Any] | None = None
        copies: list[CopyFacts] = []
        sql = _rows_sql(self._dialect)
        for row in self._runner.rows(sql, {"since": since, "until": until}):
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
                    )
                )
        if current is not None:
            yield _facts(current, copies)

    def runs(self, since: datetime, until: datetime) -> Iterator[RunFacts]:
        """Sync and migration runs started in [since, until), oldest first."""
        sql = (
            "SELECT id, kind, started_at, ended_at, outcome, dry_run, counts, message FROM run "
            "WHERE started_at >= :since AND started_at < :until ORDER BY started_at, id"
        )
        for row in self._runner.rows(sql, {"since": since, "until": until}):
            try:
                counts = {str(k): int(v) for k, v in json.loads(row[6] or "{}").items()}
            except (ValueError, TypeError, AttributeError):
                counts = {}
            started = _time(row[2])
            assert started is not None
            yield RunFacts(
                id=int(row[0]),
                kind=str(row[1]),
                started_at=started,
                ended_at=_time(row[3]),
                outcome=str(row[4]),
                dry_run=bool(row[5]),
                counts=counts,
                message=row[7],
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


def _facts(row: Sequence[Any], copies: list[CopyFacts]) -> TransitionFacts:
    decision_kind = decision_detail = None
    if row[22] is not None:
        kind, _, detail = str(row[22]).partition(FIELD_SEPARATOR)
        if kind in ("skipped", "conflict", "divergence"):
            decision_kind, decision_detail = kind, detail or None
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
        return written
