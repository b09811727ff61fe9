"""Generating a report: one read snapshot, one pass over the rows, one renderer.

CSV and JSON stream every row straight to the output. HTML and Markdown fold the rows into a
summary as they pass and keep only the first `detail_rows` of them (and the first `run_rows`
runs): the complete detail is the CSV/JSON export of the same period.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from bridge.ledger import Ledger
from bridge.ledger.audit import RunFacts
from bridge.report.model import Document, Period, ReportMeta, ReportRecord, SummaryBuilder, records
from bridge.report.render_csv import write_csv
from bridge.report.render_html import render_html
from bridge.report.render_json import write_json_lines
from bridge.report.render_md import render_markdown

__all__ = [
    "DEFAULT_DETAIL_ROWS",
    "EXTENSIONS",
    "FORMATS",
    "Document",
    "ReportMeta",
    "build_document",
    "default_filename",
    "open_output",
    "write_report",
]

FORMATS = ("html", "md", "csv", "json")
EXTENSIONS = {"html": "html", "md": "md", "csv": "csv", "json": "jsonl"}
#: rows of detail shown inline by the formats that summarise
DEFAULT_DETAIL_ROWS = {"html": 1000, "md": 200}
DEFAULT_RUN_ROWS = 500


def default_filename(period: Period, fmt: str) -> str:
    return f"bridge-report-{period.label}.{EXTENSIONS[fmt]}"


def build_document(
    ledger: Ledger, meta: ReportMeta, *, detail_rows: int, run_rows: int = DEFAULT_RUN_ROWS
) -> Document:
    period = meta.period
    builder = SummaryBuilder()
    detail: list[ReportRecord] = []
    runs: list[RunFacts] = []
    with ledger.audit_view() as view:
        for record in records(view.transitions(period.since, period.until)):
            builder.add(record)
            if len(detail) < detail_rows:
                detail.append(record)
        for run in view.runs(period.since, period.until):
            builder.add_run(run)
            if len(runs) < run_rows:
                runs.append(run)
        summary = builder.build(
            view.end_of_period(period.until), view.anomalies(period.since, period.until)
        )
    return Document(meta, summary, detail, detail_rows, runs, run_rows)


def write_report(
    ledger: Ledger, meta: ReportMeta, fmt: str, out: TextIO, *, detail_rows: int | None = None
) -> int:
    """Write the report in `fmt` to `out`; return the number of transition rows."""
    if fmt in ("csv", "json"):
        period = meta.period
        with ledger.audit_view() as view:
            rows = records(view.transitions(period.since, period.until))
            return write_csv(out, rows) if fmt == "csv" else write_json_lines(out, rows)
    if fmt not in DEFAULT_DETAIL_ROWS:
        raise ValueError(f"unknown report format {fmt!r}")
    limit = DEFAULT_DETAIL_ROWS[fmt] if detail_rows is None else detail_rows
    document = build_document(ledger, meta, detail_rows=limit)
    (render_html if fmt == "html" else render_markdown)(out, document)
    return document.summary.rows


@contextlib.contextmanager
def open_output(path: Path) -> Iterator[TextIO]:
    """A new file readable by its owner only, appearing complete or not at all: written
    beside `path` and renamed into place when the block succeeds."""
    folder = path.parent if str(path.parent) else Path(".")
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            yield out
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
