"""The report as one self-contained HTML file: inline CSS and SVG, no script, no link out.

It summarises (counts, latency, the state at the end of the period, the timeline) and shows
the first `Document.detail_limit` rows of detail with a note on where the rest is: the CSV or
JSON export of the same period carries every row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import TextIO

from bridge.report.model import Document, ReportRecord
from bridge.report.svg import bucket_label, timeline_svg
from bridge.report.text import (
    CAUSES,
    RUN_HEADERS,
    duration,
    end_of_period_rows,
    outcome_text,
    purge_text,
    run_cells,
    when,
)

__all__ = ["render_html"]

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em;color:#222}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:1.8em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.6em 0}th,td{border:1px solid #ccc;padding:3px 7px;
text-align:left;vertical-align:top}th{background:#f2f2f2}td.n,th.n{text-align:right}
.meta{color:#555}.note{background:#fff8dc;border:1px solid #e6d9a2;padding:.5em .8em}
.detail td{font-size:12px;white-space:nowrap}.bad{color:#a40000;font-weight:600}
@media print{body{margin:0}.detail td{font-size:10px}}
"""


def _e(value: object) -> str:
    return escape("" if value is None else str(value))


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]], *, numeric: int = 0) -> str:
    """A table whose last `numeric` columns are right-aligned numbers."""
    first = len(headers) - numeric
    head = "".join(
        f'<th class="n">{_e(h)}</th>' if i >= first else f"<th>{_e(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="n">{_e(c)}</td>' if i >= first else f"<td>{_e(c)}</td>"
            for i, c in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _detail_row(r: ReportRecord) -> list[object]:
    return [
        r.event_id,
        r.link_id,
        r.first_id,
        r.second_id,
        r.side,
        r.transition,
        r.cause,
        r.actor_id,
        when(r.vendor_time),
        when(r.detected_at),
        when(r.propagated_at),
        duration(r.latency_seconds) if r.latency_seconds is not None else "",
        outcome_text(r),
        purge_text(r),
    ]


DETAIL_HEADERS = (
    "Event",
    "Link",
    "SuperOffice id",
    "Zendesk id",
    "Side",
    "Transition",
    "Cause",
    "Actor id",
    "Vendor time",
    "Detected",
    "Propagated",
    "Latency",
    "Outcome",
    "Purge verification",
)


def render_html(out: TextIO, doc: Document) -> None:
    meta, summary = doc.meta, doc.summary
    period = meta.period
    title = f"bridge audit report {period.first_day} to {period.last_day}"
    w = out.write
    w('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">')
    w('<meta name="viewport" content="width=device-width, initial-scale=1">')
    w(f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>\n")
    w(f"<h1>{_e(title)}</h1>")
    w(
        f'<p class="meta">Deletions, restores and purges of linked tickets in SuperOffice and '
        f"Zendesk, detected from {_e(when(period.since))} to {_e(when(period.until))} UTC "
        f"(end excluded). Generated {_e(when(meta.generated_at))} UTC by bridge "
        f"{_e(meta.version)} from the ledger {_e(meta.ledger)}. The report holds ticket ids, "
        "states, times and actor ids only: no ticket subject or content.</p>\n"
    )

    w("<h2>Summary</h2>")
    if not summary.rows:
        w('<p class="note">No deletion, restore or purge was detected in this period.</p>')
    keys = sorted({(side, transition) for side, transition, _ in summary.counts})
    w("<h3>Transitions per side, transition and cause</h3>")
    w(
        _table(
            ["Side", "Transition", *CAUSES, "Total"],
            [
                [
                    side,
                    transition,
                    *(summary.counts.get((side, transition, c), 0) for c in CAUSES),
                    sum(summary.counts.get((side, transition, c), 0) for c in CAUSES),
                ]
                for side, transition in keys
            ]
            + [["All", "", *_cause_totals(doc), summary.rows]],
            numeric=len(CAUSES) + 1,
        )
    )
    lat = summary.latency
    w("<h3>Propagation latency</h3>")
    w(
        "<p>From the vendor's time of a change to its confirmation on the other side, over the "
        f"{lat.count} changes of the period that were copied and confirmed.</p>"
    )
    w(
        _table(
            ["Median", "95th percentile", "Maximum"],
            [[duration(lat.median), duration(lat.p95), duration(lat.maximum)]],
        )
    )
    w("<h3>Outcomes</h3>")
    w(_table(["Outcome", "Rows"], sorted(summary.outcomes.items()), numeric=1))
    w(
        f"<p>Purges verified gone: {summary.purges_verified}. Purges pending the vendor's "
        f"retention job: {summary.purges_pending}.</p>"
    )
    if summary.anomalies:
        w(
            f'<p class="bad">{summary.anomalies} purged tickets were seen alive again in this '
            "period (ids reused, or a vendor error): see <code>bridge status</code>.</p>"
        )
    end = summary.end
    w(f"<h3>Open at the end of the period ({_e(when(period.until))} UTC)</h3>")
    w(
        _table(
            ["Item", "Count"],
            end_of_period_rows(end),
            numeric=1,
        )
    )

    days = list(period.days())
    w("<h2>Timeline</h2>")
    w(f"<p>Transitions per {bucket_label(len(days))} and side (by time detected).</p>")
    w(timeline_svg(days, ("superoffice", "zendesk"), summary.per_day))
    by_day: dict[str, dict[str, int]] = {}
    for (day, side), n in summary.per_day.items():
        by_day.setdefault(day.isoformat(), {})[side] = n
    if by_day:
        w(
            _table(
                ["Day", "SuperOffice", "Zendesk"],
                [
                    [day, sides.get("superoffice", 0), sides.get("zendesk", 0)]
                    for day, sides in sorted(by_day.items())
                ],
                numeric=2,
            )
        )

    w("<h2>Detail</h2>")
    if doc.detail_truncated:
        w(
            f'<p class="note">Showing the first {len(doc.detail)} of {summary.rows} rows, in '
            "the order detected. Every row is in the CSV or JSON export of the same period: "
            f"<code>bridge report --since {period.first_day} --until {period.last_day} "
            "--format csv</code>.</p>"
        )
    w('<div class="detail">')
    w(_table(DETAIL_HEADERS, (_detail_row(r) for r in doc.detail)))
    w("</div>")

    w("<h2>Runs</h2>")
    w(f"<p>{summary.runs} runs started in the period.</p>")
    if summary.runs_by_outcome:
        w(
            _table(
                ["Kind", "Outcome", "Runs"],
                [[k, o, n] for (k, o), n in summary.runs_by_outcome.items()],
                numeric=1,
            )
        )
    if doc.runs_truncated:
        w(f'<p class="note">Showing the first {len(doc.runs)} runs.</p>')
    w(_table(RUN_HEADERS, (run_cells(run) for run in doc.runs)))
    w("\n</body></html>\n")


def _cause_totals(doc: Document) -> list[int]:
    return [sum(n for (_, _, c), n in doc.summary.counts.items() if c == cause) for cause in CAUSES]
