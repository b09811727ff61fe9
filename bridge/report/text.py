"""How the human-readable formats (HTML, Markdown) write times, durations and outcomes."""

from __future__ import annotations

from datetime import UTC, datetime

from bridge.ledger.audit import EndOfPeriod, RunFacts
from bridge.report.model import ReportRecord

__all__ = [
    "CAUSES",
    "counts_text",
    "duration",
    "outcome_text",
    "purge_text",
    "when",
]

CAUSES = ("user", "retention", "archive_retention", "bridge", "unknown")


def when(value: datetime | None) -> str:
    """UTC to the second: what a reader needs; the exports keep microseconds."""
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    sign = "-" if seconds < 0 else ""
    left = abs(seconds)
    if left < 60:
        return f"{sign}{left:.1f} s"
    minutes, secs = divmod(round(left), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{sign}{days} d {hours} h"
    if hours:
        return f"{sign}{hours} h {minutes} min"
    return f"{sign}{minutes} min {secs} s"


def outcome_text(record: ReportRecord) -> str:
    labels = {
        "confirmed": "confirmed",
        "pending_retention": "pending retention",
        "in_progress": "in progress",
        "held": "held (purge cap)",
        "failed": "failed",
        "superseded": "superseded",
        "not_copied": "not copied",
        "conflict": "conflict",
        "divergence": "divergence",
        "not_planned": "no copy planned",
    }
    label = labels.get(record.outcome, record.outcome)
    if record.outcome == "pending_retention" and record.pending_until is not None:
        return f"{label} until {when(record.pending_until)}"
    if record.outcome_detail and record.outcome not in ("not_planned",):
        return f"{label}: {record.outcome_detail}"
    return label


def purge_text(record: ReportRecord) -> str:
    if record.purge_verification == "verified_gone":
        return f"verified gone {when(record.purge_verified_at)}"
    if record.purge_verification == "pending_retention":
        return f"pending retention until {when(record.pending_until)}"
    return ""


def counts_text(run: RunFacts) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(run.counts.items()) if v)


RUN_HEADERS = ["Run", "Kind", "Dry run", "Start", "End", "Outcome", "Counts"]


def run_cells(run: RunFacts) -> list[object]:
    """One run as the cells of the runs table (HTML and Markdown alike)."""
    return [
        run.id,
        run.kind,
        "yes" if run.dry_run else "",
        when(run.started_at),
        when(run.ended_at),
        run.outcome,
        counts_text(run),
    ]


def end_of_period_rows(end: EndOfPeriod) -> list[list[object]]:
    """What was still open when the period ended, as (item, count) rows."""
    return [
        ["Conflicts", end.conflicts],
        ["Divergences", end.divergences],
        ["Held purges", end.held_purges],
        ["Failed operations", end.failed_operations],
        ["Purges pending the vendor's retention job", end.pending_retention],
        ["Operations in flight", end.in_flight],
    ]
