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
from bridge.report.formats import FORMATS
from bridge.report.model import Document, Period, ReportMeta, ReportRecord, SummaryBuilder, records

__all__ = [
    "Document",
    "ReportMeta",
    "build_document",
    "default_filename",
    "open_output",
    "write_report",
]

DEFAULT_RUN_ROWS = 500


def default_filename(period: Period, fmt: str) -> str:
    return f"bridge-report-{period.label}.{FORMATS[fmt].extension}"


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
    """Write the report in `fmt` (a registered format) to `out`; return the number of
    transition rows."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r}")
    form = FORMATS[fmt]
    if form.write_rows is not None:
        period = meta.period
        with ledger.audit_view() as view:
            rows = records(view.transitions(period.since, period.until))
            return form.write_rows(out, rows, ledger.sides)
    assert form.render is not None  # a format streams or summarises (ReportFormat)
    limit = form.detail_rows if detail_rows is None else detail_rows
    document = build_document(ledger, meta, detail_rows=limit)
    form.render(out, document)
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
