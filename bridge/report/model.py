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
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from bridge.core.model import Sides, id_column
from bridge.errors import BridgeError
from bridge.ledger.audit import (
    CopyFacts,
    EndOfPeriod,
    LinkFacts,
    NoteFacts,
    RunFacts,
    SideFacts,
    TransitionFacts,
)

__all__ = [
    "ERASURE_STATUSES",
    "OPERATOR_ACTIONS",
    "OUTCOMES",
    "Document",
    "Erasure",
    "LatencyStats",
    "Period",
    "PeriodError",
    "ReportMeta",
    "ReportRecord",
    "RowFilter",
    "RunRange",
    "Story",
    "Summary",
    "SummaryBuilder",
    "erasure",
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
    "resolved",
)
#: the person's actions a row can rest on (`operator_action`; see docs/report.md)
OPERATOR_ACTIONS = ("resolve", "allow_mass_purge", "migrate")
#: a run's kind → the override its operator gave
_RUN_OVERRIDE = {"sync": "allow_mass_purge", "migrate": "migrate"}
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
    #: the person whose action this row rests on, and which action (`OPERATOR_ACTIONS`)
    operator: str | None = None
    operator_action: str | None = None
    #: which read showed it, or confirmed the write (`bridge.core.model.READS`)
    read: str | None = None

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
    operator, action = facts.operator, facts.operator_action
    if action is not None:
        action = _RUN_OVERRIDE.get(action, action)
    purge = bool(facts.transition) and "purge" in str(facts.transition).split("+")
    if facts.kind == "observed":
        record_type = "observed_change"
        if facts.copies:
            outcome, detail, propagated, pending = _copy_outcome(facts.copies)
            # copies a person decided on (`conflicts resolve` in this change's favour)
            operator = next((c.operator for c in facts.copies if c.operator), None)
            action = "resolve" if operator else None
        elif facts.resolved_at is not None:
            # the conflict (or divergence) it led to was settled since: not open any more
            outcome = "resolved"
            detail = f"{facts.decision_kind} resolved {iso(facts.resolved_at)}"
            if facts.resolved_detail:
                detail += f": {facts.resolved_detail}"
            operator = facts.resolved_by
            action = "resolve" if operator else None
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
        operator=operator,
        operator_action=action,
        read=facts.read,
    )


@dataclass(frozen=True, slots=True)
class RowFilter:
    """Which rows a report keeps: every given option must match, and within one option
    any of its values (`--side`, `--transition`, `--cause`); `link_id` is `--ticket`'s
    link. A transition matches when the row's includes it (`soft_delete+purge` is both)."""

    sides: frozenset[str] = frozenset()
    transitions: frozenset[str] = frozenset()
    causes: frozenset[str] = frozenset()
    link_id: int | None = None

    def matches(self, record: ReportRecord) -> bool:
        if self.sides and record.side not in self.sides:
            return False
        if self.transitions:
            steps = set(str(record.transition).split("+"))
            if not steps & self.transitions:
                return False
        return not self.causes or record.cause in self.causes

    @property
    def active(self) -> bool:
        return bool(self.sides or self.transitions or self.causes or self.link_id is not None)

    def describe(self) -> str:
        """The filters as a reader needs them named ("" when none)."""
        parts = [
            f"{name} {' or '.join(sorted(values))}"
            for name, values in (
                ("side", self.sides),
                ("transition", self.transitions),
                ("cause", self.causes),
            )
            if values
        ]
        return "; ".join(parts)


def records(
    facts: Iterable[TransitionFacts], row_filter: RowFilter | None = None
) -> Iterator[ReportRecord]:
    rows = (record_from_facts(f) for f in facts)
    if row_filter is None or not row_filter.active:
        return rows
    return (r for r in rows if row_filter.matches(r))


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
    #: (day, side, transition, cause) → rows
    per_day: dict[tuple[date, str, str, str], int]
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
    per_day: Counter[tuple[date, str, str, str]] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    latencies: array[float] = field(default_factory=lambda: array("d"))
    purges_verified: int = 0
    purges_pending: int = 0
    runs: int = 0
    runs_by_outcome: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add(self, record: ReportRecord) -> None:
        self.rows += 1
        side = record.side or "unknown"
        transition = record.transition or "unknown"
        self.counts[(side, transition, record.cause)] += 1
        self.per_day[(record.detected_at.date(), side, transition, record.cause)] += 1
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
    #: which rows (`--side`, `--transition`, `--cause`, `--ticket`)
    filters: RowFilter = field(default_factory=RowFilter)
    #: whether the period's ends were asked for (else they are the ledger's defaults): the
    #: chart spans what was asked for, else the days that have rows
    since_given: bool = False
    until_given: bool = False
    #: each side's time from a soft delete to the vendor's own final erasure (SuperOffice:
    #: the tenant's grace period; Zendesk: the 30-day scrub), by side name
    retention: Mapping[str, timedelta] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RunRange:
    """The ledger runs a report covers: first and last run id, and how many."""

    first: int
    last: int
    count: int

    def __str__(self) -> str:
        if self.first == self.last:
            return f"run {self.first}"
        return f"runs {self.first} to {self.last} ({self.count} runs)"


@dataclass(frozen=True, slots=True)
class Document:
    """Everything the summarising renderers show."""

    meta: ReportMeta
    summary: Summary
    detail: list[ReportRecord]
    detail_limit: int
    runs: list[RunFacts]
    run_limit: int
    #: the runs the report covers (None: none started in the period, or in the story)
    run_range: RunRange | None = None
    #: the operator actions in the period (`conflicts resolve`, `--allow-mass-purge`)
    operator_actions: list[NoteFacts] = field(default_factory=list)
    #: `--ticket`: the ticket's whole story (an erasure record), instead of a summary
    story: Story | None = None

    def chart_days(self) -> list[date]:
        """The chart's days: the period's ends where they were asked for, else the first
        and last days with rows (a default `--until` of today would squash a history
        into the left edge)."""
        meta, per_day = self.meta, self.summary.per_day
        days = [key[0] for key in per_day]
        first = meta.period.first_day if meta.since_given or not days else min(days)
        last = meta.period.last_day if meta.until_given or not days else max(days)
        out: list[date] = []
        day = first
        while day <= last:
            out.append(day)
            day += timedelta(days=1)
        return out

    @property
    def detail_truncated(self) -> bool:
        return self.summary.rows > len(self.detail)

    @property
    def runs_truncated(self) -> bool:
        return self.summary.runs > len(self.runs)


#: erasure statuses of one side of a ticket (`Erasure.status`; see docs/report.md)
ERASURE_STATUSES = (
    "verified_gone",
    "pending_retention",
    "due",
    "past_due",
    "not_deleted",
    "unknown",
)


@dataclass(frozen=True, slots=True)
class Erasure:
    """When final erasure of one side's ticket is due, and whether bridge has verified it."""

    side: str
    ticket_id: int
    #: the side's state as the ledger holds it now
    state: str | None
    status: str  # one of ERASURE_STATUSES
    #: when the vendor's own erasure is due (None: nothing due, or already verified)
    due: datetime | None = None
    #: when bridge read the ticket as purged (verified_gone), and the row that shows it
    verified_at: datetime | None = None
    verified_event: int | None = None
    #: what `due` was computed from: the deletion time (None: a pending purge's own date)
    deleted_at: datetime | None = None
    retention: timedelta | None = None


def erasure(
    side: str,
    facts: SideFacts,
    rows: Iterable[ReportRecord],
    retention: timedelta | None,
    now: datetime,
) -> Erasure:
    """One side's erasure: verified gone (with the row that proves it), a purge bridge
    copied that waits for the vendor (its own due date), a soft delete the vendor erases
    `retention` after its deletion time (due, or past due and not yet verified), or
    nothing due (active)."""
    state, ticket = facts.state, facts.ticket_id
    if state == "purged":
        proof = [r for r in rows if r.side == side and r.purge_verification == "verified_gone"]
        last = proof[-1] if proof else None
        return Erasure(
            side,
            ticket,
            state,
            "verified_gone",
            verified_at=last.purge_verified_at if last else facts.seen_at,
            verified_event=last.event_id if last else None,
        )
    if state != "soft_deleted":
        return Erasure(side, ticket, state, "not_deleted" if state == "active" else "unknown")
    if facts.purge_due is not None:
        return Erasure(side, ticket, state, "pending_retention", due=facts.purge_due)
    deleted = facts.vendor_time or facts.seen_at
    if deleted is None or retention is None:
        return Erasure(side, ticket, state, "unknown", deleted_at=deleted)
    due = deleted + retention
    status = "due" if due > now else "past_due"
    return Erasure(side, ticket, state, status, due=due, deleted_at=deleted, retention=retention)


@dataclass(frozen=True, slots=True)
class Story:
    """One ticket's whole story across both systems (`bridge report --ticket`): the record
    a data-protection officer files for an erasure request."""

    link: LinkFacts
    #: the link's tickets by side name, first side then second
    tickets: dict[str, int]
    #: every transition on either side, in the order detected
    rows: list[ReportRecord]
    #: conflicts, divergences, resolutions, held and failed writes, skipped copies
    notes: list[NoteFacts]
    erasure: list[Erasure]
    #: the ledger runs that recorded any of it
    runs: list[RunFacts]
