"""`bridge report`: the audit report of every deletion, restore and purge (docs/report.md)."""

from bridge.report.build import (
    build_document,
    default_filename,
    open_output,
    write_report,
)
from bridge.report.formats import FORMATS, ReportFormat, register
from bridge.report.model import (
    Document,
    Period,
    PeriodError,
    ReportMeta,
    ReportRecord,
    parse_moment,
)

__all__ = [
    "FORMATS",
    "Document",
    "Period",
    "PeriodError",
    "ReportFormat",
    "ReportMeta",
    "ReportRecord",
    "build_document",
    "default_filename",
    "open_output",
    "parse_moment",
    "register",
    "write_report",
]
