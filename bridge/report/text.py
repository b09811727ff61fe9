"""How the human-readable formats (HTML, Markdown) write times, durations and outcomes."""

from __future__ import annotations

from datetime import UTC, datetime

from bridge.ledger.audit import EndOfPeriod, NoteFacts, RunFacts
from bridge.report.model import Erasure, ReportRecord

__all__ = [
    "CAUSES",
    "actor_text",
    "counts_text",
    "duration",
    "erasure_text",
    "evidence_text",
    "label",
    "outcome_text",
    "purge_text",
    "when",
]

CAUSES = ("user", "retention", "archive_retention", "bridge", "unknown")
#: how each side is named to a reader, and what it calls the person behind an actor id
SIDE_LABELS = {"superoffice": "SuperOffice", "zendesk": "Zendesk"}
_ACTOR_NOUNS = {"superoffice": "associate", "zendesk": "user"}
#: what erases a soft-deleted ticket for good on each side, by itself
ERASURE_RULES = {
    "superoffice": 'the tenant\'s grace period ("Retain deleted data")',
    "zendesk": "Zendesk's scrub of deleted tickets",
}


def label(side: str | None) -> str:
    """A side as a reader knows it (`SuperOffice`)."""
    if side is None:
        return "unknown side"
    return SIDE_LABELS.get(side, side)


def actor_text(record: ReportRecord) -> str:
    """Who made the change, in words, for every row: the vendor's user or associate id,
    its retention job, or bridge (and the person whose action bridge carried out)."""
    side, name = record.side, label(record.side)
    noun = _ACTOR_NOUNS.get(str(side), "user")
    if record.cause == "bridge":
        if record.operator:
            return f"bridge, for {record.operator} ({record.operator_action})"
        return "bridge (its API user)"
    if record.cause == "retention":
        return f"{name}'s retention job"
    if record.cause == "archive_retention":
        return f"{name}'s archive deletion schedule"
    if record.actor_id is not None:
        return f"{name} {noun} {record.actor_id}"
    if record.cause == "user":
        return f"a {name} {noun} ({name} does not say which)"
    return f"not reported by {name}"


#: how each read (`bridge.core.model.READS`) is named in the evidence of a row
_READS = {
    "changes": "in {name}'s change stream",
    "lookup": "by its id",
    "sweep": "in the vanished-ticket sweep",
}


def evidence_text(record: ReportRecord) -> str:
    """The read a row rests on: which run read what, how, and when."""
    name = label(record.side)
    run = f"run {record.run_id}" if record.run_id is not None else "bridge"
    how = f" {_READS[record.read].format(name=name)}" if record.read in _READS else ""
    if record.record_type == "observed_change":
        text = (
            f"{run} read the {name} ticket{how} at {when(record.detected_at)} UTC: "
            f"{record.from_state or '?'} → {record.to_state or '?'}"
        )
        if record.vendor_time is not None:
            return f"{text}; {name} dates the change {when(record.vendor_time)} UTC"
        return f"{text}; {name} gives no time for it"
    if record.to_state is None:
        return (
            f"bridge asked for the purge (operation {record.operation_id}); {name}'s "
            f"retention job is due by {when(record.pending_until)} UTC, then bridge "
            "re-reads the ticket to verify it gone"
        )
    return (
        f"{run} re-read the {name} ticket{how} at {when(record.detected_at)} UTC after bridge's "
        f"write (operation {record.operation_id}): {record.to_state}"
    )


def erasure_text(item: Erasure) -> str:
    """When final erasure is due on one side, what the date rests on, and whether bridge
    has verified it."""
    name = label(item.side)
    if item.status == "verified_gone":
        proof = f" (row {item.verified_event})" if item.verified_event is not None else ""
        return f"erased: bridge read it as purged {when(item.verified_at)} UTC{proof}"
    if item.status == "pending_retention":
        return (
            f"due by {when(item.due)} UTC: bridge copied the purge, {name}'s retention job "
            "removes the ticket then; not yet verified"
        )
    if item.status in ("due", "past_due"):
        days = item.retention.days if item.retention is not None else "?"
        rule = ERASURE_RULES.get(item.side, f"{name}'s retention")
        basis = f"deleted {when(item.deleted_at)} UTC + {days} days, {rule}"
        if item.status == "due":
            return f"due {when(item.due)} UTC ({basis}); not yet verified"
        return (
            f"was due {when(item.due)} UTC ({basis}); not yet verified: bridge's sweep reads "
            "the ticket and records the purge when it finds it gone"
        )
    if item.status == "not_deleted":
        return "active: no erasure due"
    return "not known: bridge has not read this side's ticket yet"


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
    """What follows the outcome's code: its date, reason or error (the legend says what
    the code means)."""
    text = ""
    if record.outcome == "pending_retention" and record.pending_until is not None:
        text = f"until {when(record.pending_until)}"
    elif record.outcome_detail and record.outcome not in ("not_planned",):
        text = record.outcome_detail
    if record.record_type == "observed_change" and record.operator:
        # a person settled the conflict this change was part of
        text = (
            f"{text}; resolved by {record.operator}" if text else f"resolved by {record.operator}"
        )
    return text


def purge_text(record: ReportRecord) -> str:
    """The date behind a row's purge verification code."""
    if record.purge_verification == "verified_gone":
        return when(record.purge_verified_at)
    if record.purge_verification == "pending_retention":
        return f"until {when(record.pending_until)}"
    return ""


def counts_text(run: RunFacts) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(run.counts.items()) if v)


RUN_HEADERS = ["Run", "Kind", "Dry run", "Start", "End", "Outcome", "Operator", "Counts"]


def run_cells(run: RunFacts) -> list[object]:
    """One run as the cells of the runs table (HTML and Markdown alike)."""
    return [
        run.id,
        run.kind,
        "yes" if run.dry_run else "",
        when(run.started_at),
        when(run.ended_at),
        run.outcome,
        run.operator or "",
        counts_text(run),
    ]


OPERATOR_ACTION_HEADERS = [
    "Event",
    "Time",
    "Operator",
    "Action",
    "Run",
    "SuperOffice id",
    "Zendesk id",
    "Detail",
]


def operator_action_cells(note: NoteFacts, action: object) -> list[object]:
    """One operator action as the cells of its table, the action as the renderer shows
    a code (HTML and Markdown alike)."""
    return [
        note.event_id,
        when(note.at),
        note.operator,
        action,
        note.run_id,
        note.first_id,
        note.second_id,
        note.detail,
    ]


STORY_NOTE_HEADERS = ["Event", "Time", "Kind", "Side", "Run", "Operator", "Detail"]


def story_note_cells(note: NoteFacts, kind: object, side: object) -> list[object]:
    """One conflict, decision or operator action of a ticket's story as the cells of its
    table, the kind and side as the renderer shows a code (HTML and Markdown alike)."""
    return [note.event_id, when(note.at), kind, side, note.run_id, note.operator or "", note.detail]


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
