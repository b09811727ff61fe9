"""The report as one self-contained HTML file: inline CSS and SVG, no script, no link out.

It summarises (counts, latency, the state at the end of the period, the timeline) and shows
the first `Document.detail_limit` rows of detail with a note on where the rest is: the CSV or
JSON export of the same period carries every row. With `--ticket` it is one ticket's story
instead. Every code shown is explained in the legend at the end.

Layout: every table fits the page width (cells wrap, anywhere if they must), so nothing
scrolls sideways at 1400 px; below 760 px the wide tables become one card per row, each
cell labelled with its column; printed (or saved as PDF) the page is A4 landscape and every
column is kept. `tests/report/test_report_browser.py` checks all three in Chromium.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

from bridge.report.legend import legend
from bridge.report.model import Document, ReportRecord, Story
from bridge.report.svg import bucket_label, timeline_svg
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

__all__ = ["DETAIL_HEADERS", "render_html"]

_CSS = """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
padding:1.5em 2em;color:#222}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:1.8em;border-bottom:1px solid #ccc}
h1,h2,h3,p,li,dd,code{overflow-wrap:anywhere}
table{border-collapse:collapse;margin:.6em 0}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top;
overflow-wrap:anywhere}
th{background:#f2f2f2;overflow-wrap:break-word}td.n,th.n{text-align:right}
table.wide{width:100%;font-size:12px}
.meta{color:#555}.note{background:#fff8dc;border:1px solid #e6d9a2;padding:.5em .8em}
.bad{color:#a40000;font-weight:600}
.code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.95em;
overflow-wrap:break-word}
dl.legend{display:grid;grid-template-columns:minmax(8em,max-content) minmax(0,1fr);
gap:.2em 1em;margin:.4em 0 1em}
dl.legend dt{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
dl.legend dd{margin:0}
.seal{margin-top:2em;border-top:2px solid #888;padding-top:.5em;font-size:12px;color:#444}
svg.timeline{max-width:100%;height:auto}
@media screen and (max-width:760px){
body{padding:.8em}
table.wide,table.wide tbody,table.wide tr,table.wide td{display:block;width:100%}
table.wide thead{display:none}
table.wide tr{border:1px solid #bbb;margin:0 0 .8em}
table.wide td{border:0;border-bottom:1px solid #eee;display:grid;
grid-template-columns:9em minmax(0,1fr);gap:.6em}
table.wide td::before{content:attr(data-label);font-weight:600;color:#555}
dl.legend{grid-template-columns:minmax(0,1fr)}dl.legend dd{margin:0 0 .4em 1em}
}
@page{size:A4 landscape;margin:10mm}
@media print{
body{padding:0;font-size:10px}
table.wide{font-size:7.5px;table-layout:auto}
table.wide th,table.wide td{padding:1px 3px}
thead{display:table-header-group}tr{break-inside:avoid}h2,h3{break-after:avoid}
svg.timeline{max-height:70mm}
}
"""


def _e(value: object) -> str:
    return escape("" if value is None else str(value))


def code(value: object, detail: str = "") -> str:
    """A code (explained in the legend), and the text that follows it, as cell HTML."""
    if value is None or value == "":
        return _e(detail)
    tail = f" {_e(detail)}" if detail else ""
    return f'<span class="code">{_e(value)}</span>{tail}'


class Html(str):
    """Cell content that is HTML already (not escaped again)."""

    __slots__ = ()


def _cell(value: object) -> str:
    return value if isinstance(value, Html) else _e(value)


def _table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    numeric: int = 0,
    wide: bool = False,
) -> str:
    """A table whose last `numeric` columns are right-aligned numbers; a `wide` one turns
    into labelled cards on a narrow screen."""
    first = len(headers) - numeric
    head = "".join(
        f'<th class="n">{_e(h)}</th>' if i >= first else f"<th>{_e(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = []
    numeric_class = ' class="n"'
    for row in rows:
        cells = "".join(
            f'<td{numeric_class if i >= first else ""} data-label="{_e(headers[i])}">'
            f"{_cell(c)}</td>"
            for i, c in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    kind = ' class="wide"' if wide else ""
    return f"<table{kind}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


DETAIL_HEADERS = (
    "Event",
    "Link",
    "SuperOffice id",
    "Zendesk id",
    "Side",
    "Transition",
    "Cause",
    "Actor",
    "Vendor time",
    "Detected",
    "Propagated",
    "Latency",
    "Outcome",
    "Purge verification",
    "Run",
)


def _detail_row(r: ReportRecord) -> list[object]:
    return [
        r.event_id,
        r.link_id,
        r.first_id,
        r.second_id,
        Html(code(r.side)),
        Html(code(r.transition)),
        Html(code(r.cause)),
        actor_text(r),
        when(r.vendor_time),
        when(r.detected_at),
        when(r.propagated_at),
        duration(r.latency_seconds) if r.latency_seconds is not None else "",
        Html(code(r.outcome, outcome_text(r))),
        Html(code(r.purge_verification, purge_text(r))),
        r.run_id,
    ]


STORY_HEADERS = (
    "Event",
    "Side",
    "Ticket",
    "Transition",
    "Cause",
    "Actor",
    "Vendor time",
    "Detected",
    "Evidence",
    "Outcome",
    "Purge verification",
)


def _story_row(r: ReportRecord) -> list[object]:
    return [
        r.event_id,
        Html(code(r.side)),
        r.ticket_id,
        Html(code(r.transition)),
        Html(code(r.cause)),
        actor_text(r),
        when(r.vendor_time),
        when(r.detected_at),
        evidence_text(r),
        Html(code(r.outcome, outcome_text(r))),
        Html(code(r.purge_verification, purge_text(r))),
    ]


def render_html(out: Writer, doc: Document) -> None:
    """Everything but the closing seal (`html_trailer`), which ends the page."""
    meta = doc.meta
    period = meta.period
    story = doc.story
    if story is not None:
        ids = " / ".join(f"{label(side)} {ticket}" for side, ticket in story.tickets.items())
        title = f"bridge erasure record: {ids}"
    else:
        title = f"bridge audit report {period.first_day} to {period.last_day}"
    w = out.write
    w('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">')
    w('<meta name="viewport" content="width=device-width, initial-scale=1">')
    w(f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>\n")
    w(f"<h1>{_e(title)}</h1>")
    filters = meta.filters.describe()
    runs = str(doc.run_range) if doc.run_range else "no run"
    w(
        f'<p class="meta">Deletions, restores and purges of linked tickets in SuperOffice and '
        f"Zendesk, detected from {_e(when(period.since))} to {_e(when(period.until))} UTC "
        f"(end excluded){_e('; rows with ' + filters) if filters else ''}. Ledger runs "
        f"covered: {_e(runs)}. Generated {_e(when(meta.generated_at))} UTC by bridge "
        f"{_e(meta.version)} from the ledger {_e(meta.ledger)}. The report holds ticket ids, "
        "states, times and actor ids only: no ticket subject or content. Every code is "
        "explained in the legend at the end.</p>\n"
    )
    if story is not None:
        _story(w, doc, story)
    else:
        _summary(w, doc)
        _timeline(w, doc)
        _detail(w, doc)
        _runs(w, doc)
    _legend(w, doc)


def _summary(w: Write, doc: Document) -> None:
    summary, period = doc.summary, doc.meta.period
    w('<h2 id="summary">Summary</h2>')
    if not summary.rows:
        w('<p class="note">No deletion, restore or purge was detected in this period.</p>')
    keys = sorted({(side, transition) for side, transition, _ in summary.counts})
    w("<h3>Transitions per side, transition and cause</h3>")
    totals = [sum(n for (_, _, c), n in summary.counts.items() if c == cause) for cause in CAUSES]
    w(
        _table(
            ["Side", "Transition", *CAUSES, "Total"],
            [
                [
                    Html(code(side)),
                    Html(code(transition)),
                    *(summary.counts.get((side, transition, c), 0) for c in CAUSES),
                    sum(summary.counts.get((side, transition, c), 0) for c in CAUSES),
                ]
                for side, transition in keys
            ]
            + [["All", "", *totals, summary.rows]],
            numeric=len(CAUSES) + 1,
            wide=True,
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
    w(
        _table(
            ["Outcome", "Rows"],
            [[Html(code(k)), n] for k, n in sorted(summary.outcomes.items())],
            numeric=1,
        )
    )
    w(
        f"<p>Purges verified gone: {summary.purges_verified}. Purges pending the vendor's "
        f"retention job: {summary.purges_pending}.</p>"
    )
    if summary.anomalies:
        w(
            f'<p class="bad">{summary.anomalies} purged tickets were seen alive again in this '
            "period (ids reused, or a vendor error): see <code>bridge status</code>.</p>"
        )
    w(f"<h3>Open at the end of the period ({_e(when(period.until))} UTC)</h3>")
    if doc.meta.filters.active:
        w('<p class="note">For the whole ledger: the filters choose rows only.</p>')
    w(_table(["Item", "Count"], end_of_period_rows(summary.end), numeric=1))
    w("<h3>Operator actions</h3>")
    if not doc.operator_actions:
        w(
            "<p>No operator action (conflicts resolve, --allow-mass-purge, migrate) in the "
            "period.</p>"
        )
    else:
        w(
            _table(
                OPERATOR_ACTION_HEADERS,
                [
                    operator_action_cells(note, Html(code(note.kind)))
                    for note in doc.operator_actions
                ],
                wide=True,
            )
        )


def _timeline(w: Write, doc: Document) -> None:
    summary = doc.summary
    days = doc.chart_days()
    w('<h2 id="timeline">Timeline</h2>')
    first, last = (days[0], days[-1]) if days else (None, None)
    w(
        f"<p>Transitions per {bucket_label(len(days))} (by time detected), per side, split by "
        f"transition and cause, from {_e(first)} to {_e(last)}"
        f"{'' if doc.meta.since_given or doc.meta.until_given else ' (the days with rows)'}."
        "</p>"
    )
    for side in ("superoffice", "zendesk"):
        w(f"<h3>{_e(label(side))}</h3>")
        w(timeline_svg(days, side, label(side), summary.per_day))
    by_day: dict[str, dict[str, int]] = {}
    for (day, side, _, _), n in summary.per_day.items():
        sides = by_day.setdefault(day.isoformat(), {})
        sides[side] = sides.get(side, 0) + n
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


def _detail(w: Write, doc: Document) -> None:
    period = doc.meta.period
    w('<h2 id="detail">Detail</h2>')
    if doc.detail_truncated:
        w(
            f'<p class="note">Showing the first {len(doc.detail)} of {doc.summary.rows} rows, '
            "in the order detected. Every row is in the CSV or JSON export of the same period: "
            f"<code>bridge report --since {period.first_day} --until {period.last_day} "
            "--format csv</code>.</p>"
        )
    w(_table(DETAIL_HEADERS, (_detail_row(r) for r in doc.detail), wide=True))


def _runs(w: Write, doc: Document) -> None:
    summary = doc.summary
    w('<h2 id="runs">Runs</h2>')
    w(f"<p>{summary.runs} runs started in the period.</p>")
    if summary.runs_by_outcome:
        w(
            _table(
                ["Kind", "Outcome", "Runs"],
                [
                    [Html(code(kind)), Html(code(outcome)), n]
                    for (kind, outcome), n in summary.runs_by_outcome.items()
                ],
                numeric=1,
            )
        )
    if doc.runs_truncated:
        w(f'<p class="note">Showing the first {len(doc.runs)} runs.</p>')
    w(_table(RUN_HEADERS, (_run_row(run_cells(run)) for run in doc.runs), wide=True))


def _run_row(cells: list[object]) -> list[object]:
    """Kind and outcome are codes; the counters are explained in the legend."""
    return [
        cells[0],
        Html(code(cells[1])),
        cells[2],
        cells[3],
        cells[4],
        Html(code(cells[5])),
        *cells[6:],
    ]


def _story(w: Write, doc: Document, story: Story) -> None:
    link = story.link
    w("<h2>Tickets</h2>")
    w(
        _table(
            ["Side", "Ticket id", "State now", "Since (vendor time)", "Last read"],
            [
                [
                    Html(code(side)),
                    ticket,
                    Html(code(facts.state)),
                    when(facts.vendor_time),
                    when(facts.seen_at),
                ]
                for (side, ticket), facts in zip(
                    story.tickets.items(), (link.first, link.second), strict=True
                )
            ],
            wide=True,
        )
    )
    attention = ""
    if link.attention:
        attention = "; needs a person: " + code(link.attention, link.attention_reason or "")
    w(
        f"<p>Linked as ledger link {link.link_id} ({_e(link.origin)}) on "
        f"{_e(when(link.created_at))} UTC; agreed state: {code(link.base) or 'none yet'}"
        f"{attention}.</p>"
    )
    w("<h2>Final erasure</h2>")
    w(
        _table(
            ["Side", "Ticket id", "Erasure", "Due", "Verified", "What it rests on"],
            [
                [
                    Html(code(item.side)),
                    item.ticket_id,
                    Html(code(item.status)),
                    when(item.due),
                    when(item.verified_at) or "not yet",
                    erasure_text(item),
                ]
                for item in story.erasure
            ],
            wide=True,
        )
    )
    w("<h2>Transitions</h2>")
    if not story.rows:
        w('<p class="note">No deletion, restore or purge of this ticket in the period.</p>')
    w(_table(STORY_HEADERS, (_story_row(r) for r in story.rows), wide=True))
    w("<h2>Conflicts, decisions and operator actions</h2>")
    if not story.notes:
        w("<p>None: no conflict, divergence, held or failed write for this ticket.</p>")
    else:
        w(
            _table(
                STORY_NOTE_HEADERS,
                [story_note_cells(n, Html(code(n.kind)), Html(code(n.side))) for n in story.notes],
                wide=True,
            )
        )
    w("<h2>Ledger runs this record covers</h2>")
    w(_table(RUN_HEADERS, (_run_row(run_cells(run)) for run in story.runs), wide=True))


def _legend(w: Write, doc: Document) -> None:
    w('<h2 id="legend">Legend</h2>')
    for title, codes in legend(doc):
        w(f'<h3>{_e(title)}</h3><dl class="legend">')
        for value, meaning in codes:
            w(f"<dt>{_e(value)}</dt><dd>{_e(meaning)}</dd>")
        w("</dl>")
