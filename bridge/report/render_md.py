"""The report as Markdown, for pasting into a ticket: the summary, the days with activity,
the first rows of detail and the runs (or, with `--ticket`, one ticket's story), as
GitHub-flavoured tables, codes in backticks, and the legend that explains them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from bridge.report.legend import legend
from bridge.report.model import Document, ReportRecord, Story
from bridge.report.render_html import DETAIL_HEADERS, STORY_HEADERS
from bridge.report.text import (
    CAUSES,
    OPERATOR_ACTION_HEADERS,
    RUN_HEADERS,
    STORY_NOTE_HEADERS,
    actor_text,
    duration,
    end_of_period_rows,
    erasure_text,
    evidence_text,
    label,
    operator_action_cells,
    outcome_text,
    purge_text,
    run_cells,
    story_note_cells,
    when,
)
from bridge.report.writer import Write, Writer

__all__ = ["render_markdown"]


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _code(value: object, detail: str = "") -> str:
    """A code in backticks (explained in the legend), and the text after it."""
    if value is None or value == "":
        return detail
    return f"`{value}` {detail}".rstrip()


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(_cell(h) for h in headers) + " |"]
    lines.append("|" + "---|" * len(headers))
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _detail_row(r: ReportRecord) -> list[object]:
    return [
        r.event_id,
        r.link_id,
        r.first_id,
        r.second_id,
        _code(r.side),
        _code(r.transition),
        _code(r.cause),
        actor_text(r),
        when(r.vendor_time),
        when(r.detected_at),
        when(r.propagated_at),
        duration(r.latency_seconds) if r.latency_seconds is not None else "",
        _code(r.outcome, outcome_text(r)),
        _code(r.purge_verification, purge_text(r)),
        r.run_id,
    ]


def _story_row(r: ReportRecord) -> list[object]:
    return [
        r.event_id,
        _code(r.side),
        r.ticket_id,
        _code(r.transition),
        _code(r.cause),
        actor_text(r),
        when(r.vendor_time),
        when(r.detected_at),
        evidence_text(r),
        _code(r.outcome, outcome_text(r)),
        _code(r.purge_verification, purge_text(r)),
    ]


def _run_row(run_cells_: list[object]) -> list[object]:
    cells = list(run_cells_)
    cells[1], cells[5] = _code(cells[1]), _code(cells[5])
    return cells


def render_markdown(out: Writer, doc: Document) -> None:
    """Everything but the closing seal (`md_trailer`)."""
    meta = doc.meta
    period = meta.period
    w = out.write
    story = doc.story
    if story is not None:
        ids = " / ".join(f"{label(side)} {ticket}" for side, ticket in story.tickets.items())
        w(f"# bridge erasure record: {ids}\n\n")
    else:
        w(f"# bridge audit report {period.first_day} to {period.last_day}\n\n")
    filters = meta.filters.describe()
    runs = str(doc.run_range) if doc.run_range else "no run"
    w(
        f"Detected from {when(period.since)} to {when(period.until)} UTC (end excluded)"
        f"{'; rows with ' + filters if filters else ''}. Ledger runs covered: {runs}. "
        f"Generated {when(meta.generated_at)} UTC by bridge {meta.version}. Ticket ids, "
        "states, times and actor ids only: no ticket subject or content. Every code is "
        "explained in the legend at the end.\n\n"
    )
    if story is not None:
        _story(w, story)
    else:
        _summary(w, doc)
    _legend(w, doc)


def _summary(w: Write, doc: Document) -> None:
    summary, period = doc.summary, doc.meta.period
    w("## Summary\n\n")
    if not summary.rows:
        w("No deletion, restore or purge was detected in this period.\n\n")
    keys = sorted({(side, transition) for side, transition, _ in summary.counts})
    rows = [
        [
            _code(side),
            _code(transition),
            *(summary.counts.get((side, transition, c), 0) for c in CAUSES),
            sum(summary.counts.get((side, transition, c), 0) for c in CAUSES),
        ]
        for side, transition in keys
    ]
    totals = [sum(n for (_, _, c), n in summary.counts.items() if c == cause) for cause in CAUSES]
    rows.append(["All", "", *totals, summary.rows])
    w(_table(["Side", "Transition", *CAUSES, "Total"], rows))
    lat = summary.latency
    w(
        f"\nPropagation latency over {lat.count} confirmed copies: median "
        f"{duration(lat.median)}, 95th percentile {duration(lat.p95)}, maximum "
        f"{duration(lat.maximum)}.\n\n"
    )
    w(_table(["Outcome", "Rows"], [[_code(k), n] for k, n in sorted(summary.outcomes.items())]))
    w(
        f"\nPurges verified gone: {summary.purges_verified}; pending the vendor's retention "
        f"job: {summary.purges_pending}."
    )
    if summary.anomalies:
        w(f" **{summary.anomalies} purged tickets were seen alive again.**")
    w(f"\n\nOpen at the end of the period ({when(period.until)} UTC)")
    w(" (whole ledger: the filters choose rows only):\n\n" if doc.meta.filters.active else ":\n\n")
    w(_table(["Item", "Count"], end_of_period_rows(summary.end)))
    w("\n### Operator actions\n\n")
    if not doc.operator_actions:
        w("No operator action (conflicts resolve, --allow-mass-purge, migrate) in the period.\n")
    else:
        w(
            _table(
                OPERATOR_ACTION_HEADERS,
                [operator_action_cells(n, _code(n.kind)) for n in doc.operator_actions],
            )
        )
    w("\n## Timeline\n\nTransitions per day and side (days with activity only).\n\n")
    by_day: dict[str, dict[str, int]] = {}
    for (day, side, _, _), n in summary.per_day.items():
        sides = by_day.setdefault(day.isoformat(), {})
        sides[side] = sides.get(side, 0) + n
    w(
        _table(
            ["Day", "SuperOffice", "Zendesk"],
            [
                [day, sides.get("superoffice", 0), sides.get("zendesk", 0)]
                for day, sides in sorted(by_day.items())
            ],
        )
    )
    w("\n## Detail\n\n")
    if doc.detail_truncated:
        w(
            f"First {len(doc.detail)} of {summary.rows} rows; every row is in "
            f"`bridge report --since {period.first_day} --until {period.last_day} "
            "--format csv`.\n\n"
        )
    w(_table(DETAIL_HEADERS, (_detail_row(r) for r in doc.detail)))
    w(f"\n## Runs\n\n{summary.runs} runs started in the period")
    w(f" (first {len(doc.runs)} shown).\n\n" if doc.runs_truncated else ".\n\n")
    w(_table(RUN_HEADERS, (_run_row(run_cells(run)) for run in doc.runs)))


def _story(w: Write, story: Story) -> None:
    link = story.link
    w("## Tickets\n\n")
    w(
        _table(
            ["Side", "Ticket id", "State now", "Since (vendor time)", "Last read"],
            [
                [
                    _code(side),
                    ticket,
                    _code(facts.state),
                    when(facts.vendor_time),
                    when(facts.seen_at),
                ]
                for (side, ticket), facts in zip(
                    story.tickets.items(), (link.first, link.second), strict=True
                )
            ],
        )
    )
    attention = ""
    if link.attention:
        attention = "; needs a person: " + _code(link.attention, link.attention_reason or "")
    w(
        f"\nLinked as ledger link {link.link_id} ({link.origin}) on {when(link.created_at)} "
        f"UTC; agreed state: {_code(link.base) or 'none yet'}{attention}.\n\n"
        "## Final erasure\n\n"
    )
    w(
        _table(
            ["Side", "Ticket id", "Erasure", "Due", "Verified", "What it rests on"],
            [
                [
                    _code(e.side),
                    e.ticket_id,
                    _code(e.status),
                    when(e.due),
                    when(e.verified_at) or "not yet",
                    erasure_text(e),
                ]
                for e in story.erasure
            ],
        )
    )
    w("\n## Transitions\n\n")
    if not story.rows:
        w("No deletion, restore or purge of this ticket in the period.\n\n")
    w(_table(STORY_HEADERS, (_story_row(r) for r in story.rows)))
    w("\n## Conflicts, decisions and operator actions\n\n")
    if not story.notes:
        w("None: no conflict, divergence, held or failed write for this ticket.\n")
    else:
        w(
            _table(
                STORY_NOTE_HEADERS,
                [story_note_cells(n, _code(n.kind), _code(n.side)) for n in story.notes],
            )
        )
    w("\n## Ledger runs this record covers\n\n")
    w(_table(RUN_HEADERS, (_run_row(run_cells(run)) for run in story.runs)))


def _legend(w: Write, doc: Document) -> None:
    w("\n## Legend\n")
    for title, codes in legend(doc):
        w(f"\n### {title}\n\n")
        for value, meaning in codes:
            w(f"- `{value}`: {meaning}\n")
