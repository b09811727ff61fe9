"""The audit report's rows and summary, assembled from ledger facts. Pure: no I/O, no clock.

A row (`ReportRecord`) is ONE transition on one side: a change observed on a vendor (user or
retention) or a write bridge made and verified (cause `bridge`). Field names are the stable
CSV/JSON names documented in docs/report.md and bridge/data/report-record.schema.json.
"""

from __future__ import annotations

import math
import re
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from bridge.core.model import Sides, id_column
from bridge.errors import BridgeError
from bridge.ledger.audit import CopyFacts, EndOfPeriod, RunFacts, TransitionFacts

__all__ = [
    "OUTCOMES",
    "Document",
    "LatencyStats",
    "Period",
    "PeriodError",
    "ReportMeta",
    "ReportRecord",
    "Summary",
    "SummaryBuilder",
    "fields",
    "id_fields",
    "iso",
    "latency_stats",
    "parse_moment",
    "record_from_facts",
    "records",
]

#: every outcome a row can have (see docs/report.md)
OUTCOMES = (
    "confirmed",
    "pending_retention",
    "in_progress",
    "held",
    "failed",
    "superseded",
    "not_copied",
    "conflict",
    "divergence",
    "not_planned",
)
#: the worst status among a change's copies decides the row's outcome
_STATUS_ORDER = ("failed", "held", "planned", "sent", "pending_retention", "superseded")
_STATUS_OUTCOME = {
    "failed": "failed",
    "held": "held",
    "planned": "in_progress",
    "sent": "in_progress",
    "pending_retention": "pending_retention",
    "superseded": "superseded",
    "confirmed": "confirmed",
}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class PeriodError(BridgeError, ValueError):
    """A date that cannot be read, or a period that ends before it starts."""


def iso(value: datetime | None) -> str | None:
    """RFC 3339 UTC with microseconds and a Z: exact, sortable, read by every SIEM."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_moment(text: str, *, end: bool) -> datetime:
    """`YYYY-MM-DD` (a whole UTC day: its start, or with `end` the next midnight) or an ISO
    date-time (naive means UTC)."""
    value = text.strip()
    try:
        if _DATE.match(value):
            day = date.fromisoformat(value)
            if not 1970 <= day.year <= 9998:
                raise PeriodError(f"{text[:40]!r} is out of range (years 1970 to 9998)")
            start = datetime.combine(day, time(0), tzinfo=UTC)
            return start + timedelta(days=1) if end else start
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise PeriodError(
            f"{text[:40]!r} is not a date (YYYY-MM-DD) or an ISO date-time (YYYY-MM-DDTHH:MM:SSZ)"
        ) from None
    except OverflowError:
        raise PeriodError(f"{text[:40]!r} is out of range (years 1970 to 9998)") from None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if not 1970 <= moment.year <= 9998:
        raise PeriodError(f"{text[:40]!r} is out of range (years 1970 to 9998)")
    return moment


@dataclass(frozen=True, slots=True)
class Period:
    """[since, until): rows are the transitions bridge detected in this interval."""

    since: datetime
    until: datetime

    def __post_init__(self) -> None:
        if self.until <= self.since:
            raise PeriodError(
                f"the period ends ({iso(self.until)}) before it starts ({iso(self.since)})"
            )

    @property
    def first_day(self) -> date:
        return self.since.date()

    @property
    def last_day(self) -> date:
        return (self.until - timedelta(microseconds=1)).date()

    @property
    def label(self) -> str:
        return f"{self.first_day.isoformat()}-{self.last_day.isoformat()}"

    def days(self) -> Iterator[date]:
        day = self.first_day
        while day <= self.last_day:
            yield day
            day += timedelta(days=1)


@dataclass(frozen=True, slots=True)
class ReportRecord:
    """One transition on one side. Field order is the CSV column order; `first_id` and
    `second_id` (the link's tickets) are named after the ledger's sides (`fields`)."""

    event_id: int
    record_type: str  # observed_change | bridge_write
    link_id: int | None
    first_id: int | None
    second_id: int | None
    side: str | None
    ticket_id: int | None
    transition: str | None
    from_state: str | None
    to_state: str | None
    cause: str  # user | retention | archive_retention | bridge | unknown
    actor_id: int | None
    vendor_time: datetime | None
    detected_at: datetime
    propagated_at: datetime | None
    latency_seconds: float | None
    outcome: str
    outcome_detail: str | None
    purge_verification: str | None  # verified_gone | pending_retention | None
    purge_verified_at: datetime | None
    pending_until: datetime | None
    run_id: int | None
    operation_id: int | None
    source_event_id: int | None

    def to_dict(self, sides: Sides) -> dict[str, Any]:
        """JSON-ready, under the `fields(sides)` names: times as RFC 3339 strings,
        everything else as is."""
        named = zip(fields(sides), _ATTRIBUTES, strict=True)
        data = {name: getattr(self, attribute) for name, attribute in named}
        for name in _TIME_FIELDS:
            data[name] = iso(data[name])
        return data

    def values(self) -> list[Any]:
        """The fields in `fields()` order, times as RFC 3339 strings (the CSV row)."""
        return [
            iso(value) if isinstance(value, datetime) else value
            for value in (getattr(self, name) for name in _ATTRIBUTES)
        ]

    @property
    def is_purge(self) -> bool:
        return bool(self.transition) and "purge" in str(self.transition).split("+")


_ATTRIBUTES: tuple[str, ...] = tuple(ReportRecord.__dataclass_fields__)


def id_fields(sides: Sides) -> tuple[str, str]:
    """The names of the link's two ticket ids in reports, first side then second."""
    return (id_column(sides.first), id_column(sides.second))


def fields(sides: Sides) -> tuple[str, ...]:
    """The documented field names, in CSV column order, for a ledger of these sides."""
    names = dict(zip(("first_id", "second_id"), id_fields(sides), strict=True))
    return tuple(names.get(name, name) for name in _ATTRIBUTES)


_TIME_FIELDS = ("vendor_time", "detected_at", "propagated_at", "purge_verified_at", "pending_until")


def _latest_per_transition(copies: Iterable[CopyFacts]) -> list[CopyFacts]:
    latest: dict[str, CopyFacts] = {}
    for copy in copies:
        held = latest.get(copy.transition)
        if held is None or copy.operation_id > held.operation_id:
            latest[copy.transition] = copy
    return sorted(latest.values(), key=lambda c: (c.step, c.operation_id))


def _copy_outcome(
    copies: tuple[CopyFacts, ...],
) -> tuple[str, str | None, datetime | None, datetime | None]:
    """(outcome, detail, propagated_at, pending_until) of an observed change's copies."""
    current = _latest_per_transition(copies)
    statuses = {c.status for c in current}
    for status in _STATUS_ORDER:
        if status in statuses:
            copy = next(c for c in current if c.status == status)
            pending = copy.pending_until if status == "pending_retention" else None
            detail = copy.error
            if pending is not None:
                detail = f"until {iso(pending)}"
            return _STATUS_OUTCOME[status], detail, None, pending
    finished = [c.finished_at for c in current if c.finished_at is not None]
    return "confirmed", None, max(finished) if finished else None, None


def record_from_facts(facts: TransitionFacts) -> ReportRecord:
    """The report row for one row-event of the ledger."""
    cause = facts.cause or "unknown"
    propagated = pending = verified_at = None
    verification: str | None = None
    purge = bool(facts.transition) and "purge" in str(facts.transition).split("+")
    if facts.kind == "observed":
        record_type = "observed_change"
        if facts.copies:
            outcome, detail, propagated, pending = _copy_outcome(facts.copies)
        elif facts.decision_kind is not None:
            outcome = "not_copied" if facts.decision_kind == "skipped" else facts.decision_kind
            detail = facts.decision_detail
        else:
            outcome, detail = "not_planned", "no copy was planned"
        if purge:
            verification, verified_at = "verified_gone", facts.at
    else:
        record_type = "bridge_write"
        cause = "bridge"
        if facts.kind == "confirmed":
            outcome, detail = "confirmed", None
            if purge:
                verification, verified_at = "verified_gone", facts.at
        else:  # a bridge purge waiting for the vendor's retention job
            pending = facts.pending_until
            status = facts.operation_status or "pending_retention"
            outcome = _STATUS_OUTCOME.get(status, status)
            detail = f"until {iso(pending)}" if pending else None
            if purge and outcome == "pending_retention":
                verification = "pending_retention"
    latency = None
    if propagated is not None and facts.vendor_time is not None:
        latency = (propagated - facts.vendor_time).total_seconds()
    return ReportRecord(
        event_id=facts.event_id,
        record_type=record_type,
        link_id=facts.link_id,
        first_id=facts.first_id,
        second_id=facts.second_id,
        side=facts.side,
        ticket_id=facts.ticket_id,
        transition=facts.transition,
        from_state=facts.from_state,
        to_state=facts.to_state,
        cause=cause,
        actor_id=facts.actor_id,
        vendor_time=facts.vendor_time,
        detected_at=facts.at,
        propagated_at=propagated,
        latency_seconds=latency,
        outcome=outcome,
        outcome_detail=detail,
        purge_verification=verification,
        purge_verified_at=verified_at,
        pending_until=pending,
        run_id=facts.run_id,
        operation_id=facts.operation_id,
        source_event_id=facts.source_event_id,
    )


def records(facts: Iterable[TransitionFacts]) -> Iterator[ReportRecord]:
    return (record_from_facts(f) for f in facts)


@dataclass(frozen=True, slots=True)
class LatencyStats:
    """Seconds from the vendor's time of a change to its confirmation on the other side."""

    count: int
    median: float | None
    p95: float | None
    maximum: float | None


def latency_stats(values: Iterable[float]) -> LatencyStats:
    """Median (mean of the middle two for an even count), 95th percentile by nearest rank
    (the ceil(0.95·n)-th smallest), maximum."""
    ordered = sorted(values)
    n = len(ordered)
    if not n:
        return LatencyStats(0, None, None, None)
    middle = n // 2
    median = ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    p95 = ordered[max(0, math.ceil(0.95 * n) - 1)]
    return LatencyStats(n, median, p95, ordered[-1])


@dataclass(frozen=True, slots=True)
class Summary:
    rows: int
    #: (side, transition, cause) → rows
    counts: dict[tuple[str, str, str], int]
    #: (day, side) → rows
    per_day: dict[tuple[date, str], int]
    outcomes: dict[str, int]
    latency: LatencyStats
    purges_verified: int
    purges_pending: int
    anomalies: int
    end: EndOfPeriod
    runs: int
    runs_by_outcome: dict[tuple[str, str], int]


@dataclass
class SummaryBuilder:
    """Folds rows into the summary as they stream past; memory grows with days, not rows
    (plus 8 bytes per propagated change for the latency percentiles)."""

    rows: int = 0
    counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    per_day: Counter[tuple[date, str]] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    latencies: array[float] = field(default_factory=lambda: array("d"))
    purges_verified: int = 0
    purges_pending: int = 0
    runs: int = 0
    runs_by_outcome: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add(self, record: ReportRecord) -> None:
        self.rows += 1
        side = record.side or "unknown"
        self.counts[(side, record.transition or "unknown", record.cause)] += 1
        self.per_day[(record.detected_at.date(), side)] += 1
        self.outcomes[record.outcome] += 1
        if record.latency_seconds is not None:
            self.latencies.append(record.latency_seconds)
        if record.purge_verification == "verified_gone":
            self.purges_verified += 1
        elif record.purge_verification == "pending_retention":
            self.purges_pending += 1

    def add_run(self, run: RunFacts) -> None:
        self.runs += 1
        self.runs_by_outcome[(run.kind, run.outcome)] += 1

    def build(self, end: EndOfPeriod, anomalies: int) -> Summary:
        return Summary(
            rows=self.rows,
            counts=dict(sorted(self.counts.items())),
            per_day=dict(sorted(self.per_day.items())),
            outcomes=dict(sorted(self.outcomes.items())),
            latency=latency_stats(self.latencies),
            purges_verified=self.purges_verified,
            purges_pending=self.purges_pending,
            anomalies=anomalies,
            end=end,
            runs=self.runs,
            runs_by_outcome=dict(sorted(self.runs_by_outcome.items())),
        )


@dataclass(frozen=True, slots=True)
class ReportMeta:
    period: Period
    generated_at: datetime
    #: the ledger file (or "database" for a server URL: never a URL with credentials)
    ledger: str
    version: str


@dataclass(frozen=True, slots=True)
class Document:
    """Everything the summarising renderers show."""

    meta: ReportMeta
    summary: Summary
    detail: list[ReportRecord]
    detail_limit: int
    runs: list[RunFacts]
    run_limit: int

    @property
    def detail_truncated(self) -> bool:
        return self.summary.rows > len(self.detail)

    @property
    def runs_truncated(self) -> bool:
        return self.summary.runs > len(self.runs)
