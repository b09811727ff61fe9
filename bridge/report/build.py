"""Generating a report: one read snapshot, one pass over the rows, one renderer, one seal.

CSV and JSON stream every row straight to the output. HTML and Markdown fold the rows into a
summary as they pass and keep only the first `detail_rows` of them (and the first `run_rows`
runs): the complete detail is the CSV/JSON export of the same period. With `--ticket`
(`RowFilter.link_id`) the summarising formats tell that ticket's whole story instead.

Everything written passes a hashing tee: the report's seal (`integrity.Seal`) states the
SHA-256 of exactly the bytes written, the runs covered, and a signature when a key is given.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from bridge import progress
from bridge.core.model import Sides
from bridge.ledger import Ledger
from bridge.ledger.audit import AuditView, RunFacts
from bridge.report.formats import FORMATS
from bridge.report.integrity import TRAILERS, HashingWriter, Seal, Signer
from bridge.report.model import (
    Document,
    Period,
    ReportMeta,
    ReportRecord,
    RunRange,
    Story,
    SummaryBuilder,
    erasure,
    iso,
    records,
)
from bridge.report.writer import Writer

__all__ = [
    "Document",
    "ReportMeta",
    "Written",
    "build_document",
    "default_filename",
    "open_output",
    "write_report",
]

DEFAULT_RUN_ROWS = 500
#: the progress phase of reading the rows (`bridge.progress`), and how often it reports
_PHASE = "building the report"
_EVERY = 1000


def _counted(rows: Iterable[ReportRecord]) -> Iterator[ReportRecord]:
    """The rows as they pass, counted for a progress bar a thousand at a time (a million
    rows take half a minute)."""
    sink = progress.current()
    done = 0
    for row in rows:
        yield row
        done += 1
        if done % _EVERY == 0:
            sink.advance(_PHASE, _EVERY)
    sink.advance(_PHASE, done % _EVERY)
    sink.finish(_PHASE)


def default_filename(period: Period, fmt: str) -> str:
    return f"bridge-report-{period.label}.{FORMATS[fmt].extension}"


@dataclass(frozen=True, slots=True)
class Written:
    """What `write_report` wrote: the number of transition rows, and the report's seal
    (inside an HTML or Markdown report already; a CSV or JSON one is sealed beside it)."""

    rows: int
    seal: Seal


def _run_range(runs: Iterable[RunFacts]) -> RunRange | None:
    ids = [run.id for run in runs]
    return RunRange(min(ids), max(ids), len(ids)) if ids else None


def _story(
    view: AuditView, sides: Sides, meta: ReportMeta, rows: list[ReportRecord], link_id: int
) -> Story | None:
    link = view.link(link_id)
    if link is None:
        return None
    period = meta.period
    runs = list(view.runs(period.since, period.until, link_id=link_id))
    erasures = [
        erasure(side, facts, rows, meta.retention.get(side), meta.generated_at)
        for side, facts in zip(sides, (link.first, link.second), strict=True)
    ]
    return Story(
        link=link,
        tickets={sides.first: link.first.ticket_id, sides.second: link.second.ticket_id},
        rows=rows,
        notes=list(view.notes(period.since, period.until, link_id=link_id)),
        erasure=erasures,
        runs=runs,
    )


def _document(
    view: AuditView, sides: Sides, meta: ReportMeta, detail_rows: int, run_rows: int
) -> Document:
    period, filters = meta.period, meta.filters
    builder = SummaryBuilder()
    detail: list[ReportRecord] = []
    story_rows: list[ReportRecord] = []
    facts = view.transitions(period.since, period.until, link_id=filters.link_id)
    with contextlib.closing(facts):
        for record in _counted(records(facts, filters)):
            builder.add(record)
            if len(detail) < detail_rows:
                detail.append(record)
            if filters.link_id is not None:
                story_rows.append(record)
    story = None
    if filters.link_id is not None:
        story = _story(view, sides, meta, story_rows, filters.link_id)
    runs: list[RunFacts] = []
    for run in view.runs(period.since, period.until, link_id=filters.link_id):
        builder.add_run(run)
        if len(runs) < run_rows:
            runs.append(run)
    if story is not None:
        run_range = _run_range(story.runs)
    else:
        found = view.run_range(period.since, period.until)
        run_range = RunRange(*found) if found else None
    summary = builder.build(
        view.end_of_period(period.until), view.anomalies(period.since, period.until)
    )
    return Document(
        meta,
        summary,
        detail,
        detail_rows,
        runs,
        run_rows,
        run_range=run_range,
        operator_actions=list(view.notes(period.since, period.until)),
        story=story,
    )


def build_document(
    ledger: Ledger, meta: ReportMeta, *, detail_rows: int, run_rows: int = DEFAULT_RUN_ROWS
) -> Document:
    """The summary, the first `detail_rows` rows and `run_rows` runs (or the story), read
    in one snapshot."""
    with ledger.audit_view() as view:
        return _document(view, ledger.sides, meta, detail_rows, run_rows)


def write_report(
    ledger: Ledger,
    meta: ReportMeta,
    fmt: str,
    out: Writer,
    *,
    detail_rows: int | None = None,
    signer: Signer | None = None,
) -> Written:
    """Write the report in `fmt` (a registered format) to `out`, sealed (and signed with
    `signer`): HTML and Markdown end with their seal; for CSV and JSON the caller writes
    `Written.seal` beside the file."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r}")
    form = FORMATS[fmt]
    period, filters = meta.period, meta.filters
    tee = HashingWriter(out)
    with ledger.audit_view() as view:
        if form.write_rows is not None:
            facts = view.transitions(period.since, period.until, link_id=filters.link_id)
            with contextlib.closing(facts):  # a reader gone mid-stream: closed in the snapshot
                rows = form.write_rows(tee, _counted(records(facts, filters)), ledger.sides)
            if filters.link_id is not None:
                run_range = _run_range(
                    view.runs(period.since, period.until, link_id=filters.link_id)
                )
            else:
                found = view.run_range(period.since, period.until)
                run_range = RunRange(*found) if found else None
        else:
            assert form.render is not None  # a format streams or summarises (ReportFormat)
            limit = form.detail_rows if detail_rows is None else detail_rows
            document = _document(view, ledger.sides, meta, limit, DEFAULT_RUN_ROWS)
            form.render(tee, document)
            rows, run_range = document.summary.rows, document.run_range
    seal = Seal(
        format=fmt,
        sha256=tee.hexdigest(),
        period=f"{iso(period.since)}/{iso(period.until)}",
        runs=f"{run_range.first}-{run_range.last}" if run_range else None,
        run_count=run_range.count if run_range else 0,
        generated_at=iso(meta.generated_at) or "",
    )
    if signer is not None:
        seal = signer.sign(seal)
    trailer = TRAILERS.get(fmt)
    if trailer is not None:
        out.write(trailer(seal))
    return Written(rows, seal)


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
