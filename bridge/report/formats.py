"""The report formats, registered by name: a new format is one `register` call.

Two kinds: a *stream* writes every row of the period as it is read (CSV, JSON Lines); a
*summary* folds the rows into a `Document` and shows the first rows of detail (HTML,
Markdown). `bridge report --format` offers whatever is registered here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bridge.core.model import Sides
from bridge.report.model import Document, ReportRecord
from bridge.report.render_csv import write_csv
from bridge.report.render_html import render_html
from bridge.report.render_json import write_json_lines
from bridge.report.render_md import render_markdown
from bridge.report.writer import Writer

__all__ = ["FORMATS", "ReportFormat", "register"]


@dataclass(frozen=True, slots=True)
class ReportFormat:
    """One output format. Exactly one of `write_rows` (a stream: every row, its ticket ids
    named after the ledger's sides, returning how many) and `render` (a summary of a
    `Document`) is set; a summary shows at most `detail_rows` rows of detail by default."""

    name: str
    extension: str
    write_rows: Callable[[Writer, Iterable[ReportRecord], Sides], int] | None = None
    render: Callable[[Writer, Document], None] | None = None
    detail_rows: int = 0

    def __post_init__(self) -> None:
        if (self.write_rows is None) == (self.render is None):
            raise ValueError(f"report format {self.name!r}: give write_rows or render, not both")


#: the registered formats by name, in the order `--format` lists them
FORMATS: dict[str, ReportFormat] = {}


def register(fmt: ReportFormat) -> ReportFormat:
    if fmt.name in FORMATS:
        raise ValueError(f"report format {fmt.name!r} is registered already")
    FORMATS[fmt.name] = fmt
    return fmt


register(ReportFormat("html", "html", render=render_html, detail_rows=1000))
register(ReportFormat("md", "md", render=render_markdown, detail_rows=200))
register(ReportFormat("csv", "csv", write_rows=write_csv))
register(ReportFormat("json", "jsonl", write_rows=write_json_lines))
