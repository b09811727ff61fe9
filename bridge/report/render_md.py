"""The report as Markdown, for pasting into a ticket: the summary, the days with activity,
the first rows of detail and the runs, as GitHub-flavoured tables."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TextIO

from bridge.report.model import Document
from bridge.report.render_html import DETAIL_HEADERS, _detail_row
from bridge.report.text import CAUSES, RUN_HEADERS, duration, end_of_period_rows, run_cells, when

__all__ = ["render_markdown"]


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(_cell(h) for h in headers) + " |"]
    lines.append("|" + "---|" * len(headers))
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def render_markdown(out: TextIO, doc: Document) -> None:
    meta, summary = doc.meta, doc.summary
    period = meta.period
    w = out.write
    w(f"# bridge audit report {period.first_day} to {period.last_day}\n\n")
    w(
        f"Detected from {when(period.since)} to {when(period.until)} UTC (end excluded). "
        f"Generated {when(meta.generated_at)} UTC by bridge {meta.version}. Ticket ids, "
        "states, times and actor ids only: no ticket subject or content.\n\n"
    )
    w("## Summary\n\n")
    if not summary.rows:
        w("No deletion, restore or purge was detected in this period.\n\n")
    keys = sorted({(side, transition) for side, transition, _ in summary.counts})
    rows = [
        [
            side,
            transition,
            *(summary.counts.get((side, transition, c), 0) for c in CAUSES),
            sum(summary.counts.get((side, transition, c), 0) for c in CAUSES),
        ]
        for side, transition in keys
    ]
    w(
        _table(
            ["Side", "Transition", *CAUSES, "Total"],
            [*rows, ["All", "", "", "", "", "", summary.rows]],
        )
    )
    lat = summary.latency
    w(
        f"\nPropagation latency over {lat.count} confirmed copies: median "
        f"{duration(lat.median)}, 95th percentile {duration(lat.p95)}, maximum "
        f"{duration(lat.maximum)}.\n\n"
    )
    w(_table(["Outcome", "Rows"], sorted(summary.outcomes.items())))
    w(
        f"\nPurges verified gone: {summary.purges_verified}; pending the vendor's retention "
        f"job: {summary.purges_pending}."
    )
    if summary.anomalies:
        w(f" **{summary.anomalies} purged tickets were seen alive again.**")
    end = summary.end
    w(f"\n\nOpen at the end of the period ({when(period.until)} UTC):\n\n")
    w(
        _table(
            ["Item", "Count"],
            end_of_period_rows(end),
        )
    )
    w("\n## Timeline\n\nTransitions per day and side (days with activity only).\n\n")
    by_day: dict[str, dict[str, int]] = {}
    for (day, side), n in summary.per_day.items():
        by_day.setdefault(day.isoformat(), {})[side] = n
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
    w(_table(RUN_HEADERS, (run_cells(run) for run in doc.runs)))
