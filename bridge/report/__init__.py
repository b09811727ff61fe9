"""`bridge report`: the audit report of every deletion, restore and purge (docs/report.md)."""

from bridge.report.build import (
    DEFAULT_DETAIL_ROWS,
    EXTENSIONS,
    FORMATS,
    build_document,
    default_filename,
    open_output,
    write_report,
)
from bridge.report.model import (
    FIELDS,
    Document,
    Period,
    PeriodError,
    ReportMeta,
    ReportRecord,
    parse_moment,
)

__all__ = [
    "DEFAULT_DETAIL_ROWS",
    "EXTENSIONS",
    "FIELDS",
    "FORMATS",
    "Document",
    "Period",
    "PeriodError",
    "ReportMeta",
    "ReportRecord",
    "build_document",
    "default_filename",
    "open_output",
    "parse_moment",
    "write_report",
]
